"""Unprompted messages (reminders, announcements): each channel's sender tries once and says what happened,
against the fake Bot API servers with the real HTTP clients."""

from __future__ import annotations

import pytest
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram
from fake_zalo import FakeZalo

from channels.outbound import ConsoleSender, Outcome, TelegramSender, ZaloSender, senders_from_settings
from channels.runner import _start_services
from handlers.messages import Button

ZALO_TOKEN = "zalo-test-token"


@pytest.fixture
async def telegram():
    async with FakeTelegram() as fake:
        sender = TelegramSender(fake.token, fake.base_url)
        yield fake, sender
        await sender.aclose()


@pytest.fixture
async def zalo():
    fake = await FakeZalo(token=ZALO_TOKEN, poll_cap=1.0).start()
    sender = ZaloSender(ZALO_TOKEN, fake.base_url)
    yield fake, sender
    await sender.aclose()
    await fake.stop()


async def test_telegram_sender_delivers_text_and_a_link_button(telegram):
    fake, sender = telegram
    delivery = await sender.send("501", "Bộ phận Một cửa nghỉ thứ Năm.", [[Button("Xem chi tiết", url="https://example.gov.vn/tb")]])
    assert delivery.sent
    [message] = fake.messages(501)
    assert message.text == "Bộ phận Một cửa nghỉ thứ Năm."
    assert message.reply_markup["inline_keyboard"][0][0]["url"] == "https://example.gov.vn/tb"


@pytest.mark.parametrize(("failure", "outcome"), [
    ("429", Outcome.RATE_LIMITED),
    ("403", Outcome.BLOCKED),
    ("chat_not_found", Outcome.BLOCKED),
    ("502", Outcome.TRANSIENT),
])
async def test_telegram_sender_tells_what_went_wrong_and_does_not_retry(telegram, failure, outcome):
    fake, sender = telegram
    fake.fail_next(502, failure)
    delivery = await sender.send("502", "Nhắc lịch hẹn")
    assert delivery.outcome is outcome
    assert not fake.messages(502)
    assert len(fake.calls_to("sendMessage", 502)) == 1  # the durable row's owner decides about trying again
    if outcome is Outcome.RATE_LIMITED:
        assert delivery.retry_after == pytest.approx(1.0)


async def test_telegram_sender_refuses_a_text_over_the_platform_limit_without_calling(telegram):
    fake, sender = telegram
    delivery = await sender.send("503", "x" * (sender.max_text + 1))
    assert delivery.outcome is Outcome.REJECTED
    assert not fake.calls_to("sendMessage")


async def test_zalo_sender_writes_links_into_the_text(zalo):
    fake, sender = zalo
    delivery = await sender.send("z1", "Thông báo mới", [[Button("Xem", url="https://example.gov.vn/a")]])
    assert delivery.sent
    [text] = await fake.wait_messages("z1", 1)
    assert text.startswith("Thông báo mới") and "Xem: https://example.gov.vn/a" in text


@pytest.mark.parametrize(("status", "outcome"), [(429, Outcome.RATE_LIMITED), (403, Outcome.BLOCKED),
                                                 (500, Outcome.TRANSIENT), (400, Outcome.REJECTED)])
async def test_zalo_sender_outcomes(zalo, status, outcome):
    fake, sender = zalo
    fake.fail("sendMessage", status, chat_id="z2", retry_after=2 if status == 429 else None)
    delivery = await sender.send("z2", "Nhắc lịch hẹn")
    assert delivery.outcome is outcome
    if status == 429:
        assert delivery.retry_after == pytest.approx(2.0)


def test_senders_exist_only_for_channels_with_a_token():
    assert set(senders_from_settings(make_settings())) == {"console"}
    both = senders_from_settings(make_settings(telegram_bot_token="1:x", zalo_bot_token="z"))
    assert set(both) == {"console", "telegram", "zalo"}


class _RecordingService:
    name = "recording"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.senders: dict = {}

    async def start(self, scheduler, senders) -> None:
        self.senders = senders
        scheduler.add_job(self._tick, "interval", seconds=0.05)
        self.events.append("start")

    async def _tick(self) -> None:
        self.events.append("tick")

    async def stop(self) -> None:
        self.events.append("stop")


async def test_background_services_run_on_the_scheduler_with_senders_of_running_channels_only():
    service = _RecordingService()
    settings = make_settings(telegram_bot_token="1:x", zalo_bot_token="z")
    stop = await _start_services(settings, ["zalo"], [service])
    await eventually(lambda: service.events.count("tick") >= 2, what="two ticks of the service")
    await stop()
    assert set(service.senders) == {"zalo"}  # Telegram is configured but not running: nothing goes out there
    assert service.events[0] == "start" and service.events[-1] == "stop"
    assert service.events.count("tick") >= 2


async def test_console_sender_keeps_what_it_printed(capsys):
    sender = ConsoleSender()
    assert (await sender.send("console", "Hồ sơ đã có kết quả.")).sent
    assert "Hồ sơ đã có kết quả." in capsys.readouterr().out
