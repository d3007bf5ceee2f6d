"""/xoadulieu: a citizen asks the bot to forget what it keeps about their chat.

Every feature that stores something about a chat registers its own step (`Router.forget`, next to its
commands); this runs every one of them, each in its own transaction, and tells the citizen exactly what
was deleted and what could not be. A step that fails is reported as a failure, never as "nothing kept".
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError

from handlers.core import Context, Forgetting, Router
from handlers.messages import Incoming, Reply
from redaction import key_tag

log = logging.getLogger(__name__)

NOTHING_KEPT = "Tôi không lưu gì về cuộc trò chuyện này, nên không có gì để xóa."
ANONYMOUS_NOTE = (
    "Những câu hỏi tôi chưa trả lời được và các góp ý 👎 được giữ lại để cán bộ bổ sung kiến thức, nhưng "
    "không kèm tên hay mã tài khoản của bạn (số điện thoại, số giấy tờ, tên, địa chỉ trong câu hỏi đã được che). "
    "Lịch sử tin nhắn trong ứng dụng chat do bạn tự xóa trong ứng dụng."
)
NOT_DELETED = ("Chưa xóa được {what} vì hệ thống đang gặp trục trặc. Bạn vui lòng thử lại sau hoặc liên hệ "
               "{office} (gõ /lienhe) để được hỗ trợ.")
IN_GROUP = ("Trong nhóm, tôi chỉ xóa phần ghi nhớ cuộc trò chuyện của nhóm ({what}). Theo dõi hồ sơ và đăng ký "
            "nhận thông báo là của từng người và chỉ được lưu khi bạn nhắn riêng cho tôi: muốn xóa dữ liệu của "
            "bạn, hãy nhắn riêng cho tôi rồi gõ /xoadulieu.")
GROUP_MEMORY = "thủ tục đang hỏi, các lựa chọn đang chờ"
MEMORY = "những gì tôi đang ghi nhớ trong cuộc trò chuyện (thủ tục đang hỏi, các lựa chọn đang chờ)"


def forget_me(incoming: Incoming, context: Context) -> list[Reply]:
    """Xóa những gì trợ lý ghi nhớ về bạn."""
    deleted, failed = _forget_memory(incoming, context)
    if incoming.group:
        # Any member may type it: the group's shared memory goes, nobody's stored data.
        return [Reply(IN_GROUP.format(what=GROUP_MEMORY))]
    if context.db is not None and context.router is not None:
        for forgetting in context.router.forgettings:
            outcome = _run(forgetting, context, incoming)
            if outcome is None:
                failed.append(forgetting.what)
            elif outcome:
                deleted.append(forgetting.what)
    return [Reply(_report(deleted, failed, context))]


def _forget_memory(incoming: Incoming, context: Context) -> tuple[list[str], list[str]]:
    """The chat's memory (every feature's declared state, handlers.state): (what was forgotten, what could not be).

    It is the group's own in a group chat, so unlike the registered steps it is forgotten there too.
    """
    try:
        states = context.memory.forget(incoming.chat_key)
    except Exception as error:  # noqa: BLE001 - the registered steps still run, and the failure is told
        log.error("forgetting the memory of %s failed: %s", key_tag(incoming.chat_key), _kind(error))
        return [], [MEMORY]
    deleted, failed = [], []
    for state in states:
        try:
            state.discard()
        except OSError:
            log.exception("what the %s state of %s points to could not be deleted", state.feature, key_tag(incoming.chat_key))
            failed += state.forgotten()
            continue
        deleted += [what for what in state.forgotten() if what not in deleted]
    return deleted, failed


def _run(forgetting: Forgetting, context: Context, incoming: Incoming) -> int | None:
    """One feature's step in its own transaction: rows deleted, or None when it failed (nothing of it kept)."""
    try:
        with context.db.begin() as session:
            return int(forgetting.step(session, incoming.channel, incoming.chat_id) or 0)
    except Exception as error:  # noqa: BLE001 - the other features' data and the chat's memory still go
        # The exception's text may quote the statement's parameters (the chat id): its kind at ERROR, all at DEBUG.
        log.error("forgetting %s of %s failed: %s", forgetting.what, key_tag(incoming.chat_key), _kind(error))
        log.debug("forgetting %s of %s failed", forgetting.what, incoming.chat_key, exc_info=error)
        return None


def _kind(error: Exception) -> str:
    """What went wrong, in a line that quotes no statement parameters ("OperationalError: database or disk is full")."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__}: {str(error.orig).splitlines()[0] if str(error.orig) else ''}".rstrip(": ")
    return type(error).__name__


def _report(deleted: list[str], failed: list[str], context: Context) -> str:
    """The reply: what was deleted, what could not be (and what to do), or that nothing was kept."""
    parts = []
    if deleted:
        parts.append("Đã xóa những gì tôi ghi nhớ về cuộc trò chuyện này: " + ", ".join(deleted) + ".")
    if failed:
        parts.append(NOT_DELETED.format(what=", ".join(failed), office=context.settings.office_name))
    if not parts:
        parts.append(NOTHING_KEPT)
    return "\n\n".join([*parts, ANONYMOUS_NOTE])


def register(router: Router) -> None:
    router.command("xoadulieu", forget_me)
