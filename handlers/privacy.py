"""/xoadulieu: a citizen asks the bot to forget what it keeps about their chat."""

from __future__ import annotations

import logging

from handlers.core import Context, Router
from handlers.messages import Incoming, Reply

log = logging.getLogger(__name__)

NOTHING_KEPT = "Tôi không lưu gì về cuộc trò chuyện này, nên không có gì để xóa."
ANONYMOUS_NOTE = (
    "Những câu hỏi tôi chưa trả lời được và các góp ý 👎 được giữ lại để cán bộ bổ sung kiến thức, nhưng "
    "không kèm tên hay mã tài khoản của bạn. "
    "Lịch sử tin nhắn trong ứng dụng chat do bạn tự xóa trong ứng dụng."
)


def forget_me(incoming: Incoming, context: Context) -> list[Reply]:
    """Xóa những gì trợ lý ghi nhớ về bạn."""
    state = context.states.get(incoming.chat_key)
    kept = []
    if state.last_entry_id:
        kept.append("thủ tục bạn đang hỏi")
    if state.last_question:
        kept.append("câu hỏi gần nhất của bạn")
    if state.choices or state.numbered:
        kept.append("các lựa chọn đang chờ bạn chọn")
    if state.pending_import:
        from handlers.staff import _discard  # the waiting staff file lives on disk, not only in memory

        _discard(state.pending_import)
        kept.append("tệp đang chờ nhập")
    if context.db is not None:
        kept += _forget_stored(context, incoming)
    context.states.forget(incoming.chat_key)
    if not kept:
        return [Reply(f"{NOTHING_KEPT}\n\n{ANONYMOUS_NOTE}")]
    return [Reply("Đã xóa những gì tôi ghi nhớ về cuộc trò chuyện này: " + ", ".join(kept) + ".\n\n" + ANONYMOUS_NOTE)]


def _stored_data():
    """What features keep about a chat in the database: (what it is called, how to delete it)."""
    from broadcasts.audience import forget as forget_subscription
    from reminders.store import forget_chat as forget_follows

    return [("đăng ký nhận thông báo", forget_subscription), ("các hồ sơ bạn theo dõi", forget_follows)]


def _forget_stored(context: Context, incoming: Incoming) -> list[str]:
    """Delete each kind separately: one failing must not keep the others (nor the chat's memory)."""
    deleted = []
    for what, forget in _stored_data():
        try:
            with context.db.begin() as session:
                if forget(session, incoming.channel, incoming.chat_id):
                    deleted.append(what)
        except Exception:  # noqa: BLE001 - the chat's memory is forgotten even if the database is unwell
            log.exception("forgetting %s of %s failed", what, incoming.chat_key)
    return deleted


def register(router: Router) -> None:
    router.command("xoadulieu", forget_me)
