"""Questions the bot could not answer well, kept once with a count so staff can teach it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.models import UnansweredRow
from nlp.normalize import fold, normalize

MAX_KEY = 500


def question_key(text: str) -> str:
    """The same question typed with or without diacritics, teencode or spacing counts once."""
    return fold(normalize(text))[:MAX_KEY]


def record(session: Session, text: str, reason: str, best_guess: str | None = None) -> UnansweredRow | None:
    key = question_key(text)
    if not key.strip():
        return None
    row = session.scalars(select(UnansweredRow).where(UnansweredRow.key == key)).first()
    now = datetime.now(UTC)
    if row is None:
        row = UnansweredRow(key=key, text=text.strip()[:2000], reason=reason, count=1, best_guess=best_guess,
                            first_seen=now, last_seen=now)
        session.add(row)
    else:
        row.count += 1
        row.last_seen = now
        row.reason = reason if reason == "thumbs_down" else row.reason
        row.resolved_entry_id = None if row.resolved_entry_id and reason == "thumbs_down" else row.resolved_entry_id
    return row


def most_frequent(session: Session, limit: int = 20, include_resolved: bool = False) -> list[UnansweredRow]:
    query = select(UnansweredRow)
    if not include_resolved:
        query = query.where(UnansweredRow.resolved_entry_id.is_(None))
    return list(session.scalars(query.order_by(UnansweredRow.count.desc(), UnansweredRow.last_seen.desc()).limit(limit)))


def resolve(session: Session, question_id: int, entry_id: str) -> UnansweredRow | None:
    row = session.get(UnansweredRow, question_id)
    if row is not None:
        row.resolved_entry_id = entry_id
    return row
