"""What every chat channel shares: the core it talks to (`Core`, answered off the event loop by `respond`,
`without_buttons` for a platform without them), and splitting long answers at paragraph boundaries to fit
a platform's message length."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Protocol

from handlers.core import SORRY, Context
from handlers.messages import Incoming, Reply
from knowledge.staff import Role
from redaction import key_tag

log = logging.getLogger(__name__)


class Core(Protocol):
    """What a channel talks to: the conversation core (handlers.core.Router is one), or a front for it
    (the worker processes of channels.workers, a platform without buttons)."""

    @property
    def context(self) -> Context: ...  # settings and the database (a channel's health check probes it)

    def handle(self, incoming: Incoming) -> list[Reply]: ...

    def role_of(self, incoming: Incoming) -> Role | None: ...


async def respond(core: Core, incoming: Incoming) -> list[Reply]:
    """The core's replies to one message, without holding up the other chats on this event loop.

    A core answering elsewhere (worker processes) is awaited; the plain core is synchronous (it may touch
    the database) and runs in a thread.
    """
    answer = getattr(core, "answer", None)
    if answer is None:
        return await asyncio.to_thread(core.handle, incoming)
    try:
        return await answer(incoming)
    except Exception:  # a worker that died must not leave the citizen without a word
        log.exception("worker failed for %s", key_tag(incoming.chat_key))
        return [Reply(SORRY)]


class WithoutButtons:
    """The core as a platform without buttons (Zalo) talks to it: every message says so (Incoming.buttonless),
    so the core offers a reply's buttons as numbers and reads the number typed next, in any process."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def context(self) -> Context:
        return self.core.context

    def handle(self, incoming: Incoming) -> list[Reply]:
        return self.core.handle(replace(incoming, buttonless=True))

    def role_of(self, incoming: Incoming) -> Role | None:
        return self.core.role_of(incoming)

    async def answer(self, incoming: Incoming) -> list[Reply]:
        return await respond(self.core, replace(incoming, buttonless=True))


def without_buttons(core: Core) -> WithoutButtons:
    """The core for a channel that shows no buttons."""
    return core if isinstance(core, WithoutButtons) else WithoutButtons(core)


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into parts of at most `limit` characters, at paragraph, then line, then word breaks."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), -1)
        if cut < limit // 3:
            cut = window.rfind("\n")
        if cut < limit // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts or [""]


def numbered_choices(reply: Reply) -> str:
    """The reply's text with its buttons written as numbered choices, for platforms without buttons.

    Replies already listing their choices by number (clarify, browse) are left as they are; the
    router maps a typed number to the button either way.
    """
    buttons = [b for row in reply.buttons for b in row]
    if not buttons or reply.numbered:
        return reply.text
    lines = [reply.text, "", "Gõ số để chọn:"]
    lines += [f"{i}. {b.label}" for i, b in enumerate(buttons, 1)]
    return "\n".join(lines)
