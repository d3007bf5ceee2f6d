"""Staff with the broadcaster role compose announcements in chat: text, audience, time, preview, confirm.

    /thongbao <nội dung>     (a last line "Nhãn | https://..." or a bare https:// address adds a link button)
    → choose who gets it → now, tomorrow 8:00 or /hengio <giờ> → preview with the number of recipients → Gửi
    /baocao [số]             report of one announcement, or the latest ones
    /huythongbao <số>        cancel a scheduled one, or stop one being sent

The router refuses these commands and buttons (and logs it) for anyone without the role.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import datetime, timedelta
from typing import ClassVar
from zoneinfo import ZoneInfo

from broadcasts import compose
from broadcasts.audience import office_areas
from broadcasts.models import BroadcastRow, State, utcnow
from handlers.buttons import BroadcastButton
from handlers.core import Context, Router, command_argument
from handlers.general import find_group, group_ref
from handlers.messages import Button, Incoming, Reply
from handlers.paging import paged
from handlers.state import ChatState
from knowledge.groups import group_label, ordered_groups
from knowledge.models import local_time
from knowledge.staff import CAN_BROADCAST
from redaction import chat_tag

log = logging.getLogger(__name__)

_LINK_LINE = re.compile(r"^(?:(?P<label>[^|\n]{1,64}?)\s*\|\s*)?(?P<url>https?://\S+)\s*$")
CANCEL = BroadcastButton("no").pack()
NO_DRAFT = "Không có thông báo nào đang soạn. Gõ /thongbao <nội dung> để bắt đầu."


def _actor(incoming: Incoming) -> str:
    return f"{incoming.channel}:{incoming.user_id}"


class BroadcastDraftState(ChatState):
    """The announcement being composed in this chat, kept until it is sent or cancelled (or expires)."""

    feature: ClassVar[str] = "broadcast_draft"
    text: str
    audience: str = "all"
    at: datetime | None = None
    link_label: str | None = None
    link_url: str | None = None

    def forgotten(self) -> list[str]:
        return ["thông báo đang soạn"]


def _draft(context: Context, incoming: Incoming) -> compose.Draft | None:
    state = context.memory.peek(incoming.chat_key, BroadcastDraftState)
    return compose.Draft(**state.model_dump()) if state is not None else None


def _keep(context: Context, incoming: Incoming, draft: compose.Draft | None) -> None:
    """Store the draft (or drop it): a restart or another bot process goes on from where staff left it."""
    if draft is None:
        context.memory.clear(incoming.chat_key, BroadcastDraftState)
    else:
        context.memory.save(incoming.chat_key, BroadcastDraftState(**dataclasses.asdict(draft)))


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
    buttons = [[Button("👥 Tất cả người đăng ký", BroadcastButton("aud", "all").pack())]]
    if office_areas(context.settings):
        buttons.append([Button("📍 Theo xã/phường…", BroadcastButton("areas").pack())])
    buttons.append([Button("🗂 Theo chủ đề…", BroadcastButton("topics").pack())])
    buttons.append([Button("❌ Hủy", CANCEL)])
    return Reply("Gửi cho ai?", buttons)


def _time_menu() -> Reply:
    return Reply("Gửi lúc nào? Hoặc gõ /hengio <giờ>, ví dụ /hengio 27/11 08:00.",
                 [[Button("Gửi ngay", BroadcastButton("at", "now").pack())],
                  [Button("8:00 sáng mai", BroadcastButton("at", "tomorrow").pack())], [Button("❌ Hủy", CANCEL)]])


def button(incoming: Incoming, context: Context) -> list[Reply]:
    """Every button of composing: audience, time, confirm, cancel."""
    pressed = BroadcastButton.unpack(incoming.button)
    action, value = pressed.action, pressed.value
    draft = _draft(context, incoming)
    if action == "no":
        _keep(context, incoming, None)
        return [Reply("Đã hủy, không gửi thông báo nào.")]
    if draft is None:
        return [Reply(NO_DRAFT)]
    if action == "areas":
        items = [(name, data.pack()) for key, name in office_areas(context.settings).items()
                 if (data := BroadcastButton("aud", f"area:{key}")).fits()]
        return [paged("Chọn xã/phường", items, _page(value), lambda p: BroadcastButton("areas", str(p)).pack())]
    if action == "topics":
        groups = ordered_groups(context.catalog.groups())
        items = [(group_label(slug), BroadcastButton("aud", f"topic:{group_ref(slug)}").pack()) for slug in groups]
        return [paged("Chọn chủ đề", items, _page(value), lambda p: BroadcastButton("topics", str(p)).pack())]
    if action == "aud":
        kind, _, key = value.partition(":")
        if kind == "topic":  # the button carries a short key of the group's slug (slugs run to ~190 characters)
            slug = find_group(context.catalog, key)
            if slug is None:
                return [Reply("Chủ đề này không còn trong danh sách. Bấm chọn lại nhé.", [[Button("🗂 Theo chủ đề…", BroadcastButton("topics").pack())]])]
            value = f"topic:{slug}"
        draft.audience = value or "all"
        _keep(context, incoming, draft)
        return [_time_menu()]
    if action == "at":
        if value == "tomorrow":
            zone = ZoneInfo(context.settings.timezone)
            tomorrow = utcnow().astimezone(zone).date() + timedelta(days=1)
            draft.at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 8, 0, tzinfo=zone).astimezone(ZoneInfo("UTC"))
        else:
            draft.at = None
        _keep(context, incoming, draft)
        return [_preview(context, draft)]
    if action == "ok":
        return [_confirm(incoming, context, draft)]
    return [Reply("Nút này đã cũ. Gõ /thongbao để soạn lại.")]


def _page(value: str) -> int:
    return int(value) if value.isdigit() else 0


def at_time(incoming: Incoming, context: Context) -> list[Reply]:
    """Hẹn giờ gửi thông báo đang soạn: /hengio 27/11 08:00"""
    draft = _draft(context, incoming)
    if draft is None:
        return [Reply(NO_DRAFT)]
    try:
        draft.at = compose.parse_time(command_argument(incoming), context.settings)
    except compose.ComposeError as error:
        return [Reply(str(error))]
    _keep(context, incoming, draft)
    return [_preview(context, draft)]


def _preview(context: Context, draft: compose.Draft) -> Reply:
    try:
        with context.db() as session:
            preview = compose.check(session, draft, context.settings)
    except compose.ComposeError as error:
        return Reply(f"{error}\nSửa lại rồi chọn tiếp, hoặc bấm Hủy.", [[Button("❌ Hủy", CANCEL)]])
    when = f"lúc {local_time(preview.at, context.settings.timezone):%H:%M %d/%m/%Y}" if preview.at else "ngay"
    link = f"\n[Nút: {draft.link_label} → {draft.link_url}]" if draft.link_url else ""
    return Reply(f"Xem trước – gửi {when} tới {preview.count} người ({preview.description}):\n\n{draft.text}{link}\n\n"
                 "Bấm Gửi để xác nhận.", [[Button("✅ Gửi", BroadcastButton("ok").pack()), Button("❌ Hủy", CANCEL)]])


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
    router.state(BroadcastDraftState)
    router.button(BroadcastButton, button, roles)
