"""Welcome, help, the office's contact and browsing the knowledge base by group."""

from __future__ import annotations

from channels.links import entry_id_from_payload
from handlers.answers import display_name
from handlers.ask import AskState, answer_entry
from handlers.buttons import AspectButton, GroupButton, GroupListButton, short_key
from handlers.core import Context, Router, command_argument
from handlers.messages import Incoming, Reply
from handlers.paging import page_of, paged
from knowledge.catalog import Catalog
from knowledge.groups import group_label, ordered_groups
from knowledge.staff import CAN_EDIT
from nlp.aspects import Aspect

WELCOME = (
    "Xin chào! Tôi là trợ lý tra cứu thủ tục hành chính của {office}.\n"
    "Bạn cứ hỏi bằng lời thường, có dấu hay không dấu đều được, ví dụ:\n"
    "• làm thẻ căn cước mất bao nhiêu tiền\n"
    "• đăng ký tạm trú cần giấy tờ gì\n"
    "• nộp hồ sơ qua bưu điện được không\n"
    "Gõ /thutuc để xem danh sách thủ tục, /lienhe để liên hệ cán bộ."
)


def start(incoming: Incoming, context: Context) -> list[Reply]:
    """Lời chào; /start <mã thủ tục> mở thẳng thủ tục đó."""
    # Starting over starts without a subject: a follow-up now must not refer to an earlier question.
    state = context.memory.peek(incoming.chat_key, AskState)
    if state is not None and (state.last_entry_id or state.choices):
        state.last_entry_id, state.choices = None, []
        context.memory.save(incoming.chat_key, state)
    payload = entry_id_from_payload(command_argument(incoming))
    if payload and context.catalog.get(payload) is not None:
        return [answer_entry(context, incoming.chat_key, payload, (Aspect.OVERVIEW,))]
    return [Reply(WELCOME.format(office=context.settings.office_name))]


def help_command(incoming: Incoming, context: Context) -> list[Reply]:
    """Hướng dẫn sử dụng và danh sách lệnh."""
    lines = ["Bạn có thể đặt câu hỏi bằng lời thường. Các lệnh:"]
    lines += [f"/{c.name} – {c.help}" for c in context.router.commands.values() if not c.staff_only]
    role = context.router.role_of(incoming) if any(c.staff_only for c in context.router.commands.values()) else None
    staff_commands = [c for c in context.router.commands.values() if c.staff_only and role in c.roles] if role else []
    if staff_commands:
        lines.append("\nLệnh dành cho cán bộ:")
        lines += [f"/{c.name} – {c.help}" for c in staff_commands]
    if role in CAN_EDIT:
        lines.append("Gửi tệp .xlsx, .csv hoặc .yaml để nhập dữ liệu (kiểm tra trước, xác nhận rồi mới ghi).")
    return [Reply("\n".join(lines))]


def contact(incoming: Incoming, context: Context) -> list[Reply]:
    """Địa chỉ, giờ làm việc và số điện thoại của Bộ phận Một cửa."""
    s = context.settings
    lines = [s.office_name]
    lines += [f"📍 Địa chỉ: {s.office_address}"] if s.office_address else []
    lines += [f"🕗 Giờ làm việc: {s.office_hours}"] if s.office_hours else []
    lines += [f"☎️ Điện thoại: {s.office_phone}"] if s.office_phone else []
    if len(lines) == 1:
        lines.append("Bạn vui lòng đến Bộ phận Một cửa (Trung tâm Phục vụ hành chính công) của xã, phường nơi bạn cư trú để được hướng dẫn trực tiếp.")
    return [Reply("\n".join(lines))]


def browse(incoming: Incoming, context: Context) -> list[Reply]:
    """Xem danh sách thủ tục theo nhóm."""
    return [group_list(context.catalog, 0)]


def group_list(catalog: Catalog, page: int) -> Reply:
    """One page of the groups; a group's button carries a short key of its slug (slugs run to ~190 characters)."""
    groups = ordered_groups(catalog.groups())
    items = [(group_label(slug), GroupButton(group_ref(slug)).pack()) for slug in groups]
    return paged("Chọn nhóm thủ tục", items, page, lambda p: GroupListButton(p).pack())


def group_list_button(incoming: Incoming, context: Context) -> list[Reply]:
    """"◀ Trước" / "Sau ▶" under the groups."""
    return [group_list(context.catalog, GroupListButton.unpack(incoming.button).page)]


def group_ref(slug: str) -> str:
    """How button data names a group: its slug, or a short key of it when the slug is too long (~190 characters)."""
    return slug if len(slug) <= 24 else short_key(slug)


def find_group(catalog: Catalog, key: str) -> str | None:
    """The group slug a button names (group_ref), or None when the group is gone."""
    groups = catalog.groups()
    if key in groups:
        return key
    return next((slug for slug in groups if short_key(slug) == key), None)


def group_button(incoming: Incoming, context: Context) -> list[Reply]:
    """A tapped group: its procedures, a page at a time."""
    pressed = GroupButton.unpack(incoming.button)
    slug = find_group(context.catalog, pressed.group)
    entries = context.catalog.groups().get(slug, []) if slug else []
    if not entries:
        return [Reply("Nhóm này hiện chưa có thủ tục nào. Gõ /thutuc để xem lại các nhóm.")]
    items = [(display_name(e), AspectButton(e.id, Aspect.OVERVIEW).pack()) for e in entries if AspectButton(e.id, Aspect.OVERVIEW).fits()]
    groups = ordered_groups(context.catalog.groups())
    back = GroupListButton(page_of(groups.index(slug), len(groups))).pack()
    return [paged(f"{group_label(slug)} ({len(items)} thủ tục)", items, pressed.page,
                  lambda p: GroupButton(group_ref(slug), p).pack(), actions=[("↩ Các nhóm", back)])]


def register(router: Router) -> None:
    router.command("start", start)
    router.command("help", help_command)
    router.command("thutuc", browse)
    router.command("lienhe", contact)
    router.button(GroupListButton, group_list_button)
    router.button(GroupButton, group_button)
