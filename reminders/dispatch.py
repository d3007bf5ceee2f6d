"""Sending due reminders: claim them atomically, send each once through its channel, record the outcome.

A claim marks rows `claimed` with this run's token and a lease in one statement: on PostgreSQL
`UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`, so two bot processes never take
the same row; on SQLite the same UPDATE under BEGIN IMMEDIATE (SQLite lets one writer in at a time).
A process that dies after claiming leaves rows whose lease runs out; the next run takes them up again.
Each outcome is written right after its send, so at most the one message in flight when a process
dies can go out twice (the platforms offer no idempotent send to rule that out).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from channels.limits import Priority, limiter_of
from channels.outbound import Delivery, Outcome, Sender
from config import Settings
from redaction import chat_tag
from reminders.decide import QuietHours
from reminders.models import PENDING, FollowRow, ReminderRow, as_utc
from reminders.scan import begin_write, retrying

log = logging.getLogger(__name__)

BATCH = 50
MAX_ATTEMPTS = 6  # transient failures, spaced 1, 2, 4, 8, 16 minutes apart: then the reminder is given up


@dataclass(frozen=True)
class Claimed:
    id: int
    follow_id: int | None
    channel: str
    chat_id: str
    dossier_code: str
    text: str
    attempts: int


@dataclass
class DispatchResult:
    sent: int = 0
    deferred: int = 0
    retry: int = 0
    undeliverable: int = 0
    sent_ids: list[int] = field(default_factory=list)

    def describe(self) -> str:
        return (f"đã gửi {self.sent}, hoãn vì giờ yên lặng {self.deferred}, thử lại sau {self.retry}, "
                f"không gửi được {self.undeliverable}")


def claim(db: sessionmaker[Session], now: datetime, token: str, lease_seconds: float, channels: list[str],
          limit: int = BATCH) -> list[Claimed]:
    """Take up to `limit` due reminders (pending ones due by `now`, and claims whose lease ran out)."""
    R = ReminderRow
    now = as_utc(now)

    def run() -> list[Claimed]:
        with db() as session:
            begin_write(session)
            due = or_(and_(R.state.in_(PENDING), R.due_at <= now), and_(R.state == "claimed", R.claimed_until < now))
            pick = select(R.id).where(due, R.channel.in_(channels)).order_by(R.due_at, R.id).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            statement = (update(R).where(R.id.in_(pick.scalar_subquery()))
                         .values(state="claimed", claimed_by=token, claimed_until=now + timedelta(seconds=lease_seconds),
                                 attempts=R.attempts + 1)
                         .returning(R.id, R.follow_id, R.channel, R.chat_id, R.dossier_code, R.text, R.attempts))
            rows = session.execute(statement, execution_options={"synchronize_session": False}).all()
            session.commit()
            return [Claimed(*row) for row in rows]

    if not channels:
        return []
    return retrying(run)


def _finish(db: sessionmaker[Session], claimed: Claimed, token: str, values: dict, unreachable: str | None = None) -> bool:
    """Write one outcome, only if this run still holds the claim; a blocked chat stops all its reminders."""
    R = ReminderRow

    def run() -> bool:
        with db() as session:
            begin_write(session)
            result = session.execute(update(R).where(R.id == claimed.id, R.claimed_by == token, R.state == "claimed")
                                     .values(claimed_by=None, claimed_until=None, **values),
                                     execution_options={"synchronize_session": False})
            if unreachable:
                session.execute(update(FollowRow).where(FollowRow.channel == claimed.channel, FollowRow.chat_id == claimed.chat_id)
                                .values(unreachable=unreachable), execution_options={"synchronize_session": False})
                session.execute(update(R).where(R.channel == claimed.channel, R.chat_id == claimed.chat_id, R.state.in_(PENDING))
                                .values(state="undeliverable", reason=unreachable), execution_options={"synchronize_session": False})
            session.commit()
            return bool(result.rowcount)

    return retrying(run)


def outcome_values(claimed: Claimed, delivery: Delivery, now: datetime) -> tuple[dict, str | None]:
    """The row's new state for a send's outcome, and the reason to stop the chat altogether (if any)."""
    channel = claimed.channel
    detail = delivery.detail or delivery.outcome.value
    if delivery.outcome is Outcome.SENT:
        return {"state": "sent", "sent_at": now}, None  # the reason of an earlier deferral or retry stays, as history
    if delivery.outcome is Outcome.RATE_LIMITED:
        wait = max(delivery.retry_after or 1.0, 1.0)
        return {"state": "planned", "due_at": now + timedelta(seconds=wait), "reason": f"{channel} giới hạn tốc độ, thử lại sau {wait:g} giây"}, None
    if delivery.outcome is Outcome.TRANSIENT:
        if claimed.attempts >= MAX_ATTEMPTS:
            return {"state": "undeliverable", "reason": f"lỗi tạm thời lặp lại {claimed.attempts} lần: {detail}"}, None
        wait = 60 * 2 ** (claimed.attempts - 1)
        return {"state": "planned", "due_at": now + timedelta(seconds=wait), "reason": f"lỗi tạm thời, thử lại sau {wait // 60} phút: {detail}"}, None
    if delivery.outcome is Outcome.BLOCKED:
        reason = f"{channel}: người dùng đã chặn bot hoặc cuộc trò chuyện không còn ({detail})"
        return {"state": "undeliverable", "reason": reason}, reason
    # REJECTED: the platform refused this message; on Zalo that is also how a chat the bot may no longer
    # message unprompted shows up, so the reason says so for staff reading `dossiers show`.
    hint = " (Zalo có thể không cho nhắn khi người dùng lâu không nhắn cho bot)" if channel == "zalo" else ""
    return {"state": "undeliverable", "reason": f"{channel} từ chối tin nhắn{hint}: {detail}"}, None


async def dispatch(db: sessionmaker[Session], senders: Mapping[str, Sender], settings: Settings,
                   now: datetime | None = None, *, token: str | None = None, batch: int = BATCH,
                   clock: Callable[[], datetime] | None = None) -> DispatchResult:
    """Send everything due, batch after batch, until nothing due is left.

    With `now` the run acts as at that moment (`jobs run --now`); otherwise each batch reads the clock.
    """
    token = token or uuid.uuid4().hex
    quiet = QuietHours.from_settings(settings)
    result = DispatchResult()
    channels = sorted(senders)
    read_clock = clock or (lambda: datetime.now(UTC))
    blocked: dict[tuple[str, str], str] = {}
    while True:
        moment = as_utc(now) if now is not None else read_clock()
        claimed = await asyncio.to_thread(claim, db, moment, token, settings.reminder_lease_seconds, channels, batch)
        if not claimed:
            return result
        for item in claimed:
            moment = as_utc(now) if now is not None else read_clock()
            if quiet.contains(moment):
                morning = quiet.ends_after(moment)
                values = {"state": "deferred", "due_at": morning, "attempts": item.attempts - 1,
                              "reason": f"giờ yên lặng {quiet.describe()}: gửi lúc {morning.astimezone(quiet.zone):%H:%M %d/%m/%Y}"}
                await asyncio.to_thread(_finish, db, item, token, values)
                result.deferred += 1
                continue
            done = as_utc(now) if now is not None else read_clock()
            chat = (item.channel, item.chat_id)
            if chat in blocked:  # claimed in the same batch before the chat turned out to block the bot
                values, unreachable = {"state": "undeliverable", "reason": blocked[chat]}, None
            else:
                sender = senders[item.channel]
                # The token's one limiter, shared with the chat's replies (which go first) and announcements.
                await limiter_of(sender).acquire(item.chat_id, priority=Priority.BACKGROUND)
                try:
                    delivery = await sender.send(item.chat_id, item.text)
                except Exception as error:  # a sender bug must not lose the claim silently
                    log.exception("sending reminder %s failed", item.id)
                    delivery = Delivery(Outcome.TRANSIENT, f"{type(error).__name__}: {error}")
                done = as_utc(now) if now is not None else read_clock()
                values, unreachable = outcome_values(item, delivery, done)
                if unreachable:
                    blocked[chat] = unreachable
            await asyncio.to_thread(_finish, db, item, token, values, unreachable)
            state = values["state"]
            if state == "sent":
                result.sent += 1
                result.sent_ids.append(item.id)
            elif state == "undeliverable":
                result.undeliverable += 1
                log.warning("reminder %s to %s undeliverable: %s", item.id, chat_tag(item.channel, item.chat_id), values["reason"])
            else:
                result.retry += 1
