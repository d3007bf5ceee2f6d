"""What the bot remembers of each chat between messages, as typed per-feature state with an expiry.

Each feature declares its own small state (a pydantic model with a `feature` name: AskState,
StaffImportState, BroadcastDraftState...) and registers it with the router beside its commands
(`router.state(AskState)`). A state holds its declared fields only (`extra="forbid"`), and is stored
as one row per (chat, feature) — in the database (knowledge.chat_state) so a restart, a deploy or
another worker process keeps it, or in memory where there is no database (and for `ask --jsonl` and
`eval`, whose runs must start fresh). Writes are last-write-wins per (chat, feature): two processes
answering one chat never corrupt each other's features. A state untouched for CHAT_STATE_HOURS is
forgotten (ignored on reading, purged now and then).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(hours=24)
MAX_CHATS = 50_000  # the in-memory store forgets the least recently used chats beyond this


class ChatState(BaseModel):
    """Base of a feature's memory of one chat: declared fields only, stored as JSON."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    feature: ClassVar[str]  # the row's name in the store, e.g. "ask"

    def forgotten(self) -> list[str]:
        """What /xoadulieu tells the citizen it deleted with this state (Vietnamese), if anything worth saying."""
        return []

    def discard(self) -> None:
        """Release what the state points to outside the store (a waiting file); called when it is forgotten."""


S = TypeVar("S", bound=ChatState)


def now_utc() -> datetime:
    return datetime.now(UTC)


# The chat being answered in this thread (or task) and its rows as read at the start of the message: a message
# reads the chat's memory once, however many features look at it (ChatMemory.turn).
_TURN: ContextVar[tuple[ChatMemory, str, dict[str, dict]] | None] = ContextVar("chat_turn", default=None)


class StateBackend(Protocol):
    """Where state rows live: (chat key, feature) -> JSON-ready dict, with an expiry."""

    def read(self, chat_key: str, feature: str, now: datetime) -> dict | None: ...

    def read_all(self, chat_key: str, now: datetime) -> dict[str, dict]: ...

    def write(self, chat_key: str, feature: str, data: dict, now: datetime, expires: datetime) -> None: ...

    def delete(self, chat_key: str, feature: str) -> None: ...

    def delete_chat(self, chat_key: str) -> int: ...

    def purge(self, now: datetime) -> int: ...


class MemoryBackend:
    """Rows in this process's memory, bounded: for a bot without a database, and for evaluation runs."""

    def __init__(self, max_chats: int = MAX_CHATS) -> None:
        self._chats: OrderedDict[str, dict[str, tuple[dict, datetime]]] = OrderedDict()
        self._max = max_chats

    def read(self, chat_key: str, feature: str, now: datetime) -> dict | None:
        return self.read_all(chat_key, now).get(feature)

    def read_all(self, chat_key: str, now: datetime) -> dict[str, dict]:
        rows = self._chats.get(chat_key, {})
        return {feature: dict(data) for feature, (data, expires) in list(rows.items()) if expires > now}

    def write(self, chat_key: str, feature: str, data: dict, now: datetime, expires: datetime) -> None:
        rows = self._chats.setdefault(chat_key, {})
        rows[feature] = (dict(data), expires)
        self._chats.move_to_end(chat_key)
        while len(self._chats) > self._max:
            self._chats.popitem(last=False)

    def delete(self, chat_key: str, feature: str) -> None:
        rows = self._chats.get(chat_key)
        if rows is not None:
            rows.pop(feature, None)
            if not rows:
                del self._chats[chat_key]

    def delete_chat(self, chat_key: str) -> int:
        return len(self._chats.pop(chat_key, {}))

    def purge(self, now: datetime) -> int:
        gone = 0
        for chat_key in list(self._chats):
            for feature, (_, expires) in list(self._chats[chat_key].items()):
                if expires <= now:
                    self.delete(chat_key, feature)
                    gone += 1
        return gone


class ChatMemory:
    """The chats' memory as the features use it: typed states, declared once, over a backend."""

    def __init__(self, backend: StateBackend | None = None, ttl: timedelta = DEFAULT_TTL,
                 purge_every: float = 600.0) -> None:
        self.backend: StateBackend = backend if backend is not None else MemoryBackend()
        self.ttl = ttl
        self.kinds: dict[str, type[ChatState]] = {}
        self._purge_every = purge_every
        self._next_purge = 0.0

    @property
    def durable(self) -> bool:
        """Whether the memory outlives this process (kept in the database)."""
        return not isinstance(self.backend, MemoryBackend)

    def declare(self, kind: type[ChatState]) -> None:
        """Register a feature's state; one feature name per kind."""
        known = self.kinds.get(kind.feature)
        if known is not None and known is not kind:
            raise ValueError(f"chat state {kind.feature!r} is declared twice ({known.__name__}, {kind.__name__})")
        self.kinds[kind.feature] = kind

    def _check(self, kind: type[ChatState]) -> None:
        if self.kinds.get(kind.feature) is not kind:
            raise KeyError(f"chat state {kind.__name__} is not declared (router.state({kind.__name__}))")

    @contextmanager
    def turn(self, chat_key: str) -> Iterator[None]:
        """Answering one message of the chat: its memory is read once, here, and the features read that
        (with their own writes of this message); writes still go to the store at once."""
        try:
            rows = self.backend.read_all(chat_key, now_utc())
        except Exception as error:  # noqa: BLE001 - each read then tries the store itself
            _log_trouble("reading", "*", error)
            yield
            return
        token = _TURN.set((self, chat_key, rows))
        try:
            yield
        finally:
            _TURN.reset(token)

    def _cached(self, chat_key: str) -> dict[str, dict] | None:
        turn = _TURN.get()
        return turn[2] if turn is not None and turn[0] is self and turn[1] == chat_key else None

    def peek(self, chat_key: str, kind: type[S]) -> S | None:
        """The chat's state of this kind, or None (expired, never kept, no longer readable, or the store is down)."""
        self._check(kind)
        cached = self._cached(chat_key)
        if cached is not None:
            return self._parse(kind, cached.get(kind.feature))
        try:
            data = self.backend.read(chat_key, kind.feature, now_utc())
        except Exception as error:  # noqa: BLE001 - the database down: the citizen is still answered, as if from a fresh chat
            _log_trouble("reading", kind.feature, error)
            return None
        return self._parse(kind, data)

    def get(self, chat_key: str, kind: type[S]) -> S:
        """The chat's state of this kind, or a fresh one (not stored until saved)."""
        found = self.peek(chat_key, kind)
        return found if found is not None else kind()

    def save(self, chat_key: str, state: ChatState) -> None:
        """Store the state (its expiry starts again); last write wins per chat and feature."""
        self._check(type(state))
        now = now_utc()
        data = state.model_dump(mode="json")
        try:
            self.backend.write(chat_key, state.feature, data, now, now + self.ttl)
        except Exception as error:  # noqa: BLE001 - the reply still goes out; only this turn is not remembered
            _log_trouble("saving", state.feature, error)
            return
        cached = self._cached(chat_key)
        if cached is not None:
            cached[state.feature] = data
        self._maybe_purge(now)

    def clear(self, chat_key: str, kind: type[ChatState]) -> None:
        self._check(kind)
        try:
            self.backend.delete(chat_key, kind.feature)
        except Exception as error:  # noqa: BLE001 - an expired state is ignored anyway; a later turn clears it
            _log_trouble("clearing", kind.feature, error)
            return
        cached = self._cached(chat_key)
        if cached is not None:
            cached.pop(kind.feature, None)

    def forget(self, chat_key: str) -> list[ChatState]:
        """Delete everything kept about the chat (every feature, undeclared rows too); the states it held.

        Unlike reading and saving, a failure raises: /xoadulieu must never say it deleted what it did not.
        """
        held = self.backend.read_all(chat_key, now_utc())
        states = [s for s in (self._parse(self.kinds[f], d) for f, d in held.items() if f in self.kinds) if s is not None]
        self.backend.delete_chat(chat_key)
        cached = self._cached(chat_key)
        if cached is not None:
            cached.clear()
        return states

    def purge(self) -> int:
        """Delete expired rows now; how many."""
        return self.backend.purge(now_utc())

    def _maybe_purge(self, now: datetime) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self._purge_every
        try:
            gone = self.backend.purge(now)
            if gone:
                log.info("purged %d expired chat states", gone)
        except Exception:  # expired rows are ignored anyway; the next purge gets them
            log.exception("purging expired chat states failed")

    @staticmethod
    def _parse(kind: type[S], data: dict | None) -> S | None:
        if data is None:
            return None
        try:
            return kind.model_validate(data)
        except ValidationError:
            # A row written by an older version with other fields: start that feature afresh, never fail the chat.
            log.warning("chat state %s no longer reads; starting it afresh", kind.feature)
            return None


def _log_trouble(doing: str, feature: str, error: Exception) -> None:
    # The error's text may quote a statement's parameters (a chat id): its kind only.
    log.warning("chat memory unavailable (%s %s): %s", doing, feature, type(error).__name__)


class NumberedState(ChatState):
    """The core's: button data of the last numbered list, so typing "2" presses the second."""

    feature: ClassVar[str] = "numbered"
    data: list[str] = Field(default_factory=list)

    def forgotten(self) -> list[str]:
        return ["các lựa chọn đang chờ bạn chọn"] if self.data else []
