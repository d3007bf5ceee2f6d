"""The reminder service while the bot runs: a periodic scan-and-send job, and the status sources if configured."""

from __future__ import annotations

import asyncio
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
    name = "reminders"

    def __init__(self, settings: Settings, db: sessionmaker[Session]) -> None:
        self.settings = settings
        self.db = db
        self.senders: dict[str, Sender] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.push = None
        self.ticks = 0  # scan-and-send passes done
        self._running = False
        self._again = False

    async def start(self, scheduler: AsyncIOScheduler, senders: dict[str, Sender]) -> None:
        self.scheduler = scheduler
        self.senders = senders
        now = datetime.now(UTC)
        scheduler.add_job(self.tick, "interval", seconds=self.settings.reminder_scan_seconds, id=JOB_ID, next_run_time=now,
                          max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.settings.dossier_status_url:
            scheduler.add_job(self.poll, "interval", seconds=self.settings.dossier_poll_seconds, id=JOB_ID + "-poll",
                              next_run_time=now, max_instances=1, coalesce=True, misfire_grace_time=None)
        if self.settings.dossier_push_api_key:
            from reminders.sources import PushServer

            self.push = PushServer(self.settings, self.db, on_change=self.wake)
            await self.push.start()

    def wake(self) -> None:
        """A status change arrived: look for reminders now rather than at the next interval."""
        if self._running:
            # APScheduler skips a run asked for while one is going (max_instances=1) and the running pass
            # may have scanned before the change: the running tick makes another pass when it ends.
            self._again = True
            return
        if self.scheduler is not None and self.scheduler.get_job(JOB_ID) is not None:
            self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    async def tick(self) -> None:
        """Scan and send; again at once if woken meanwhile."""
        # Called on the event loop like wake(): nothing can run between the last check of _again and
        # _running going false, so no wake-up falls between the two.
        self._running = True
        try:
            while True:
                self._again = False
                await self._pass()
                if not self._again:
                    return
        finally:
            self._running = False

    async def _pass(self) -> None:
        """One scan for due reminders and one round of sending them."""
        try:
            await asyncio.to_thread(scan, self.db, self.settings, datetime.now(UTC))
            result = await dispatch(self.db, self.senders, self.settings)
            if result.sent or result.undeliverable or result.deferred:
                log.info("reminders: %s", result.describe())
        except Exception:  # noqa: BLE001 - the next tick tries again; a crash here must not stop the scheduler
            log.exception("reminder job failed")
        finally:
            self.ticks += 1

    async def poll(self) -> None:
        from reminders.sources import poll_once

        try:
            result = await poll_once(self.settings, self.db)
            if result.applied and result.applied.changed:
                self.wake()
        except Exception:  # noqa: BLE001 - the next poll tries again
            log.exception("polling the dossier status URL failed")

    async def stop(self) -> None:
        if self.push is not None:
            await self.push.stop()
            self.push = None
