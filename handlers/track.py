"""Citizens follow their dossiers: /theodoi, /hoso, /huytheodoi, /tatnhac, /batnhac, and asking in words.

Statuses come from the office's one-stop software (reminders/); here a chat starts and stops following,
and hears where its dossier stands. Reminders themselves go out from the background job.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from handlers.core import Context, Router, command_argument
from handlers.messages import Incoming, Reply
from nlp.normalize import fold
from reminders.codes import EXAMPLE, find_code, normalize_code
from reminders.decide import describe_status, show_date
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
    reachable_again,
    set_muted,
    unfollow,
)


CONSENT = ("Tôi lưu mã hồ sơ này cùng mã cuộc trò chuyện để nhắn bạn khi hồ sơ đổi trạng thái, sắp đến hoặc đã quá "
           "ngày hẹn (không nhắn từ {quiet_start} đến {quiet_end}). Tắt nhắc: /tatnhac {code}; ngừng theo dõi: /huytheodoi {code}; "
           "xóa mọi dữ liệu: /xoadulieu.")
MALFORMED = ("Mã hồ sơ \"{typed}\" không đúng dạng. Mã in trên giấy tiếp nhận hồ sơ và hẹn trả kết quả, "
             f"ví dụ {EXAMPLE}.")
UNKNOWN = ("Chưa tìm thấy hồ sơ {code} trong dữ liệu của {office}. Bạn vui lòng kiểm tra lại mã trên giấy tiếp nhận; "
           "hồ sơ mới nộp có thể cần một hai ngày làm việc mới được cập nhật. Cần hỗ trợ: /lienhe.")
UNAVAILABLE = "Xin lỗi, tính năng theo dõi hồ sơ chưa được bật ở đây. Bạn vui lòng gõ /lienhe để hỏi cán bộ."
# "hồ sơ (của tôi) tới đâu rồi" without a code: folded phrases that ask where one's own dossier stands.
# The asking phrase must end the message, so a question about procedures that mentions "hồ sơ" goes on to them.
_WHERE = re.compile(r"\bho so\b.{0,60}\b(toi dau|den dau|the nao roi|sao roi|xong chua|co ket qua chua|xu ly chua|duyet chua)"
                    r"(\s+(roi|vay|a|nhi|ha|nhe|the|chua|chi|anh))*\s*[?.!…]*\s*$")


def _code_argument(incoming: Incoming, usage: str) -> tuple[str | None, list[Reply] | None]:
    typed = command_argument(incoming)
    if not typed:
        return None, [Reply(usage)]
    code = normalize_code(typed)
    if code is None:
        return None, [Reply(MALFORMED.format(typed=typed[:60]))]
    return code, None


def _now() -> datetime:
    return datetime.now(UTC)


def follow_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Theo dõi hồ sơ đã nộp: /theodoi <mã hồ sơ>"""
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    code, error = _code_argument(incoming, f"Cách dùng: /theodoi <mã hồ sơ>, ví dụ /theodoi {EXAMPLE}.")
    if error:
        return error
    with context.db() as session:
        dossier = get_dossier(session, code)
        if dossier is None:
            return [Reply(UNKNOWN.format(code=code, office=context.settings.office_name))]
        try:
            row, created = follow(session, incoming.channel, incoming.chat_id, code)
        except TooManyFollows:
            return [Reply(f"Bạn đang theo dõi {MAX_FOLLOWS_PER_CHAT} hồ sơ, là mức tối đa. Gõ /hoso để xem và "
                          "/huytheodoi <mã> để bỏ bớt.")]
        muted = row.muted
        session.commit()
        status = describe_status(facts(dossier), context.settings, _now())
    if not created:
        extra = " Nhắc đang tắt; bật lại: /batnhac " + code + "." if muted else ""
        return [Reply(f"Bạn đã theo dõi hồ sơ này rồi.{extra}\n\n{status}")]
    return [Reply(f"Đã theo dõi hồ sơ {code}.\n\n{status}\n\n{CONSENT.format(code=code, quiet_start=context.settings.quiet_hours_start, quiet_end=context.settings.quiet_hours_end)}")]


def list_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Xem các hồ sơ bạn đang theo dõi."""
    if context.db is None:
        return [Reply(UNAVAILABLE)]
    with context.db() as session:
        rows = follows_of(session, incoming.channel, incoming.chat_id)
    if not rows:
        return [Reply(f"Bạn chưa theo dõi hồ sơ nào. Gõ /theodoi <mã hồ sơ> (vd /theodoi {EXAMPLE}) để nhận tin khi hồ sơ có thay đổi.")]
    zone = ZoneInfo(context.settings.timezone)
    lines = ["Hồ sơ bạn đang theo dõi:"]
    for number, (row, dossier) in enumerate(rows, 1):
        appointment = show_date(dossier.new_due_at or dossier.due_at, zone)
        flag = " 🔕 đã tắt nhắc" if row.muted else ""
        lines.append(f"{number}. {dossier.code} – {dossier.procedure}\n   {label(dossier.status)}; hẹn trả: {appointment}{flag}")
    lines.append("\nTắt nhắc: /tatnhac <mã> · bật lại: /batnhac <mã> · ngừng theo dõi: /huytheodoi <mã>")
    return [Reply("\n".join(lines))]


def unfollow_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Ngừng theo dõi một hồ sơ: /huytheodoi <mã hồ sơ>"""
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
        return [Reply(f"Bạn chưa theo dõi hồ sơ {code}. Theo dõi: /theodoi {code}.")]
    if muted:
        return [Reply(f"Đã tắt nhắc hồ sơ {code}. Bạn vẫn xem được trạng thái bằng /hoso; bật lại: /batnhac {code}.")]
    return [Reply(f"Đã bật lại nhắc cho hồ sơ {code}.")]


def mute_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Tắt tin nhắc của một hồ sơ: /tatnhac <mã hồ sơ>"""
    return _mute(incoming, context, True)


def unmute_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Bật lại tin nhắc của một hồ sơ: /batnhac <mã hồ sơ>"""
    return _mute(incoming, context, False)


def dossier_in_text(incoming: Incoming, context: Context) -> list[Reply] | None:
    """The answer when a message asks about a dossier (by its code, or "hồ sơ của tôi tới đâu rồi"); else None."""
    if context.db is None:
        return None
    code, typed = find_code(incoming.text)
    if typed:
        return [Reply(MALFORMED.format(typed=typed[:60]))]
    with context.db() as session:
        if code is None:
            if not _WHERE.search(fold(incoming.text)):
                return None
            rows = follows_of(session, incoming.channel, incoming.chat_id)
            if not rows:
                return [Reply(f"Bạn gửi giúp tôi mã hồ sơ (in trên giấy tiếp nhận, vd {EXAMPLE}) để tôi tra trạng thái nhé.")]
            now = _now()
            return [Reply("\n\n".join(describe_status(facts(d), context.settings, now) for _, d in rows))]
        dossier = get_dossier(session, code)
        if dossier is None:
            return [Reply(UNKNOWN.format(code=code, office=context.settings.office_name))]
        following = find_follow(session, incoming.channel, incoming.chat_id, code) is not None
        text = describe_status(facts(dossier), context.settings, _now())
    if not following:
        text += f"\n\nGõ /theodoi {code} để tôi nhắn bạn khi hồ sơ có thay đổi."
    return [Reply(text)]


def register(router: Router) -> None:
    router.command("theodoi", follow_command)
    router.command("hoso", list_command)
    router.command("huytheodoi", unfollow_command)
    router.command("tatnhac", mute_command)
    router.command("batnhac", unmute_command)
    router.text_claim(dossier_in_text)
    router.forget("các hồ sơ bạn theo dõi", forget_chat)
