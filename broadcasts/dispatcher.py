"""The sender loop: delivers an announcement's pending rows at the platform's pace, surviving crashes.

- Pace: the token's one limiter (channels.limits, shared with the chat channel's replies and the
  reminders), at background priority: replies go first, announcements fill the rest, evenly spaced so a
  server counting any one-second window never sees more than the limit; at most one message per chat per
  `seconds_per_chat` (a chat that is not ready yet is passed over, not waited for).
  BROADCAST_MESSAGES_PER_SECOND caps announcements lower still.
- 429: the sender pauses the token's limiter for `retry_after`: every send with the token waits; the
  message is tried again after.
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
import itertools
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

from aiolimiter import AsyncLimiter
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.audience import unsubscribe
from broadcasts.compose import materialise, refresh_counts
from broadcasts.models import BroadcastRow, DeliveryRow, DeliveryState, State, aware, utcnow
from channels.limits import Priority, TokenLimiter, limiter_of
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
PICK_AHEAD = 64  # queued messages looked through for a chat that may get one now


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
    """One channel's slots for this dispatcher: the token's shared limiter at background priority, an
    optional lower cap (BROADCAST_MESSAGES_PER_SECOND), and a warm-up: the first message waits for the
    connection (and the client's own start-up), or the messages paced behind it would arrive in a burst."""

    def __init__(self, limiter: TokenLimiter, cap: float | None) -> None:
        self.limiter = limiter
        self.cap = AsyncLimiter(1, 1 / cap) if cap else None
        self.warm = False  # a message has come back from the platform
        self.in_flight = 0

    @property
    def rate(self) -> float:
        """Messages per second at most (0: no limit)."""
        rates = [r for r in (self.limiter.messages_per_second, 1 / self.cap.time_period if self.cap else 0.0) if r > 0]
        return min(rates, default=0.0)

    def ready(self) -> bool:
        return self.warm or not self.in_flight

    def pick(self, queue: deque[Item]) -> Item:
        """The first item whose chat may get a message now, so one chat's spacing holds up nobody; else the head."""
        for i, item in enumerate(itertools.islice(queue, PICK_AHEAD)):
            if not self.limiter.chat_wait(item.chat_id, Priority.BACKGROUND):
                del queue[i]
                return item
        return queue.popleft()

    async def slot(self, chat_id: str) -> None:
        if self.cap is not None:
            await self.cap.acquire()
        await self.limiter.acquire(chat_id, priority=Priority.BACKGROUND)


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
            self.pacers[channel] = Pacer(limiter_of(self.senders[channel]), self.settings.broadcast_messages_per_second)
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
        except Exception as error:  # a sender bug must not stop the whole announcement
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
        limits = {c: max(4, min(500, int(CLAIM_SECONDS * self.pacer(c).rate) if self.pacer(c).rate else 500))
                  for c in self.senders}
        slots: dict[str, tuple[asyncio.Task, Item]] = {}  # channel -> waiting for a slot for this item
        batch = max(limits.values(), default=4)

        def finished(task: asyncio.Task, item: Item) -> None:
            running.discard(task)
            pacer = self.pacer(item.channel)
            pacer.warm, pacer.in_flight = True, pacer.in_flight - 1
            if task.cancelled():
                queues[item.channel].appendleft(item)
                return
            delivery = task.result()
            if delivery.outcome is Outcome.RATE_LIMITED:
                item.attempts -= 1  # the platform asked us to slow down; the message itself was fine
                report.rate_limited += 1
                self.pacer(item.channel).limiter.pause(delivery.retry_after or 1.0)  # done by the sender too: harmless
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

        def ask_for_slots() -> None:
            """Wait in the token's limiter for the next message of every channel that has one ready."""
            for channel, queue in queues.items():
                if queue and channel not in slots and self.pacer(channel).ready() and len(running) < MAX_CONCURRENT:
                    item = self.pacer(channel).pick(queue)
                    slots[channel] = (asyncio.create_task(self.pacer(channel).slot(item.chat_id)), item)

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
                if not any(queues.values()) and not slots:
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
                ask_for_slots()
                if not slots:  # only the warm-up send in flight (so `running` is not empty)
                    await asyncio.wait(running, timeout=CHECK_SECONDS / 2, return_when=asyncio.FIRST_COMPLETED)
                    continue
                # Short naps: a cancel or a finished request is noticed while waiting for a slot.
                await asyncio.wait([task for task, _ in slots.values()], timeout=CHECK_SECONDS / 2,
                                   return_when=asyncio.FIRST_COMPLETED)
                for channel, (slot, item) in list(slots.items()):
                    if slot.done():
                        del slots[channel]
                        item.attempts += 1
                        self.pacer(channel).in_flight += 1
                        task = asyncio.create_task(self._send(message, item))
                        running.add(task)
                        task.add_done_callback(lambda t, i=item: finished(t, i))
                ask_for_slots()  # at once: a slot nobody waits for is lost (the limiter keeps no credit)
        finally:
            for slot, _ in slots.values():
                slot.cancel()
            if slots:
                await asyncio.wait([slot for slot, _ in slots.values()])
            if running:
                await asyncio.wait(running)
                await asyncio.sleep(0)  # let the done callbacks run
            with contextlib.suppress(Exception):
                await flush()
            unsent = [item for q in queues.values() for item in q] + [item for _, item in slots.values()]
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
