"""The sender loop: delivers an announcement's pending rows at the platform's pace, surviving crashes.

- Pace: one overall slot every 1/messages_per_second per channel (no bursts beyond a few milliseconds of
  catch-up, so a server counting any one-second window never sees more than the limit), and one message
  per chat per `seconds_per_chat`.
- 429: every send on that channel pauses for `retry_after`; the message is tried again after.
- 403 / chat gone: the delivery is `blocked` and the chat's subscription ends.
- Network errors and 5xx: tried again with exponential backoff, at most `max_attempts` times, then `failed`.
- Durability: rows are claimed (`in_flight`) in small batches before sending and recorded after, every
  fraction of a second. After a kill -9 only the in-flight rows can go out twice; nothing is skipped.
  The next dispatcher puts orphaned in-flight rows back to pending.
- One dispatcher per announcement: a lease on the broadcast row, renewed while sending. A process that
  died on this machine loses its lease at once; one elsewhere after `lease_seconds` of silence.
- Cancel: the broadcast's state is read several times a second; sending stops within that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.audience import unsubscribe
from broadcasts.compose import materialise, refresh_counts
from broadcasts.models import BroadcastRow, DeliveryRow, DeliveryState, State, aware, utcnow
from channels.outbound import Delivery, Outcome, Sender
from config import Settings
from handlers.messages import Button
from redaction import chat_tag

log = logging.getLogger(__name__)

CLAIM_SECONDS = 0.5  # claim about this much sending at a time: what a crash can repeat at most
FLUSH_SECONDS = 0.25  # record outcomes at least this often
CHECK_SECONDS = 0.2  # read the broadcast's state (cancel) and renew the lease this often
MAX_CONCURRENT = 64  # requests in flight at once: the pace, not this, is the limit; it covers slow networks
BACKOFF_BASE = 2.0  # seconds before the 2nd attempt; doubles each time
BACKOFF_CAP = 300.0
CATCH_UP = 0.005  # seconds a late slot may be made up: tiny, so no burst follows a hiccup of the loop
PACE_MARGIN = 0.98  # the server's clock and ours differ by network jitter: keep just under its limit


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str | None) -> bool:
    """A lease holder on this machine whose process is gone (kill -9) holds nothing."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class Pacer:
    """Slots for one channel: overall spacing, per-chat spacing, and a pause for everyone after a 429."""

    def __init__(self, per_second: float, seconds_per_chat: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.seconds_per_chat = seconds_per_chat
        self.next_at = 0.0
        self.paused_until = 0.0
        self.chat_next: dict[str, float] = {}
        # The first message waits for the connection (and the client's own start-up); the next ones wait
        # for it, or the messages paced behind it would reach the server in a burst.
        self.started = self.warm = False

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def wait_for(self, chat_id: str) -> float:
        """Seconds until a message to this chat may go (0: now)."""
        now = time.monotonic()
        if self.started and not self.warm:
            return CHECK_SECONDS / 4
        return max(0.0, max(self.next_at, self.paused_until, self.chat_next.get(chat_id, 0.0)) - now)

    def take(self, chat_id: str) -> None:
        now = time.monotonic()
        self.started = True
        self.next_at = max(self.next_at, now - CATCH_UP) + self.interval
        if self.seconds_per_chat:
            self.chat_next[chat_id] = now + self.seconds_per_chat
            if len(self.chat_next) > 50_000:
                self.chat_next = {k: v for k, v in self.chat_next.items() if v > now}


@dataclass(frozen=True)
class Message:
    text: str
    link_label: str | None
    link_url: str | None


@dataclass
class Item:
    id: int
    channel: str
    chat_id: str
    attempts: int


@dataclass
class Report:
    broadcast_id: int
    state: str  # done | cancelled | busy (another process sends it) | waiting (rows for channels we cannot send on) | gone
    recipients: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    rate_limited: int = 0  # 429s received
    sent_now: int = 0  # sent by this run
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent_now / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Report], None]


@dataclass
class Dispatcher:
    db: sessionmaker[Session]
    senders: dict[str, Sender]
    settings: Settings
    backoff_base: float = BACKOFF_BASE
    owner: str = field(default_factory=process_id)

    def __post_init__(self) -> None:
        self.pacers: dict[str, Pacer] = {}
        self.max_attempts = max(1, self.settings.broadcast_max_attempts)
        self.lease = timedelta(seconds=self.settings.broadcast_lease_seconds)
        self.postgres = self.db.kw["bind"].dialect.name == "postgresql" if self.db.kw.get("bind") is not None else False

    def pacer(self, channel: str) -> Pacer:
        if channel not in self.pacers:
            sender = self.senders[channel]
            rate = self.settings.broadcast_messages_per_second or sender.messages_per_second * PACE_MARGIN
            self.pacers[channel] = Pacer(rate, sender.seconds_per_chat)
        return self.pacers[channel]

    # ------------------------------------------------------------------ the database side (run in a thread)

    def due(self) -> list[int]:
        now = utcnow()
        with self.db() as session:
            return list(session.scalars(
                select(BroadcastRow.id).where(or_(BroadcastRow.state == State.SENDING.value,
                                                  (BroadcastRow.state == State.SCHEDULED.value) & (BroadcastRow.scheduled_at <= now)))
                .order_by(BroadcastRow.id)))

    def _acquire(self, broadcast_id: int) -> tuple[str, Message | None]:
        now = utcnow()
        with self.db.begin() as session:
            row = session.get(BroadcastRow, broadcast_id)
            if row is None or row.state not in (State.SCHEDULED.value, State.SENDING.value):
                return "gone", None
            if row.state == State.SCHEDULED.value and aware(row.scheduled_at) and aware(row.scheduled_at) > now:
                return "early", None
            holder = row.lease_owner
            free = holder is None or holder == self.owner or aware(row.lease_until) < now or owner_is_dead(holder)
            if not free:
                return "busy", None
            # Conditional on the holder we saw: of two processes taking over at once, one wins.
            taken = session.execute(update(BroadcastRow).where(BroadcastRow.id == broadcast_id,
                                                               BroadcastRow.lease_owner.is_(None) if holder is None
                                                               else BroadcastRow.lease_owner == holder)
                                    .values(lease_owner=self.owner, lease_until=now + self.lease)).rowcount
            if not taken:
                return "busy", None
            session.refresh(row)
            if row.state == State.SCHEDULED.value:
                materialise(session, row, self.settings, now)
            # We hold the lease, so any row still in flight belongs to a process that is gone.
            orphans = session.execute(update(DeliveryRow).where(DeliveryRow.broadcast_id == broadcast_id,
                                                                DeliveryRow.state == DeliveryState.IN_FLIGHT.value)
                                      .values(state=DeliveryState.PENDING.value, claimed_at=None)).rowcount
            if orphans:
                log.warning("broadcast %s: %d messages were in flight when a sender stopped; they go again", broadcast_id, orphans)
            refresh_counts(session, row)  # the running totals restart from the rows after a crash
            if row.started_at is None:
                row.started_at = now
            return row.state, Message(row.text, row.link_label, row.link_url)

    def _heartbeat(self, broadcast_id: int) -> str:
        """Renew the lease; the broadcast's state, or "lost" when another process took it over."""
        with self.db.begin() as session:
            renewed = session.execute(update(BroadcastRow).where(BroadcastRow.id == broadcast_id,
                                                                 BroadcastRow.lease_owner == self.owner)
                                      .values(lease_until=utcnow() + self.lease)).rowcount
            state = session.scalar(select(BroadcastRow.state).where(BroadcastRow.id == broadcast_id))
        return state if renewed else "lost"

    def _claim(self, broadcast_id: int, limits: dict[str, int]) -> list[Item]:
        """Claim up to `limits[channel]` due rows per channel: about CLAIM_SECONDS of sending at its pace."""
        now = utcnow()
        items: list[Item] = []
        with self.db.begin() as session:
            for channel, limit in limits.items():
                query = (select(DeliveryRow.id, DeliveryRow.channel, DeliveryRow.chat_id, DeliveryRow.attempts)
                         .where(DeliveryRow.broadcast_id == broadcast_id, DeliveryRow.state == DeliveryState.PENDING.value,
                                DeliveryRow.channel == channel,
                                or_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.next_attempt_at <= now))
                         .order_by(DeliveryRow.id).limit(limit))
                if self.postgres:
                    query = query.with_for_update(skip_locked=True)
                items += [Item(*row) for row in session.execute(query)]
            if items:
                session.execute(update(DeliveryRow).where(DeliveryRow.id.in_([i.id for i in items]))
                                .values(state=DeliveryState.IN_FLIGHT.value, claimed_at=now))
        return items

    def _record(self, results: list[tuple[Item, Delivery]], broadcast_id: int | None = None) -> None:
        now = utcnow()
        changes, gone = [], []
        tally = {"sent": 0, "blocked": 0, "failed": 0}
        for item, delivery in results:
            change = {"id": item.id, "attempts": item.attempts, "claimed_at": None}
            if delivery.outcome is Outcome.SENT:
                change.update(state=DeliveryState.SENT.value, sent_at=now, last_error=None)
                tally["sent"] += 1
            elif delivery.outcome is Outcome.BLOCKED:
                change.update(state=DeliveryState.BLOCKED.value, last_error=delivery.detail[:500])
                tally["blocked"] += 1
                gone.append(item)
            elif delivery.outcome is Outcome.TRANSIENT and item.attempts < self.max_attempts:
                delay = min(BACKOFF_CAP, self.backoff_base * 2 ** (item.attempts - 1)) * random.uniform(0.8, 1.2)
                change.update(state=DeliveryState.PENDING.value, next_attempt_at=now + timedelta(seconds=delay),
                              last_error=delivery.detail[:500])
            else:  # rejected, or transient on the last allowed attempt
                change.update(state=DeliveryState.FAILED.value, last_error=delivery.detail[:500])
                tally["failed"] += 1
            changes.append(change)
        with self.db.begin() as session:
            session.execute(update(DeliveryRow), changes)
            if broadcast_id is not None and any(tally.values()):
                # Running totals for `list` and /baocao while sending; recounted from the rows at the end.
                session.execute(update(BroadcastRow).where(BroadcastRow.id == broadcast_id).values(
                    sent=BroadcastRow.sent + tally["sent"], blocked=BroadcastRow.blocked + tally["blocked"],
                    failed=BroadcastRow.failed + tally["failed"]))
            for item in gone:
                unsubscribe(session, item.channel, item.chat_id, reason="blocked")

    def _release(self, broadcast_id: int, unsent: list[Item]) -> None:
        """Let go: claimed rows not tried go back (or are cancelled, if the broadcast was)."""
        with self.db.begin() as session:
            row = session.get(BroadcastRow, broadcast_id)
            if unsent:
                state = DeliveryState.CANCELLED if row is not None and row.state == State.CANCELLED.value else DeliveryState.PENDING
                session.execute(update(DeliveryRow).where(DeliveryRow.id.in_([i.id for i in unsent]),
                                                          DeliveryRow.state == DeliveryState.IN_FLIGHT.value)
                                .values(state=state.value, claimed_at=None))
            if row is not None and row.lease_owner == self.owner:
                row.lease_owner, row.lease_until = None, None
                if row.state == State.CANCELLED.value:
                    session.execute(update(DeliveryRow).where(DeliveryRow.broadcast_id == broadcast_id,
                                                              DeliveryRow.state.in_([DeliveryState.PENDING.value,
                                                                                     DeliveryState.IN_FLIGHT.value]))
                                    .values(state=DeliveryState.CANCELLED.value))
                refresh_counts(session, row)

    def _remaining(self, broadcast_id: int) -> tuple[int, int, datetime | None]:
        """Rows not finished: (sendable by us, for channels we have no sender for, earliest retry time)."""
        with self.db() as session:
            open_states = [DeliveryState.PENDING.value, DeliveryState.IN_FLIGHT.value]
            rows = session.execute(select(DeliveryRow.channel, func.count(), func.min(DeliveryRow.next_attempt_at))
                                   .where(DeliveryRow.broadcast_id == broadcast_id, DeliveryRow.state.in_(open_states))
                                   .group_by(DeliveryRow.channel)).all()
        ours = sum(n for channel, n, _ in rows if channel in self.senders)
        others = sum(n for channel, n, _ in rows if channel not in self.senders)
        times = [aware(t) for channel, _, t in rows if channel in self.senders and t is not None]
        return ours, others, min(times) if times else None

    def _finish(self, broadcast_id: int) -> Report:
        with self.db.begin() as session:
            row = session.get(BroadcastRow, broadcast_id)
            if row.state == State.SENDING.value:
                row.state, row.finished_at = State.DONE.value, utcnow()
            refresh_counts(session, row)
            return Report(row.id, row.state, row.recipients, row.sent, row.blocked, row.failed)

    def _totals(self, broadcast_id: int, report: Report) -> None:
        with self.db() as session:
            row = session.get(BroadcastRow, broadcast_id)
            found = refresh_counts(session, row)
            report.recipients, report.sent, report.blocked, report.failed = sum(found.values()), found["sent"], found["blocked"], found["failed"]

    # ------------------------------------------------------------------ sending

    async def _send(self, message: Message, item: Item) -> Delivery:
        buttons = [[Button(message.link_label or "Xem chi tiết", url=message.link_url)]] if message.link_url else None
        try:
            return await self.senders[item.channel].send(item.chat_id, message.text, buttons)
        except Exception as error:  # noqa: BLE001 - a sender bug must not stop the whole announcement
            log.exception("sending to %s failed", chat_tag(item.channel, item.chat_id))
            return Delivery(Outcome.TRANSIENT, f"{type(error).__name__}: {error}")

    async def deliver(self, broadcast_id: int, progress: ProgressCallback | None = None) -> Report:
        """Send one announcement's pending messages; returns when it is done, cancelled or cannot go on here."""
        state, message = await asyncio.to_thread(self._acquire, broadcast_id)
        if state != State.SENDING.value or message is None:
            report = Report(broadcast_id, {"early": "scheduled"}.get(state, state))
            if state == State.DONE.value:  # nobody matched when it fired
                await asyncio.to_thread(self._release, broadcast_id, [])
            return report
        report = Report(broadcast_id, state)
        await asyncio.to_thread(self._totals, broadcast_id, report)
        queues: dict[str, deque[Item]] = {c: deque() for c in self.senders}  # one per channel: no head-of-line wait
        claimed_empty: dict[str, float] = {}  # channel -> when a claim last found nothing due for it
        results: list[tuple[Item, Delivery]] = []
        running: set[asyncio.Task] = set()
        started = time.monotonic()
        last_check = last_flush = started
        stop_reason: str | None = None
        limits = {c: max(4, min(500, int(CLAIM_SECONDS / self.pacer(c).interval) if self.pacer(c).interval else 500))
                  for c in self.senders}
        batch = max(limits.values(), default=4)

        def finished(task: asyncio.Task, item: Item) -> None:
            running.discard(task)
            pacer = self.pacer(item.channel)
            if not pacer.warm:
                pacer.warm = True
                pacer.next_at = time.monotonic()
            if task.cancelled():
                queues[item.channel].appendleft(item)
                return
            delivery = task.result()
            if delivery.outcome is Outcome.RATE_LIMITED:
                item.attempts -= 1  # the platform asked us to slow down; the message itself was fine
                report.rate_limited += 1
                self.pacer(item.channel).pause(delivery.retry_after or 1.0)
                log.info("429 on %s: pausing %.1f s", item.channel, delivery.retry_after or 1.0)
                queues[item.channel].appendleft(item)  # still claimed: it goes as soon as the pause ends
                return
            results.append((item, delivery))
            if delivery.sent:
                report.sent_now += 1

        async def flush() -> None:
            nonlocal last_flush
            last_flush = time.monotonic()
            if results:
                done = results[:]
                results.clear()
                await asyncio.to_thread(self._record, done, broadcast_id)
                for item, delivery in done:
                    report.sent += delivery.outcome is Outcome.SENT
                    report.blocked += delivery.outcome is Outcome.BLOCKED
                    if delivery.outcome is Outcome.REJECTED or (delivery.outcome is Outcome.TRANSIENT and item.attempts >= self.max_attempts):
                        report.failed += 1
                report.seconds = time.monotonic() - started
                if progress:
                    progress(report)

        try:
            while True:
                now = time.monotonic()
                if now - last_check >= CHECK_SECONDS:
                    last_check = now
                    current = await asyncio.to_thread(self._heartbeat, broadcast_id)
                    if current != State.SENDING.value:
                        stop_reason = current
                        break
                if results and (now - last_flush >= FLUSH_SECONDS or len(results) >= batch):
                    await flush()
                hungry = {c: n for c, n in limits.items()
                          if not queues[c] and now - claimed_empty.get(c, -CHECK_SECONDS) >= CHECK_SECONDS}
                if hungry:
                    for item in await asyncio.to_thread(self._claim, broadcast_id, hungry):
                        queues[item.channel].append(item)
                    for channel in hungry:
                        if not queues[channel]:
                            claimed_empty[channel] = now
                        else:
                            claimed_empty.pop(channel, None)
                if not any(queues.values()):
                    claimed_empty.clear()  # nothing queued anywhere: the next round asks the database again
                    if running:
                        await asyncio.wait(running, timeout=CHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                        continue
                    await flush()
                    ours, others, retry_at = await asyncio.to_thread(self._remaining, broadcast_id)
                    if not ours:
                        stop_reason = "done" if not others else "waiting"
                        break
                    wait = (retry_at - utcnow()).total_seconds() if retry_at else CHECK_SECONDS
                    await asyncio.sleep(min(max(wait, 0.01), CHECK_SECONDS))
                    continue
                if len(running) >= MAX_CONCURRENT:
                    await asyncio.wait(running, timeout=CHECK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                    continue
                wait, channel = min((self.pacer(c).wait_for(q[0].chat_id), c) for c, q in queues.items() if q)
                if wait > 0:
                    # Short naps: a cancel or a finished request is noticed while waiting for a slot.
                    await asyncio.sleep(min(wait, CHECK_SECONDS / 2))
                    continue
                item = queues[channel].popleft()
                self.pacer(channel).take(item.chat_id)
                item.attempts += 1
                task = asyncio.create_task(self._send(message, item))
                running.add(task)
                task.add_done_callback(lambda t, i=item: finished(t, i))
        finally:
            if running:
                await asyncio.wait(running)
                await asyncio.sleep(0)  # let the done callbacks run
            with contextlib.suppress(Exception):
                await flush()
            unsent = [item for q in queues.values() for item in q]
            await asyncio.to_thread(self._release, broadcast_id, unsent)
        report.seconds = time.monotonic() - started
        if stop_reason == "done":
            final = await asyncio.to_thread(self._finish, broadcast_id)
            report.state, report.recipients = final.state, final.recipients
            report.sent, report.blocked, report.failed = final.sent, final.blocked, final.failed
        else:
            report.state = {"lost": "busy", State.CANCELLED.value: "cancelled"}.get(stop_reason or "", stop_reason or "busy")
            await asyncio.to_thread(self._totals, broadcast_id, report)
        if progress:
            progress(report)
        return report

    async def run_pending(self, progress: ProgressCallback | None = None, stop: asyncio.Event | None = None) -> list[Report]:
        """Deliver every announcement that is due, one after the other, until none is left that we can send."""
        reports: list[Report] = []
        tried: set[int] = set()
        while stop is None or not stop.is_set():
            due = [i for i in await asyncio.to_thread(self.due) if i not in tried]
            if not due:
                break
            for broadcast_id in due:
                reports.append(await self.deliver(broadcast_id, progress))
                tried.add(broadcast_id)  # whatever came of it: a busy or half-sendable one is not retried in a tight loop
                if stop is not None and stop.is_set():
                    break
        return reports
