"""The whole story in the running bot, over Telegram (the fake Bot API, the real client): two citizens
subscribe for their wards, a broadcaster composes an announcement for one ward in chat, and the bot's
background service delivers it to that ward's subscriber only."""

from __future__ import annotations

import asyncio

import pytest
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram

from broadcasts.models import BroadcastRow
from broadcasts.service import BroadcastService
from channels.runner import run_channels
from handlers import build_router
from knowledge import staff
from knowledge.db import session_factory
from knowledge.staff import Role

AREAS = "Phường Bến Nghé, Phường Đa Kao"
STAFF_CHAT = 9000


async def say(fake, chat_id: int, text: str):
    before = len(fake.messages(chat_id))
    fake.push_text(chat_id, text)
    return (await fake.wait_messages(chat_id, before + 1, timeout=30))[before]


async def press(fake, chat_id: int, data: str):
    before = len(fake.messages(chat_id))
    fake.push_callback(chat_id, data)
    return (await fake.wait_messages(chat_id, before + 1, timeout=30))[before]


def broadcast_state(db, broadcast_id: int) -> str | None:
    with db() as session:
        row = session.get(BroadcastRow, broadcast_id)
        return row.state if row else None


async def test_a_ward_announcement_composed_in_chat_reaches_that_wards_subscriber_only(catalog, open_kb, database_url):
    db = session_factory(open_kb())
    with db.begin() as session:
        staff.add(session, "telegram", str(STAFF_CHAT), Role.BROADCASTER)
    async with FakeTelegram() as fake:
        settings = make_settings(database_url, office_areas=AREAS, broadcast_poll_seconds=0.3,
                                 telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url)
        router = build_router(catalog, settings, db)
        serving = asyncio.create_task(run_channels(router, settings, ["telegram"], services=[BroadcastService(settings, db)]))
        try:
            for chat_id, ward in ((1001, "phuong-ben-nghe"), (1002, "phuong-da-kao")):
                welcome = await say(fake, chat_id, "/dangky")
                assert welcome.text.startswith("Đã đăng ký!") and "sub:areas" in welcome.buttons
                wards = await press(fake, chat_id, "sub:areas")
                assert f"sub:a:{ward}" in wards.buttons
                await press(fake, chat_id, f"sub:a:{ward}")

            refused = await say(fake, 1001, "/thongbao Tin không chính thức")
            assert refused.text.startswith("Tôi chưa hiểu lệnh này")

            who = await say(fake, STAFF_CHAT, "/thongbao Phường Bến Nghé: sáng thứ Bảy 30/11 vẫn tiếp nhận hồ sơ.")
            assert "bc:aud:all" in who.buttons
            await press(fake, STAFF_CHAT, "bc:areas")
            await press(fake, STAFF_CHAT, "bc:aud:area:phuong-ben-nghe")
            preview = await press(fake, STAFF_CHAT, "bc:at:now")
            assert "tới 1 người" in preview.text
            confirmed = await press(fake, STAFF_CHAT, "bc:ok")
            assert confirmed.text.startswith("Đang gửi thông báo #1 tới 1 người")

            [*_, announcement] = await fake.wait_messages(1001, 5, timeout=30)  # after 4 replies in the chat
            assert announcement.text == "Phường Bến Nghé: sáng thứ Bảy 30/11 vẫn tiếp nhận hồ sơ."
            # Done means every recipient was tried: the other ward's subscriber can no longer get it.
            await eventually(lambda: broadcast_state(db, 1) == "done", what="announcement #1 done")
            assert not any("thứ Bảy 30/11" in text for text in fake.texts(1002))

            report = await say(fake, STAFF_CHAT, "/baocao 1")
            assert "đã gửi xong" in report.text and "đã gửi: 1" in report.text
        finally:
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
