"""The hand-off service while the bot runs (background.py): delivers what officers wrote, ends idle
conversations, posts hand-offs to the Telegram staff group, and asks for a rating after a dossier's result.

Officers write in the web console (maybe another process) or the staff group; their messages wait in the
outbox table (knowledge.handoff_store) and this loop sends them on the citizen's own channel through the
senders it is given (Telegram, Zalo Bot, Zalo OA: its sender keeps to the reply window). Each message is
claimed with a conditional UPDATE and a lease, so two bot processes never send one twice, and a process
that dies mid-send leaves it to be taken up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.limits import Priority, limiter_for, limiter_of
from channels.outbound import Delivery, Outcome, Sender
from config import Settings
from handlers.messages import Button
from handoff import actions
from knowledge import handoff_store as store
from knowledge.models import utc_now
from redaction import chat_tag, redact, register_secret

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0
MAX_ATTEMPTS = 8  # network trouble, spaced 2, 4 ... 256 s apart: then the message is marked not delivered
RESULT_RATING_DAYS = 3  # a dossier returned this recently is asked about (older ones: too late to ask)


class GroupPoster:
    """Posts to the Telegram staff group and tells the message's id, so an officer's reply to it is understood."""

    def __init__(self, token: str, base_url: str | None = None) -> None:
        from telegram import Bot

        from channels.http import AiohttpRequest
        from channels.telegram import file_url_for

        register_secret(token)
        kwargs = {"base_url": base_url, "base_file_url": file_url_for(base_url)} if base_url else {}
        self.bot = Bot(token, request=AiohttpRequest(4, pool_timeout=30), **kwargs)
        self.limiter = limiter_for("telegram", token)
        self._ready = False

    async def post(self, chat_id: str, text: str) -> tuple[Delivery, str | None]:
        from telegram import LinkPreviewOptions
        from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

        from channels.telegram import retry_after_seconds

        await self.limiter.acquire(chat_id, priority=Priority.BACKGROUND, group=True)
        try:
            if not self._ready:
                await self.bot.initialize()
                self._ready = True
            message = await self.bot.send_message(chat_id, text[:4096], link_preview_options=LinkPreviewOptions(is_disabled=True))
            return Delivery(Outcome.SENT), str(message.message_id)
        except RetryAfter as error:
            seconds = retry_after_seconds(error)
            self.limiter.pause(seconds)
            return Delivery(Outcome.RATE_LIMITED, error.message, seconds), None
        except (Forbidden, BadRequest) as error:
            return Delivery(Outcome.REJECTED, error.message), None
        except NetworkError as error:
            return Delivery(Outcome.TRANSIENT, error.message), None
        except TelegramError as error:
            return Delivery(Outcome.TRANSIENT, f"{type(error).__name__}: {error.message}"), None

    async def aclose(self) -> None:
        if self._ready:
            await self.bot.shutdown()
            self._ready = False


class HandoffService:
    name = "handoff"

    def __init__(self, settings: Settings, db: sessionmaker[Session]) -> None:
        self.settings = settings
        self.db = db
        self.senders: dict[str, Sender] = {}
        self.poster: GroupPoster | None = None
        self.ticks = 0
        self.token = uuid.uuid4().hex
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._woken: asyncio.Event | None = None

    async def start(self, scheduler: AsyncIOScheduler, senders: dict[str, Sender]) -> None:
        self.senders = senders
        settings = self.settings
        if settings.handoff_telegram_group_id and settings.telegram_bot_token and "telegram" in senders:
            self.poster = GroupPoster(settings.telegram_bot_token, settings.telegram_api_base_url)
        self._stopping = False
        self._woken = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="handoff")

    def wake(self) -> None:
        if self._woken is not None:
            self._woken.set()

    async def _run(self) -> None:
        assert self._woken is not None
        while not self._stopping:
            self._woken.clear()
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=self.settings.handoff_poll_seconds)

    async def tick(self, now: datetime | None = None) -> None:
        """One round: end idle conversations, ask about returned dossiers, send what is due."""
        try:
            moment = now or utc_now()
            await asyncio.to_thread(self.close_idle, moment)
            await asyncio.to_thread(self.ask_dossier_ratings, moment)
            await self.deliver(now)
        except Exception:  # the next round tries again; one failure must not end the loop
            log.exception("hand-off round failed")
        finally:
            self.ticks += 1

    # ------------------------------------------------------------------ ending and asking

    def close_idle(self, now: datetime) -> int:
        minutes = self.settings.handoff_idle_minutes
        since = now - timedelta(minutes=minutes)
        closed = 0
        with self.db() as session:
            for handoff_id in store.idle_handoffs(session, since):
                notice = actions.CLOSED_IDLE.format(minutes=f"{minutes:g}")
                if actions.end(session, handoff_id, "idle", self.settings, now, notify=notice, idle_since=since):
                    closed += 1
        return closed

    def ask_dossier_ratings(self, now: datetime) -> int:
        """After a "result returned" reminder went out, ask that chat to rate (once per reminder)."""
        from reminders.models import ReminderRow
        from reminders.statuses import Status

        asked = 0
        with self.db() as session:
            rows = session.execute(select(ReminderRow.id, ReminderRow.channel, ReminderRow.chat_id, ReminderRow.dossier_code)
                                   .where(ReminderRow.kind == Status.RETURNED.value, ReminderRow.state == "sent",
                                          ReminderRow.sent_at >= now - timedelta(days=RESULT_RATING_DAYS))
                                   .order_by(ReminderRow.id)).all()
            for reminder_id, channel, chat_id, code in rows:
                request = store.ask_rating(session, f"reminder:{reminder_id}", channel, chat_id, "dossier", now, actions.RATING_HOURS)
                if request is None:
                    continue
                store.queue(session, channel, chat_id, actions.RATE_DOSSIER.format(code=code),
                            buttons=actions.rating_rows(request.id), now=now)
                session.commit()
                asked += 1
        return asked

    # ------------------------------------------------------------------ delivering

    async def deliver(self, now: datetime | None = None) -> int:
        """Send every message that is due on a running channel; how many went out."""
        channels = sorted(self.senders)
        if not channels:
            return 0
        sent = 0
        while True:
            moment = now or utc_now()
            ids = await asyncio.to_thread(self._due, moment, channels)
            taken = 0
            for outbox_id in ids:
                row = await asyncio.to_thread(self._take, outbox_id, now or utc_now())
                if row is None:
                    continue
                taken += 1
                if await self._send(row, now):
                    sent += 1
            if not taken:
                return sent

    def _due(self, now: datetime, channels: list[str]) -> list[int]:
        with self.db() as session:
            return store.due_outbox(session, now, channels)

    def _take(self, outbox_id: int, now: datetime) -> store.OutboxRow | None:
        with self.db() as session:
            row = store.take(session, outbox_id, now, LEASE_SECONDS)
            if row is not None:
                session.expunge(row)
            return row

    async def _send(self, row: store.OutboxRow, now: datetime | None) -> bool:
        platform_id = None
        try:
            if row.target == store.TO_GROUP:
                if self.poster is None:
                    delivery = Delivery(Outcome.REJECTED, "chưa cấu hình nhóm Telegram của cán bộ trong tiến trình này")
                else:
                    delivery, platform_id = await self.poster.post(row.chat_id, row.text)
            else:
                sender = self.senders[row.channel]
                buttons = [[Button(label, data) for label, data in line] for line in row.buttons or []]
                await limiter_of(sender).acquire(row.chat_id, priority=Priority.BACKGROUND)
                text = row.text if len(row.text) <= sender.max_text else row.text[: sender.max_text - 1] + "…"
                delivery = await sender.send(row.chat_id, text, buttons or None)
        except Exception as error:  # a sender's bug must not lose the message
            log.exception("hand-off message %s not sent", row.id)
            delivery = Delivery(Outcome.TRANSIENT, f"{type(error).__name__}: {error}")
        done = now or utc_now()
        await asyncio.to_thread(self._finish, row, delivery, platform_id, done)
        return delivery.sent

    def _finish(self, row: store.OutboxRow, delivery: Delivery, platform_id: str | None, now: datetime) -> None:
        if delivery.outcome is Outcome.SENT:
            values = {"state": store.SENT, "sent_at": now, "platform_message_id": platform_id, "error": None}
        elif delivery.outcome is Outcome.RATE_LIMITED:
            values = {"state": store.PENDING, "attempts": row.attempts - 1,
                      "next_try_at": now + timedelta(seconds=max(delivery.retry_after or 1.0, 1.0))}
        elif delivery.outcome is Outcome.TRANSIENT and row.attempts < MAX_ATTEMPTS:
            values = {"state": store.PENDING, "next_try_at": now + timedelta(seconds=2 ** row.attempts),
                      "error": redact(delivery.detail)}
        else:
            values = {"state": store.FAILED, "error": redact(delivery.detail or delivery.outcome.value)}
            log.warning("hand-off message %s to %s not delivered: %s", row.id, chat_tag(row.channel, row.chat_id), delivery.outcome)
        with self.db() as session:
            store.finish(session, row.id, values)

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            self.wake()
            done, _ = await asyncio.wait({task}, timeout=5.0)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.poster is not None:
            await self.poster.aclose()
            self.poster = None
