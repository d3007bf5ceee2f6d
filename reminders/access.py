"""Who may learn what about a dossier: the filer's second factor, lookup limits and lockouts (issue 10).

A chat that types a dossier code learns only that the dossier exists until it gives the last 4 digits of
the phone or ID number the filer gave at the office; then it is verified for that dossier and sees the
details and may follow it. Lookups are counted per chat and overall in sliding windows, and repeated
wrong digits lock the chat out for a while. The counts live in the database (`dossier_lookup_attempts`),
so they hold across the bot's processes and restarts; they are approximate by a request or two when two
processes answer at the same instant, which a limit of this kind tolerates.

The attempt rows name the chat only by a one-way hash and no dossier at all, and are deleted once older
than the longest window. /xoadulieu leaves them: erasing them would reset the limits, letting a stranger
guess, erase and guess again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from config import Settings
from reminders.codes import mask_code
from reminders.models import DossierRow, LookupAttemptRow, as_utc

log = logging.getLogger(__name__)

LOOKUP, FAILURE, LOCKOUT = "lookup", "failure", "lockout"
_overall_warned: datetime | None = None  # the last "overall limit reached" warning of this process (one a minute)


class Level(StrEnum):
    """How much a chat may see of one dossier."""

    FULL = "full"  # verified: procedure, status, dates, the office's note, the refusal reason
    STATUS = "status"  # the office chose to show the status alone of dossiers without digits
    NONE = "none"  # only that the dossier exists


def level(verified: bool, has_digits: bool, settings: Settings) -> Level:
    """What a chat may see of a dossier, given whether it proved it filed it and whether it could."""
    if verified:
        return Level.FULL
    if not has_digits and settings.dossier_status_without_verification:
        return Level.STATUS
    return Level.NONE


def matches(row: DossierRow, digits: str) -> bool:
    """Whether `digits` are the last 4 of the filer's phone or ID number (compared in constant time)."""
    given = digits.encode()
    return any(stored is not None and hmac.compare_digest(stored.encode(), given) for stored in (row.phone_last4, row.id_last4))


def chat_hash(channel: str, chat_id: str) -> str:
    """A one-way name for a chat: counts and logs never hold its id."""
    return hashlib.sha256(f"{channel}:{chat_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Limits:
    per_chat: int
    overall: int
    window: timedelta
    max_wrong: int
    lockout: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.dossier_lookups_per_chat, settings.dossier_lookups_overall,
                   timedelta(seconds=settings.dossier_lookup_window_seconds), settings.dossier_max_wrong_digits,
                   timedelta(seconds=settings.dossier_lockout_seconds))

    @property
    def retention(self) -> timedelta:
        return max(self.window, self.lockout)


A = LookupAttemptRow


def _count(session: Session, *where) -> int:
    return session.scalar(select(func.count()).select_from(A).where(*where)) or 0


def _last_lockout(session: Session, chat: str) -> datetime | None:
    return as_utc(session.scalar(select(func.max(A.at)).where(A.chat_hash == chat, A.kind == LOCKOUT)))


def locked_until(session: Session, chat: str, now: datetime, limits: Limits) -> datetime | None:
    """When this chat's lockout ends, if it is locked out at `now`."""
    start = _last_lockout(session, chat)
    if start is None or start + limits.lockout <= now:
        return None
    return start + limits.lockout


def take_lookup(session: Session, chat: str, now: datetime, limits: Limits) -> str | None:
    """Count one lookup for this chat; "chat" or "overall" when a limit is reached (then nothing is counted)."""
    since = now - limits.window
    session.execute(delete(A).where(A.at < now - limits.retention))
    if _count(session, A.chat_hash == chat, A.kind == LOOKUP, A.at > since) >= limits.per_chat:
        return "chat"
    if _count(session, A.kind == LOOKUP, A.at > since) >= limits.overall:
        global _overall_warned
        if _overall_warned is None or now - _overall_warned >= timedelta(minutes=1) or now < _overall_warned:
            _overall_warned = now
            log.warning("dossier lookups: the overall limit of %d per %d s is reached; lookups are refused",
                        limits.overall, limits.window.total_seconds())
        return "overall"
    session.add(A(chat_hash=chat, kind=LOOKUP, at=now))
    session.flush()
    return None


def wrong_digits(session: Session, chat: str, code: str, now: datetime, limits: Limits,
                 tag: str | None = None) -> tuple[int, datetime | None]:
    """Record a wrong answer: (tries left, when the lockout ends if this answer started one).

    Wrong answers count within the lockout period back from now and since the chat's last lockout; a right
    answer does not reset them (else proving one's own dossier would reset the guesses at another's).
    `tag` names the chat in the staff's warning (redaction.chat_tag, as every log line does)."""
    session.add(A(chat_hash=chat, kind=FAILURE, at=now))
    session.flush()
    since = now - limits.lockout
    last = _last_lockout(session, chat)
    if last is not None and last > since:
        since = last
    wrong = _count(session, A.chat_hash == chat, A.kind == FAILURE, A.at > since)
    if wrong < limits.max_wrong:
        return limits.max_wrong - wrong, None
    session.add(A(chat_hash=chat, kind=LOCKOUT, at=now))
    session.flush()
    # For staff: enough to see an attack and which office's dossiers it aims at, nothing that names a citizen.
    log.warning("dossier lookups locked for chat %s for %d min after %d wrong digits (last for %s)",
                tag or "#" + chat[:10], limits.lockout.total_seconds() // 60, wrong, mask_code(code))
    return 0, now + limits.lockout
