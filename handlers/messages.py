"""The platform-neutral message types every feature handler works on, and every channel translates."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Button:
    """A choice the user can tap (or, where a platform has no buttons, answer by its number)."""

    label: str
    data: str = ""
    url: str | None = None  # a link button (announcements): opens the address instead of sending data


@dataclass(frozen=True)
class IncomingFile:
    """A document the user sent (staff send spreadsheets to import)."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Incoming:
    """One thing a user sent: text, a button press (`button` holds the button's data) or a file."""

    channel: str
    chat_id: str
    user_id: str
    text: str = ""
    button: str | None = None
    file: IncomingFile | None = None
    # Sent in a group chat: other members read the replies, so nothing personal may be shown there.
    group: bool = False
    # Sent on a platform without buttons (Zalo): the buttons of a reply are offered as numbers to type, and a
    # number typed next picks one. The channel says so on every message (channels.base.without_buttons).
    buttonless: bool = False
    # The platform's id of the message this one replies to, where the channel knows it (Telegram): an officer's
    # reply to the bot's post in a staff group reaches the citizen the post was about.
    reply_to: str | None = None

    @property
    def chat_key(self) -> str:
        return f"{self.channel}:{self.chat_id}"


@dataclass
class Reply:
    """One message back to the user; `entry_id` and `aspects` say what it answered, for logs and evaluation."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    entry_id: str | None = None
    aspects: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    numbered: bool = False  # the buttons are a numbered list: typing "2" means pressing the second
    # What the reply did with a citizen's question, for the question log and the hand-off button: "answered",
    # "clarified", "not_understood" (absent procedures included) or "law"; None for anything else.
    outcome: str | None = None
