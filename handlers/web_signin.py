"""/dangnhap: a staff member asks for a one-time link into the web console, sent to their own chat."""

from __future__ import annotations

import logging

from handlers.core import Context, Router
from handlers.messages import Incoming, Reply
from knowledge import web_access
from knowledge.staff import ALL_STAFF

log = logging.getLogger(__name__)

IN_GROUP = "Vì an toàn, đường dẫn đăng nhập chỉ gửi trong tin nhắn riêng. Bạn vui lòng nhắn /dangnhap trực tiếp cho bot."
LINK = ("Đường dẫn đăng nhập bảng điều khiển (dùng một lần, hết hạn sau {minutes} phút):\n{url}\n"
        "Vui lòng không chuyển đường dẫn này cho người khác.")
FAILED = "Xin lỗi, chưa tạo được đường dẫn đăng nhập. Bạn vui lòng thử lại sau ít phút."


def send_sign_in_link(incoming: Incoming, context: Context) -> list[Reply]:
    """Gửi đường dẫn đăng nhập bảng điều khiển web."""
    if incoming.group:
        return [Reply(IN_GROUP)]
    settings = context.settings
    try:
        with context.db.begin() as session:
            token = web_access.issue_link(session, incoming.channel, incoming.user_id, settings.web_link_minutes)
    except Exception:  # noqa: BLE001 - the member is told it failed; the token never reaches the log
        log.exception("issuing a sign-in link failed")
        return [Reply(FAILED)]
    minutes = f"{settings.web_link_minutes:g}"
    return [Reply(LINK.format(minutes=minutes, url=f"{settings.web_url}/dangnhap/{token}"))]


def register(router: Router) -> None:
    router.command("dangnhap", send_sign_in_link, roles=ALL_STAFF)
