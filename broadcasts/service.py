"""Announcements as a background service of the running bot (see background.py).

On start it carries on any announcement left half-sent (a crash, a restart) and puts every scheduled one
on the scheduler as a date job, so a restart re-creates them from the database. Announcements created
by another process (the CLI, another bot) are found by a light poll every few seconds; the date jobs
make scheduled ones fire on the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.dispatcher import Dispatcher
from broadcasts.models import BroadcastRow, State, aware
from channels.outbound import Sender
from config import Settings

log = logging.getLogger(__name__)


class BroadcastService:
    name = "broadcasts"

    def __init__(self, settings: Settings, db: sessionmaker[Session]) -> None:
        self.settings = settings
        self.db = db
        self.dispatcher: Dispatcher | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.jobs: dict[int, datetime] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._worker: asyncio.Task | None = None
        self._active: dict[int, asyncio.Task] = {}  # announcement id -> its delivery in this process

    async def start(self, scheduler: AsyncIOScheduler, senders: dict[str, Sender]) -> None:
        self.scheduler = scheduler
        self.dispatcher = Dispatcher(self.db, senders, self.settings)
        await self._schedule()
        scheduler.add_job(self._poll, "interval", seconds=max(0.2, self.settings.broadcast_poll_seconds),
                          id="broadcasts-poll", replace_existing=True, max_instances=1, coalesce=True)
        self._worker = asyncio.create_task(self._work(), name="broadcasts")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        tasks = [t for t in (self._worker, *self._active.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:  # a cancelled delivery still records what it sent and hands its claimed rows back
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wake(self) -> None:
        self._wake.set()

    def _scheduled(self) -> list[tuple[int, datetime]]:
        with self.db() as session:
            rows = session.execute(select(BroadcastRow.id, BroadcastRow.scheduled_at)
                                   .where(BroadcastRow.state == State.SCHEDULED.value))
            return [(i, aware(at)) for i, at in rows if at is not None]

    async def _schedule(self) -> None:
        """A date job per scheduled announcement (a past time runs at once: it was missed while we were down)."""
        current = dict(await asyncio.to_thread(self._scheduled))
        for broadcast_id, at in current.items():
            if self.jobs.get(broadcast_id) == at:
                continue
            self.scheduler.add_job(self._fire, "date", run_date=at, args=[broadcast_id], id=f"broadcast-{broadcast_id}",
                                   replace_existing=True, misfire_grace_time=None)
            self.jobs[broadcast_id] = at
            log.info("announcement %s scheduled for %s", broadcast_id, at.isoformat())
        for broadcast_id in [i for i in self.jobs if i not in current]:  # sent, or cancelled
            del self.jobs[broadcast_id]
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(f"broadcast-{broadcast_id}")

    async def _fire(self, broadcast_id: int) -> None:
        log.info("announcement %s is due", broadcast_id)
        self._wake.set()

    async def _poll(self) -> None:
        try:
            await self._schedule()
        except Exception:  # noqa: BLE001 - a database hiccup: the next poll tries again
            log.exception("looking for announcements failed")
        self._wake.set()

    async def _work(self) -> None:
        """Start a delivery for every due announcement not being delivered yet; they run side by side (one
        scheduled for 9:00 does not wait for a long one started at 8:55) and share each platform's pace."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                for broadcast_id in await asyncio.to_thread(self.dispatcher.due):
                    if broadcast_id not in self._active:
                        task = asyncio.create_task(self._deliver(broadcast_id), name=f"broadcast-{broadcast_id}")
                        self._active[broadcast_id] = task
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup: the next round tries again
                log.exception("looking for announcements to send failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.2, self.settings.broadcast_poll_seconds))

    async def _deliver(self, broadcast_id: int) -> None:
        try:
            report = await self.dispatcher.deliver(broadcast_id)
            if report.state in ("done", "cancelled"):
                log.warning("announcement %s %s: %d sent, %d blocked, %d failed (%.1f msg/s)", broadcast_id, report.state,
                            report.sent, report.blocked, report.failed, report.rate)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep serving; the rows say where sending stopped, the next round resumes
            log.exception("sending announcement %s failed; trying again shortly", broadcast_id)
            await asyncio.sleep(self.settings.broadcast_poll_seconds)
        finally:
            self._active.pop(broadcast_id, None)
