"""One rate limiter per platform token, shared by replies, announcements and reminders; fair per-chat queues.

End-to-end tests run the real Telegram application (long polling) and the broadcast dispatcher in one event
loop against the fake Bot API of tests/fake_telegram.py, which counts the bot's messages in every second.
Assertions are on counts and order, never on how fast anything was.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram
from fake_zalo import FakeZalo
from sqlalchemy import insert

from broadcasts import compose
from broadcasts.dispatcher import Dispatcher
from broadcasts.models import SubscriptionRow, utcnow
from channels import telegram as tg
from channels.limits import BACKGROUND_EVERY, TOO_FAST, ChatQueues, PlatformLimits, Priority, TokenLimiter, limiter_for
from channels.outbound import Outcome, TelegramSender, ZaloSender
from channels.zalo import ZaloChannel

PLATFORM_LIMIT = 30  # Telegram's messages per second for one bot; the fake refuses more in any one second
QUESTIONS = ["lam cccd mat bao nhieu tien", "đăng ký khai sinh cần giấy tờ gì", "làm hộ chiếu mất bao lâu",
             "đăng ký kết hôn ở đâu", "cấp lại giấy phép lái xe"]


# --------------------------------------------------------------------------- the limiter itself

def test_every_sender_of_one_token_shares_one_limiter(router):
    telegram = TelegramSender("111:shared-token", "http://127.0.0.1:9/bot")
    assert telegram.limiter is limiter_for("telegram", "111:shared-token")
    assert TelegramSender("222:other-token", "http://127.0.0.1:9/bot").limiter is not telegram.limiter
    zalo_channel = ZaloChannel(router, make_settings(zalo_bot_token="zalo-shared"), base_url="http://127.0.0.1:9")
    assert ZaloSender("zalo-shared", "http://127.0.0.1:9").limiter is zalo_channel.limiter
    assert limiter_for("zalo", "111:shared-token") is not telegram.limiter, "one limiter per platform and token"


def test_settings_set_the_tokens_rate_for_every_sender():
    limiter_for("telegram", "333:configured", messages_per_second=12)
    assert TelegramSender("333:configured", "http://127.0.0.1:9/bot").messages_per_second == 12


async def test_a_429_on_an_announcement_pauses_the_zalo_channels_replies_too(router):
    fake = await FakeZalo(token="zalo-429-token", poll_cap=1.0).start()
    channel = ZaloChannel(router, make_settings(zalo_bot_token="zalo-429-token"), base_url=fake.base_url)
    sender = ZaloSender("zalo-429-token", fake.base_url)
    try:
        fake.fail("sendMessage", 429, chat_id="z-subscriber", retry_after=5)
        delivery = await sender.send("z-subscriber", "Thông báo")
        assert delivery.outcome is Outcome.RATE_LIMITED
        assert channel.limiter.paused_for() > 4, "the chat channel's replies wait out the token's 429 too"
    finally:
        await sender.aclose()
        await channel.client.aclose()
        await fake.stop()


async def _grant_order(limiter: TokenLimiter, waiters: list[tuple[str, Priority]]) -> list[str]:
    order: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await limiter.acquire(None, priority=priority)
        order.append(name)

    await asyncio.gather(*(take(name, priority) for name, priority in waiters))
    return order


async def test_a_waiting_reply_gets_the_next_slot_before_waiting_announcements():
    limiter = TokenLimiter("test", PlatformLimits(200.0, 0.0, 1, 0.0, 1))
    waiters = [(f"bg{i}", Priority.BACKGROUND) for i in range(8)] + [(f"reply{i}", Priority.REPLY) for i in range(3)]
    order = await _grant_order(limiter, waiters)
    replies = [order.index(f"reply{i}") for i in range(3)]
    # The first announcements took the free slot (and the turn) before any reply asked; every other waits.
    assert max(replies) < order.index("bg2"), order
    assert sorted(order) == sorted(name for name, _ in waiters)


async def test_announcements_are_not_starved_by_a_long_peak_of_replies():
    limiter = TokenLimiter("test", PlatformLimits(500.0, 0.0, 1, 0.0, 1))
    waiters = [("first", Priority.REPLY), ("bg", Priority.BACKGROUND)] + [(f"r{i}", Priority.REPLY) for i in range(3 * BACKGROUND_EVERY)]
    order = await _grant_order(limiter, waiters)
    assert order.index("bg") <= BACKGROUND_EVERY + 1, order


async def test_a_pause_holds_every_priority_and_chat():
    limiter = TokenLimiter("test", PlatformLimits(0.0, 0.0, 1, 0.0, 1))
    limiter.pause(0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(limiter.acquire("a"), limiter.acquire("b", priority=Priority.BACKGROUND))
    assert loop.time() - started >= 0.29


async def test_a_chat_gets_a_short_burst_then_its_pace_and_an_announcement_waits_for_a_quiet_chat():
    limiter = TokenLimiter("test", PlatformLimits(0.0, 10.0, 3, 30.0, 3))
    for _ in range(3):
        await limiter.acquire("chat")  # a reply in three parts goes at once
    assert limiter.chat_wait("chat") > 9, "the 4th message waits for the chat's pace"
    assert limiter.chat_wait("chat", Priority.BACKGROUND) > 29, "an announcement waits until the answer is well out"
    assert limiter.chat_wait("other") == 0 and limiter.chat_wait("-100", group=True) == 0


def test_a_chats_queue_is_bounded_and_the_chat_told_once():
    queues = ChatQueues(max_pending=2)
    assert queues.admit("flood") and queues.admit("flood")
    assert not queues.admit("flood") and not queues.admit("flood")
    assert queues.first_refusal("flood") and not queues.first_refusal("flood")
    assert queues.admit("calm"), "another chat is not affected"


# --------------------------------------------------------------------------- end to end: a broadcast and questions

@pytest.fixture
async def fake():
    async with FakeTelegram(rate_limit=PLATFORM_LIMIT, rate_window="sliding") as server:
        yield server


def _subscribers(db, chat_ids) -> None:
    with db.begin() as session:
        session.execute(insert(SubscriptionRow), [{"channel": "telegram", "chat_id": str(c), "areas": [], "topics": [],
                                                   "created_at": utcnow()} for c in chat_ids])


def _announce(db, settings, text: str) -> int:
    with db.begin() as session:
        return compose.create(session, compose.Draft(text=text), settings, "test").id


async def test_a_broadcast_and_questions_together_stay_under_the_limit_and_questions_go_first(fake, router, db, database_url):
    """Before: replies (PTB's AIORateLimiter, 27/s) and the broadcast (its own pacer, 29/s) each kept to the
    limit alone, so together they sent ~55 a second and got 429s; and the questions queued behind nothing."""
    settings = make_settings(database_url, telegram_bot_token=fake.token, broadcast_poll_seconds=0.3)
    recipients = range(100_000, 100_600)  # ~22 s of sending: far longer than the questions need
    _subscribers(db, recipients)
    broadcast_id = _announce(db, settings, "Thông báo: Bộ phận Một cửa nghỉ chiều thứ Sáu.")
    app = tg.build_application(router, settings, base_url=fake.base_url)
    await tg.start(app)
    sender = TelegramSender(fake.token, fake.base_url)
    sending = asyncio.create_task(Dispatcher(db, {"telegram": sender}, settings).deliver(broadcast_id))
    try:
        await fake.wait_for(lambda: len(fake.sent) >= 60, 60, lambda: f"{len(fake.sent)} announcements before the questions")
        askers = list(range(1, 41))
        for chat_id in askers:
            fake.push_text(chat_id, QUESTIONS[chat_id % len(QUESTIONS)])
        await fake.wait_for(lambda: all(fake.sent.get(c) for c in askers), 60,
                            lambda: f"{sum(1 for c in askers if fake.sent.get(c))} of {len(askers)} questions answered")
        announced = sum(1 for c in recipients if fake.sent.get(c))
        assert announced < len(recipients), "every question was answered while the broadcast was still going"
        assert all(fake.texts(c)[0].startswith("📋") for c in askers)
    finally:
        with db.begin() as session:
            compose.cancel(session, broadcast_id, "telegram:900")
        await asyncio.wait_for(sending, 30)
        await sender.aclose()
        await tg.stop(app)
    assert fake.throttled == 0, "no 429 from the platform"
    assert fake.peak_per_second() <= PLATFORM_LIMIT, f"{fake.peak_per_second()} messages in one second"


async def test_a_429_on_a_reply_pauses_the_broadcast_too(fake, router, db, database_url):
    settings = make_settings(database_url, telegram_bot_token=fake.token)
    _subscribers(db, range(200_000, 200_300))
    broadcast_id = _announce(db, settings, "Thông báo thử")
    app = tg.build_application(router, settings, base_url=fake.base_url)
    await tg.start(app)
    sender = TelegramSender(fake.token, fake.base_url)
    sending = asyncio.create_task(Dispatcher(db, {"telegram": sender}, settings).deliver(broadcast_id))
    try:
        await fake.wait_for(lambda: len(fake.sent) >= 30, 60)
        fake.fail_next(7, "429")  # retry_after 1
        fake.push_text(7, "/lienhe")
        [contact] = await fake.wait_messages(7, 1)
        assert "Bộ phận Một cửa" in contact.text
    finally:
        with db.begin() as session:
            compose.cancel(session, broadcast_id, "telegram:900")
        await asyncio.wait_for(sending, 30)
        await sender.aclose()
        await tg.stop(app)
    limited = next(c for c in fake.calls_to("sendMessage", 7) if c.status == 429)
    during = [c for c in fake.calls_to("sendMessage") if limited.at < c.at < limited.at + 0.95]
    # Only messages already on their way when the 429 came back may arrive in the pause (27 a second otherwise).
    assert len(during) <= 5, f"{len(during)} messages went out during retry_after"


# --------------------------------------------------------------------------- one chat flooding the bot

class _Held:
    """Holds the core's answer to one chat until released, so a flood is certainly still pending."""

    def __init__(self, router, chat_id: str) -> None:
        self.release = threading.Event()
        self.reached = threading.Event()
        handle = router.handle

        def held(incoming):
            if incoming.chat_id == chat_id and not self.release.is_set():
                self.reached.set()
                self.release.wait(60)
            return handle(incoming)

        router.handle = held


async def test_a_flooding_chat_is_told_once_and_does_not_hold_up_another(router):
    flooder, other = 500, 501
    held = _Held(router, str(flooder))
    async with FakeTelegram() as fake:
        settings = make_settings(telegram_bot_token=fake.token)
        app = tg.build_application(router, settings, base_url=fake.base_url)
        await tg.start(app)
        try:
            for i in range(300):  # more than the updates PTB runs at once (256); short answers: one message each
                fake.push_text(flooder, f"/lienhe {i}")
            await eventually(held.reached.is_set, what="the flooder's first question reaching the core")
            await fake.wait_for(lambda: fake.pending_updates == 0, 30, lambda: "the flood read by the bot")
            fake.push_text(other, "làm hộ chiếu mất bao lâu")
            [answer] = await fake.wait_messages(other, 1)
            assert answer.text.startswith("📋"), "answered while the flood's first question is still in hand"
            await fake.wait_for(lambda: TOO_FAST in fake.texts(flooder), 30, lambda: "the notice to the flooder")
            held.release.set()
            limit = settings.chat_max_pending
            await fake.wait_messages(flooder, limit + 1)  # the questions kept in line, and the notice
            queues = app.update_processor.queues
            await eventually(lambda: queues.pending(flooder) == 0, what="the flooder's line emptied")
        finally:
            held.release.set()
            await tg.stop(app)
        texts = fake.texts(flooder)
        assert texts.count(TOO_FAST) == 1, "told once, not once per dropped message"
        assert len(texts) == limit + 1, f"{len(texts) - 1} of 300 messages answered; the line holds {limit}"


async def test_a_flooding_zalo_chat_is_told_once_and_does_not_hold_up_another(router):
    fake = await FakeZalo(token="zalo-flood-token", poll_cap=1.0).start()
    held = _Held(router, "z-flood")
    settings = make_settings(zalo_bot_token="zalo-flood-token")
    channel = ZaloChannel(router, settings, base_url=fake.base_url, poll_timeout=1, chat_rate=50.0, chat_burst=10)
    await channel.start()
    try:
        for i in range(200):
            fake.push_text("z-flood", f"/lienhe {i}")
        await eventually(held.reached.is_set, what="the flooder's first question reaching the core")
        await fake.wait_messages("z-flood", 1)  # the notice: the flood is past the line's limit
        fake.push_text("z-other", "làm hộ chiếu mất bao lâu")
        [answer] = await fake.wait_messages("z-other", 1)
        assert answer.startswith("📋"), "answered while the flood's first question is still in hand"
        await eventually(lambda: fake.pending_updates == 0, what="the flood read by the bot")
        held.release.set()
        await fake.wait_messages("z-flood", settings.chat_max_pending + 1)
        await eventually(lambda: channel.queues.pending("z-flood") == 0, what="the flooder's line emptied")
    finally:
        held.release.set()
        await channel.stop()
        await fake.stop()
    texts = fake.sent["z-flood"]
    assert texts[0] == TOO_FAST and texts.count(TOO_FAST) == 1
    assert len(texts) == settings.chat_max_pending + 1
