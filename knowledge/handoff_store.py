"""Hand-offs to an officer and satisfaction ratings, in the database (migration 0012).

A hand-off is one citizen's conversation handed to a person: `waiting` (asked, nobody has taken it),
`active` (an officer claimed it) and `closed`. At most one open hand-off per chat (a partial unique index),
and a claim is one conditional UPDATE (`... WHERE claimed_by IS NULL`), so two officers, in two processes,
never both get a conversation. What an officer writes is stored first and delivered by the running bot
(handoff.service) from the outbox, so the web console may run in another process than the channels.

Ratings keep no chat id: the month, the score, where it came from, an optional comment, and a keyed hash
of the chat only so /xoadulieu can delete them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge import question_log
from knowledge.models import Base, MetaRow, as_utc, utc_now

WAITING, ACTIVE, CLOSED = "waiting", "active", "closed"
OPEN = (WAITING, ACTIVE)
# Who wrote a message of a hand-off: the chat before it (history), the citizen, an officer, the bot's notices.
HISTORY_CITIZEN, HISTORY_BOT, CITIZEN, OFFICER, NOTICE = "history_citizen", "history_bot", "citizen", "officer", "notice"
# Outbox rows: to the citizen's chat, or a post in the Telegram staff group (its message id kept for replies).
TO_CITIZEN, TO_GROUP = "citizen", "group"
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


class HandoffRow(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        Index("ix_handoffs_chat", "channel", "chat_id"),
        Index("uq_handoffs_open_chat", "channel", "chat_id", unique=True,
              sqlite_where=text("status != 'closed'"), postgresql_where=text("status != 'closed'")),
        Index("ix_handoffs_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=WAITING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    in_hours: Mapped[bool] = mapped_column(default=True)  # asked during office hours
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # the officer's actor, "telegram:123"
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(200))  # "citizen", "idle" or the officer's actor


class HandoffMessageRow(Base):
    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(200))  # the officer's actor
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class OutboxRow(Base):
    """A message the running bot must send: an officer's reply, a notice, a rating prompt, a group post."""

    __tablename__ = "handoff_outbox"
    __table_args__ = (Index("ix_handoff_outbox_state", "state", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[int | None] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_messages.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(16), default=TO_CITIZEN)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    buttons: Mapped[list | None] = mapped_column(JSON)  # [[label, data], ...] rows
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    platform_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RatingRequestRow(Base):
    """A chat asked to rate (after a hand-off, after a dossier's result): 'score'; then a comment 'offered' (the
    citizen may write "góp ý ..." or tap the button, then 'comment': the next message is it); then 'done'."""

    __tablename__ = "rating_requests"
    __table_args__ = (Index("ix_rating_requests_chat", "channel", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # "handoff:12", "reminder:34": asked once
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(16))  # handoff | dossier
    stage: Mapped[str] = mapped_column(String(16), default="score")  # score | offered | comment | done
    rating_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RatingRow(Base):
    """One citizen's rating: read by the console's satisfaction figures (the overview) and /hopthu/solieu."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)  # "2026-12", in the office's time zone
    score: Mapped[int] = mapped_column(Integer)  # 1..5
    source: Mapped[str] = mapped_column(String(16))  # handoff | dossier
    comment: Mapped[str | None] = mapped_column(Text)
    chat_hash: Mapped[str] = mapped_column(String(64), index=True)  # keyed: only /xoadulieu can find them
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# --------------------------------------------------------------------------- hand-offs

def open_handoff(session: Session, channel: str, chat_id: str) -> HandoffRow | None:
    return session.scalars(select(HandoffRow).where(HandoffRow.channel == channel, HandoffRow.chat_id == chat_id,
                                                    HandoffRow.status.in_(OPEN))).first()


def queue_position(session: Session, handoff: HandoffRow) -> int:
    """1 for the first waiting conversation; an active one is being answered (0)."""
    if handoff.status != WAITING:
        return 0
    ahead = session.scalar(select(func.count()).select_from(HandoffRow).where(
        HandoffRow.status == WAITING, HandoffRow.id < handoff.id)) or 0
    return ahead + 1


@dataclass(frozen=True)
class Opened:
    handoff: HandoffRow
    new: bool


def create(session: Session, channel: str, chat_id: str, history: list[tuple[str, str]], in_hours: bool,
           now: datetime | None = None) -> Opened:
    """The chat's open hand-off, or a new one with the recent exchange as its history (kind, text).

    Two requests of one chat at once: the unique index lets one in; the other finds it. Commits.
    """
    found = open_handoff(session, channel, chat_id)
    if found is not None:
        return Opened(found, False)
    now = now or utc_now()
    row = HandoffRow(channel=channel, chat_id=chat_id, status=WAITING, created_at=now, in_hours=in_hours,
                     last_activity_at=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = open_handoff(session, channel, chat_id)
        if found is None:
            raise
        return Opened(found, False)
    for kind, said in history:
        session.add(HandoffMessageRow(handoff_id=row.id, kind=kind, text=said, created_at=now))
    session.commit()
    return Opened(row, True)


def add_message(session: Session, handoff: HandoffRow, kind: str, said: str, author: str | None = None,
                now: datetime | None = None) -> HandoffMessageRow:
    now = now or utc_now()
    message = HandoffMessageRow(handoff_id=handoff.id, kind=kind, author=author, text=said, created_at=now)
    session.add(message)
    session.execute(update(HandoffRow).where(HandoffRow.id == handoff.id).values(last_activity_at=now),
                    execution_options={"synchronize_session": False})
    session.flush()
    return message


def claim(session: Session, handoff_id: int, actor: str, now: datetime | None = None) -> bool:
    """Take a waiting conversation: one conditional UPDATE, so of two officers exactly one gets it. Commits."""
    now = now or utc_now()
    result = session.execute(
        update(HandoffRow).where(HandoffRow.id == handoff_id, HandoffRow.status == WAITING, HandoffRow.claimed_by.is_(None))
        .values(status=ACTIVE, claimed_by=actor, claimed_at=now, last_activity_at=now),
        execution_options={"synchronize_session": False})
    session.commit()
    return result.rowcount == 1


class NotYours(Exception):
    """The conversation is another officer's, or already closed."""


def officer_reply(session: Session, handoff_id: int, actor: str, said: str, now: datetime | None = None) -> HandoffMessageRow:
    """An officer's message to the citizen: claims the conversation if nobody has, refused (NotYours) when
    another officer holds it or it is closed; stored and queued for the running bot to deliver. Commits."""
    now = now or utc_now()
    row = session.get(HandoffRow, handoff_id)
    if row is None or row.status == CLOSED:
        raise NotYours("closed")
    if row.claimed_by != actor and not claim(session, handoff_id, actor, now):
        raise NotYours("taken")
    session.refresh(row)
    if row.claimed_by != actor or row.status != ACTIVE:
        raise NotYours("taken")
    message = add_message(session, row, OFFICER, said, author=actor, now=now)
    session.execute(update(HandoffRow).where(HandoffRow.id == handoff_id, HandoffRow.first_reply_at.is_(None))
                    .values(first_reply_at=now), execution_options={"synchronize_session": False})
    queue(session, row.channel, row.chat_id, officer_text(said), handoff_id=row.id, message_id=message.id, now=now)
    session.commit()
    return message


def officer_text(said: str) -> str:
    return f"👤 Cán bộ trả lời:\n{said}"


def close(session: Session, handoff_id: int, closed_by: str, now: datetime | None = None,
          only_if_idle_since: datetime | None = None) -> HandoffRow | None:
    """Close an open conversation (conditionally: once, and for `idle` only if still quiet); the row, or None
    when it was not open (already closed by someone else). Commits."""
    now = now or utc_now()
    condition = [HandoffRow.id == handoff_id, HandoffRow.status.in_(OPEN)]
    if only_if_idle_since is not None:
        condition.append(HandoffRow.last_activity_at < only_if_idle_since)
    result = session.execute(update(HandoffRow).where(*condition).values(status=CLOSED, closed_at=now, closed_by=closed_by),
                             execution_options={"synchronize_session": False})
    session.commit()
    if result.rowcount != 1:
        return None
    row = session.get(HandoffRow, handoff_id)
    session.refresh(row)
    return row


def idle_handoffs(session: Session, before: datetime) -> list[int]:
    """Active (answered or claimed) conversations with no message since `before`."""
    return list(session.scalars(select(HandoffRow.id).where(HandoffRow.status == ACTIVE,
                                                            HandoffRow.last_activity_at < before)))


def messages_of(session: Session, handoff_id: int) -> list[HandoffMessageRow]:
    return list(session.scalars(select(HandoffMessageRow).where(HandoffMessageRow.handoff_id == handoff_id)
                                .order_by(HandoffMessageRow.id)))


def delivery_of(session: Session, message_ids: list[int]) -> dict[int, OutboxRow]:
    """The outbox row of each officer message (to show whether it reached the citizen)."""
    if not message_ids:
        return {}
    rows = session.scalars(select(OutboxRow).where(OutboxRow.message_id.in_(message_ids), OutboxRow.target == TO_CITIZEN))
    return {row.message_id: row for row in rows}


def handoff_of_post(session: Session, group_chat_id: str, platform_message_id: str) -> HandoffRow | None:
    """The conversation a post in the staff group was about (an officer replied to it)."""
    handoff_id = session.scalar(select(OutboxRow.handoff_id).where(
        OutboxRow.target == TO_GROUP, OutboxRow.chat_id == group_chat_id, OutboxRow.platform_message_id == platform_message_id))
    return session.get(HandoffRow, handoff_id) if handoff_id is not None else None


def list_handoffs(session: Session, statuses: tuple[str, ...], limit: int = 100) -> list[HandoffRow]:
    return list(session.scalars(select(HandoffRow).where(HandoffRow.status.in_(statuses))
                                .order_by(HandoffRow.created_at.desc(), HandoffRow.id.desc()).limit(limit)))


# --------------------------------------------------------------------------- the outbox

def queue(session: Session, channel: str, chat_id: str, said: str, *, handoff_id: int | None = None,
          message_id: int | None = None, target: str = TO_CITIZEN, buttons: list[list[tuple[str, str]]] | None = None,
          now: datetime | None = None) -> OutboxRow:
    now = now or utc_now()
    row = OutboxRow(handoff_id=handoff_id, message_id=message_id, target=target, channel=channel, chat_id=chat_id,
                    text=said, buttons=[[list(b) for b in r] for r in buttons] if buttons else None, state=PENDING,
                    next_try_at=now, created_at=now)
    session.add(row)
    session.flush()
    return row


def due_outbox(session: Session, now: datetime, channels: list[str], limit: int = 50) -> list[int]:
    """Ids of messages to send now: pending and due, or claimed by a sender whose lease ran out."""
    O = OutboxRow
    ready = ((O.state == PENDING) & (O.next_try_at <= now)) | ((O.state == SENDING) & (O.claimed_until < now))
    return list(session.scalars(select(O.id).where(ready, O.channel.in_(channels)).order_by(O.id).limit(limit)))


def take(session: Session, outbox_id: int, now: datetime, lease_seconds: float) -> OutboxRow | None:
    """Claim one message for sending (one conditional UPDATE: two bot processes never send it both). Commits."""
    O = OutboxRow
    ready = ((O.state == PENDING) & (O.next_try_at <= now)) | ((O.state == SENDING) & (O.claimed_until < now))
    result = session.execute(update(O).where(O.id == outbox_id, ready)
                             .values(state=SENDING, claimed_until=now + timedelta(seconds=lease_seconds), attempts=O.attempts + 1),
                             execution_options={"synchronize_session": False})
    session.commit()
    if result.rowcount != 1:
        return None
    row = session.get(O, outbox_id)
    session.refresh(row)
    return row


def finish(session: Session, outbox_id: int, values: dict) -> None:
    session.execute(update(OutboxRow).where(OutboxRow.id == outbox_id, OutboxRow.state == SENDING)
                    .values(claimed_until=None, **values), execution_options={"synchronize_session": False})
    session.commit()


# --------------------------------------------------------------------------- ratings

def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def chat_hash(session: Session, channel: str, chat_id: str) -> str:
    """The ratings' one-way name of a chat: the question log's keyed hash (one installation key for both)."""
    return question_log.citizen_hash(session, channel, chat_id)


def ask_rating(session: Session, key: str, channel: str, chat_id: str, source: str, now: datetime,
               hours: float = 72.0) -> RatingRequestRow | None:
    """A new request to rate (None when this key was asked already); earlier open requests of the chat end."""
    if session.scalar(select(RatingRequestRow.id).where(RatingRequestRow.key == key)) is not None:
        return None
    session.execute(update(RatingRequestRow).where(RatingRequestRow.channel == channel, RatingRequestRow.chat_id == chat_id,
                                                   RatingRequestRow.stage != "done").values(stage="done"),
                    execution_options={"synchronize_session": False})
    new_id = session.scalar(_insert(session)(RatingRequestRow).values(
        key=key, channel=channel, chat_id=chat_id, source=source, stage="score", created_at=now,
        expires_at=now + timedelta(hours=hours)).on_conflict_do_nothing().returning(RatingRequestRow.id))
    return session.get(RatingRequestRow, new_id) if new_id is not None else None


def open_request(session: Session, channel: str, chat_id: str, now: datetime) -> RatingRequestRow | None:
    return session.scalars(select(RatingRequestRow).where(
        RatingRequestRow.channel == channel, RatingRequestRow.chat_id == chat_id, RatingRequestRow.stage != "done",
        RatingRequestRow.expires_at > now).order_by(RatingRequestRow.id.desc())).first()


def rate(session: Session, request: RatingRequestRow, score: int, month: str, now: datetime,
         comment_minutes: float = 15.0) -> RatingRow | None:
    """Store the score once (a second tap changes nothing); a comment may then be offered for a while."""
    if request.stage != "score" or not 1 <= score <= 5:
        return None
    result = session.execute(update(RatingRequestRow).where(RatingRequestRow.id == request.id, RatingRequestRow.stage == "score")
                             .values(stage="offered", expires_at=now + timedelta(minutes=comment_minutes)),
                             execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return None
    rating = RatingRow(month=month, score=score, source=request.source, chat_hash=chat_hash(session, request.channel, request.chat_id),
                       created_at=now)
    session.add(rating)
    session.flush()
    session.execute(update(RatingRequestRow).where(RatingRequestRow.id == request.id).values(rating_id=rating.id),
                    execution_options={"synchronize_session": False})
    return rating


def await_comment(session: Session, request: RatingRequestRow, now: datetime, comment_minutes: float = 15.0) -> bool:
    """The citizen chose to comment: their next message is the comment."""
    result = session.execute(update(RatingRequestRow).where(RatingRequestRow.id == request.id,
                                                            RatingRequestRow.stage.in_(("offered", "comment")))
                             .values(stage="comment", expires_at=now + timedelta(minutes=comment_minutes)),
                             execution_options={"synchronize_session": False})
    return result.rowcount == 1


def comment(session: Session, request: RatingRequestRow, said: str) -> bool:
    if request.stage not in ("offered", "comment") or request.rating_id is None:
        return False
    session.execute(update(RatingRow).where(RatingRow.id == request.rating_id).values(comment=said[:2000]),
                    execution_options={"synchronize_session": False})
    end_request(session, request)
    return True


def end_request(session: Session, request: RatingRequestRow) -> None:
    session.execute(update(RatingRequestRow).where(RatingRequestRow.id == request.id).values(stage="done"),
                    execution_options={"synchronize_session": False})


# --------------------------------------------------------------------------- /xoadulieu

def forget(session: Session, channel: str, chat_id: str) -> int:
    """Delete the chat's hand-offs (their messages and queued messages), rating requests and ratings."""
    ids = list(session.scalars(select(HandoffRow.id).where(HandoffRow.channel == channel, HandoffRow.chat_id == chat_id)))
    gone = 0
    if ids:
        session.execute(delete(OutboxRow).where(OutboxRow.handoff_id.in_(ids)))
        session.execute(delete(HandoffMessageRow).where(HandoffMessageRow.handoff_id.in_(ids)))
        gone += session.execute(delete(HandoffRow).where(HandoffRow.id.in_(ids))).rowcount or 0
    gone += session.execute(delete(OutboxRow).where(OutboxRow.channel == channel, OutboxRow.chat_id == chat_id)).rowcount or 0
    gone += session.execute(delete(RatingRequestRow).where(RatingRequestRow.channel == channel,
                                                           RatingRequestRow.chat_id == chat_id)).rowcount or 0
    if session.scalar(select(MetaRow.key).where(MetaRow.key == question_log.KEY_META)) is not None:
        gone += session.execute(delete(RatingRow).where(RatingRow.chat_hash == chat_hash(session, channel, chat_id))).rowcount or 0
    return gone


# --------------------------------------------------------------------------- figures

def ratings_by_month(session: Session, since_month: str | None = None) -> list[tuple[str, str, int, float, int]]:
    """(month, source, count, average, count of 4-5) per month and source, newest month first."""
    R = RatingRow
    query = select(R.month, R.source, func.count(), func.avg(R.score), func.sum((R.score >= 4).cast(Integer)))
    if since_month:
        query = query.where(R.month >= since_month)
    rows = session.execute(query.group_by(R.month, R.source).order_by(R.month.desc(), R.source))
    return [(month, source, int(count), float(average or 0), int(good or 0)) for month, source, count, average, good in rows]


def recent_comments(session: Session, limit: int = 20) -> list[RatingRow]:
    return list(session.scalars(select(RatingRow).where(RatingRow.comment.is_not(None))
                                .order_by(RatingRow.created_at.desc()).limit(limit)))


def handoffs_since(session: Session, since: datetime) -> list[HandoffRow]:
    return list(session.scalars(select(HandoffRow).where(HandoffRow.created_at >= since).order_by(HandoffRow.created_at)))


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (as_utc(end) - as_utc(start)).total_seconds())
