"""The reminder service's wake-ups (issue 12, item 4): a status pushed while a pass runs, or at the very moment
one ends, gets its own pass at once, never one a whole interval later (here an hour). Passes are counted by the
scan they run; the tests wait on conditions and hold a pass open with events, never with timed sleeps."""

from __future__ import annotations

import asyncio
import threading

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from conftest import eventually, make_settings

from channels.outbound import ConsoleSender
from reminders import service as reminder_service

HOUR = 3600


async def _running(service, settings) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    await service.start(scheduler, {"console": ConsoleSender(echo=False)})
    scheduler.start()
    return scheduler


async def test_a_wake_during_a_pass_gets_another_pass_right_after_it(db, monkeypatch):
    scanning, release = threading.Event(), threading.Event()
    passes: list[int] = []
    real_scan = reminder_service.scan

    def scan(*args, **kwargs):
        passes.append(1)
        if len(passes) == 1:  # the first pass holds here, provably running, until the test lets it go
            scanning.set()
            release.wait(60)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(reminder_service, "scan", scan)
    settings = make_settings(reminder_scan_seconds=HOUR)
    service = reminder_service.ReminderService(settings, db)
    scheduler = await _running(service, settings)
    try:
        await eventually(scanning.is_set, what="the first scan running")
        service.wake()
        service.wake()  # two wakes during one pass ask for one more pass, not two
        release.set()
        await eventually(lambda: service.ticks >= 2, what="a second pass after the wake during the first")
        assert len(passes) == 2
    finally:
        release.set()
        scheduler.shutdown(wait=False)
        await service.stop()


async def test_a_wake_at_the_moment_a_pass_ends_is_not_lost(db, monkeypatch):
    """The lost wake-up as it happened: the pass has just ended, and before the scheduler counts the job as
    finished it processes its jobs (another job on the same scheduler fell due): the run asked for by the
    wake is skipped as "already running" and put off by a whole interval."""
    scheduler_box: list[AsyncIOScheduler] = []
    passes: list[int] = []
    real_dispatch = reminder_service.dispatch

    async def dispatch(*args, **kwargs):
        result = await real_dispatch(*args, **kwargs)
        passes.append(1)
        if len(passes) == 1:  # the last step of the first pass: a status arrives, another job falls due
            asyncio.get_running_loop().call_soon(service.wake)
            scheduler_box[0].wakeup()
        return result

    monkeypatch.setattr(reminder_service, "dispatch", dispatch)
    settings = make_settings(reminder_scan_seconds=HOUR)
    service = reminder_service.ReminderService(settings, db)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    scheduler_box.append(scheduler)
    await service.start(scheduler, {"console": ConsoleSender(echo=False)})
    scheduler.start()
    try:
        await eventually(lambda: len(passes) >= 2, timeout=10, what="a pass for the wake at the end of the first")
    finally:
        scheduler.shutdown(wait=False)
        await service.stop()


async def test_a_wake_from_another_thread_is_honoured(db):
    settings = make_settings(reminder_scan_seconds=HOUR)
    service = reminder_service.ReminderService(settings, db)
    scheduler = await _running(service, settings)
    try:
        await eventually(lambda: service.ticks >= 1, what="the first pass at start")
        await asyncio.to_thread(service.wake)  # e.g. a status applied by code running in a worker thread
        await eventually(lambda: service.ticks >= 2, what="a pass after a wake from a thread")
    finally:
        scheduler.shutdown(wait=False)
        await service.stop()


async def test_stop_ends_the_service_and_a_late_wake_is_harmless(db):
    settings = make_settings(reminder_scan_seconds=HOUR)
    service = reminder_service.ReminderService(settings, db)
    scheduler = await _running(service, settings)
    await eventually(lambda: service.ticks >= 1, what="the first pass at start")
    scheduler.shutdown(wait=False)
    await service.stop()
    done = service.ticks
    service.wake()
    await asyncio.sleep(0)  # let anything the wake might (wrongly) have started take its first step
    assert service.ticks == done
