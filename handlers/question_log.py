"""Keeps the question log (knowledge.question_log) from the conversation, without touching the ask feature.

An after-hook sees every dispatch: a reply with an `outcome` is one question logged; a 👍/👎 press sets the
vote on that chat's latest logged answer of the entry. /xoadulieu deletes the chat's rows. Nothing here may
cost the citizen their answer: every failure is logged and swallowed.
"""

from __future__ import annotations

import logging

from handlers.buttons import ButtonDataError, FeedbackButton, prefix_of
from handlers.core import _NUMBER, Context, Router
from handlers.messages import Incoming, Reply
from knowledge import question_log
from redaction import key_tag

log = logging.getLogger(__name__)

FORGOTTEN = "thống kê các câu hỏi bạn đã hỏi"


def observe(incoming: Incoming, replies: list[Reply], context: Context) -> list[Reply]:
    """Log the question (or the vote) this dispatch answered; the replies go on unchanged."""
    if context.db is None or not context.settings.record_questions:
        return replies
    try:
        if incoming.button and prefix_of(incoming.button) == FeedbackButton.prefix:
            _vote(incoming, context)
            return replies
        reply = next((r for r in replies if r.outcome in question_log.OUTCOMES), None)
        if reply is not None:
            with context.db.begin() as session:
                question_log.record(session, incoming.channel, incoming.chat_id, reply.outcome, reply.entry_id,
                                    reply.aspects, typed=_typed(incoming))
    except Exception:  # the log is for statistics: never the citizen's problem
        log.exception("could not log a question of %s", key_tag(incoming.chat_key))
    return replies


def _typed(incoming: Incoming) -> bool:
    """A question in words, as opposed to a tapped button, a number picking a listed choice or a /start link."""
    text = incoming.text.strip()
    return not incoming.button and not text.startswith("/") and not _NUMBER.match(text)


def _vote(incoming: Incoming, context: Context) -> None:
    try:
        pressed = FeedbackButton.unpack(incoming.button)
    except ButtonDataError:  # a forged button: the router already answered it as stale
        return
    with context.db.begin() as session:
        question_log.record_vote(session, incoming.channel, incoming.chat_id, pressed.entry_id, pressed.vote)


def register(router: Router) -> None:
    router.after(observe)
    router.forget(FORGOTTEN, question_log.forget)
