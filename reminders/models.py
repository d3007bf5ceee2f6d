"""Schema of dossier tracking (SQLAlchemy 2, on the knowledge base's Base). Changes go through Alembic (0003, 0005).

Times are stored timezone-aware in UTC; SQLite hands them back without a zone, so read them through `as_utc`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from knowledge.models import Base, as_utc, utc_now  # noqa: F401 - as_utc, utc_now: read from here too


class DossierRow(Base):
    """One dossier as the one-stop software last reported it."""

    __tablename__ = "dossiers"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    procedure: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # Ngày hẹn trả
    new_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # a later date the office set
    status: Mapped[str] = mapped_column(String(32))
    status_since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_history_id: Mapped[int | None] = mapped_column(Integer)  # the history row of the current status
    note: Mapped[str | None] = mapped_column(Text)
    delivery: Mapped[str | None] = mapped_column(Text)  # Hình thức trả kết quả
    # The second factor a chat must give before it sees anything but "this dossier exists": the last 4 digits of
    # the phone number and of the ID number (CCCD) the filer gave. Only 4 digits are kept, never the full
    # numbers: they are enough to check the filer (with the code, rate limits and lockouts), and a copied
    # database then gives away no phone or ID number.
    phone_last4: Mapped[str | None] = mapped_column(String(4))
    id_last4: Mapped[str | None] = mapped_column(String(4))
    # Why the last reminder scan could not plan for this dossier (a bad record), for staff; None when fine.
    scan_problem: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DossierStatusRow(Base):
    """A status change, noticed once: kept for history and for the reminder it causes."""

    __tablename__ = "dossier_status_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_code: Mapped[str] = mapped_column(ForeignKey("dossiers.code", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # as the source says, else when noticed
    noticed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(256))


class FollowRow(Base):
    """A chat following a dossier."""

    __tablename__ = "dossier_follows"
    __table_args__ = (UniqueConstraint("channel", "chat_id", "dossier_code", name="uq_dossier_follows_chat_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    dossier_code: Mapped[str] = mapped_column(ForeignKey("dossiers.code", ondelete="CASCADE"), index=True)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    unreachable: Mapped[str | None] = mapped_column(Text)  # why messages to this chat stopped (e.g. bot blocked)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class VerificationRow(Base):
    """A chat that proved it filed a dossier (the right 4 digits): it may see the details and follow it."""

    __tablename__ = "dossier_verifications"
    __table_args__ = (UniqueConstraint("channel", "chat_id", "dossier_code", name="uq_dossier_verifications_chat_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    dossier_code: Mapped[str] = mapped_column(ForeignKey("dossiers.code", ondelete="CASCADE"), index=True)
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class LookupAttemptRow(Base):
    """One dossier lookup, wrong answer or lockout, counted in sliding windows by every bot process.

    The chat is kept only as a one-way hash and the dossier not at all: the rows are a security record
    that /xoadulieu leaves in place (else erasing would reset the limits) and that expire on their own.
    """

    __tablename__ = "dossier_lookup_attempts"
    __table_args__ = (Index("ix_dossier_lookup_attempts_chat_at", "chat_hash", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # lookup | failure | lockout
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ReminderRow(Base):
    """One planned reminder, from planning to its end (sent, undeliverable or cancelled), with the reason."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("follow_id", "key", name="uq_reminders_follow_key"),
        Index("ix_reminders_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    follow_id: Mapped[int | None] = mapped_column(ForeignKey("dossier_follows.id", ondelete="SET NULL"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    dossier_code: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))  # what makes it one reminder per follow (e.g. status:<history id>)
    text: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), default="planned")
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# Reminder states: planned -> claimed -> sent | planned (retry) | deferred (quiet hours) | undeliverable;
# planned/deferred -> cancelled when no longer wanted (muted, unfollowed, status moved on).
PENDING = ("planned", "deferred")
