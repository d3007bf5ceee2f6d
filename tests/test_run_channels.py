"""`bot.py run --channel telegram,zalo`: both channels served by one process, one event loop, one core."""

from __future__ import annotations

import asyncio

import pytest
from conftest import make_settings
from fake_telegram import FakeTelegram
from fake_zalo import FakeZalo

from channels.runner import ChannelError, run_channels


async def test_telegram_and_zalo_are_answered_by_one_process(router):
    async with FakeTelegram() as telegram:
        zalo = FakeZalo()
        await zalo.start()
        try:
            settings = make_settings().model_copy(update={
                "telegram_bot_token": telegram.token, "telegram_api_base_url": telegram.base_url,
                "zalo_bot_token": zalo.token, "zalo_api_base_url": zalo.base_url,
            })
            serving = asyncio.create_task(run_channels(router, settings, ["telegram", "zalo"]))
            telegram.push_text(501, "lam cccd lan dau mat bao nhieu tien")
            zalo.push_text("z-501", "làm thẻ căn cước lần đầu mất bao nhiêu tiền")
            telegram_answer = (await telegram.wait_messages(501, 1, timeout=60))[0].text
            zalo_answer = (await zalo.wait_messages("z-501", 1, timeout=60))[0]
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
        finally:
            await zalo.stop()
    for answer in (telegram_answer, zalo_answer):
        assert "căn cước lần đầu" in answer and "Lệ phí" in answer


async def test_a_channel_without_its_token_is_a_clear_error(router):
    with pytest.raises(ChannelError, match="ZALO_BOT_TOKEN"):
        await run_channels(router, make_settings().model_copy(update={"zalo_bot_token": None}), ["zalo"])
