"""What the bot remembers of each chat between messages: the entry talked about and pending choices."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

MAX_CHATS = 50_000  # oldest chats are forgotten first; a follow-up hours later may start afresh


@dataclass
class ChatState:
    last_entry_id: str | None = None
    choices: list[str] = field(default_factory=list)  # entry ids offered by the last clarifying question
    numbered: list[str] = field(default_factory=list)  # button data of the last numbered list: "2" presses the 2nd
    last_question: str | None = None  # the question the last answer was for (a 👎 refers to it)
    pending_import: str | None = None  # a staff file validated and waiting for "Nhập" or "Hủy"


class ChatStates:
    """In-memory, bounded store of chat states, keyed by channel and chat id."""

    def __init__(self, max_chats: int = MAX_CHATS) -> None:
        self._states: OrderedDict[str, ChatState] = OrderedDict()
        self._max = max_chats

    def get(self, key: str) -> ChatState:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = ChatState()
            if len(self._states) > self._max:
                self._states.popitem(last=False)
        else:
            self._states.move_to_end(key)
        return state

    def peek(self, key: str) -> ChatState | None:
        """The chat's state if it has one; never creates it (after /xoadulieu nothing may come back)."""
        return self._states.get(key)

    def forget(self, key: str) -> None:
        self._states.pop(key, None)
