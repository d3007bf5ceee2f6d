"""Citizens follow their dossiers: /theodoi, /hoso, /huytheodoi, /tatnhac, /batnhac, and asking in words.

Statuses come from the office's one-stop software (reminders/); here a chat starts and stops following,
and hears where its dossier stands. Reminders themselves go out from the background job.

A dossier code is printed on a receipt and easy to guess, so a chat that types one learns only that the
dossier exists until it gives the last 4 digits of the phone or ID number the filer gave at the office
(reminders.access): in the same message ("/theodoi <mã> 1234"), or as the next message. Lookups are
limited per chat and overall, wrong digits lock the chat out for a while, and in a group chat nothing
about dossiers is shown at all: follows are per person.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from handlers.core import Context, Router, command_argument
from handlers.messages import Incoming, Reply
from handlers.state import ChatState
from nlp.normalize import fold
from redaction import chat_tag
from reminders.access import Level, Limits, chat_hash, level, locked_until, matches, take_lookup, wrong_digits
from reminders.codes import EXAMPLE, LOOSE, find_code, normalize_code
from reminders.decide import describe_status, show_date, status_only_message
from reminders.scan import begin_write
from reminders.statuses import label
from reminders.store import (
    MAX_FOLLOWS_PER_CHAT,
    TooManyFollows,
    facts,
    find_follow,
    follow,
    follows_of,
    forget_chat,
    get_dossier,
    has_second_factor,
    is_verified,
    reachable_again,
    set_muted,
    unfollow,
    verified_codes,
    verify,
)

CONSENT = ("Tôi lưu mã hồ sơ này cùng mã cuộc trò chuyện (không lưu 4 số bạn gửi) để nhắn bạn khi hồ sơ đổi trạng thái, "
           "sắp đến hoặc đã quá ngày hẹn (không nhắn từ {quiet_start} đến {quiet_end}). Tắt nhắc: /tatnhac {code}; "
           "ngừng theo dõi: /huytheodoi {code}; xóa mọi dữ liệu: /xoadulieu.")
MALFORMED = ("Mã hồ sơ \"{typed}\" không đúng dạng. Mã in trên giấy tiếp nhận hồ sơ và hẹn trả kết quả, "
             f"ví dụ {EXAMPLE}.")
UNKNOWN = ("Chưa tìm thấy hồ sơ {code} trong dữ liệu của {office}. Bạn vui lòng kiểm tra lại mã trên giấy tiếp nhận; "
           "hồ sơ mới nộp có thể cần một hai ngày làm việc mới được cập nhật. Cần hỗ trợ: /lienhe.")
UNAVAILABLE = "Xin lỗi, tính năng theo dõi hồ sơ chưa được bật ở đây. Bạn vui lòng gõ /lienhe để hỏi cán bộ."
GROUP = ("Để giữ kín thông tin hồ sơ, việc tra cứu và theo dõi hồ sơ chỉ làm trong tin nhắn riêng, không làm trong nhóm. "
         "Bạn vui lòng nhắn riêng cho tôi nhé.")
ASK_DIGITS = ("Hồ sơ {code} có trong dữ liệu của {office}. Để bảo vệ thông tin của người nộp, bạn vui lòng gửi 4 số cuối "
              "của số điện thoại hoặc số CCCD đã khai khi nộp hồ sơ (ví dụ: 1234).")
ASK_DIGITS_FOLLOW = " Hoặc gõ một lần: /theodoi {code} 1234."
WRONG = ("4 số bạn gửi chưa khớp với thông tin đã khai khi nộp hồ sơ {code}. Bạn xem lại số điện thoại hoặc số CCCD "
         "đã khai rồi gửi lại 4 số cuối nhé (còn {left} lần thử).")
LOCKED = ("Bạn đã gửi sai 4 số xác nhận nhiều lần. Để bảo vệ hồ sơ của người dân, tôi tạm dừng tra cứu hồ sơ trong "
          "cuộc trò chuyện này đến {until}. Cần hỗ trợ ngay: /lienhe.")
BUSY_CHAT = "Bạn đã tra cứu hồ sơ nhiều lần trong thời gian ngắn. Bạn vui lòng đợi ít phút rồi thử lại nhé."
BUSY_ALL = ("Hệ thống tra cứu hồ sơ đang có nhiều người dùng. Bạn vui lòng thử lại sau ít phút, hoặc gõ /lienhe để hỏi "
            "cán bộ.")
NO_DIGITS = ("Hồ sơ {code} có trong dữ liệu của {office} nhưng chưa có thông tin để xác nhận người nộp, nên tôi chưa thể "
             "cho xem chi tiết hay theo dõi qua tin nhắn. Bạn vui lòng liên hệ {office} (gõ /lienhe) để được tra cứu.")
CODE_FIRST = f"Bạn gửi giúp tôi mã hồ sơ kèm 4 số cuối số điện thoại hoặc CCCD đã khai khi nộp, ví dụ: /theodoi {EXAMPLE} 1234."
# "hồ sơ (của tôi) tới đâu rồi" without a code: folded phrases that ask where one's own dossier stands.
# The asking phrase must end the message, so a question about procedures that mentions "hồ sơ" goes on to them.
_WHERE = re.compile(r"\bho so\b.{0,60}\b(toi dau|den dau|the nao roi|sao roi|xong chua|co ket qua chua|xu ly chua|duyet chua)"
                    r"(\s+(roi|vay|a|nhi|ha|nhe|the|chua|chi|anh))*\s*[?.!…]*\s*$")
# The 4 digits as people type them: "1234", "1 2 3 4", or the whole phone/ID number ("0901 234 567"), whose last 4
# count. Not part of a date or time ("20/11/2026", "8:30"), nor a year after "năm".
_DIGIT_RUN = re.compile(r"(?<![\w/:.,-])\+?\d[\d .]*\d(?![\w/:,-]|\.\d)")
_NOT_AFTER = re.compile(r"\b(nam|ngay|thang|luc|gio)\s*$")
_ONLY_DIGITS = re.compile(r"^\s*\d[\d .]{2,}\d\s*[.!]?\s*$")
# A question that happens to hold 4 digits ("lệ phí năm 2024 bao nhiêu?") is not an answer to "send the 4 digits".
_QUESTION = re.compile(r"\?|\b(bao nhieu|gi|the nao|o dau|khi nao|lam sao|sao|nao|khong)\b")
PENDING_FOR = timedelta(minutes=15)  # a code waiting for its 4 digits; later, the citizen sends the code again


class Pending(ChatState):
    """A dossier code waiting for its 4 digits (for PENDING_FOR), in this chat's memory."""

    feature: ClassVar[str] = "track_pending"
    code: str
    follow: bool  # the code came with /theodoi: the right digits start the follow
    since: datetime

    def forgotten(self) -> list[str]:
        return ["mã hồ sơ đang chờ xác nhận"]


def _now() -> datetime:
    """The clock (tests replace it: lockouts last minutes, and tests never sleep)."""
    return datetime.now(UTC)


def find_digits(text: str) -> str | None:
    """The last 4 digits a citizen typed (4 digits, or a 9-12 digit phone or ID number), or None."""
    for match in _DIGIT_RUN.finditer(text or ""):
        parts = [match.group()] + re.split(r"[ .]+", match.group())
        for part in parts:
            digits = re.sub(r"\D", "", part)
            if len(digits) == 4 and _NOT_AFTER.search(fold(text[:match.start()])):
                continue
            if len(digits) == 4 or 9 <= len(digits) <= 12:
                return digits[-4:]
    return None


def _without_code(text: str) -> str:
    return LOOSE.sub(" ", text or "")


def _pending(context: Context, incoming: Incoming) -> Pending | None:
    waiting = context.memory.peek(incoming.chat_key, Pending)
    if waiting is None or _now() - waiting.since > PENDING_FOR:
        return None
    return waiting


def _set_pending(context: Context, incoming: Incoming, waiting: Pending | None) -> None:
    if waiting is None:
        context.memory.clear(incoming.chat_key, Pending)
    else:
        context.memory.save(incoming.chat_key, waiting)


def _code_argument(incoming: Incoming, usage: str) -> tuple[str | None, list[Reply] | None]:
    typed = command_argument(incoming)
    if not typed:
        return None, [Reply(usage)]
    match = LOOSE.search(typed)
    code = normalize_code(match.group(0) if match else typed)
    if code is None:
        return None, [Reply(MALFORMED.format(typed=(match.group(0) if match else typed)[:60]))]
    return code, None


def _until(moment: datetime, context: Context) -> str:
    zone = ZoneInfo(context.settings.timezone)
    at = moment.astimezone(zone)
    today = _now().astimezone(zone).date()
    return f"{at:%H:%M}" if at.date() == today else f"{at:%H:%M} ngày {at:%d/%m/%Y}"


def _details(dossier, access: Level, context: Context) -> str:
    """What this chat may read about the dossier."""
    if access is Level.FULL:
        return describe_status(facts(dossier), context.settings, _now())
    return status_only_message(facts(dossier), context.settings)


def _consent(code: str, context: Context) -> str:
    return CONSENT.format(code=code, quiet_start=context.settings.quiet_hours_start, quiet_end=context.settings.quiet_hours_end)


def _answer(incoming: Incoming, context: Context, code: str, digits: str | None, wants_follow: bool) -> list[Reply]:
    """A chat asks about (or to follow) a dossier by its code, with or without the 4 digits: the one path
    that every lookup takes, so the limits, the lockout and the second factor hold for all of them."""
    # The code awaiting digits is remembered after the lookup's transaction: on SQLite a second writer
    # inside it would wait for the lock this transaction holds.
    pending: list[Pending | None] = []
    replies = _look_up(incoming, context, code, digits, wants_follow, pending)
    if pending:
        _set_pending(context, incoming, pending[-1])
    return replies


def _look_up(incoming: Incoming, context: Context, code: str, digits: str | None, wants_follow: bool,
             pending: list[Pending | None]) -> list[Reply]:
    settings = context.settings
    office = settings.office_name
    limits = Limits.from_settings(settings)
    now = _now()
    chat = chat_hash(incoming.channel, incoming.chat_id)
    with context.db() as session:
        begin_write(session)  # every lookup is counted: a write
        until = locked_until(session, chat, now, limits)
        if until is not None:
            return [Reply(LOCKED.format(until=_until(until, context)))]
        over = take_lookup(session, chat, now, limits)
        if over is not None:
            session.commit()
            return [Reply(BUSY_CHAT if over == "chat" else BUSY_ALL)]
        dossier = get_dossier(session, code)
        if dossier is None:
            session.commit()
            pending.append(None)
            return [Reply(UNKNOWN.format(code=code, office=office))]
        verified = is_verified(session, incoming.channel, incoming.chat_id, code)
        just_verified = False
        if not verified and has_second_factor(dossier):
            if digits is None:
                session.commit()
                pending.append(Pending(code=code, follow=wants_follow, since=now))
                ask = ASK_DIGITS.format(code=code, office=office)
                return [Reply(ask + (ASK_DIGITS_FOLLOW.format(code=code) if wants_follow else ""))]
            if not matches(dossier, digits):
                left, locked = wrong_digits(session, chat, code, now, limits, chat_tag(incoming.channel, incoming.chat_id))
                session.commit()
                if locked is not None:
                    pending.append(None)
                    return [Reply(LOCKED.format(until=_until(locked, context)))]
                pending.append(Pending(code=code, follow=wants_follow, since=now))
                return [Reply(WRONG.format(code=code, left=left))]
            verify(session, incoming.channel, incoming.chat_id, code, now)
            verified = just_verified = True
        pending.append(None)
        access = level(verified, has_second_factor(dossier), settings)
        if access is Level.NONE:
            session.commit()
            return [Reply(NO_DIGITS.format(code=code, office=office))]
        thanks = "Cảm ơn bạn đã xác nhận.\n\n" if just_verified else ""
        text = _details(dossier, access, context)
        if not wants_follow:
            following = find_follow(session, incoming.channel, incoming.chat_id, code) is not None
            session.commit()
            hint = "" if following else f"\n\nGõ /theodoi {code} để tôi nhắn bạn khi hồ sơ có thay đổi."
            return [Reply(thanks + text + hint)]
        try:
            row, created = follow(session, incoming.channel, incoming.chat_id, code, now=now)
        except TooManyFollows:
            session.commit()  # the lookup and a verification still count
            return [Reply(f"Bạn đang theo dõi {MAX_FOLLOWS_PER_CHAT} hồ sơ, là mức tối đa. Gõ /hoso để xem và "
                          "/huytheodoi <mã> để bỏ bớt.")]
        muted = row.muted
        session.commit()
    if not created:
        extra = " Nhắc đang tắt; bật lại: /batnhac " + code + "." if muted else ""
        return [Reply(f"{thanks}Bạn đã theo dõi hồ sơ này rồi.{extra}\n\n{text}")]
    return [Reply(f"{thanks}Đã theo dõi hồ sơ {code}.\n\n{text}\n\n{_consent(code, context)}")]


def follow_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Theo dõi hồ sơ đã nộp: /theodoi <mã hồ sơ> <4 số cuối SĐT hoặc CCCD>"""
    if incoming.group:
        return [Reply(GROUP)]
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    code, error = _code_argument(incoming, f"Cách dùng: /theodoi <mã hồ sơ> <4 số cuối số điện thoại hoặc CCCD đã khai khi "
                                           f"nộp>, ví dụ /theodoi {EXAMPLE} 1234.")
    if error:
        return error
    digits = find_digits(_without_code(command_argument(incoming)))
    return _answer(incoming, context, code, digits, wants_follow=True)


def _row_text(number: int, row, dossier, access: Level, zone: ZoneInfo) -> str:
    flag = " 🔕 đã tắt nhắc" if row.muted else ""
    if access is Level.FULL:
        appointment = show_date(dossier.new_due_at or dossier.due_at, zone)
        return f"{number}. {dossier.code} – {dossier.procedure}\n   {label(dossier.status)}; hẹn trả: {appointment}{flag}"
    if access is Level.STATUS:
        return f"{number}. {dossier.code}\n   {label(dossier.status)}{flag}"
    how = (f"gửi /theodoi {dossier.code} <4 số> để xác nhận" if has_second_factor(dossier)
           else "chưa xác nhận được người nộp, xin liên hệ /lienhe")
    return f"{number}. {dossier.code}\n   chưa xem được chi tiết: {how}{flag}"


def list_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Xem các hồ sơ bạn đang theo dõi."""
    if incoming.group:
        return [Reply(GROUP)]
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    with context.db() as session:
        rows = follows_of(session, incoming.channel, incoming.chat_id)
        verified = verified_codes(session, incoming.channel, incoming.chat_id)
    if not rows:
        return [Reply(f"Bạn chưa theo dõi hồ sơ nào. Gõ /theodoi <mã hồ sơ> <4 số cuối SĐT hoặc CCCD> (vd /theodoi {EXAMPLE} 1234) "
                      "để nhận tin khi hồ sơ có thay đổi.")]
    zone = ZoneInfo(context.settings.timezone)
    lines = ["Hồ sơ bạn đang theo dõi:"]
    for number, (row, dossier) in enumerate(rows, 1):
        access = level(dossier.code in verified, has_second_factor(dossier), context.settings)
        lines.append(_row_text(number, row, dossier, access, zone))
    lines.append("\nTắt nhắc: /tatnhac <mã> · bật lại: /batnhac <mã> · ngừng theo dõi: /huytheodoi <mã>")
    return [Reply("\n".join(lines))]


def unfollow_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Ngừng theo dõi một hồ sơ: /huytheodoi <mã hồ sơ>"""
    if incoming.group:
        return [Reply(GROUP)]
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    code, error = _code_argument(incoming, "Cách dùng: /huytheodoi <mã hồ sơ>. Gõ /hoso để xem các mã bạn đang theo dõi.")
    if error:
        return error
    with context.db() as session:
        done = unfollow(session, incoming.channel, incoming.chat_id, code)
        session.commit()
    if not done:
        return [Reply(f"Bạn không theo dõi hồ sơ {code}. Gõ /hoso để xem các hồ sơ bạn đang theo dõi.")]
    return [Reply(f"Đã ngừng theo dõi hồ sơ {code}; tôi sẽ không nhắn về hồ sơ này nữa.")]


def _mute(incoming: Incoming, context: Context, muted: bool) -> list[Reply]:
    if incoming.group:
        return [Reply(GROUP)]
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    name = "tatnhac" if muted else "batnhac"
    code, error = _code_argument(incoming, f"Cách dùng: /{name} <mã hồ sơ>. Gõ /hoso để xem các mã bạn đang theo dõi.")
    if error:
        return error
    with context.db() as session:
        reachable_again(session, incoming.channel, incoming.chat_id)
        done = set_muted(session, incoming.channel, incoming.chat_id, code, muted)
        session.commit()
    if not done:
        return [Reply(f"Bạn chưa theo dõi hồ sơ {code}. Theo dõi: /theodoi {code} <4 số cuối SĐT hoặc CCCD>.")]
    if muted:
        return [Reply(f"Đã tắt nhắc hồ sơ {code}. Bạn vẫn xem được trạng thái bằng /hoso; bật lại: /batnhac {code}.")]
    return [Reply(f"Đã bật lại nhắc cho hồ sơ {code}.")]


def mute_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Tắt tin nhắc của một hồ sơ: /tatnhac <mã hồ sơ>"""
    return _mute(incoming, context, True)


def unmute_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Bật lại tin nhắc của một hồ sơ: /batnhac <mã hồ sơ>"""
    return _mute(incoming, context, False)


def _own_dossiers(incoming: Incoming, context: Context) -> list[Reply]:
    """"hồ sơ của tôi tới đâu rồi": the chat's follows, each as far as the chat may see it."""
    with context.db() as session:
        rows = follows_of(session, incoming.channel, incoming.chat_id)
        verified = verified_codes(session, incoming.channel, incoming.chat_id)
    if not rows:
        return [Reply(f"Bạn gửi giúp tôi mã hồ sơ (in trên giấy tiếp nhận, vd {EXAMPLE}) để tôi tra trạng thái nhé.")]
    parts = []
    for _, dossier in rows:
        access = level(dossier.code in verified, has_second_factor(dossier), context.settings)
        if access is Level.NONE:
            parts.append(f"Hồ sơ {dossier.code}: bạn gửi /theodoi {dossier.code} <4 số cuối SĐT hoặc CCCD> để xem."
                         if has_second_factor(dossier) else NO_DIGITS.format(code=dossier.code, office=context.settings.office_name))
        else:
            parts.append(_details(dossier, access, context))
    return [Reply("\n\n".join(parts))]


def dossier_in_text(incoming: Incoming, context: Context) -> list[Reply] | None:
    """The answer when a message asks about a dossier (by its code, or "hồ sơ của tôi tới đâu rồi"), or
    answers with the 4 digits the bot asked for; else None."""
    if context.db is None:
        return None
    code, typed = find_code(incoming.text)
    if incoming.group:
        # Members of a group read every reply: not even whether a dossier exists is said there.
        return [Reply(GROUP)] if code or typed or _WHERE.search(fold(incoming.text)) else None
    if typed:
        return [Reply(MALFORMED.format(typed=typed[:60]))]
    if code is not None:
        return _answer(incoming, context, code, find_digits(_without_code(incoming.text)), wants_follow=False)
    waiting = _pending(context, incoming)
    short = len(incoming.text) <= 80 and not _QUESTION.search(fold(incoming.text))
    digits = find_digits(incoming.text) if short else None
    if waiting is not None and digits is not None:
        return _answer(incoming, context, waiting.code, digits, waiting.follow)
    if _ONLY_DIGITS.match(incoming.text) and digits is not None:
        return [Reply(CODE_FIRST)]  # digits with no code waiting for them (sent long after, or first)
    if _WHERE.search(fold(incoming.text)):
        return _own_dossiers(incoming, context)
    return None


def register(router: Router) -> None:
    router.state(Pending)
    router.command("theodoi", follow_command)
    router.command("hoso", list_command)
    router.command("huytheodoi", unfollow_command)
    router.command("tatnhac", mute_command)
    router.command("batnhac", unmute_command)
    router.text_claim(dossier_in_text)
    router.forget("các hồ sơ bạn theo dõi hoặc đã xác nhận", forget_chat)
