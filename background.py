"""Work the bot does on its own while it serves the chats (dossier reminders, announcements), in one place.

Each feature with background work provides a `BackgroundService`; `run_channels` starts them all on one
APScheduler with a sender for every running channel, and stops them on shutdown.
"""

from __future__ import annotations

from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session, sessionmaker

from channels.outbound import Sender
from config import Settings


class BackgroundService(Protocol):
    name: str

    async def start(self, scheduler: AsyncIOScheduler, senders: dict[str, Sender]) -> None:
        """Add the service's jobs to the scheduler (and start servers it needs)."""
        ...

    async def stop(self) -> None: ...


def background_services(settings: Settings, db: sessionmaker[Session]) -> list[BackgroundService]:
    """Every feature's background work, registered here."""
    from broadcasts.service import BroadcastService
    from handoff.service import HandoffService
    from knowledge.question_log import RetentionService
    from reminders.service import ReminderService

    return [BroadcastService(settings, db), ReminderService(settings, db), RetentionService(settings, db),
            HandoffService(settings, db)]
