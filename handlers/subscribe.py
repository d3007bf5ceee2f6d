"""/dangky and /huydangky: citizens choose to receive the office's announcements, for their area and topics."""

from __future__ import annotations

import logging

from broadcasts import audience
from handlers.buttons import SubscribeButton
from handlers.core import Context, Handler, Router
from handlers.general import find_group, group_ref
from handlers.messages import Button, Incoming, Reply
from handlers.paging import page_of, paged
from knowledge.groups import group_label, ordered_groups

log = logging.getLogger(__name__)

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
        buttons.append([Button("📍 Chọn xã/phường của tôi", SubscribeButton("areas").pack())])
    buttons.append([Button("🗂 Chọn chủ đề quan tâm", SubscribeButton("topics").pack())])
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
    pressed = SubscribeButton.unpack(incoming.button)
    action, value = pressed.action, pressed.value
    if _active(context, incoming) is None:
        return [Reply("Bạn chưa đăng ký nhận thông báo (hoặc đã hủy). Gõ /dangky để đăng ký.")]
    if action == "areas":
        return [_areas_menu(context, _page(value))]
    if action == "topics":
        return [_topics_menu(context, incoming, page=_page(value))]
    if action == "t" and value != "*":
        # The button carries a short key of the group's slug (slugs run to ~190 characters); old ones the slug.
        slug = find_group(context.catalog, value)
        if slug is None:
            return [Reply("Chủ đề này không còn trong danh sách. Gõ /dangky để chọn lại.")]
        value = slug
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
            return [Reply(f"Đã lưu. {summary}", [[Button("🗂 Chọn chủ đề quan tâm", SubscribeButton("topics").pack())],
                                                 [Button("✅ Xong", DONE)]])]
        if action == "t":
            if value == "*":
                row.topics = []
            else:
                row.topics = [t for t in row.topics if t != value] if value in row.topics else [*row.topics, value]
            session.flush()
    if action == "t":
        groups = ordered_groups(context.catalog.groups())
        page = page_of(groups.index(value), len(groups)) if value in groups else 0  # the page the citizen was on
        return [_topics_menu(context, incoming, saved=True, page=page)]
    return [Reply("Nút này đã cũ. Gõ /dangky để chọn lại.")]


DONE = SubscribeButton("done").pack()


def _page(value: str) -> int:
    return int(value) if value.isdigit() else 0


def _areas_menu(context: Context, page: int = 0) -> Reply:
    areas = audience.office_areas(context.settings)
    items = [(name, data.pack()) for key, name in areas.items() if (data := SubscribeButton("a", key)).fits()]
    return paged("Bạn ở xã/phường nào? Bạn sẽ nhận thông báo chung và thông báo riêng cho nơi đó", items, page,
                 lambda p: SubscribeButton("areas", str(p)).pack(), actions=[("Tất cả xã/phường", SubscribeButton("a", "*").pack())])


def _topics_menu(context: Context, incoming: Incoming, saved: bool = False, page: int = 0) -> Reply:
    row = _active(context, incoming)
    chosen = set(row.topics) if row else set()
    groups = ordered_groups(context.catalog.groups())
    items = [(("✓ " if slug in chosen else "") + group_label(slug), SubscribeButton("t", group_ref(slug)).pack()) for slug in groups]
    head = "Đã lưu. " if saved else ""
    now = ", ".join(group_label(t) for t in row.topics) if row and row.topics else "mọi chủ đề"
    return paged(f"{head}Chọn chủ đề bạn quan tâm, bấm lại để bỏ chọn. Hiện nhận: {now}", items, page,
                 lambda p: SubscribeButton("topics", str(p)).pack(),
                 actions=[("Mọi chủ đề", SubscribeButton("t", "*").pack()), ("✅ Xong", DONE)])


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
    router.button(SubscribeButton, personal(choose))
    router.forget("đăng ký nhận thông báo", audience.forget)
