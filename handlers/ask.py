"""Answering questions typed in words: understand, then answer, clarify, or say we don't know."""

from __future__ import annotations

import logging

from handlers.answers import aspect_buttons_data, display_name, write_answer
from handlers.core import Context, Router
from handlers.messages import Button, Incoming, Reply
from handlers.smalltalk import EMPTY_REPLY, NO_WORDS_REPLY, small_talk_reply
from knowledge import unanswered
from knowledge.schema import Entry, OnlineLevel
from nlp import Outcome, Understanding, understand
from nlp.aspects import Aspect
from nlp.normalize import MAX_QUESTION_CHARS

_ASPECT_BUTTONS_PER_ROW = 2
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


def answer_text(incoming: Incoming, context: Context) -> list[Reply]:
    """Free text: a question about a procedure, a follow-up, small talk or a number picking a choice."""
    state = context.states.get(incoming.chat_key)
    if len(incoming.text) > MAX_QUESTION_CHARS:
        return [Reply(TOO_LONG.format(length=f"{len(incoming.text):,}".replace(",", "."), limit=f"{MAX_QUESTION_CHARS:,}".replace(",", ".")))]
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
        reply = answer_entry(context, incoming.chat_key, result.entry_id, result.aspects)
        reply.candidates = tuple(result.candidate_ids)
        return [reply]
    if result.outcome == Outcome.CLARIFY:
        return [clarify(context, incoming.chat_key, result.candidate_ids[:3], result.aspects)]
    if result.outcome == Outcome.LAW:
        return [law_question(context, result.candidate_ids[:1])]
    if result.outcome == Outcome.STATUS:
        return [Reply(STATUS)]
    if result.outcome == Outcome.ASK_SUBJECT:
        what = ASPECT_WORDS.get(result.aspects[0], "thông tin") if result.aspects else "thông tin"
        return [Reply(ASK_SUBJECT.format(what=what))]
    return [dont_know(context, result.candidate_ids)]


# How an aspect is named in "Bạn muốn hỏi ... của thủ tục nào?".
ASPECT_WORDS = {
    Aspect.FEE: "lệ phí", Aspect.DOCUMENTS: "giấy tờ", Aspect.DURATION: "thời gian giải quyết", Aspect.PLACE: "nơi nộp",
    Aspect.ONLINE: "cách nộp trực tuyến", Aspect.POSTAL: "cách nộp qua bưu điện", Aspect.STEPS: "các bước",
    Aspect.CONDITIONS: "điều kiện", Aspect.LEGAL: "căn cứ pháp lý",
}


def _unsure(result: Understanding) -> bool:
    return not result.follow_up and result.confidence < LOW_CONFIDENCE


def law_question(context: Context, related: list[str]) -> Reply:
    """A question about the law or a policy: say honestly what the bot does, and where to ask."""
    lines, buttons = [LAW], []
    entries = [e for e in (context.catalog.get(i) for i in related) if e is not None]
    if entries:
        lines.append(LAW_RELATED)
        for number, entry in enumerate(entries, 1):
            lines.append(f"{number}. {display_name(entry)}")
            buttons.append([Button(f"{number}. {display_name(entry)}"[:60], f"a:{entry.id}:{Aspect.OVERVIEW.value}")])
    return Reply("\n".join(lines), buttons, candidates=tuple(e.id for e in entries), numbered=bool(entries))


def note_unanswered(context: Context, text: str, reason: str, best_guess: str | None) -> None:
    """Keep a question staff should teach the bot; never lets a database problem reach the citizen."""
    if context.db is None or not context.settings.record_questions:
        return
    try:
        with context.db.begin() as session:
            unanswered.record(session, text, reason, best_guess)
    except Exception:
        log.exception("could not record an unanswered question")


def answer_entry(context: Context, chat_key: str, entry_id: str, aspects: tuple[Aspect, ...]) -> Reply:
    """The answer about one entry, remembered as the chat's subject for follow-ups."""
    entry = context.catalog.get(entry_id)
    if entry is None:
        return Reply("Xin lỗi, mục này không còn trong cơ sở dữ liệu. Bạn vui lòng hỏi lại nhé.")
    state = context.states.get(chat_key)
    state.last_entry_id, state.choices = entry.id, []
    shown = aspects or (Aspect.OVERVIEW,)
    if entry.kind == "topic":
        # A topic (how to pay online, what the one-stop office is) has no fee, papers or deadline of its
        # own: an aspect it says nothing about is answered with its overview, never "no information".
        shown = tuple(a for a in shown if _has(entry, a)) or (Aspect.OVERVIEW,)
    offers = [Button(label, data) for label, data in aspect_buttons_data(entry.id, shown)][:6]
    rows = [offers[i:i + _ASPECT_BUTTONS_PER_ROW] for i in range(0, len(offers), _ASPECT_BUTTONS_PER_ROW)]
    rows.append([Button("👍 Hữu ích", f"fb:{entry.id}:up"), Button("👎 Chưa đúng", f"fb:{entry.id}:down")])
    return Reply(write_answer(entry, shown), rows, entry_id=entry.id, aspects=tuple(a.value for a in shown))


def _has(entry: Entry, aspect: Aspect) -> bool:
    """Whether an entry says something of its own about an aspect."""
    return bool({
        Aspect.OVERVIEW: True, Aspect.FEE: entry.fees, Aspect.DURATION: entry.durations, Aspect.DOCUMENTS: entry.documents,
        Aspect.PLACE: entry.places, Aspect.ONLINE: entry.online.level != OnlineLevel.UNKNOWN or entry.online.note,
        Aspect.POSTAL: entry.postal.submit is not None or entry.postal.receive_result is not None or entry.postal.note,
        Aspect.STEPS: entry.steps, Aspect.CONDITIONS: entry.conditions or entry.notes, Aspect.LEGAL: entry.legal_basis,
    }[aspect])


def clarify(context: Context, chat_key: str, entry_ids: list[str], aspects: tuple[Aspect, ...]) -> Reply:
    """Offer the closest entries as numbered choices (buttons where the platform has them)."""
    state = context.states.get(chat_key)
    state.choices = entry_ids
    lines = ["Bạn muốn hỏi về việc nào dưới đây? Chọn một mục (hoặc gõ số thứ tự):"]
    buttons = []
    for number, entry_id in enumerate(entry_ids, 1):
        entry = context.catalog.get(entry_id)
        if entry is None:
            continue
        lines.append(f"{number}. {display_name(entry)}")
        aspect = aspects[0].value if aspects else Aspect.OVERVIEW.value
        buttons.append([Button(f"{number}. {display_name(entry)}"[:60], f"a:{entry.id}:{aspect}")])
    lines.append("Nếu không có mục nào đúng, bạn thử hỏi lại bằng cách khác, gõ /thutuc để xem danh sách thủ tục hoặc /lienhe để hỏi cán bộ.")
    return Reply("\n".join(lines), buttons, candidates=tuple(entry_ids), numbered=True)


def dont_know(context: Context, candidates: list[str]) -> Reply:
    settings = context.settings
    contact = f" hoặc gọi {settings.office_name} theo số {settings.office_phone}" if settings.office_phone else " hoặc gõ /lienhe để xem cách liên hệ Bộ phận Một cửa"
    text = (
        "Xin lỗi, tôi chưa tìm thấy thủ tục phù hợp với câu hỏi của bạn. "
        "Bạn thử hỏi ngắn gọn hơn, nêu tên việc cần làm (ví dụ: \"làm thẻ căn cước\", \"đăng ký khai sinh\"), "
        f"gõ /thutuc để xem danh sách thủ tục{contact}."
    )
    return Reply(text, candidates=tuple(candidates))


def aspect_button(incoming: Incoming, context: Context) -> list[Reply]:
    """A tapped aspect or choice button: "a:<entry id>:<aspect>"."""
    parts = (incoming.button or "").split(":", 2)
    entry_id = parts[1] if len(parts) > 1 else ""
    aspect = parts[2] if len(parts) > 2 else Aspect.OVERVIEW.value
    try:
        chosen = (Aspect(aspect),)
    except ValueError:
        chosen = (Aspect.OVERVIEW,)
    return [answer_entry(context, incoming.chat_key, entry_id, chosen)]


def feedback_button(incoming: Incoming, context: Context) -> list[Reply]:
    """👍 / 👎 under an answer."""
    parts = (incoming.button or "").split(":")
    if len(parts) == 3 and parts[2] == "down":
        question = context.states.get(incoming.chat_key).last_question
        if question:
            note_unanswered(context, question, "thumbs_down", parts[1])
        return [Reply("Cảm ơn bạn đã góp ý. Tôi sẽ ghi nhận để cán bộ bổ sung. Bạn có thể hỏi lại bằng cách khác, hoặc gõ /lienhe để hỏi trực tiếp cán bộ.")]
    return [Reply("Cảm ơn bạn! Rất vui vì đã giúp được bạn.")]


def register(router: Router) -> None:
    router.text(answer_text)
    router.button("a", aspect_button)
    router.button("fb", feedback_button)
