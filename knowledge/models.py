"""Database schema of the knowledge base (SQLAlchemy 2). Changes go through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

GROUP_CHARS = 255


class Base(DeclarativeBase):
    pass


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite returns it naive)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_time(moment: datetime, zone: str = "Asia/Ho_Chi_Minh") -> datetime:
    """A stored time as staff read it: databases hand back UTC (SQLite without its zone), shown in the office's."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone))


class EntryRow(Base):
    """A procedure (id = national code) or a topic (id = slug)."""

    __tablename__ = "entries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    short_name: Mapped[str | None] = mapped_column(Text)
    # a national field's slug runs to ~190 characters ("quan-ly-...-va-xu-ly-vi-pham-..."): 64 was too few
    group: Mapped[str] = mapped_column("group_slug", String(GROUP_CHARS), index=True)
    level: Mapped[str | None] = mapped_column(String(128))
    summary: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str | None] = mapped_column(Text)
    online_level: Mapped[str] = mapped_column(String(16), default="unknown")
    online_portals: Mapped[list[str]] = mapped_column(JSON, default=list)
    online_note: Mapped[str | None] = mapped_column(Text)
    postal_submit: Mapped[bool | None] = mapped_column(Boolean)
    postal_receive_result: Mapped[bool | None] = mapped_column(Boolean)
    postal_note: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list[str]] = mapped_column(JSON, default=list)
    conditions: Mapped[list[str]] = mapped_column(JSON, default=list)
    legal_basis: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(32), default="starter")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now())

    documents: Mapped[list[DocumentRow]] = relationship(cascade="all, delete-orphan", order_by="DocumentRow.position")
    fees: Mapped[list[FeeRow]] = relationship(cascade="all, delete-orphan", order_by="FeeRow.position")
    durations: Mapped[list[DurationRow]] = relationship(cascade="all, delete-orphan", order_by="DurationRow.position")
    places: Mapped[list[PlaceRow]] = relationship(cascade="all, delete-orphan", order_by="PlaceRow.position")
    phrases: Mapped[list[PhraseRow]] = relationship(cascade="all, delete-orphan", order_by="PhraseRow.position")
    equivalents: Mapped[list[EquivalentRow]] = relationship(cascade="all, delete-orphan")


class _EntryChild:
    position: Mapped[int] = mapped_column(Integer, default=0)


class DocumentRow(_EntryChild, Base):
    __tablename__ = "entry_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    form: Mapped[str | None] = mapped_column(String(32))
    count: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)


class FeeRow(_EntryChild, Base):
    __tablename__ = "entry_fees"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="any")
    amount_vnd: Mapped[int | None] = mapped_column(Integer)
    set_by_province: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    exemptions: Mapped[str | None] = mapped_column(Text)
    basis: Mapped[str | None] = mapped_column(Text)


class DurationRow(_EntryChild, Base):
    __tablename__ = "entry_durations"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="any")
    text: Mapped[str] = mapped_column(Text)
    working_days: Mapped[float | None] = mapped_column(Float)


class PlaceRow(_EntryChild, Base):
    __tablename__ = "entry_places"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    agency: Mapped[str] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)


class PhraseRow(_EntryChild, Base):
    """An alias or an example phrasing: what the matcher compares questions with."""

    __tablename__ = "entry_phrases"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # alias | example
    text: Mapped[str] = mapped_column(Text)


class EquivalentRow(Base):
    """The same procedure recorded at another level of government."""

    __tablename__ = "entry_equivalents"

    entry_id: Mapped[str] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True)
    equivalent_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class MetaRow(Base):
    """Small key/value facts about the database itself (e.g. which starter data was loaded)."""

    __tablename__ = "kb_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RevisionRow(Base):
    """One change to one entry: who, when, from where, and the entry before and after (as YAML-ready dicts)."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))  # create | update | delete | revert
    actor: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(256))  # cli | chat | file:<name>
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    reverted_by: Mapped[int | None] = mapped_column(Integer)


class StaffRow(Base):
    """A staff member of the office, by platform and user id, with a role."""

    __tablename__ = "staff"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # admin | editor | broadcaster
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Optional second way into the web console besides the one-time link: an argon2 hash, never the password.
    password_hash: Mapped[str | None] = mapped_column(String(256))


class StaffActionRow(Base):
    """Who did what and when, for every staff change that is not already a knowledge revision."""

    __tablename__ = "staff_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(200))  # "telegram:123", as in revisions
    action: Mapped[str] = mapped_column(String(64))  # e.g. "staff.add", "dossiers.import", "announcement.cancel"
    detail: Mapped[str] = mapped_column(Text, default="")


class SignInLinkRow(Base):
    """A one-time sign-in link sent to a staff member's chat: only its hash is kept."""

    __tablename__ = "web_signin_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    """A signed-in browser: the cookie holds a random token, the database its hash."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UnansweredRow(Base):
    """A question the bot could not answer well, kept (once, with a count) for staff to review."""

    __tablename__ = "unanswered"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)  # folded, normalised question
    text: Mapped[str] = mapped_column(Text)  # as a citizen first typed it
    reason: Mapped[str] = mapped_column(String(16))  # unknown | clarify | low | thumbs_down
    count: Mapped[int] = mapped_column(Integer, default=1)
    best_guess: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_entry_id: Mapped[str | None] = mapped_column(String(64))


class ChatStateRow(Base):
    """One feature's memory of one chat (handlers.state): the follow-up's subject, a draft, a pending import."""

    __tablename__ = "chat_states"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    feature: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
