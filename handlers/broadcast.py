"""Staff with the broadcaster role compose announcements in chat: text, audience, time, preview, confirm.

    /thongbao <nội dung>     (a last line "Nhãn | https://..." or a bare https:// address adds a link button)
    → choose who gets it → now, tomorrow 8:00 or /hengio <giờ> → preview with the number of recipients → Gửi
    /baocao [số]             report of one announcement, or the latest ones
    /huythongbao <số>        cancel a scheduled one, or stop one being sent

The router refuses these commands and buttons (and logs it) for anyone without the role.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from broadcasts import compose
from broadcasts.audience import office_areas
from broadcasts.models import BroadcastRow, State, utcnow
from handlers.core import Context, Router, command_argument
from handlers.messages import Button, Incoming, Reply
from knowledge.groups import group_label, ordered_groups
from knowledge.models import local_time
from knowledge.staff import CAN_BROADCAST
from redaction import chat_tag

log = logging.getLogger(__name__)

_LINK_LINE = re.compile(r"^(?:(?P<label>[^|\n]{1,64}?)\s*\|\s*)?(?P<url>https?://\S+)\s*$")
NO_DRAFT = "Không có thông báo nào đang soạn. Gõ /thongbao <nội dung> để bắt đầu."


def _actor(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.user_id}"


def _draft(context: Context, incoming: Incoming) -> compose.Draft | None:
    return getattr(context.states.get(incoming.chat_key), "broadcast_draft", None)


def _keep(context: Context, incoming: Incoming, draft: compose.Draft | None) -> None:
    # The chat's state is forgotten with everything else on /xoadulieu, and bounded like it.
    context.states.get(incoming.chat_key).broadcast_draft = draft


def split_link(text: str) -> tuple[str, str | None, str | None]:
    """A last line "Nhãn | https://..." (or a bare address) becomes the link button."""
    lines = text.strip().split("\n")
    found = _LINK_LINE.match(lines[-1].strip()) if len(lines) > 1 else None
    if not found:
        return text.strip(), None, None
    label = (found.group("label") or "Xem chi tiết").strip()
    return "\n".join(lines[:-1]).strip(), label, found.group("url")


def start(incoming: Incoming, context: Context) -> list[Reply]:
    """Soạn thông báo gửi người đăng ký: /thongbao <nội dung>"""
    raw = incoming.text.strip().split(maxsplit=1)
    body = raw[1] if len(raw) > 1 else ""
    if not body.strip():
        return [Reply("Cách dùng: /thongbao <nội dung thông báo>. Dòng cuối dạng \"Xem chi tiết | https://...\" "
                      "sẽ thành nút liên kết.")]
    text, label, url = split_link(body)
    draft = compose.Draft(text=text, link_label=label, link_url=url)
    try:
        compose.check_text(draft)
    except compose.ComposeError as error:
        return [Reply(str(error))]
    _keep(context, incoming, draft)
    return [_audience_menu(context)]


def _audience_menu(context: Context) -> Reply:
    buttons = [[Button("👥 Tất cả người đăng ký", "bc:aud:all")]]
    if office_areas(context.settings):
        buttons.append([Button("📍 Theo xã/phường…", "bc:areas")])
    buttons.append([Button("🗂 Theo chủ đề…", "bc:topics")])
    buttons.append([Button("❌ Hủy", "bc:no")])
    return Reply("Gửi cho ai?", buttons)


def _time_menu() -> Reply:
    return Reply("Gửi lúc nào? Hoặc gõ /hengio <giờ>, ví dụ /hengio 27/11 08:00.",
                 [[Button("Gửi ngay", "bc:at:now")], [Button("8:00 sáng mai", "bc:at:tomorrow")], [Button("❌ Hủy", "bc:no")]])


def button(incoming: Incoming, context: Context) -> list[Reply]:
    """Every button of composing: audience, time, confirm, cancel."""
    parts = (incoming.button or "").split(":", 2)
    action = parts[1] if len(parts) > 1 else ""
    value = parts[2] if len(parts) > 2 else ""
    draft = _draft(context, incoming)
    if action == "no":
        _keep(context, incoming, None)
        return [Reply("Đã hủy, không gửi thông báo nào.")]
    if draft is None:
        return [Reply(NO_DRAFT)]
    if action == "areas":
        areas = office_areas(context.settings)
        return [Reply("Chọn xã/phường:", [[Button(name[:60], f"bc:aud:area:{key}")] for key, name in areas.items()
                                         if len(f"bc:aud:area:{key}".encode()) <= 64])]
    if action == "topics":
        groups = ordered_groups(context.catalog.groups())
        return [Reply("Chọn chủ đề:", [[Button(group_label(slug)[:60], f"bc:aud:topic:{slug}")] for slug in groups
                                       if len(f"bc:aud:topic:{slug}".encode()) <= 64])]
    if action == "aud":
        draft.audience = value or "all"
        return [_time_menu()]
    if action == "at":
        if value == "tomorrow":
            zone = ZoneInfo(context.settings.timezone)
            tomorrow = utcnow().astimezone(zone).date() + timedelta(days=1)
            draft.at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 8, 0, tzinfo=zone).astimezone(ZoneInfo("UTC"))
        else:
            draft.at = None
        return [_preview(context, draft)]
    if action == "ok":
        return [_confirm(incoming, context, draft)]
    return [Reply("Nút này đã cũ. Gõ /thongbao để soạn lại.")]


def at_time(incoming: Incoming, context: Context) -> list[Reply]:
    """Hẹn giờ gửi thông báo đang soạn: /hengio 27/11 08:00"""
    draft = _draft(context, incoming)
    if draft is None:
        return [Reply(NO_DRAFT)]
    try:
        draft.at = compose.parse_time(command_argument(incoming), context.settings)
    except compose.ComposeError as error:
        return [Reply(str(error))]
    return [_preview(context, draft)]


def _preview(context: Context, draft: compose.Draft) -> Reply:
    try:
        with context.db() as session:
            preview = compose.check(session, draft, context.settings)
    except compose.ComposeError as error:
        return Reply(f"{error}\nSửa lại rồi chọn tiếp, hoặc bấm Hủy.", [[Button("❌ Hủy", "bc:no")]])
    when = f"lúc {local_time(preview.at, context.settings.timezone):%H:%M %d/%m/%Y}" if preview.at else "ngay"
    link = f"\n[Nút: {draft.link_label} → {draft.link_url}]" if draft.link_url else ""
    return Reply(f"Xem trước – gửi {when} tới {preview.count} người ({preview.description}):\n\n{draft.text}{link}\n\n"
                 "Bấm Gửi để xác nhận.", [[Button("✅ Gửi", "bc:ok"), Button("❌ Hủy", "bc:no")]])


def _confirm(incoming: Incoming, context: Context, draft: compose.Draft) -> Reply:
    try:
        with context.db.begin() as session:
            row = compose.create(session, draft, context.settings, _actor(incoming))
            broadcast_id, state, recipients = row.id, row.state, row.recipients
    except compose.ComposeError as error:
        return Reply(f"Chưa gửi: {error}")
    _keep(context, incoming, None)
    # Who created it is kept with the announcement; the log names the staff member by a tag only.
    log.warning("announcement %s created by %s for %s", broadcast_id, chat_tag(incoming.channel, incoming.user_id), draft.audience)
    if state == State.SCHEDULED.value:
        return Reply(f"Đã lên lịch thông báo #{broadcast_id}. Hủy: /huythongbao {broadcast_id}; báo cáo: /baocao {broadcast_id}.")
    return Reply(f"Đang gửi thông báo #{broadcast_id} tới {recipients} người. Xem tiến độ: /baocao {broadcast_id}; "
                 f"dừng: /huythongbao {broadcast_id}.")


def report(incoming: Incoming, context: Context) -> list[Reply]:
    """Báo cáo gửi thông báo: /baocao [số]"""
    argument = command_argument(incoming).lstrip("#")
    with context.db() as session:
        if argument.isdigit():
            row = session.get(BroadcastRow, int(argument))
            if row is None:
                return [Reply(f"Không có thông báo số {argument}.")]
            return [Reply("\n".join(compose.report_lines(session, row, context.settings)))]
        rows = compose.latest(session, 5)
        if not rows:
            return [Reply("Chưa có thông báo nào. Gõ /thongbao <nội dung> để soạn.")]
        lines = ["Thông báo gần đây (xem chi tiết: /baocao <số>):"]
        lines += [f"#{r.id} – {compose.STATE_LABELS.get(r.state, r.state)}; {r.sent}/{r.recipients} đã gửi – {r.text[:40]}"
                  for r in rows]
    return [Reply("\n".join(lines))]


def cancel(incoming: Incoming, context: Context) -> list[Reply]:
    """Hủy thông báo đã hẹn hoặc dừng thông báo đang gửi: /huythongbao <số>"""
    argument = command_argument(incoming).lstrip("#")
    if not argument.isdigit():
        return [Reply("Cách dùng: /huythongbao <số thông báo> (xem số bằng /baocao).")]
    with context.db.begin() as session:
        _, message = compose.cancel(session, int(argument), _actor(incoming))
    return [Reply(message)]


def register(router: Router) -> None:
    if router.context.db is None:
        return
    roles = frozenset(CAN_BROADCAST)
    router.command("thongbao", start, roles=roles)
    router.command("hengio", at_time, roles=roles)
    router.command("baocao", report, roles=roles)
    router.command("huythongbao", cancel, roles=roles)
    router.button("bc", button, roles)
