"""The running bot as `bot.py run` wires it: chats, dossier reminders and announcements on one scheduler.

A citizen follows a dossier and subscribes over Telegram (the fake Bot API, the real client). Staff then
import a status change and create an announcement from the terminal, in other sessions. Both messages
reach the citizen with nobody running a job by hand. And the reminder job, woken by a pushed status while a scan
is running, makes another pass at once.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from conftest import eventually, make_settings
from fake_telegram import FakeTelegram

from background import background_services
from broadcasts import compose
from channels.outbound import ConsoleSender
from channels.runner import run_channels
from handlers import build_router
from knowledge.db import session_factory
from reminders import service as reminder_service
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates

CODE = "000.00.12.H12-240506-0007"
CITIZEN = 7001
DIGITS = "4567"  # the last 4 digits of the phone number given at the office: the citizen proves they filed it


async def test_reminders_and_announcements_both_reach_a_citizen_while_the_bot_runs(catalog, open_kb, database_url):
    db = session_factory(open_kb())
    with db.begin() as session:
        apply_updates(session, [DossierUpdate(code=CODE, status=Status.PROCESSING, procedure="Đăng ký khai sinh",
                                              due_at=datetime.now(UTC) + timedelta(days=5), phone_last4=DIGITS,
                                              given=frozenset({"procedure", "due_at", "phone_last4"}))],
                      "import:mot-cua.csv")
    async with FakeTelegram() as fake:
        settings = make_settings(database_url, telegram_bot_token=fake.token, telegram_api_base_url=fake.base_url,
                                 quiet_hours_start="00:00", quiet_hours_end="00:00",  # whatever the hour of the test
                                 reminder_scan_seconds=0.3, broadcast_poll_seconds=0.3)
        router = build_router(catalog, settings, db)
        serving = asyncio.create_task(run_channels(router, settings, ["telegram"], services=background_services(settings, db)))
        try:
            fake.push_text(CITIZEN, f"/theodoi {CODE} {DIGITS}")
            [followed] = await fake.wait_messages(CITIZEN, 1, timeout=30)
            assert f"Đã theo dõi hồ sơ {CODE}" in followed.text
            fake.push_text(CITIZEN, "/dangky")
            await fake.wait_messages(CITIZEN, 2, timeout=30)

            with db.begin() as session:  # as `bot.py dossiers import` and `bot.py broadcast send` would
                apply_updates(session, [DossierUpdate(code=CODE, status=Status.RESULT_READY)], "import:mot-cua.csv",
                              datetime.now(UTC))
                compose.create(session, compose.Draft(text="Thứ Năm tuần này Bộ phận Một cửa không hẹn trả kết quả."),
                               settings, "cli:test")

            texts = [m.text for m in await fake.wait_messages(CITIZEN, 4, timeout=30)][2:]
        finally:
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
    assert any(f"Hồ sơ {CODE} (Đăng ký khai sinh) đã có kết quả" in text for text in texts), texts
    assert "Thứ Năm tuần này Bộ phận Một cửa không hẹn trả kết quả." in texts


async def test_a_status_pushed_while_a_scan_runs_is_looked_at_right_after_it(db, monkeypatch):
    """The lost wake-up: a pushed change wakes the reminder job, but APScheduler skips a run asked for while one
    is going. A change arriving during a scan (which may have read the dossiers before it) must get another pass
    at once, not one a whole interval later (here an hour)."""
    scanning, release = threading.Event(), threading.Event()
    passes: list[datetime] = []
    real_scan = reminder_service.scan

    def scan(*args, **kwargs):
        result = real_scan(*args, **kwargs)
        passes.append(datetime.now(UTC))
        if len(passes) == 1:  # the first pass holds here, provably running, until the test lets it go
            scanning.set()
            release.wait(60)
        return result

    monkeypatch.setattr(reminder_service, "scan", scan)
    settings = make_settings(reminder_scan_seconds=3600)
    service = reminder_service.ReminderService(settings, db)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    await service.start(scheduler, {"console": ConsoleSender(echo=False)})
    scheduler.start()
    try:
        await eventually(scanning.is_set, what="the first scan running")
        service.wake()  # what the push endpoint does after storing a changed status
        release.set()
        await eventually(lambda: service.ticks >= 2, what="a second pass after the wake during the first")
        assert len(passes) == 2
    finally:
        release.set()
        scheduler.shutdown(wait=False)
        await service.stop()
