"""/dangky and /huydangky: citizens choose to receive the office's announcements, for their area and topics."""

from __future__ import annotations

import logging

from broadcasts import audience
from handlers.core import Context, Handler, Router
from handlers.messages import Button, Incoming, Reply
from knowledge.groups import group_label, ordered_groups

log = logging.getLogger(__name__)

MAX_DATA = 64  # Telegram's callback data limit, in bytes
UNAVAILABLE = "Xin lỗi, chức năng nhận thông báo đang tạm gián đoạn. Bạn vui lòng thử lại sau."
IN_GROUP = ("Đăng ký nhận thông báo là của từng người, nên không làm trong nhóm được. "
            "Bạn vui lòng nhắn riêng cho tôi rồi gõ /dangky nhé.")


def _summary(row, context: Context) -> str:
    areas = audience.office_areas(context.settings)
    where = ", ".join(areas.get(k, k) for k in row.areas) if row.areas else "mọi xã/phường"
    what = ", ".join(group_label(t) for t in row.topics) if row.topics else "mọi chủ đề"
    return f"Bạn đang nhận thông báo của {context.settings.office_name} về {what}, cho {where}."


def _narrow_buttons(context: Context) -> list[list[Button]]:
    buttons = []
    if audience.office_areas(context.settings):
        buttons.append([Button("📍 Chọn xã/phường của tôi", "sub:areas")])
    buttons.append([Button("🗂 Chọn chủ đề quan tâm", "sub:topics")])
    return buttons


def subscribe(incoming: Incoming, context: Context) -> list[Reply]:
    """Đăng ký nhận thông báo của Bộ phận Một cửa."""
    with context.db.begin() as session:
        row, already = audience.subscribe(session, incoming.channel, incoming.chat_id)
        summary = _summary(row, context)
    if already:
        text = f"{summary}\nBạn có thể thu hẹp theo xã/phường hoặc chủ đề bên dưới. Gõ /huydangky để ngừng nhận."
    else:
        text = (f"Đã đăng ký! Bạn sẽ nhận mọi thông báo của {context.settings.office_name} "
                "(giờ làm việc, lệ phí, đợt cấp giấy tờ...).\n"
                "Muốn chỉ nhận tin cho xã/phường của mình hoặc chủ đề bạn quan tâm, chọn bên dưới. "
                "Gõ /huydangky để ngừng nhận bất cứ lúc nào.")
    return [Reply(text, _narrow_buttons(context))]


def unsubscribe(incoming: Incoming, context: Context) -> list[Reply]:
    """Ngừng nhận mọi thông báo."""
    with context.db.begin() as session:
        stopped = audience.unsubscribe(session, incoming.channel, incoming.chat_id)
    if not stopped:
        return [Reply("Bạn chưa đăng ký nhận thông báo. Gõ /dangky nếu muốn nhận.")]
    return [Reply("Đã ngừng gửi thông báo cho bạn. Gõ /dangky nếu muốn nhận lại.")]


def _active(context: Context, incoming: Incoming):
    with context.db() as session:
        row = audience.subscription(session, incoming.channel, incoming.chat_id)
        return row if row is not None and row.active else None


def choose(incoming: Incoming, context: Context) -> list[Reply]:
    """The buttons under /dangky: list areas or topics, pick one, or finish."""
    parts = (incoming.button or "").split(":", 2)
    action = parts[1] if len(parts) > 1 else ""
    value = parts[2] if len(parts) > 2 else ""
    if _active(context, incoming) is None:
        return [Reply("Bạn chưa đăng ký nhận thông báo (hoặc đã hủy). Gõ /dangky để đăng ký.")]
    if action == "areas":
        return [_areas_menu(context)]
    if action == "topics":
        return [_topics_menu(context, incoming)]
    if action == "done":
        with context.db() as session:
            row = audience.subscription(session, incoming.channel, incoming.chat_id)
            return [Reply(_summary(row, context) + " Gõ /huydangky để ngừng nhận.")]
    with context.db.begin() as session:
        row = audience.subscription(session, incoming.channel, incoming.chat_id)
        if action == "a":
            areas = audience.office_areas(context.settings)
            if value != "*" and value not in areas:
                return [Reply("Xã/phường này không còn trong danh sách. Gõ /dangky để chọn lại.")]
            row.areas = [] if value == "*" else [value]
            summary = _summary(row, context)
            return [Reply(f"Đã lưu. {summary}", [[Button("🗂 Chọn chủ đề quan tâm", "sub:topics")], [Button("✅ Xong", "sub:done")]])]
        if action == "t":
            if value == "*":
                row.topics = []
            else:
                row.topics = [t for t in row.topics if t != value] if value in row.topics else [*row.topics, value]
            session.flush()
    if action == "t":
        return [_topics_menu(context, incoming, saved=True)]
    return [Reply("Nút này đã cũ. Gõ /dangky để chọn lại.")]


def _areas_menu(context: Context) -> Reply:
    areas = audience.office_areas(context.settings)
    buttons = [[Button(name[:60], f"sub:a:{key}")] for key, name in areas.items() if len(f"sub:a:{key}".encode()) <= MAX_DATA]
    buttons.append([Button("Tất cả xã/phường", "sub:a:*")])
    return Reply("Bạn ở xã/phường nào? Bạn sẽ nhận thông báo chung và thông báo riêng cho nơi đó.", buttons)


def _topics_menu(context: Context, incoming: Incoming, saved: bool = False) -> Reply:
    row = _active(context, incoming)
    chosen = set(row.topics) if row else set()
    groups = ordered_groups(context.catalog.groups())
    buttons = [[Button(("✓ " if slug in chosen else "") + group_label(slug)[:58], f"sub:t:{slug}")] for slug in groups
               if len(f"sub:t:{slug}".encode()) <= MAX_DATA]
    buttons.append([Button("Mọi chủ đề", "sub:t:*"), Button("✅ Xong", "sub:done")])
    head = "Đã lưu. " if saved else ""
    now = ", ".join(group_label(t) for t in row.topics) if row and row.topics else "mọi chủ đề"
    return Reply(f"{head}Chọn chủ đề bạn quan tâm (bấm lại để bỏ chọn). Hiện nhận: {now}.", buttons)


def personal(handler: Handler) -> Handler:
    """In a group any member could change everyone's subscription: there the handler only says to write privately."""

    def only_in_private(incoming: Incoming, context: Context) -> list[Reply]:
        if incoming.group:
            return [Reply(IN_GROUP)]
        return handler(incoming, context)

    only_in_private.__doc__ = handler.__doc__  # /help lists the command with its own description
    return only_in_private


def register(router: Router) -> None:
    if router.context.db is None:
        return  # subscriptions live in the database
    router.command("dangky", personal(subscribe))
    router.command("huydangky", personal(unsubscribe))
    router.button("sub", personal(choose))
    router.forget("đăng ký nhận thông báo", audience.forget)
