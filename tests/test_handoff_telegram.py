"""Hand-off end to end as `bot.py run` serves it: the real Telegram (fake Bot API) and Zalo (fake Zalo API) channels
with the hand-off service. A citizen asks for an officer; an officer answers from the Telegram staff group (a
reply to the bot's post) and from the web inbox; the citizen gets both, the bot stays silent meanwhile, and the
hand-off outlives a restart of the bot."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram
from fake_zalo import FakeZalo

from channels.runner import run_channels
from handlers import build_router
from handoff.service import HandoffService
from knowledge import handoff_store as store
from knowledge import staff
from knowledge.db import session_factory
from knowledge.staff import Role
from tests.test_handoff import ALWAYS
from tests.web_support import signed_in

CITIZEN = 4242
GROUP = -1001234
OFFICER = 777


@contextlib.asynccontextmanager
async def running(catalog, db, settings, channels: list[str]):
    router = build_router(catalog, settings, db)
    serving = asyncio.create_task(run_channels(router, settings, channels, services=[HandoffService(settings, db)]))
    try:
        yield router
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving


def group_reply(fake: FakeTelegram, post, text: str, user_id: int = OFFICER) -> dict:
    """An officer's reply, in the staff group, to the bot's post `post`."""
    update = fake.message_update(GROUP, user_id, text=text, reply_to_message={
        "message_id": post.message_id, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "Cán bộ"},
        "from": {"id": 123456789, "is_bot": True, "first_name": "Một cửa"}, "text": post.text})
    update["message"]["chat"] = {"id": GROUP, "type": "supergroup", "title": "Cán bộ một cửa"}
    return fake.push(update)


async def test_officers_answer_from_the_staff_group_and_the_inbox_and_the_hand_off_survives_a_restart(catalog, open_kb, database_url):
    db = session_factory(open_kb())
    with db.begin() as session:
        staff.add(session, "telegram", str(OFFICER), Role.EDITOR)
    async with FakeTelegram() as fake:
        settings = make_settings(database_url, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url,
                                 handoff_hours=ALWAYS, handoff_telegram_group_id=str(GROUP), handoff_poll_seconds=0.1)
        async with running(catalog, db, settings, ["telegram"]):
            fake.push_text(CITIZEN, "đăng ký khai sinh cần giấy tờ gì")
            await fake.wait_messages(CITIZEN, 1)
            fake.push_text(CITIZEN, "gặp cán bộ")
            told = (await fake.wait_messages(CITIZEN, 2))[1]
            assert "vị trí số 1" in told.text
            [post] = await fake.wait_messages(GROUP, 1)
            assert "Yêu cầu gặp cán bộ #" in post.text and "đăng ký khai sinh cần giấy tờ gì" in post.text

            fake.push_text(CITIZEN, "Con tôi sinh ở nước ngoài thì sao ạ?")
            relayed = (await fake.wait_messages(GROUP, 2))[1]
            assert "Con tôi sinh ở nước ngoài thì sao ạ?" in relayed.text

            group_reply(fake, post, "Chào anh, trường hợp này anh mang thêm giấy tờ hợp pháp hóa lãnh sự.")
            answer = (await fake.wait_messages(CITIZEN, 3))[2]
            assert answer.text == "👤 Cán bộ trả lời:\nChào anh, trường hợp này anh mang thêm giấy tờ hợp pháp hóa lãnh sự."
            assert any("bạn đã nhận cuộc trò chuyện" in m.text for m in await fake.wait_messages(GROUP, 3))
            group_reply(fake, relayed, "Anh cần gì thêm cứ nhắn nhé.")  # a reply to the relayed message works too
            assert (await fake.wait_messages(CITIZEN, 4))[3].text.endswith("Anh cần gì thêm cứ nhắn nhé.")
            group_reply(fake, post, "Tôi cũng muốn trả lời", user_id=999)  # not registered staff
            await fake.wait_for(lambda: any("Chỉ cán bộ đã được đăng ký" in m.text for m in fake.messages(GROUP)))

        # The bot restarts: the conversation is still with the officer.
        async with running(catalog, db, settings, ["telegram"]) as router:
            fake.push_text(CITIZEN, "lệ phí làm căn cước bao nhiêu")
            await fake.wait_for(lambda: any("lệ phí làm căn cước" in m.text for m in fake.messages(GROUP)))
            assert len(fake.messages(CITIZEN)) == 4, "the bot stays silent while an officer handles the chat"

            # The officer goes on in the web console (another process would do the same: the outbox is in the database).
            from app import App

            console_app = App(settings, db.kw["bind"], db, router.context.source, router)
            web = signed_in(console_app, Role.EDITOR, user_id=str(OFFICER))
            with db() as session:
                handoff_id = store.open_handoff(session, "telegram", str(CITIZEN)).id
            assert web.post(f"/hopthu/{handoff_id}/traloi", data={"noidung": "Lệ phí là 0 đồng với lần đầu."}).status_code == 303
            assert (await fake.wait_messages(CITIZEN, 5))[4].text.endswith("Lệ phí là 0 đồng với lần đầu.")
            assert web.post(f"/hopthu/{handoff_id}/dong").status_code == 303
            closing = (await fake.wait_messages(CITIZEN, 7))[5:]
            assert "Cán bộ đã kết thúc" in closing[0].text and closing[1].buttons[0].startswith("rt:")
            fake.push_callback(CITIZEN, closing[1].buttons[3])  # 4 stars
            assert "4/5" in (await fake.wait_messages(CITIZEN, 8))[7].text
            fake.push_text(CITIZEN, "lệ phí làm căn cước bao nhiêu")
            assert (await fake.wait_messages(CITIZEN, 9))[8].text.startswith("📋"), "the bot answers again"
    with db() as session:
        [rating] = session.query(store.RatingRow).all()
        assert rating.score == 4 and rating.source == "handoff"


async def test_a_zalo_citizen_gets_the_officers_reply_on_zalo(catalog, open_kb, database_url):
    db = session_factory(open_kb())
    fake = await FakeZalo(poll_cap=1.0).start()
    try:
        settings = make_settings(database_url, zalo_bot_token=fake.token, zalo_api_base_url=fake.base_url,
                                 handoff_hours=ALWAYS, handoff_poll_seconds=0.1)
        async with running(catalog, db, settings, ["zalo"]):
            fake.push_text("z-55", "thủ tục nuôi khủng long cảnh")
            [unknown] = await fake.wait_messages("z-55", 1)
            assert unknown.endswith("Muốn hỏi trực tiếp cán bộ, bạn gõ: gặp cán bộ")
            fake.push_text("z-55", "gặp cán bộ")
            assert "vị trí số 1" in (await fake.wait_messages("z-55", 2))[1]
            with db() as session:
                handoff_id = store.open_handoff(session, "zalo", "z-55").id
                store.officer_reply(session, handoff_id, "telegram:777", "Chào bạn, bạn cần hỏi thủ tục gì ạ?")
            assert (await fake.wait_messages("z-55", 3))[2] == "👤 Cán bộ trả lời:\nChào bạn, bạn cần hỏi thủ tục gì ạ?"
            fake.push_text("z-55", "Tôi hỏi về hộ kinh doanh")
            await eventually(lambda: _citizen_said(db, handoff_id, "Tôi hỏi về hộ kinh doanh"))
            assert len(fake.sent["z-55"]) == 3, "silent on Zalo too"
    finally:
        await fake.stop()


def _citizen_said(db, handoff_id: int, text: str) -> bool:
    with db() as session:
        return any(m.kind == store.CITIZEN and m.text == text for m in store.messages_of(session, handoff_id))


async def test_outside_office_hours_a_telegram_citizen_is_told_when_an_officer_answers(catalog, open_kb, database_url, monkeypatch):
    from datetime import UTC, datetime

    from handlers import handoff as chat_side

    db = session_factory(open_kb())
    monkeypatch.setattr(chat_side, "utc_now", lambda: datetime(2026, 12, 12, 13, 0, tzinfo=UTC))  # Sat 20:00 in Hanoi
    async with FakeTelegram() as fake:
        settings = make_settings(database_url, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url,
                                 handoff_hours="T2-T6 07:30-11:30,13:30-17:00", handoff_holidays="14/12/2026",
                                 handoff_poll_seconds=0.1)
        async with running(catalog, db, settings, ["telegram"]):
            fake.push_text(CITIZEN, "/canbo")
            [told] = await fake.wait_messages(CITIZEN, 1)
    assert "ngoài giờ làm việc" in told.text and "từ 07:30 thứ Ba, 15/12/2026" in told.text, told.text
