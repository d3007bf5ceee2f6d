"""The record of every question a citizen asked, for the console's overview (issue 14).

One row per reply that did something with a question (handlers: `Reply.outcome`): when, on which channel,
what the bot did (answered / clarified / not_understood / law), which entry and aspects it answered, and the
👍/👎 given under that answer. The citizen is never named: `citizen` is a keyed one-way hash (HMAC-SHA256)
of "channel:chat_id" that only counts distinct citizens and finds a chat's rows again for /xoadulieu and
for the vote. Its key is a random value made on first use and kept in the database (kb_meta), so someone
holding the log alone cannot confirm a guessed chat id. Rows older than QUESTION_LOG_DAYS are deleted daily.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import weakref
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, DateTime, Index, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.models import Base, MetaRow, as_utc, utc_now

log = logging.getLogger(__name__)

OUTCOMES = ("answered", "clarified", "not_understood", "law")
VOTES = ("up", "down")
KEY_META = "question_log_key"  # kb_meta: the installation's random key of the citizen hash


class QuestionLogRow(Base):
    """One question and what the bot did with it; no chat id, no name, no text of the question."""

    __tablename__ = "question_log"
    __table_args__ = (
        # Leads with asked_at (ranges of days) and holds every column the overview groups or counts, so its figures
        # are read from the index alone (4x faster on 10,000 questions than through the table).
        Index("ix_question_log_asked_at", "asked_at", "typed", "outcome", "channel", "vote", "entry_id", "citizen"),
        Index("ix_question_log_citizen_entry", "citizen", "entry_id"),  # a chat's rows: its vote, /xoadulieu
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))  # answered | clarified | not_understood | law
    entry_id: Mapped[str | None] = mapped_column(String(64))
    aspects: Mapped[str | None] = mapped_column(String(255))  # comma-separated, as answered
    # False for a tapped button, a number picking a choice or a deep link: counted with its vote, not as a question.
    typed: Mapped[bool] = mapped_column(Boolean, default=True)
    citizen: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 of "channel:chat_id", hex
    vote: Mapped[str | None] = mapped_column(String(8))  # up | down


# The key per engine (one database, one key), read once per process.
_keys: weakref.WeakKeyDictionary[object, bytes] = weakref.WeakKeyDictionary()


def _key(session: Session) -> bytes:
    """The installation's key, made (randomly, once) on first use; two processes racing keep the first."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    cached = _keys.get(engine)
    if cached is not None:
        return cached
    value = session.scalar(select(MetaRow.value).where(MetaRow.key == KEY_META))
    if value is None:
        try:
            with session.begin_nested():
                session.add(MetaRow(key=KEY_META, value=secrets.token_hex(32)))
        except IntegrityError:  # another process made it first: theirs is the key
            pass
        value = session.scalar(select(MetaRow.value).where(MetaRow.key == KEY_META))
    key = bytes.fromhex(value)
    _keys[engine] = key
    return key


def citizen_hash(session: Session, channel: str, chat_id: str) -> str:
    """The one-way name of a chat in the log."""
    return hmac.new(_key(session), f"{channel}:{chat_id}".encode(), hashlib.sha256).hexdigest()


def record(session: Session, channel: str, chat_id: str, outcome: str, entry_id: str | None = None,
           aspects: tuple[str, ...] | list[str] = (), typed: bool = True, at: datetime | None = None) -> QuestionLogRow:
    """Log one question (in the caller's transaction)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    row = QuestionLogRow(asked_at=at or utc_now(), channel=channel[:32], outcome=outcome, entry_id=entry_id,
                         aspects=",".join(aspects)[:255] or None, typed=typed, citizen=citizen_hash(session, channel, chat_id))
    session.add(row)
    return row


def record_vote(session: Session, channel: str, chat_id: str, entry_id: str, vote: str) -> bool:
    """The 👍/👎 under an answer: set on this chat's latest logged answer of that entry (a later vote replaces
    an earlier one). False when no such answer is logged (pruned, forgotten, or given before logging)."""
    if vote not in VOTES:
        raise ValueError(f"unknown vote {vote!r}")
    citizen = citizen_hash(session, channel, chat_id)
    latest = session.scalar(
        select(QuestionLogRow.id)
        .where(QuestionLogRow.citizen == citizen, QuestionLogRow.entry_id == entry_id, QuestionLogRow.outcome == "answered")
        .order_by(QuestionLogRow.asked_at.desc(), QuestionLogRow.id.desc()).limit(1))
    if latest is None:
        return False
    session.execute(update(QuestionLogRow).where(QuestionLogRow.id == latest).values(vote=vote))
    return True


def votes_by_month(session: Session, zone: str) -> dict[str, tuple[int, int]]:
    """{"2026-12": (👍, votes)} per month of the office's calendar (votes are few: counted here, not in SQL)."""
    months: dict[str, tuple[int, int]] = {}
    local = ZoneInfo(zone)
    for asked_at, vote in session.execute(select(QuestionLogRow.asked_at, QuestionLogRow.vote)
                                          .where(QuestionLogRow.vote.is_not(None))):
        month = as_utc(asked_at).astimezone(local).strftime("%Y-%m")
        up, total = months.get(month, (0, 0))
        months[month] = (up + (vote == "up"), total + 1)
    return months


def forget(session: Session, channel: str, chat_id: str) -> int:
    """/xoadulieu: delete this chat's logged questions; how many went."""
    citizen = citizen_hash(session, channel, chat_id)
    return session.execute(delete(QuestionLogRow).where(QuestionLogRow.citizen == citizen)).rowcount or 0


def prune(session: Session, older_than: datetime) -> int:
    """Retention: delete the questions asked before `older_than`; how many went."""
    return session.execute(delete(QuestionLogRow).where(QuestionLogRow.asked_at < older_than)).rowcount or 0


def prune_for_retention(session: Session, days: int, now: datetime | None = None) -> int:
    """Delete what is older than `days` days (0 or less keeps everything)."""
    if days <= 0:
        return 0
    return prune(session, (now or utc_now()) - timedelta(days=days))


class RetentionService:
    """The running bot's daily pruning of the log (background.BackgroundService): at start, then every day."""

    name = "question-log-retention"
    JOB_ID = "question-log-retention"

    def __init__(self, settings, db) -> None:  # config.Settings, sessionmaker[Session]
        self.settings = settings
        self.db = db
        self.pruned = 0  # rows deleted by this process, for tests and logs

    async def start(self, scheduler, senders) -> None:  # AsyncIOScheduler, dict[str, Sender]
        if self.settings.question_log_days <= 0:
            return
        scheduler.add_job(self.prune, "interval", days=1, id=self.JOB_ID, next_run_time=utc_now(),
                          max_instances=1, coalesce=True, misfire_grace_time=None)

    async def prune(self) -> int:
        import asyncio

        return await asyncio.to_thread(self.prune_now)

    def prune_now(self) -> int:
        try:
            with self.db.begin() as session:
                count = prune_for_retention(session, self.settings.question_log_days)
        except Exception:  # tried again tomorrow; the bot goes on serving
            log.exception("pruning the question log failed")
            return 0
        self.pruned += count
        if count:
            log.info("question log: %d questions older than %d days deleted", count, self.settings.question_log_days)
        return count

    async def stop(self) -> None:
        return None
