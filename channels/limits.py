"""One rate limiter per platform token, shared by everything that sends with it, and fair per-chat queues.

A platform counts messages per bot token, whoever in the process sends them: the replies of the chat
channel, announcements, reminders. So there is one `TokenLimiter` per (platform, token) in a process,
found with `limiter_for(platform, token)`; every sender of that token waits on it:

    limiter = limiter_for("telegram", token)
    await limiter.acquire(chat_id)                                  # a reply: goes first
    await limiter.acquire(chat_id, priority=Priority.BACKGROUND)    # announcements, reminders: fill the rest
    limiter.pause(retry_after)                                      # a 429: everyone of this token waits

What it keeps to:
- the overall rate (`messages_per_second`), as even spacing (an `aiolimiter.AsyncLimiter` of capacity one
  message and a few milliseconds), so no one-second window a server counts holds more than the rate;
- priority: a free slot goes to a waiting reply before any announcement or reminder, but one slot in
  `BACKGROUND_EVERY` goes to the background when it waits, so a long peak of questions never stops them;
- per chat: a burst of `chat_burst` messages, then one per `seconds_per_chat` (Telegram: ~1 a second in a
  private chat, 20 a minute in a group); an unprompted message waits until the chat is quiet, so it never
  lands inside an answer being sent;
- a 429's retry_after pauses every sender of the token, since the quota is the token's.

`ChatQueues` keeps one chat's updates in order while bounding how many may wait: a chat sending a burst
gets its first messages answered and one polite notice, and cannot take the turns of everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from enum import IntEnum

from aiolimiter import AsyncLimiter

# Told once to a chat whose messages arrive faster than they can be answered; the extra ones are dropped.
TOO_FAST = ("Bạn gửi nhanh quá, tôi xin trả lời lần lượt các tin trước nhé. "
            "Các tin gửi thêm lúc này tôi chưa đọc được, bạn vui lòng đợi trả lời rồi hỏi tiếp.")

CATCH_UP = 0.01  # seconds a slot may be taken early: the event loop's wake-up lag, not a burst
BACKGROUND_EVERY = 10  # under a peak of replies, one slot in ten still goes to a waiting announcement/reminder
MAX_CHATS = 50_000  # per-chat pacing records kept before the idle ones are dropped


class Priority(IntEnum):
    REPLY = 0  # a conversation reply: a citizen is waiting for it
    BACKGROUND = 1  # announcements and reminders: they fill the capacity replies leave


@dataclass(frozen=True)
class PlatformLimits:
    """A platform's published (or assumed) limits for one bot token."""

    messages_per_second: float  # across all chats; 0: no overall limit (a test server)
    seconds_per_chat: float  # sustained spacing of messages to one chat
    chat_burst: int  # messages one chat may get back to back before the spacing applies
    seconds_per_group: float  # the same for group chats
    group_burst: int


# Telegram: ~30 messages/s per bot (kept a little under: requests in flight jitter), ~1/s in one chat with
# short bursts tolerated, 20 a minute in a group. Zalo publishes nothing: the same figures, as before.
DEFAULTS: dict[str, PlatformLimits] = {
    "telegram": PlatformLimits(27.0, 1.0, 3, 3.0, 3),
    "zalo": PlatformLimits(30.0, 1.0, 4, 1.0, 4),
}
FALLBACK = PlatformLimits(30.0, 1.0, 3, 3.0, 3)


class _Turn:
    """A waiter for the overall slot: (priority, order) decides who is next."""

    __slots__ = ("future", "order", "priority")

    def __init__(self, priority: Priority, order: int, future: asyncio.Future) -> None:
        self.priority, self.order, self.future = priority, order, future

    def __lt__(self, other: _Turn) -> bool:
        return (self.priority, self.order) < (other.priority, other.order)


class TokenLimiter:
    """Every message sent with one token, in this process: overall pace, priority, per-chat pacing, 429 pause."""

    def __init__(self, platform: str, limits: PlatformLimits) -> None:
        self.platform = platform
        self.limits = limits
        self.granted = {Priority.REPLY: 0, Priority.BACKGROUND: 0}  # slots given, for reports and tests
        self._loop: asyncio.AbstractEventLoop | None = None
        self._chat_tat: dict[str, float] = {}  # chat -> when its spacing is fully used up (GCRA)
        self._paused_until = 0.0
        self._limiter = self._new_limiter()

    @property
    def messages_per_second(self) -> float:
        return self.limits.messages_per_second

    def configure(self, **changes: float | None) -> None:
        """Change some limits (PlatformLimits' fields; None leaves one as it is)."""
        self.limits = replace(self.limits, **{name: value for name, value in changes.items() if value is not None})
        self._limiter = self._new_limiter()

    def _new_limiter(self) -> AsyncLimiter | None:
        # Capacity one message plus CATCH_UP seconds of credit: slots are evenly spaced, never a burst, so a
        # one-second window holds at most the rate (+1), and a slot woken a millisecond late is not lost.
        rate = self.limits.messages_per_second
        if rate <= 0:
            return None
        capacity = 1 + min(CATCH_UP * rate, 0.5)  # never a whole second message of credit
        return AsyncLimiter(capacity, capacity / rate)

    def _bind(self) -> None:
        """Loop-bound state belongs to the running loop (tests run one loop each; a server runs one)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:  # a new loop is a new run: an old pause or chat's pace says nothing
                self._paused_until = 0.0
                self._chat_tat.clear()
            self._loop = loop
            self._limiter = self._new_limiter()
            self._queue: list[_Turn] = []
            self._order = itertools.count()
            self._busy = False  # a waiter holds the turn (is waiting for the overall slot)
            self._replies_in_a_row = 0

    # ------------------------------------------------------------------ what senders call

    async def acquire(self, chat_id: str | int | None = None, *, priority: Priority = Priority.REPLY,
                      group: bool = False) -> None:
        """Wait until a message to `chat_id` may go (None: a call to no chat, only the overall pace)."""
        self._bind()
        if chat_id is not None:
            await self._chat_turn(str(chat_id), priority, group)
        await self._overall_turn(priority)

    def pause(self, seconds: float) -> None:
        """The platform said 429: nobody sends with this token for `seconds`."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def waiting(self, priority: Priority | None = None) -> int:
        """Senders waiting for an overall slot (of one priority)."""
        if self._loop is None:
            return 0
        return sum(1 for t in self._queue if not t.future.done() and (priority is None or t.priority == priority))

    def chat_wait(self, chat_id: str | int, priority: Priority = Priority.REPLY, group: bool = False) -> float:
        """Seconds until `chat_id` may get a message of this priority (0: now); a dispatcher picks a ready chat."""
        spacing, burst = self._chat_limits(group)
        if not spacing:
            return 0.0
        tolerance = 0.0 if priority is Priority.BACKGROUND else spacing * (burst - 1)
        return max(0.0, self._chat_tat.get(str(chat_id), 0.0) - tolerance - time.monotonic())

    # ------------------------------------------------------------------ per chat

    def _chat_limits(self, group: bool) -> tuple[float, int]:
        limits = self.limits
        return (limits.seconds_per_group, limits.group_burst) if group else (limits.seconds_per_chat, limits.chat_burst)

    async def _chat_turn(self, chat_id: str, priority: Priority, group: bool) -> None:
        """GCRA: a burst, then one message per spacing. The turn is reserved before sleeping, so two
        senders to one chat take consecutive turns instead of both going after the same wait."""
        spacing, _ = self._chat_limits(group)
        if not spacing:
            return
        wait = self.chat_wait(chat_id, priority, group)
        now = time.monotonic()
        self._chat_tat[chat_id] = max(self._chat_tat.get(chat_id, 0.0), now + wait) + spacing
        if len(self._chat_tat) > MAX_CHATS:
            self._chat_tat = {c: t for c, t in self._chat_tat.items() if t > now}  # a past time holds nothing
        if wait > 0:
            await asyncio.sleep(wait)

    # ------------------------------------------------------------------ overall, by priority

    async def _overall_turn(self, priority: Priority) -> None:
        """Waiters queue by priority; the first in line takes the next evenly spaced slot (after any pause)."""
        turn = _Turn(priority, next(self._order), asyncio.get_running_loop().create_future())
        heapq.heappush(self._queue, turn)
        self._hand_over()
        try:
            await turn.future
        except asyncio.CancelledError:
            if turn.future.done() and not turn.future.cancelled():
                self._busy = False  # given the turn just as it was cancelled: pass it on
                self._hand_over()
            raise
        try:
            while True:
                while (paused := self._paused_until - time.monotonic()) > 0:
                    await asyncio.sleep(paused)
                if self._limiter is not None:
                    await self._limiter.acquire()
                if self._paused_until <= time.monotonic():
                    break  # a 429 that came in while waiting for the slot: wait it out too
            self.granted[priority] += 1
        finally:
            self._busy = False
            self._hand_over()

    def _hand_over(self) -> None:
        """Give the turn to the best waiter: a reply, unless the background has waited BACKGROUND_EVERY slots."""
        if self._busy:
            return
        while self._queue and self._queue[0].future.done():
            heapq.heappop(self._queue)
        if not self._queue:
            return
        turn = self._queue[0]
        background = min((t for t in self._queue if t.priority is not Priority.REPLY and not t.future.done()), default=None)
        if turn.priority is Priority.REPLY and background is not None and self._replies_in_a_row >= BACKGROUND_EVERY - 1:
            turn = background
        self._queue.remove(turn)
        heapq.heapify(self._queue)
        # Counts replies served while the background waited: only those can starve it.
        self._replies_in_a_row = self._replies_in_a_row + 1 if turn.priority is Priority.REPLY and background else 0
        self._busy = True
        turn.future.set_result(None)


# --------------------------------------------------------------------------- the registry

_LIMITERS: dict[tuple[str, str], TokenLimiter] = {}


def token_key(token: str) -> str:
    """A token's registry key: a hash, so the token itself is kept nowhere else."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def limiter_for(platform: str, token: str, **limits: float | None) -> TokenLimiter:
    """The one limiter of this token in this process. Limits given (PlatformLimits' fields, from settings
    or a channel's options) replace the platform's defaults for every sender of the token."""
    key = (platform, token_key(token))
    limiter = _LIMITERS.get(key)
    if limiter is None:
        limiter = _LIMITERS[key] = TokenLimiter(platform, DEFAULTS.get(platform, FALLBACK))
    if any(value is not None for value in limits.values()):
        limiter.configure(**limits)
    return limiter


_SENDER_LIMITERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def limiter_of(sender) -> TokenLimiter:
    """The limiter a sender paces on: its token's (`sender.limiter`), or one of its own from its stated limits."""
    limiter = getattr(sender, "limiter", None)
    if limiter is not None:
        return limiter
    limiter = _SENDER_LIMITERS.get(sender)
    if limiter is None:
        spacing = getattr(sender, "seconds_per_chat", 0.0) or 0.0
        limits = PlatformLimits(getattr(sender, "messages_per_second", 0.0) or 0.0, spacing, 1, spacing, 1)
        limiter = _SENDER_LIMITERS[sender] = TokenLimiter(getattr(sender, "channel", "?"), limits)
    return limiter


# --------------------------------------------------------------------------- fair per-chat queues

@dataclass
class _Line:
    lock: asyncio.Lock
    waiting: int = 0  # updates of this chat admitted and not finished (the one being answered included)
    told: bool = False  # the chat was told it sends too fast, since its line last emptied


class ChatQueues:
    """One chat's updates are answered one after another, and at most `max_pending` of them wait: a chat
    flooding the bot cannot hold the turns (and the concurrency) everyone else needs."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max(1, max_pending)
        self._lines: dict[str, _Line] = {}

    def admit(self, chat_id: str | int) -> bool:
        """Take the update into the chat's line; False: the line is full (drop it, maybe tell the chat)."""
        key = str(chat_id)
        line = self._lines.get(key)
        if line is None:
            line = self._lines[key] = _Line(asyncio.Lock())
        if line.waiting >= self.max_pending:
            return False
        line.waiting += 1
        return True

    def first_refusal(self, chat_id: str | int) -> bool:
        """True once per flood: the chat is told once, not once per dropped message."""
        line = self._lines.get(str(chat_id))
        if line is None or line.told:
            return False
        line.told = True
        return True

    def pending(self, chat_id: str | int) -> int:
        line = self._lines.get(str(chat_id))
        return line.waiting if line else 0

    @contextlib.asynccontextmanager
    async def turn(self, chat_id: str | int) -> AsyncIterator[None]:
        """The chat's turn for an admitted update; the line is forgotten when empty (memory stays bounded)."""
        key = str(chat_id)
        line = self._lines[key]
        try:
            async with line.lock:
                yield
        finally:
            line.waiting -= 1
            if line.waiting <= 0 and self._lines.get(key) is line:
                del self._lines[key]
