"""The answer contract of ../shared/eval/README.md: one JSON object per question, in order."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator

from handlers.core import Router
from handlers.messages import Incoming
from handlers.state import ChatMemory

log = logging.getLogger(__name__)
CHANNEL = "jsonl"
MAX_CANDIDATES = 5


def fresh(router: Router) -> Router:
    """The router with a memory of its own for this run: its chats ("1", "2"...) are not the stored chats of
    those names, and nothing of an earlier run follows into this one."""
    return router.with_memory(ChatMemory())


def answer_one(router: Router, chat: str, question: str) -> dict:
    replies = router.handle(Incoming(CHANNEL, chat, chat, question))
    reply = replies[0] if replies else None
    if reply is None:
        return {"chat": chat, "id": None, "aspect": None, "candidates": [], "answer": ""}
    aspects = list(reply.aspects) if reply.entry_id else []
    candidates = list(dict.fromkeys(([reply.entry_id] if reply.entry_id else []) + list(reply.candidates)))[:MAX_CANDIDATES]
    return {
        "chat": chat,
        "id": reply.entry_id,
        "aspect": (aspects[0] if len(aspects) == 1 else aspects) if aspects else None,
        "candidates": candidates,
        "answer": "\n\n".join(r.text for r in replies),
    }


def answer_lines(router: Router, lines: Iterable[str]) -> Iterator[str]:
    """Answer each JSON line; a malformed line gets an answer object with an error, never a crash.

    Each call is a run of its own: it starts with no memory of any chat (`fresh`).
    """
    router = fresh(router)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            chat, question = str(item["chat"]), item["q"]
            if not isinstance(question, str):
                raise TypeError("q is not a string")
        except (ValueError, KeyError, TypeError) as error:
            log.warning("line %d is not a question object: %s", number, error)
            yield json.dumps({"chat": None, "id": None, "aspect": None, "candidates": [],
                              "answer": "Dòng này không đúng định dạng {\"chat\": ..., \"q\": ...}."}, ensure_ascii=False)
            continue
        yield json.dumps(answer_one(router, chat, question), ensure_ascii=False)
