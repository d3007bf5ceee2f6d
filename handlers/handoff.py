"""Handing the conversation to an officer, the chat side: asking ("gặp cán bộ", /canbo, the button), the bot
silent while a person handles the chat, /ketthuc, ratings, and officers answering from the Telegram staff group.

Everything lives in the database (knowledge.handoff_store): a hand-off survives a restart and any bot process
sees it. The hooks never let a failure of theirs reach the citizen: the bot then answers as usual.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import ClassVar

from pydantic import Field

from handlers.buttons import ButtonDataError, FeedbackButton, prefix_of
from handlers.core import Context, Router
from handlers.messages import Button, Incoming, Reply
from handlers.state import ChatState, NumberedState
from handoff import actions
from handoff.actions import ASK_LABEL, HandoffButton, RatingButton
from handoff.hours import spoken
from knowledge import handoff_store as store
from knowledge.models import utc_now
from nlp.normalize import fold
from redaction import key_tag

log = logging.getLogger(__name__)

OFFER_OUTCOMES = frozenset({"not_understood", "law", "clarified"})
TURNS_KEPT = 5  # the recent exchange that goes with a hand-off
TURN_CHARS = 500  # of each question and answer
MAX_MESSAGE_CHARS = 2000  # what a citizen's message to the officer is cut to
PASS_THROUGH = frozenset({"ketthuc", "xoadulieu", "canbo"})  # commands that work while an officer handles the chat

# "gặp cán bộ", "cho tôi nói chuyện với người thật", "hỏi cán bộ" (the button's words), folded.
_ASK = re.compile(r"\b(gap|noi chuyen (voi|cung)|chat voi|hoi|lien he (voi)?|ket noi (voi)?|chuyen (cho|sang)|can)\s+"
                  r"(mot\s+)?(can bo|nhan vien|nguoi that|nguoi truc|tong dai vien|tu van vien)\b")
_MAX_ASK_WORDS = 12
_SCORE = re.compile(r"^\s*([1-5])\s*(sao|diem|⭐|\*)?\s*[.!]?\s*$")

IN_HOURS = ("Tôi đã chuyển cuộc trò chuyện cho cán bộ {office}. Cán bộ sẽ trả lời bạn ngay tại đây trong ít phút "
            "(bạn đang ở vị trí số {position} trong hàng chờ).")
OUT_OF_HOURS = ("Tôi đã chuyển cuộc trò chuyện cho cán bộ {office}. Hiện đang ngoài giờ làm việc; cán bộ sẽ trả lời bạn "
                "tại đây từ {when} (bạn đang ở vị trí số {position} trong hàng chờ).")
OUT_OF_HOURS_NO_DATE = ("Tôi đã chuyển cuộc trò chuyện cho cán bộ {office}. Hiện đang ngoài giờ làm việc; cán bộ sẽ trả lời "
                        "bạn tại đây vào giờ làm việc tiếp theo.")
MEANWHILE = ("Trong lúc này, tin nhắn bạn gửi sẽ được chuyển thẳng cho cán bộ (tôi tạm không trả lời). "
             "Gõ /ketthuc để kết thúc và tiếp tục hỏi trợ lý.")
ALREADY_WAITING = "Bạn đang trong hàng chờ gặp cán bộ (vị trí số {position}). Bạn cứ nhắn, cán bộ sẽ đọc được. Gõ /ketthuc để thôi chờ."
ALREADY_ACTIVE = "Cán bộ đang trò chuyện với bạn. Bạn cứ nhắn tại đây; gõ /ketthuc để kết thúc."
IN_GROUP = "Để gặp cán bộ, bạn vui lòng nhắn riêng cho tôi rồi gõ /canbo."
UNAVAILABLE = "Xin lỗi, hiện chưa chuyển được cho cán bộ. Bạn vui lòng thử lại sau ít phút hoặc gõ /lienhe để liên hệ trực tiếp."
NO_HANDOFF = "Bạn đang không trò chuyện với cán bộ nào. Gõ /canbo nếu bạn muốn gặp cán bộ."
ONLY_TEXT = "Cán bộ hiện chỉ nhận được tin nhắn bằng chữ. Bạn vui lòng gõ nội dung cần hỏi nhé."
HINT = "Muốn hỏi trực tiếp cán bộ, bạn gõ: gặp cán bộ"
THANKS_SCORE = ("Cảm ơn bạn đã đánh giá {score}/5! Nếu muốn góp ý thêm (không bắt buộc), bạn bấm \"Góp ý\" hoặc gõ: "
                "góp ý <nội dung>.")
WRITE_COMMENT = "Mời bạn gõ góp ý của mình (một tin nhắn)."
_COMMENT = re.compile(r"^\s*g[oóò]p\s*[yý]\b[\s:,.-]*", re.IGNORECASE)
THANKS_COMMENT = "Cảm ơn góp ý của bạn! Tôi đã chuyển tới {office}."
RATING_DONE = "Bạn đã đánh giá rồi, cảm ơn bạn!"
RATING_GONE = "Lượt đánh giá này đã hết hạn. Cảm ơn bạn!"
COMMENT_LABEL = "✍️ Góp ý"

# The Telegram staff group.
GROUP_NOT_STAFF = "Chỉ cán bộ đã được đăng ký trong hệ thống mới trả lời được người dân qua nhóm này."
GROUP_TAKEN = "Cuộc trò chuyện #{id} đang do cán bộ khác phụ trách; tin nhắn không được gửi."
GROUP_CLOSED = "Cuộc trò chuyện #{id} đã kết thúc; tin nhắn không được gửi."
GROUP_CLAIMED = "✅ #{id}: bạn đã nhận cuộc trò chuyện này; tin nhắn đang được chuyển cho người dân."
GROUP_ENDED = "✔️ Đã kết thúc cuộc trò chuyện #{id}."
GROUP_EMPTY = "Tin nhắn trống hoặc không phải chữ: không gửi được cho người dân."
CHANNEL_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA", "console": "dòng lệnh"}


class HandoffTranscript(ChatState):
    """The chat's recent questions and the bot's answers, for the officer who takes the conversation."""

    feature: ClassVar[str] = "handoff"
    turns: list[list[str]] = Field(default_factory=list)  # [question, answer]

    def forgotten(self) -> list[str]:
        return ["các câu hỏi gần đây của bạn"] if self.turns else []


# --------------------------------------------------------------------------- asking for an officer

def ask_officer(incoming: Incoming, context: Context) -> list[Reply]:
    """Gặp cán bộ: chuyển cuộc trò chuyện cho cán bộ Bộ phận Một cửa."""
    if incoming.group:
        return [Reply(IN_GROUP)]
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    settings, now = context.settings, utc_now()
    hours = actions.office_hours(settings)
    open_now = hours.is_open(now)
    transcript = context.memory.get(incoming.chat_key, HandoffTranscript)
    history = [(kind, said) for question, answer in transcript.turns
               for kind, said in ((store.HISTORY_CITIZEN, question), (store.HISTORY_BOT, answer))]
    try:
        with context.db() as session:
            opened = store.create(session, incoming.channel, incoming.chat_id, history, open_now, now)
            handoff = opened.handoff
            position = store.queue_position(session, handoff)
            if opened.new and settings.handoff_telegram_group_id:
                store.queue(session, "telegram", str(settings.handoff_telegram_group_id),
                            _group_post(handoff, history, open_now, context), handoff_id=handoff.id, target=store.TO_GROUP, now=now)
                session.commit()
    except Exception:  # said plainly to the citizen, never as if it had worked
        log.exception("hand-off not opened for %s", key_tag(incoming.chat_key))
        return [Reply(UNAVAILABLE)]
    if not opened.new:
        return [Reply(ALREADY_ACTIVE if handoff.status == store.ACTIVE else ALREADY_WAITING.format(position=position))]
    office = settings.office_name
    if open_now:
        text = IN_HOURS.format(office=office, position=position)
    else:
        opening = hours.next_opening(now)
        text = (OUT_OF_HOURS.format(office=office, when=spoken(opening, now, hours.zone), position=position) if opening
                else OUT_OF_HOURS_NO_DATE.format(office=office))
    return [Reply(f"{text}\n{MEANWHILE}")]


def _group_post(handoff: store.HandoffRow, history: list[tuple[str, str]], open_now: bool, context: Context) -> str:
    zone = actions.office_hours(context.settings).zone
    lines = [f"🆕 Yêu cầu gặp cán bộ #{handoff.id} · {CHANNEL_NAMES.get(handoff.channel, handoff.channel)} · "
             f"{store.as_utc(handoff.created_at).astimezone(zone):%H:%M %d/%m/%Y}" + ("" if open_now else " (ngoài giờ)")]
    if history:
        lines.append("\nTrao đổi gần đây với trợ lý:")
        for kind, said in history:
            lines.append(("👤 " if kind == store.HISTORY_CITIZEN else "🤖 ") + _short(said, 300))
    else:
        lines.append("\n(Chưa hỏi trợ lý câu nào.)")
    lines.append("\n↩️ Trả lời (reply) tin này để nhắn cho người dân; trả lời /ketthuc để kết thúc.")
    return _short("\n".join(lines), 4000)


def _short(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def is_request(text: str) -> bool:
    """Whether the words ask for a person ("gặp cán bộ", "cho tôi nói chuyện với người thật")."""
    folded = fold(text)
    return len(folded.split()) <= _MAX_ASK_WORDS and _ASK.search(folded) is not None


def claim_request(incoming: Incoming, context: Context) -> list[Reply] | None:
    return ask_officer(incoming, context) if is_request(incoming.text) else None


def ask_button(incoming: Incoming, context: Context) -> list[Reply]:
    HandoffButton.unpack(incoming.button)
    return ask_officer(incoming, context)


def end_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Kết thúc cuộc trò chuyện với cán bộ."""
    if context.db is None or incoming.group:
        return [Reply(NO_HANDOFF)]
    now = utc_now()
    with context.db() as session:
        handoff = store.open_handoff(session, incoming.channel, incoming.chat_id)
        ended = actions.end(session, handoff.id, "citizen", context.settings, now) if handoff is not None else None
    if ended is None:
        return [Reply(NO_HANDOFF)]
    replies = [Reply(actions.CLOSED_BY_CITIZEN)]
    if ended.rating is not None:
        replies.append(Reply(actions.RATE_HANDOFF, actions.rating_buttons(ended.rating.id), numbered=True))
    return replies


# --------------------------------------------------------------------------- ratings

def rating_button(incoming: Incoming, context: Context) -> list[Reply]:
    pressed = RatingButton.unpack(incoming.button)
    if context.db is None:
        return [Reply(RATING_GONE)]
    now = utc_now()
    with context.db() as session:
        request = session.get(store.RatingRequestRow, pressed.request)
        if request is None or (request.channel, request.chat_id) != (incoming.channel, incoming.chat_id):
            return [Reply(RATING_GONE)]
        if pressed.score == 0:
            if request.stage in ("offered", "comment") and store.await_comment(session, request, now):
                session.commit()
                return [Reply(WRITE_COMMENT)]
            return [Reply(RATING_GONE)]
        if request.stage != "score":
            return [Reply(RATING_DONE)]
        if store.as_utc(request.expires_at) <= now:
            return [Reply(RATING_GONE)]
        return _rate(session, request, pressed.score, context)


def _rate(session, request: store.RatingRequestRow, score: int, context: Context) -> list[Reply]:
    now = utc_now()
    rating = store.rate(session, request, score, actions.month_of(now, context.settings), now)
    session.commit()
    if rating is None:
        return [Reply(RATING_DONE)]
    offer = [[Button(COMMENT_LABEL, RatingButton(request.id, 0).pack())]]
    return [Reply(THANKS_SCORE.format(score=score), offer)]


def _rating_answer(incoming: Incoming, context: Context, session) -> list[Reply] | None:
    """A typed score (or the comment after it) for the chat's open request to rate; None: not one."""
    text = incoming.text.strip()
    if incoming.button or incoming.file is not None or not text or text.startswith("/"):
        return None
    request = store.open_request(session, incoming.channel, incoming.chat_id, utc_now())
    if request is None:
        return None
    if request.stage == "score":
        match = _SCORE.match(fold(text))
        if match is None:
            return None
        # A numbered list shown after the prompt (a clarifying question) takes the number instead.
        numbered = context.memory.peek(incoming.chat_key, NumberedState)
        if numbered is not None and numbered.data and not all(prefix_of(d) == RatingButton.prefix for d in numbered.data):
            return None
        return _rate(session, request, int(match.group(1)), context)
    if request.stage == "offered":
        # Only words that say they are a comment: anything else is the citizen's next question.
        prefixed = _COMMENT.match(text)
        if prefixed is None:
            return None
        said = text[prefixed.end():].strip()
        if not said:
            store.await_comment(session, request, utc_now())
            session.commit()
            return [Reply(WRITE_COMMENT)]
        text = said
    if request.stage in ("offered", "comment"):
        store.comment(session, request, text)
        session.commit()
        return [Reply(THANKS_COMMENT.format(office=context.settings.office_name))]
    return None


# --------------------------------------------------------------------------- the hooks

def before(incoming: Incoming, context: Context) -> list[Reply] | None:
    """Silent while an officer handles the chat (the citizen's words go to the officer); the staff group's
    replies to the bot's posts go to the citizen; a typed score answers a request to rate."""
    if context.db is None:
        return None
    try:
        return _before(incoming, context)
    except Exception:  # the bot answers as usual rather than fail the citizen
        log.exception("hand-off check failed for %s", key_tag(incoming.chat_key))
        return None


def _before(incoming: Incoming, context: Context) -> list[Reply] | None:
    group_id = context.settings.handoff_telegram_group_id
    if group_id and incoming.channel == "telegram" and incoming.chat_id == str(group_id):
        return _from_staff_group(incoming, context) if incoming.reply_to else None
    if incoming.group:
        return None
    with context.db() as session:
        handoff = store.open_handoff(session, incoming.channel, incoming.chat_id)
        if handoff is None:
            return _rating_answer(incoming, context, session)
        text = incoming.text.strip()
        if text.startswith("/") and _command(text) in PASS_THROUGH:
            return None
        if incoming.button:
            return None if prefix_of(incoming.button) in (RatingButton.prefix, HandoffButton.prefix) else []
        if incoming.file is not None:
            return [Reply(ONLY_TEXT)]
        if not text:
            return []
        said = _short(text, MAX_MESSAGE_CHARS)
        store.add_message(session, handoff, store.CITIZEN, said)
        if group_id:
            store.queue(session, "telegram", str(group_id), f"💬 #{handoff.id} Người dân: {said}\n↩️ Trả lời tin này để nhắn lại.",
                        handoff_id=handoff.id, target=store.TO_GROUP)
        session.commit()
    return []


def _command(text: str) -> str:
    return text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if len(text) > 1 else ""


def _from_staff_group(incoming: Incoming, context: Context) -> list[Reply] | None:
    """An officer's reply, in the staff group, to the bot's post about a conversation: to that citizen."""
    with context.db() as session:
        handoff = store.handoff_of_post(session, incoming.chat_id, incoming.reply_to)
    if handoff is None:
        return None  # a reply to something else: the group's ordinary message
    role = context.router.role_of(incoming) if context.router is not None else None
    if role is None:
        return [Reply(GROUP_NOT_STAFF)]
    actor = f"{incoming.channel}:{incoming.user_id}"
    text = incoming.text.strip()
    if not text or incoming.file is not None or incoming.button:
        return [Reply(GROUP_EMPTY)]
    now = utc_now()
    with context.db() as session:
        if text.startswith("/") and _command(text) == "ketthuc":
            ended = actions.end(session, handoff.id, actor, context.settings, now, notify=actions.CLOSED_BY_OFFICER)
            return [Reply(GROUP_ENDED.format(id=handoff.id) if ended else GROUP_CLOSED.format(id=handoff.id))]
        first = handoff.claimed_by != actor
        try:
            store.officer_reply(session, handoff.id, actor, _short(text, MAX_MESSAGE_CHARS), now)
        except store.NotYours as error:
            return [Reply((GROUP_CLOSED if str(error) == "closed" else GROUP_TAKEN).format(id=handoff.id))]
    return [Reply(GROUP_CLAIMED.format(id=handoff.id))] if first else []


def after(incoming: Incoming, replies: list[Reply], context: Context) -> list[Reply]:
    """Keep the recent exchange for an officer; offer "Hỏi cán bộ" where the bot could not help well."""
    if incoming.group or not replies:
        return replies
    try:
        answered = [r for r in replies if r.outcome]
        if answered:
            question = incoming.text.strip() if not incoming.button else "(chọn một mục)"
            transcript = context.memory.get(incoming.chat_key, HandoffTranscript)
            transcript.turns = [*transcript.turns, [_short(question, TURN_CHARS), _short(answered[0].text, TURN_CHARS)]][-TURNS_KEPT:]
            context.memory.save(incoming.chat_key, transcript)
        if context.db is None or not (any(r.outcome in OFFER_OUTCOMES for r in replies) or _thumbs_down(incoming)):
            return replies
        last = replies[-1]
        if incoming.buttonless:
            offered = replace(last, text=f"{last.text}\n\n{HINT}")
        else:
            offered = replace(last, buttons=[*last.buttons, [Button(ASK_LABEL, HandoffButton().pack())]])
        return [*replies[:-1], offered]
    except Exception:  # the citizen's answer goes out whatever happens here
        log.exception("hand-off after-hook failed for %s", key_tag(incoming.chat_key))
        return replies


def _thumbs_down(incoming: Incoming) -> bool:
    if not incoming.button or prefix_of(incoming.button) != FeedbackButton.prefix:
        return False
    try:
        return FeedbackButton.unpack(incoming.button).vote == "down"
    except ButtonDataError:
        return False


def register(router: Router) -> None:
    actions.office_hours(router.context.settings)  # a HANDOFF_HOURS that does not read stops the bot at start, said plainly
    router.state(HandoffTranscript)
    router.before(before)
    router.after(after)
    router.command("canbo", ask_officer)
    router.command("ketthuc", end_command)
    router.button(HandoffButton, ask_button)
    router.button(RatingButton, rating_button)
    router.text_claim(claim_request)
    router.forget("các cuộc trò chuyện với cán bộ và đánh giá của bạn", store.forget)
