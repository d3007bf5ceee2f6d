"""Welcome, help, the office's contact and browsing the knowledge base by group."""

from __future__ import annotations

from channels.links import entry_id_from_payload
from handlers.answers import display_name
from handlers.ask import answer_entry
from handlers.core import Context, Router, command_argument
from handlers.messages import Button, Incoming, Reply
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
    state = context.states.peek(incoming.chat_key)
    if state is not None:
        state.last_entry_id, state.choices = None, []
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
    groups = ordered_groups(context.catalog.groups())
    buttons = [[Button(group_label(slug), f"g:{slug}")] for slug in groups]
    lines = ["Chọn nhóm thủ tục (bấm nút hoặc gõ số thứ tự):"] + [f"{i}. {group_label(slug)}" for i, slug in enumerate(groups, 1)]
    return [Reply("\n".join(lines), buttons, numbered=True)]


def group_button(incoming: Incoming, context: Context) -> list[Reply]:
    """A tapped group: list its procedures as buttons."""
    slug = (incoming.button or "").split(":", 1)[-1]
    entries = context.catalog.groups().get(slug, [])
    if not entries:
        return [Reply("Nhóm này hiện chưa có thủ tục nào. Gõ /thutuc để xem lại các nhóm.")]
    buttons = [[Button(display_name(e)[:60], f"a:{e.id}:overview")] for e in entries]
    lines = [group_label(slug) + " (bấm nút hoặc gõ số thứ tự):"] + [f"{i}. {display_name(e)}" for i, e in enumerate(entries, 1)]
    return [Reply("\n".join(lines), buttons, numbered=True)]


def register(router: Router) -> None:
    router.command("start", start)
    router.command("help", help_command)
    router.command("thutuc", browse)
    router.command("lienhe", contact)
    router.button("g", group_button)
