"""The conversation core: one router that every channel feeds with `Incoming` and reads `Reply` from."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from handlers.buttons import ButtonData, ButtonDataError, prefix_of
from handlers.messages import Incoming, Reply
from handlers.state import ChatMemory, ChatState, NumberedState
from knowledge.catalog import Catalog
from knowledge.staff import Role
from knowledge.staff import role_of as staff_role
from redaction import chat_tag, key_tag

log = logging.getLogger(__name__)

Handler = Callable[[Incoming, "Context"], list[Reply]]
# A feature's "forget this chat" step: deletes what the feature keeps about (channel, chat_id) in the given
# session's transaction and returns how many rows it removed (0: it kept nothing).
ForgetStep = Callable[[Session, str, str], int]
# A handler for some free text only (a dossier code in a question): its replies, or None to pass it on.
TextClaim = Callable[[Incoming, "Context"], list[Reply] | None]
# Run before any dispatch: replies (an empty list: stay silent) end the dispatch; None passes the message on.
BeforeHook = Callable[[Incoming, "Context"], list[Reply] | None]
# Run on every dispatch's replies: returns them, changed (a button added) or not (an observer).
AfterHook = Callable[[Incoming, list[Reply], "Context"], list[Reply]]

_NUMBER = re.compile(r"^\s*(?:số\s*|so\s*)?([1-9][0-9]?)\s*[.)!]?\s*$", re.IGNORECASE)

ONLY_TEXT = "Xin lỗi, tôi chỉ đọc được câu hỏi bằng chữ. Bạn vui lòng gõ câu hỏi nhé."
STALE = "Nút này đã cũ. Bạn vui lòng gõ lại câu hỏi nhé."
SORRY = "Xin lỗi, hệ thống đang gặp trục trặc. Bạn vui lòng thử lại sau ít phút hoặc gõ /lienhe để liên hệ Bộ phận Một cửa."


class CatalogSource(Protocol):
    current: Catalog


@dataclass
class Context:
    """What handlers may use: the current knowledge base, chat memory, settings and the database."""

    source: CatalogSource
    settings: Settings
    db: sessionmaker[Session] | None = None
    memory: ChatMemory = field(default_factory=ChatMemory)
    router: Router | None = None

    @property
    def catalog(self) -> Catalog:
        """The knowledge base as of now (a live source swaps in a new one after each change)."""
        return self.source.current


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    roles: frozenset[Role] = frozenset()  # empty: everyone; otherwise only staff with one of these roles

    @property
    def staff_only(self) -> bool:
        return bool(self.roles)


@dataclass(frozen=True)
class Forgetting:
    """One feature's stored data about a chat, as /xoadulieu names it to the citizen and deletes it."""

    what: str  # e.g. "các hồ sơ bạn theo dõi"
    step: ForgetStep


class Router:
    """Dispatches commands (/name), button presses (by data prefix) and free text to feature handlers."""

    def __init__(self, context: Context) -> None:
        self.context = context
        context.router = self
        self.commands: dict[str, Command] = {}
        self.buttons: dict[str, tuple[Handler, frozenset[Role]]] = {}
        self.text_handler: Handler | None = None
        self.text_claims: list[TextClaim] = []
        self.file_handler: Handler | None = None
        # Every feature that stores something about a chat registers how to delete it, next to its commands.
        self.forgettings: list[Forgetting] = []
        self.before_hooks: list[BeforeHook] = []
        self.after_hooks: list[AfterHook] = []
        self.state(NumberedState)

    def with_memory(self, memory: ChatMemory) -> Router:
        """This router with its own chat memory (evaluation runs: conversations apart from the stored chats)."""
        for kind in self.context.memory.kinds.values():
            memory.declare(kind)
        other = copy.copy(self)
        other.context = replace(self.context, memory=memory, router=other)
        return other

    def command(self, name: str, handler: Handler, help: str | None = None, roles: frozenset[Role] = frozenset()) -> None:
        self.commands[name] = Command(name, handler, help if help is not None else (handler.__doc__ or "").strip(), roles)

    def button(self, kind: type[ButtonData], handler: Handler, roles: frozenset[Role] = frozenset()) -> None:
        """Presses of buttons of this kind (by its data's prefix) go to `handler`."""
        if kind.prefix in self.buttons:
            raise ValueError(f"button prefix {kind.prefix!r} registered twice")
        self.buttons[kind.prefix] = (handler, roles)

    def state(self, kind: type[ChatState]) -> None:
        """Declare a feature's memory of a chat (handlers.state): stored with an expiry, forgotten by /xoadulieu."""
        self.context.memory.declare(kind)

    def forget(self, what: str, step: ForgetStep) -> None:
        """Register what this feature stores about a chat and how /xoadulieu deletes it."""
        self.forgettings.append(Forgetting(what, step))

    def before(self, hook: BeforeHook) -> None:
        """`hook` sees every message first (e.g. a chat an officer handles: the bot stays silent)."""
        self.before_hooks.append(hook)

    def after(self, hook: AfterHook) -> None:
        """`hook` sees every message's replies (e.g. the question log; a hand-off button under "I don't know")."""
        self.after_hooks.append(hook)

    def file(self, handler: Handler) -> None:
        self.file_handler = handler

    def role_of(self, incoming: Incoming) -> Role | None:
        """The sender's staff role, if any (looked up in the database on every staff action)."""
        if self.context.db is None:
            return None
        try:
            with self.context.db() as session:
                return staff_role(session, incoming.channel, incoming.user_id)
        except Exception:  # noqa: BLE001 - a database hiccup must not open staff commands to anyone
            log.exception("staff lookup failed")
            return None

    def allowed(self, incoming: Incoming, roles: frozenset[Role]) -> bool:
        if not roles:
            return True
        role = self.role_of(incoming)
        if role is None or role not in roles:
            # Who tried is personal data: the tag at WARNING, the account only at DEBUG.
            log.warning("refused %s to user %s", sorted(roles), chat_tag(incoming.channel, incoming.user_id))
            log.debug("refused %s to %s:%s", sorted(roles), incoming.channel, incoming.user_id)
            return False
        return True

    def text(self, handler: Handler) -> None:
        self.text_handler = handler

    def text_claim(self, claim: TextClaim) -> None:
        """Free text is offered to each claim, in order, before the text handler gets what none took."""
        self.text_claims.append(claim)

    def handle(self, incoming: Incoming) -> list[Reply]:
        """Route one message; a failing handler gets a polite apology, never a crash."""
        try:
            with self.context.memory.turn(incoming.chat_key):
                return self._dispatch(incoming)
        except Exception:  # noqa: BLE001 - a bug in one feature must not take the conversation down
            log.exception("handler failed for %s", key_tag(incoming.chat_key))
            return [Reply(SORRY)]

    def _dispatch(self, incoming: Incoming) -> list[Reply]:
        for before in self.before_hooks:
            taken = before(incoming, self.context)
            if taken is not None:
                return taken
        replies = self._dispatch_feature(incoming)
        for after in self.after_hooks:
            try:
                replies = after(incoming, replies, self.context)
            except Exception:  # noqa: BLE001 - an observer's failure must not lose the citizen's answer
                log.exception("after-hook %s failed for %s", getattr(after, "__qualname__", after), key_tag(incoming.chat_key))
        return replies

    def _dispatch_feature(self, incoming: Incoming) -> list[Reply]:
        picked = _NUMBER.match(incoming.text) if not incoming.button else None
        if picked:
            numbered = self.context.memory.get(incoming.chat_key, NumberedState).data
            number = int(picked.group(1))
            if 1 <= number <= len(numbered):
                incoming = replace(incoming, button=numbered[number - 1])
        if incoming.button:
            handler, roles = self.buttons.get(prefix_of(incoming.button), (None, frozenset()))
            if handler is None or not self.allowed(incoming, roles):
                return [Reply(STALE)]
            try:
                replies = handler(incoming, self.context)
            except ButtonDataError as error:  # an old or forged button: say so, never fail
                log.warning("unreadable button data for %s: %s", key_tag(incoming.chat_key), error)
                return [Reply(STALE)]
        elif incoming.file is not None:
            replies = self.file_handler(incoming, self.context) if self.file_handler else [Reply(ONLY_TEXT)]
        else:
            replies = self._dispatch_text(incoming)
        self._remember_numbered(incoming, replies)
        return replies

    def _dispatch_text(self, incoming: Incoming) -> list[Reply]:
        text = incoming.text.strip()
        if text.startswith("/"):
            name = text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if len(text) > 1 else ""
            command = self.commands.get(name)
            # A citizen is never shown staff commands: to them one is just an unknown command.
            if command is None or not self.allowed(incoming, command.roles):
                return [Reply("Tôi chưa hiểu lệnh này. Gõ /help để xem các lệnh, hoặc cứ đặt câu hỏi bằng lời nhé.")]
            return command.handler(incoming, self.context)
        for claim in self.text_claims:
            try:
                replies = claim(incoming, self.context)
            except Exception:  # noqa: BLE001 - a failing feature (its database, say) must not stop ordinary questions
                log.exception("text claim %s failed for %s", getattr(claim, "__name__", claim), key_tag(incoming.chat_key))
                continue
            if replies is not None:
                return replies
        if self.text_handler is None:
            return []
        return self.text_handler(incoming, self.context)

    def _remember_numbered(self, incoming: Incoming, replies: list[Reply]) -> None:
        """A reply listing numbered choices lets the user answer with the number, on every channel."""
        for reply in reversed(replies):
            if reply.numbered or reply.buttons and incoming.buttonless:
                data = [b.data for row in reply.buttons for b in row]
                self.context.memory.save(incoming.chat_key, NumberedState(data=data))
                return
        # Any other reply ends the list: a "2" typed later is a question again, not a choice.
        if replies and self.context.memory.peek(incoming.chat_key, NumberedState) is not None:
            self.context.memory.clear(incoming.chat_key, NumberedState)


def command_argument(incoming: Incoming) -> str:
    """The text after the command name ("/start 1.001193" -> "1.001193")."""
    parts = incoming.text.strip().split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""
