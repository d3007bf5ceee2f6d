"""The conversation hooks features build on: what a reply did with a question, and hooks before/after dispatch."""

from __future__ import annotations

from handlers.messages import Incoming, Reply


def test_replies_say_what_they_did_with_the_question(chat) -> None:
    assert chat.ask("lệ phí làm căn cước bao nhiêu").outcome == "answered"
    assert chat.ask("thủ tục đăng ký nuôi khủng long cảnh").outcome == "not_understood"
    assert chat.ask("/help").outcome is None


def test_a_before_hook_can_keep_the_bot_silent_and_commands_still_pass_when_it_declines(router) -> None:
    silenced = {"test:quiet"}
    router.before(lambda incoming, context: [] if incoming.chat_key in silenced else None)
    assert router.handle(Incoming("test", "quiet", "u", "lệ phí làm căn cước")) == []
    assert router.handle(Incoming("test", "other", "u", "lệ phí làm căn cước"))[0].outcome == "answered"


def test_after_hooks_see_every_reply_and_a_failing_one_loses_nothing(router) -> None:
    seen: list[str | None] = []

    def observe(incoming: Incoming, replies: list[Reply], context) -> list[Reply]:
        seen.extend(r.outcome for r in replies)
        return replies

    def broken(incoming: Incoming, replies: list[Reply], context) -> list[Reply]:
        raise RuntimeError("observer bug")

    router.after(broken)
    router.after(observe)
    replies = router.handle(Incoming("test", "c", "u", "lệ phí làm căn cước"))
    assert replies and replies[0].entry_id
    assert seen == ["answered"]
