"""Answering questions typed in words: understand, then answer, clarify, or say we don't know."""

from __future__ import annotations

import logging
from typing import ClassVar

from pydantic import Field

from handlers.answers import aspect_buttons_data, display_name, write_answer
from handlers.buttons import AspectButton, ButtonDataError, FeedbackButton
from handlers.core import Context, Router
from handlers.messages import Button, Incoming, Reply
from handlers.smalltalk import EMPTY_REPLY, NO_WORDS_REPLY, small_talk_reply
from handlers.state import ChatState
from knowledge import unanswered
from knowledge.schema import Entry, OnlineLevel
from nlp import Outcome, Understanding, understand
from nlp.aspects import Aspect
from nlp.names import channel_of
from nlp.normalize import MAX_QUESTION_CHARS

_ASPECT_BUTTONS_PER_ROW = 2
_ASPECT_BUTTONS = 6  # at most this many aspects offered under an answer
LOW_CONFIDENCE = 0.8  # answers the decision model is less sure of than this are kept for staff to check
log = logging.getLogger(__name__)

TOO_LONG = (
    "Tin nhắn của bạn dài quá ({length} ký tự), tôi không đọc hết được. Bạn vui lòng gửi riêng câu hỏi chính, "
    "ngắn gọn (dưới {limit} ký tự), ví dụ: \"đăng ký thường trú cần giấy tờ gì\"."
)
LAW = (
    "Câu hỏi của bạn là về quy định pháp luật hoặc chính sách (quyền lợi, mức hưởng, nghĩa vụ, xử phạt…). "
    "Tôi chỉ hướng dẫn cách làm thủ tục hành chính, nên không trả lời chắc chắn được câu này. "
    "Bạn vui lòng hỏi cán bộ Bộ phận Một cửa hoặc cơ quan phụ trách lĩnh vực này (gõ /lienhe để xem cách liên hệ)."
)
LAW_RELATED = "Nếu bạn cần làm thủ tục liên quan, có thể là:"
STATUS = (
    "Để xem hồ sơ đã nộp đang đến đâu, bạn gửi mã hồ sơ in trên giấy tiếp nhận kèm 4 số cuối số điện thoại "
    "hoặc số CCCD đã khai khi nộp, ví dụ: /theodoi <mã hồ sơ> 1234. Gõ /hoso để xem các hồ sơ bạn đang theo dõi."
)
ASK_SUBJECT = (
    "Bạn muốn hỏi {what} của thủ tục nào ạ? Bạn gõ tên việc cần làm, ví dụ: \"{what} làm thẻ căn cước\", "
    "\"{what} đăng ký khai sinh\", hoặc gõ /thutuc để xem danh sách."
)


class AskState(ChatState):
    """The conversation about procedures: what a follow-up refers to, and what a 👎 is about."""

    feature: ClassVar[str] = "ask"
    last_entry_id: str | None = None  # the entry last answered: "thế lệ phí bao nhiêu?" is about it
    choices: list[str] = Field(default_factory=list)  # entry ids offered by the last clarifying question
    last_question: str | None = None  # the question the last answer was for (a 👎 refers to it)

    def forgotten(self) -> list[str]:
        return ((["thủ tục bạn đang hỏi"] if self.last_entry_id else [])
                + (["câu hỏi gần nhất của bạn"] if self.last_question else [])
                + (["các lựa chọn đang chờ bạn chọn"] if self.choices else []))


def answer_text(incoming: Incoming, context: Context) -> list[Reply]:
    """Free text: a question about a procedure, a follow-up, small talk or a number picking a choice."""
    if len(incoming.text) > MAX_QUESTION_CHARS:
        return [Reply(TOO_LONG.format(length=f"{len(incoming.text):,}".replace(",", "."), limit=f"{MAX_QUESTION_CHARS:,}".replace(",", ".")))]
    state = context.memory.get(incoming.chat_key, AskState)
    replies = _answer_text(incoming, context, state)
    context.memory.save(incoming.chat_key, state)
    return replies


def _answer_text(incoming: Incoming, context: Context, state: AskState) -> list[Reply]:
    # After a clarifying question the citizen may just go on asking ("thế lệ phí bao nhiêu?"):
    # the first choice offered is then the best guess at what they meant.
    subject = state.last_entry_id or (state.choices[0] if state.choices else None)
    result = understand(incoming.text, context.catalog.index, subject)
    state.last_question = incoming.text
    if result.outcome in (Outcome.UNKNOWN, Outcome.LAW, Outcome.STATUS, Outcome.ASK_SUBJECT):
        # A question the bot could not place ends the earlier subject: a bare "lệ phí bao nhiêu?" after
        # it must not be answered about what was asked before.
        state.last_entry_id, state.choices = None, []
    if result.outcome in (Outcome.UNKNOWN, Outcome.CLARIFY, Outcome.LAW) or result.outcome == Outcome.ANSWER and _unsure(result):
        reason = {Outcome.UNKNOWN: "unknown", Outcome.CLARIFY: "clarify", Outcome.LAW: "law"}.get(result.outcome, "low")
        note_unanswered(context, incoming.text, reason, result.candidate_ids[0] if result.candidate_ids else None)
    if result.outcome == Outcome.EMPTY:
        return [Reply(EMPTY_REPLY if not incoming.text.strip() else NO_WORDS_REPLY)]
    if result.outcome == Outcome.SMALL_TALK:
        return [Reply(small_talk_reply(result.small_talk, context.settings), candidates=tuple(result.candidate_ids))]
    if result.outcome == Outcome.ANSWER and result.entry_id:
        reply = answer_entry(context, incoming.chat_key, result.entry_id, result.aspects, state)
        reply.candidates = tuple(result.candidate_ids)
        return [reply]
    if result.outcome == Outcome.CLARIFY:
        return [clarify(context, incoming.chat_key, result.candidate_ids[:3], result.aspects, state)]
    if result.outcome == Outcome.LAW:
        return [law_question(context, result.candidate_ids[:1], result.considered_ids)]
    if result.outcome == Outcome.STATUS:
        return [Reply(STATUS)]
    if result.outcome == Outcome.ASK_SUBJECT:
        what = ASPECT_WORDS.get(result.aspects[0], "thông tin") if result.aspects else "thông tin"
        return [Reply(ASK_SUBJECT.format(what=what), outcome="clarified")]
    return [dont_know(context, result.candidate_ids)]


# How an aspect is named in "Bạn muốn hỏi ... của thủ tục nào?".
ASPECT_WORDS = {
    Aspect.FEE: "lệ phí", Aspect.DOCUMENTS: "giấy tờ", Aspect.DURATION: "thời gian giải quyết", Aspect.PLACE: "nơi nộp",
    Aspect.ONLINE: "cách nộp trực tuyến", Aspect.POSTAL: "cách nộp qua bưu điện", Aspect.STEPS: "các bước",
    Aspect.CONDITIONS: "điều kiện", Aspect.LEGAL: "căn cứ pháp lý",
}


def _unsure(result: Understanding) -> bool:
    return not result.follow_up and result.confidence < LOW_CONFIDENCE


def law_question(context: Context, related: list[str], considered: list[str] = ()) -> Reply:
    """A question about the law or a policy: say honestly what the bot does, and where to ask.

    `related`: the procedure plainly related, offered; `considered`: every candidate weighed, reported
    (not shown) as a "don't know" reply reports them."""
    lines, buttons = [LAW], []
    entries = [e for e in (context.catalog.get(i) for i in related) if e is not None]
    if entries:
        lines.append(LAW_RELATED)
        for number, entry in enumerate(entries, 1):
            lines.append(f"{number}. {display_name(entry)}")
            buttons.append([Button(f"{number}. {display_name(entry)}"[:60], AspectButton(entry.id, Aspect.OVERVIEW).pack())])
    weighed = tuple(dict.fromkeys([*(e.id for e in entries), *considered]))
    return Reply("\n".join(lines), buttons, candidates=weighed, numbered=bool(entries), outcome="law")


def note_unanswered(context: Context, text: str, reason: str, best_guess: str | None) -> None:
    """Keep a question staff should teach the bot; never lets a database problem reach the citizen."""
    if context.db is None or not context.settings.record_questions:
        return
    try:
        with context.db.begin() as session:
            unanswered.record(session, text, reason, best_guess)
    except Exception:
        log.exception("could not record an unanswered question")


def answer_entry(context: Context, chat_key: str, entry_id: str, aspects: tuple[Aspect, ...],
                 state: AskState | None = None) -> Reply:
    """The answer about one entry, remembered as the chat's subject for follow-ups (saved here unless the
    caller passes the state it saves itself)."""
    entry = context.catalog.get(entry_id)
    if entry is None:
        return Reply("Xin lỗi, mục này không còn trong cơ sở dữ liệu. Bạn vui lòng hỏi lại nhé.")
    own = state is None
    state = context.memory.get(chat_key, AskState) if state is None else state
    state.last_entry_id, state.choices = entry.id, []
    if own:
        context.memory.save(chat_key, state)
    shown = aspects or (Aspect.OVERVIEW,)
    if entry.kind == "topic":
        # A topic (how to pay online, what the one-stop office is) has no fee, papers or deadline of its
        # own: an aspect it says nothing about is answered with its overview, never "no information".
        shown = tuple(a for a in shown if _has(entry, a)) or (Aspect.OVERVIEW,)
    offers = [Button(label, data) for label, data in aspect_buttons_data(entry.id, shown, limit=_ASPECT_BUTTONS)]
    rows = [offers[i:i + _ASPECT_BUTTONS_PER_ROW] for i in range(0, len(offers), _ASPECT_BUTTONS_PER_ROW)]
    text = write_answer(entry, shown)
    # The same procedure filed another way (online in full / in part or at the office; a form or the web
    # page) is a separate record: the citizen asked about the procedure, so the other way is offered too.
    siblings = [e for e in map(context.catalog.get, sorted(context.catalog.index.siblings.get(entry.id, ()))) if e is not None]
    if siblings:
        text += "\n\nThủ tục này còn làm được theo cách khác:\n" + "\n".join(f"• {display_name(e)}" for e in siblings)
        for sibling in siblings:
            button = AspectButton(sibling.id, shown[0])
            if button.fits():
                rows.append([Button(_way(sibling), button.pack())])
    try:
        rows.append([Button("👍 Hữu ích", FeedbackButton(entry.id, "up").pack()),
                     Button("👎 Chưa đúng", FeedbackButton(entry.id, "down").pack())])
    except ButtonDataError:
        pass  # an id too long for Telegram's 64 bytes gets the answer without these buttons
    return Reply(text, rows, entry_id=entry.id, aspects=tuple(a.value for a in shown), outcome="answered")


def _way(entry: Entry) -> str:
    """A button's label for a sibling: the way it is filed ("Qua Trang thông tin điện tử"), else its name."""
    way = channel_of(entry.name)
    return (way[0].upper() + way[1:]) if way else display_name(entry)[:60]


def _has(entry: Entry, aspect: Aspect) -> bool:
    """Whether an entry says something of its own about an aspect."""
    return bool({
        Aspect.OVERVIEW: True, Aspect.FEE: entry.fees, Aspect.DURATION: entry.durations, Aspect.DOCUMENTS: entry.documents,
        Aspect.PLACE: entry.places, Aspect.ONLINE: entry.online.level != OnlineLevel.UNKNOWN or entry.online.note,
        Aspect.POSTAL: entry.postal.submit is not None or entry.postal.receive_result is not None or entry.postal.note,
        Aspect.STEPS: entry.steps, Aspect.CONDITIONS: entry.conditions or entry.notes, Aspect.LEGAL: entry.legal_basis,
    }[aspect])


def clarify(context: Context, chat_key: str, entry_ids: list[str], aspects: tuple[Aspect, ...],
            state: AskState | None = None) -> Reply:
    """Offer the closest entries as numbered choices (buttons where the platform has them)."""
    own = state is None
    state = context.memory.get(chat_key, AskState) if state is None else state
    state.choices = list(entry_ids)
    if own:
        context.memory.save(chat_key, state)
    lines = ["Bạn muốn hỏi về việc nào dưới đây? Chọn một mục (hoặc gõ số thứ tự):"]
    buttons = []
    aspect = aspects[0] if aspects else Aspect.OVERVIEW
    shown = [e for e in (context.catalog.get(i) for i in entry_ids) if e is not None and AspectButton(e.id, aspect).fits()]
    for number, entry in enumerate(shown, 1):
        lines.append(f"{number}. {display_name(entry)}")
        buttons.append([Button(f"{number}. {display_name(entry)}"[:60], AspectButton(entry.id, aspect).pack())])
    lines.append("Nếu không có mục nào đúng, bạn thử hỏi lại bằng cách khác, gõ /thutuc để xem danh sách thủ tục hoặc /lienhe để hỏi cán bộ.")
    return Reply("\n".join(lines), buttons, candidates=tuple(entry_ids), numbered=True, outcome="clarified")


def dont_know(context: Context, candidates: list[str]) -> Reply:
    settings = context.settings
    contact = f" hoặc gọi {settings.office_name} theo số {settings.office_phone}" if settings.office_phone else " hoặc gõ /lienhe để xem cách liên hệ Bộ phận Một cửa"
    text = (
        "Xin lỗi, tôi chưa tìm thấy thủ tục phù hợp với câu hỏi của bạn. "
        "Bạn thử hỏi ngắn gọn hơn, nêu tên việc cần làm (ví dụ: \"làm thẻ căn cước\", \"đăng ký khai sinh\"), "
        f"gõ /thutuc để xem danh sách thủ tục{contact}."
    )
    return Reply(text, candidates=tuple(candidates), outcome="not_understood")


def aspect_button(incoming: Incoming, context: Context) -> list[Reply]:
    """A tapped aspect or choice button."""
    pressed = AspectButton.unpack(incoming.button)
    return [answer_entry(context, incoming.chat_key, pressed.entry_id, (pressed.aspect,))]


def feedback_button(incoming: Incoming, context: Context) -> list[Reply]:
    """👍 / 👎 under an answer."""
    pressed = FeedbackButton.unpack(incoming.button)
    if pressed.vote == "down":
        question = context.memory.get(incoming.chat_key, AskState).last_question
        if question:
            note_unanswered(context, question, "thumbs_down", pressed.entry_id)
        return [Reply("Cảm ơn bạn đã góp ý. Tôi sẽ ghi nhận để cán bộ bổ sung. Bạn có thể hỏi lại bằng cách khác, hoặc gõ /lienhe để hỏi trực tiếp cán bộ.")]
    return [Reply("Cảm ơn bạn! Rất vui vì đã giúp được bạn.")]


def register(router: Router) -> None:
    router.state(AskState)
    router.text(answer_text)
    router.button(AspectButton, aspect_button)
    router.button(FeedbackButton, feedback_button)
