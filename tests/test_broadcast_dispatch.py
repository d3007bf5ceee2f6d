"""Delivering announcements end to end: the dispatcher sends with the real HTTP client (channels.outbound's
TelegramSender) to the fake Bot API of tests/fake_telegram.py; assertions are on what each chat received.

Times the fake records are arrivals at the server: they carry the event loop's jitter on a loaded machine, so
spacings are checked with room for it and speed is left to the benchmark (`python -m broadcasts.bench`)."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram
from sqlalchemy import func, insert, select, update

from broadcasts import audience, bench, compose
from broadcasts.dispatcher import Dispatcher
from broadcasts.models import BroadcastRow, DeliveryRow, SubscriptionRow, aware, utcnow
from broadcasts.service import BroadcastService
from channels.outbound import TelegramSender
from knowledge.db import make_engine, session_factory

AREAS = "Phường Bến Nghé, Phường Đa Kao"
# One message per chat per second is paced by when the client sends; the server sees arrivals, one of which
# may have waited on a busy event loop (the first also opens the connection). Without pacing they are ~0.03 s apart.
ONE_SECOND_APART = 0.75


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, office_areas=AREAS, broadcast_max_attempts=3, broadcast_poll_seconds=0.3)


@pytest.fixture
async def fake():
    async with FakeTelegram(rate_limit=30, rate_window="sliding") as server:
        yield server


@pytest.fixture
async def sender(fake):
    telegram = TelegramSender(fake.token, fake.base_url)
    yield telegram
    await telegram.aclose()


def subscribe(db, *chat_ids: int, areas=()):
    with db.begin() as session:
        for chat_id in chat_ids:
            row, _ = audience.subscribe(session, "telegram", str(chat_id))
            row.areas = list(areas)


def announce(db, settings, text="Thông báo của Bộ phận Một cửa", **draft) -> int:
    with db.begin() as session:
        return compose.create(session, compose.Draft(text=text, **draft), settings, "test").id


def deliveries(db, broadcast_id: int) -> dict[str, DeliveryRow]:
    with db() as session:
        return {r.chat_id: r for r in session.scalars(select(DeliveryRow).where(DeliveryRow.broadcast_id == broadcast_id))}


def dispatcher(db, sender, settings) -> Dispatcher:
    return Dispatcher(db, {"telegram": sender}, settings, backoff_base=0.1)


async def test_a_subscriber_gets_their_areas_announcement_and_not_another_areas(fake, sender, db, settings):
    subscribe(db, 101, areas=["phuong-ben-nghe"])
    subscribe(db, 102, areas=["phuong-da-kao"])
    first = announce(db, settings, "Phường Bến Nghé: thứ Bảy này làm việc buổi sáng.", audience="area:Phường Bến Nghé",
                     link_label="Xem lịch", link_url="https://motcua.example.gov.vn/lich")
    report = await dispatcher(db, sender, settings).deliver(first)
    assert (report.state, report.recipients, report.sent) == ("done", 1, 1)
    assert fake.texts(101) == ["Phường Bến Nghé: thứ Bảy này làm việc buổi sáng."]
    assert fake.texts(102) == []
    [button] = fake.messages(101)[0].reply_markup["inline_keyboard"][0]
    assert button == {"text": "Xem lịch", "url": "https://motcua.example.gov.vn/lich"}

    second = announce(db, settings, "Phường Đa Kao: cắt điện chiều thứ Hai.", audience="area:phuong-da-kao")
    await dispatcher(db, sender, settings).deliver(second)
    assert fake.texts(102) == ["Phường Đa Kao: cắt điện chiều thứ Hai."]
    assert len(fake.texts(101)) == 1


async def test_a_user_who_blocked_the_bot_is_unsubscribed(fake, sender, db, settings):
    subscribe(db, 201, 202, 203)
    fake.block(202)
    first = announce(db, settings)
    report = await dispatcher(db, sender, settings).deliver(first)
    assert (report.sent, report.blocked, report.failed) == (2, 1, 0)
    assert deliveries(db, first)["202"].state == "blocked" and "blocked" in deliveries(db, first)["202"].last_error
    with db() as session:
        gone = audience.subscription(session, "telegram", "202")
    assert not gone.active and gone.unsubscribe_reason == "blocked"
    second = announce(db, settings, "Lần hai")
    assert set(deliveries(db, second)) == {"201", "203"}


async def test_a_429_pauses_all_sending_for_retry_after(fake, sender, db, settings):
    chats = list(range(301, 311))
    subscribe(db, *chats)
    fake.fail_next(303, "429")  # retry_after 1
    report = await dispatcher(db, sender, settings).deliver(announce(db, settings))
    assert report.sent == 10 and report.rate_limited == 1
    assert fake.delivered() == {chat: 1 for chat in chats}
    sends = [c for c in fake.calls_to("sendMessage")]
    limited = next(c for c in sends if c.status == 429)
    [retried] = [c for c in fake.calls_to("sendMessage", 303) if c.status == 200]
    # The retry is sent after the 429 reached the client, so it arrives at least retry_after later.
    assert retried.at - limited.at >= 0.95, "the refused message waited retry_after"
    during = [c for c in sends if limited.at < c.at < limited.at + 0.95]
    # Only messages already on their way when the 429 came back may arrive in the pause (paced 0.03 s apart,
    # unpaused sending would bring about 28).
    assert len(during) <= 5, f"{len(during)} messages went out during retry_after"


async def test_transient_errors_are_retried_with_backoff_then_given_up(fake, sender, db, settings):
    subscribe(db, 401, 402, 403)
    fake.fail_next(401, "500", 2)  # fails twice, then gets through on the 3rd attempt
    fake.fail_next(402, "502", math.inf)  # never gets through
    broadcast_id = announce(db, settings)
    report = await dispatcher(db, sender, settings).deliver(broadcast_id)
    assert (report.state, report.sent, report.failed) == ("done", 2, 1)
    rows = deliveries(db, broadcast_id)
    assert (rows["401"].state, rows["401"].attempts) == ("sent", 3)
    assert (rows["402"].state, rows["402"].attempts) == ("failed", 3) and "Bad Gateway" in rows["402"].last_error
    assert fake.texts(401) == ["Thông báo của Bộ phận Một cửa"] and fake.texts(402) == []
    tries = [c.at for c in fake.calls_to("sendMessage", 402)]
    assert len(tries) == 3 and min(tries[2] - tries[1], tries[1] - tries[0]) >= ONE_SECOND_APART, "a chat gets one try a second at most"
    with db() as session:
        assert audience.subscription(session, "telegram", "402").active, "a failure is not a block"


def test_backoff_doubles_after_each_transient_error(db, settings):
    from broadcasts.dispatcher import Item
    from channels.outbound import Delivery, Outcome

    subscribe(db, 450)
    broadcast_id = announce(db, settings)
    [row] = deliveries(db, broadcast_id).values()
    slow = Dispatcher(db, {}, settings.model_copy(update={"broadcast_max_attempts": 5}), backoff_base=10)
    for attempt, (low, high) in zip((1, 2, 3), ((8, 12), (16, 24), (32, 48))):  # 10 s doubling, ±20 % jitter
        before = utcnow()
        slow._record([(Item(row.id, "telegram", "450", attempt), Delivery(Outcome.TRANSIENT, "timed out"))])
        after = utcnow()
        next_attempt = aware(deliveries(db, broadcast_id)["450"].next_attempt_at)
        # Measured from both sides of the call: however long the write took, the delay is inside the range.
        assert next_attempt - before >= timedelta(seconds=low) and next_attempt - after <= timedelta(seconds=high), attempt
    assert deliveries(db, broadcast_id)["450"].state == "pending"


async def test_cancel_while_sending_stops_promptly_and_the_report_counts(fake, sender, db, settings):
    recipients = 300  # 10 s of sending at the platform's pace
    subscribe(db, *range(5000, 5000 + recipients))
    broadcast_id = announce(db, settings)
    sending = asyncio.create_task(dispatcher(db, sender, settings).deliver(broadcast_id))
    await fake.wait_for(lambda: len(fake.sent) >= 30, 30)

    def cancel():
        with db.begin() as session:
            return compose.cancel(session, broadcast_id, "telegram:900")[1]

    await asyncio.to_thread(cancel)
    at_cancel = len(fake.delivered())
    report = await asyncio.wait_for(sending, 30)
    received = len(fake.delivered())
    assert report.state == "cancelled" and report.sent == received and 30 <= received
    # The dispatcher reads the state five times a second: what follows the cancel is what was on its way plus
    # a fraction of a second of sending; 60 is two seconds' worth, room for a busy machine.
    assert received - at_cancel <= 60, f"{received - at_cancel} messages went out after the cancel"
    await asyncio.sleep(0.5)  # a negative check: give a stray request time to show up
    assert len(fake.delivered()) == received, "nothing goes out after the stop"
    rows = deliveries(db, broadcast_id)
    assert sum(r.state == "sent" for r in rows.values()) == received
    assert sum(r.state == "cancelled" for r in rows.values()) == recipients - received
    with db() as session:
        lines = compose.report_lines(session, session.get(BroadcastRow, broadcast_id), settings)
    assert f"đã gửi: {received}" in "\n".join(lines) and "đã hủy" in lines[0]


async def test_one_chat_gets_at_most_one_message_a_second(fake, sender, db, settings):
    subscribe(db, 601)
    announce(db, settings, "Một")
    announce(db, settings, "Hai")
    reports = await dispatcher(db, sender, settings).run_pending()
    assert [r.state for r in reports] == ["done", "done"]
    first, second = fake.messages(601)
    assert [first.text, second.text] == ["Một", "Hai"] and second.at - first.at >= ONE_SECOND_APART


async def test_two_dispatchers_never_send_one_announcement_twice(fake, sender, db, settings):
    subscribe(db, *range(7000, 7060))
    broadcast_id = announce(db, settings)
    one, two = dispatcher(db, sender, settings), dispatcher(db, sender, settings)
    first, second = await asyncio.gather(one.deliver(broadcast_id), two.deliver(broadcast_id))
    assert sorted([first.state, second.state]) == ["busy", "done"]
    assert fake.delivered() == {chat: 1 for chat in range(7000, 7060)}


# --------------------------------------------------------------------------- the bot's background service

async def test_scheduled_announcements_fire_on_time_also_after_a_restart(fake, sender, db, settings):
    subscribe(db, 801)
    later = utcnow() + timedelta(hours=1)
    missed = announce(db, settings, "Đã hẹn khi bot tắt", at=later)
    due = announce(db, settings, "Đúng giờ", at=later)

    async def start_service() -> tuple[AsyncIOScheduler, BroadcastService]:
        scheduler = AsyncIOScheduler(timezone=settings.timezone)
        service = BroadcastService(settings, db)
        await service.start(scheduler, {"telegram": sender})
        scheduler.start()
        return scheduler, service

    async def stop_service(scheduler: AsyncIOScheduler, service: BroadcastService) -> None:
        scheduler.shutdown(wait=False)
        await service.stop()

    await stop_service(*await start_service())  # the bot starts, then stops before either is due
    assert fake.texts(801) == []
    # While the bot is down the first one's time passes; the second falls due shortly after the restart.
    # (Moving the times in the database, rather than waiting for them, keeps the story independent of how
    # fast a loaded machine starts the service.)
    restarted, restarted_clock = utcnow(), time.perf_counter()
    due_at = restarted + timedelta(seconds=2)
    with db.begin() as session:
        session.get(BroadcastRow, missed).scheduled_at = restarted - timedelta(minutes=10)
        session.get(BroadcastRow, due).scheduled_at = due_at
    running = await start_service()
    try:
        [missed_message] = await fake.wait_messages(801, 1, timeout=30)
        assert missed_message.text == "Đã hẹn khi bot tắt"
        [_, due_message] = await fake.wait_messages(801, 2, timeout=30)
        assert due_message.text == "Đúng giờ"
        # Not before its time (the fake's clock is perf_counter; 0.05 s for the two clocks' reading apart).
        assert due_message.at - restarted_clock >= (due_at - restarted).total_seconds() - 0.05
        await eventually(lambda: [state(db, i) for i in (missed, due)] == ["done", "done"], what="both announcements done")
    finally:
        await stop_service(*running)


def state(db, broadcast_id: int) -> str:
    with db() as session:
        return session.get(BroadcastRow, broadcast_id).state


async def test_the_service_carries_on_an_announcement_left_half_sent(fake, sender, db, settings):
    subscribe(db, *range(900, 920))
    broadcast_id = announce(db, settings)
    with db.begin() as session:  # a process on this machine died while sending: its lease and rows remain
        ids = list(session.scalars(select(DeliveryRow.id).where(DeliveryRow.broadcast_id == broadcast_id).order_by(DeliveryRow.id)))
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids[:5])).values(state="sent", sent_at=utcnow()))
        session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(ids[5:8])).values(state="in_flight", claimed_at=utcnow()))
        session.execute(update(BroadcastRow).where(BroadcastRow.id == broadcast_id)
                        .values(lease_owner=f"{__import__('socket').gethostname()}:999999999:dead",
                                lease_until=utcnow() + timedelta(minutes=5)))
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    service = BroadcastService(settings, db)
    await service.start(scheduler, {"telegram": sender})
    scheduler.start()
    try:
        await fake.wait_for(lambda: len(fake.sent) >= 15, 30)
    finally:
        scheduler.shutdown(wait=False)
        await service.stop()
    assert set(fake.delivered()) == set(range(905, 920)), "the 5 recorded as sent are not sent again; nobody is skipped"


# --------------------------------------------------------------------------- the benchmark, small

async def test_small_benchmark_at_the_platform_limit_exactly_once(database_url):
    """150 recipients against a fake answering 429 beyond 30 messages in any second: whatever 429s the jitter
    of a busy machine brings, every chat gets the announcement exactly once. (The rate is the benchmark's
    figure, `python -m broadcasts.bench`: a wall-clock floor here failed on a loaded machine.)"""
    result = await bench.run_in_process(database_url, 150, rate_limit=30)
    assert (result.lost, result.duplicates, result.delivered_once) == (0, 0, 150), result.lines()


async def test_small_benchmark_kill_9_at_half_and_restart_loses_nobody(database_url):
    """`bot.py broadcast run` as a real process, SIGKILLed at the half, started again."""
    result = await bench.run_killed(database_url, 300, rate_limit=100, messages_per_second=95, timeout=180)
    assert result.sent_before_kill is not None and 150 <= result.sent_before_kill < 300, result.lines()
    assert result.lost == 0, result.lines()
    assert result.duplicates_outside_in_flight == 0, result.lines()
    assert result.duplicates <= result.in_flight_at_kill, result.lines()
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            states = dict(session.execute(select(DeliveryRow.state, func.count()).group_by(DeliveryRow.state)).all())
            assert states == {"sent": 300}
            assert session.scalar(select(BroadcastRow.state)) == "done"
    finally:
        engine.dispose()


def test_subscriptions_insert_in_bulk(db):
    """The benchmark's setup path: thousands of subscribers in one statement."""
    with db.begin() as session:
        session.execute(insert(SubscriptionRow), [{"channel": "telegram", "chat_id": str(i), "areas": [], "topics": [],
                                                   "created_at": utcnow()} for i in range(2000)])
    with db() as session:
        assert len(audience.recipients(session, audience.Audience("all"))) == 2000


async def test_one_announcement_on_telegram_and_zalo_at_once(fake, sender, db, settings):
    """Zalo has no buttons: the link is written under the text; its blocked users are unsubscribed too."""
    from fake_zalo import FakeZalo

    from channels.outbound import ZaloSender

    zalo = FakeZalo()
    await zalo.start()
    zalo_sender = ZaloSender(zalo.token, zalo.base_url)
    try:
        subscribe(db, 1101, 1102)
        with db.begin() as session:
            for chat_id in ("z-1", "z-2", "z-3"):
                audience.subscribe(session, "zalo", chat_id)
        zalo.block("z-2")
        broadcast_id = announce(db, settings, "Ngày thứ Năm không hẹn.", link_label="Chi tiết", link_url="https://example.gov.vn/tb")
        both = Dispatcher(db, {"telegram": sender, "zalo": zalo_sender}, settings)
        report = await both.deliver(broadcast_id)
        assert (report.state, report.recipients, report.sent, report.blocked) == ("done", 5, 4, 1)
        assert zalo.sent["z-1"] == ["Ngày thứ Năm không hẹn.\n\nChi tiết: https://example.gov.vn/tb"]
        assert zalo.sent["z-3"] == zalo.sent["z-1"] and not zalo.sent["z-2"]
        assert fake.texts(1101) == ["Ngày thứ Năm không hẹn."] == fake.texts(1102)
        with db() as session:
            assert not audience.subscription(session, "zalo", "z-2").active
    finally:
        await zalo_sender.aclose()
        await zalo.stop()


async def test_a_channel_this_process_cannot_send_on_is_left_for_another(fake, sender, db, settings):
    """`broadcast run` without ZALO_BOT_TOKEN sends the Telegram messages and leaves the Zalo ones pending."""
    subscribe(db, 1201)
    with db.begin() as session:
        audience.subscribe(session, "zalo", "z-9")
    broadcast_id = announce(db, settings)
    report = await dispatcher(db, sender, settings).deliver(broadcast_id)
    assert (report.state, report.sent) == ("waiting", 1)
    assert deliveries(db, broadcast_id)["z-9"].state == "pending"
    with db() as session:
        row = session.get(BroadcastRow, broadcast_id)
        assert row.state == "sending" and row.lease_owner is None, "another process may take it up at once"


async def test_a_scheduled_announcement_does_not_wait_for_a_long_one_being_sent(fake, sender, db, settings):
    subscribe(db, *range(1300, 1450), areas=["phuong-da-kao"])  # 150 messages: about 5 s at 30/s
    subscribe(db, 1500, areas=["phuong-ben-nghe"])
    announce(db, settings, "Dài", audience="area:phuong-da-kao")
    at = utcnow() + timedelta(seconds=1)
    announce(db, settings, "Hẹn giờ", audience="area:phuong-ben-nghe", at=at)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    service = BroadcastService(settings, db)
    await service.start(scheduler, {"telegram": sender})
    scheduler.start()
    try:
        [scheduled] = await fake.wait_messages(1500, 1, timeout=30)
        long_left = 150 - len([c for c in fake.sent if 1300 <= c < 1450])
        assert scheduled.text == "Hẹn giờ" and long_left > 0, "sent while the long one was still going"
        await fake.wait_for(lambda: len(fake.delivered()) == 151, 30)
    finally:
        scheduler.shutdown(wait=False)
        await service.stop()
    assert set(fake.delivered().values()) == {1}
