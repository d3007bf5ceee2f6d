"""What every chat channel shares: running the conversation core off the event loop, and splitting
long answers at paragraph boundaries to fit a platform's message length."""

from __future__ import annotations

import asyncio
import logging

from handlers.core import SORRY, Router
from handlers.messages import Incoming, Reply
from redaction import key_tag

log = logging.getLogger(__name__)


async def respond(router: Router, incoming: Incoming) -> list[Reply]:
    """The core is synchronous (it may touch the database): it runs in the router's worker processes
    when it has some (channels.workers), else in a thread, so one slow question never holds up the
    other chats on this event loop."""
    if router.workers is not None:
        try:
            return await router.workers.handle(incoming, frozenset(router.buttonless_channels))
        except Exception:  # noqa: BLE001 - a worker that died must not leave the citizen without a word
            log.exception("worker failed for %s", key_tag(incoming.chat_key))
            return [Reply(SORRY)]
    return await asyncio.to_thread(router.handle, incoming)


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
