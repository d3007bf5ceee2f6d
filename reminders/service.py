"""The reminder service while the bot runs: a periodic scan-and-send job, and the status sources if configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session, sessionmaker

from channels.outbound import Sender
from config import Settings
from reminders.dispatch import dispatch
from reminders.scan import scan

log = logging.getLogger(__name__)
JOB_ID = "dossier-reminders"


class ReminderService:
    """Scans and sends in its own loop: every REMINDER_SCAN_SECONDS, and at once when woken.

    A wake sets an event that the loop clears *before* each pass, so a wake arriving during a pass (which
    may have read the dossiers before the change) or at the instant it ends makes the loop pass again right
    after. The loop is not an APScheduler job: a run asked for while one is counted as running is skipped
    there, and the instant between a job's end and the scheduler counting it finished lost wake-ups.
    """

    name = "reminders"

    def __init__(self, settings: Settings, db: sessionmaker[Session]) -> None:
        self.settings = settings
        self.db = db
        self.senders: dict[str, Sender] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.push = None
        self.ticks = 0  # scan-and-send passes done
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self, scheduler: AsyncIOScheduler, senders: dict[str, Sender]) -> None:
        self.scheduler = scheduler
        self.senders = senders
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=JOB_ID)
        if self.settings.dossier_status_url:
            scheduler.add_job(self.poll, "interval", seconds=self.settings.dossier_poll_seconds, id=JOB_ID + "-poll",
                              next_run_time=datetime.now(UTC), max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.settings.dossier_push_api_key:
            from reminders.sources import PushServer

            self.push = PushServer(self.settings, self.db, on_change=self.wake)
            await self.push.start()

    def wake(self) -> None:
        """A status change arrived: look for reminders now rather than at the next interval (any thread)."""
        loop, woken = self._loop, self._woken
        if loop is None or woken is None or self._stopping or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            woken.set()
        else:  # asyncio.Event is not thread-safe: set it on its own loop
            loop.call_soon_threadsafe(woken.set)

    async def _run(self) -> None:
        """Pass, then sleep until the interval is over or a wake comes, whichever is first; until stopped."""
        assert self._woken is not None
        while not self._stopping:
            self._woken.clear()  # before the pass: a wake during it is kept for the next round
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=self.settings.reminder_scan_seconds)

    async def tick(self) -> None:
        """One scan for due reminders and one round of sending them."""
        try:
            await asyncio.to_thread(scan, self.db, self.settings, datetime.now(UTC))
            result = await dispatch(self.db, self.senders, self.settings)
            if result.sent or result.undeliverable or result.deferred:
                log.info("reminders: %s", result.describe())
        except Exception:  # the next pass tries again; one failure must not end the loop
            log.exception("reminder job failed")
        finally:
            self.ticks += 1

    async def poll(self) -> None:
        from reminders.sources import poll_once

        try:
            result = await poll_once(self.settings, self.db)
            if result.applied and result.applied.changed:
                self.wake()
        except Exception:  # the next poll tries again
            log.exception("polling the dossier status URL failed")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop taking pushes, let a pass in progress finish (bounded: claimed reminders are leased and
        taken up again after a restart anyway), then end the loop."""
        self._stopping = True
        if self.push is not None:
            await self.push.stop()
            self.push = None
        task, self._task = self._task, None
        if task is not None:
            if self._woken is not None:
                self._woken.set()
            done, _ = await asyncio.wait({task}, timeout=drain_seconds)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
