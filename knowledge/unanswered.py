"""Questions the bot could not answer well, kept once with a count so staff can teach it.

Citizens are told these are kept without their name or account: phone and ID numbers, dossier codes,
e-mails, names and addresses are masked (nlp.personal) before anything is stored, the counting key
included, so "tôi tên An, làm cccd" and "tôi tên Bình, làm cccd" count as one question.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from knowledge.models import UnansweredRow
from nlp.normalize import fold, normalize
from nlp.personal import mask

MAX_KEY = 500
# Stored in `resolved_entry_id` of a question staff dismissed (not worth teaching): no entry id looks like it,
# so a dismissed question leaves the queue without a schema change, and a later 👎 brings it back like any other.
DISMISSED = "~dismissed"


def question_key(text: str) -> str:
    """The same question typed with or without diacritics, teencode or spacing counts once."""
    return fold(normalize(text))[:MAX_KEY]


def record(session: Session, text: str, reason: str, best_guess: str | None = None) -> UnansweredRow | None:
    """Count the question once more (masked), or keep it as a new one."""
    text = mask(text.strip()[:2000])
    key = question_key(text)
    if not key.strip():
        return None
    row = session.scalars(select(UnansweredRow).where(UnansweredRow.key == key)).first()
    now = datetime.now(UTC)
    if row is None:
        row = UnansweredRow(key=key, text=text, reason=reason, count=1, best_guess=best_guess,
                            first_seen=now, last_seen=now)
        session.add(row)
    else:
        row.count += 1
        row.last_seen = now
        row.reason = reason if reason == "thumbs_down" else row.reason
        row.resolved_entry_id = None if row.resolved_entry_id and reason == "thumbs_down" else row.resolved_entry_id
    return row


def most_frequent(session: Session, limit: int = 20, include_resolved: bool = False, offset: int = 0) -> list[UnansweredRow]:
    query = select(UnansweredRow)
    if not include_resolved:
        query = query.where(UnansweredRow.resolved_entry_id.is_(None))
    query = query.order_by(UnansweredRow.count.desc(), UnansweredRow.last_seen.desc(), UnansweredRow.id)
    return list(session.scalars(query.offset(offset).limit(limit)))


def open_totals(session: Session) -> tuple[int, int]:
    """(questions waiting for staff, times citizens asked them)."""
    waiting, asked = session.execute(select(func.count(UnansweredRow.id), func.coalesce(func.sum(UnansweredRow.count), 0))
                                     .where(UnansweredRow.resolved_entry_id.is_(None))).one()
    return int(waiting), int(asked)


def dismiss(session: Session, question_id: int) -> UnansweredRow | None:
    """Take a question out of the queue without teaching it (spam, out of the office's scope)."""
    row = session.get(UnansweredRow, question_id)
    if row is not None:
        row.resolved_entry_id = DISMISSED
    return row


def resolve(session: Session, question_id: int, entry_id: str) -> UnansweredRow | None:
    row = session.get(UnansweredRow, question_id)
    if row is not None:
        row.resolved_entry_id = entry_id
    return row


def mask_stored(connection: Connection) -> int:
    """Mask the questions kept before masking existed (a data migration calls it); rows whose masked key
    is the same become one, with their counts added. Returns the rows changed or merged."""
    import sqlalchemy as sa

    table = sa.table("unanswered", sa.column("id"), sa.column("key"), sa.column("text"), sa.column("reason"),
                     sa.column("count"), sa.column("best_guess"), sa.column("first_seen"), sa.column("last_seen"),
                     sa.column("resolved_entry_id"))
    rows = connection.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    kept: dict[str, dict] = {}
    originals = {row["id"]: dict(row) for row in rows}
    changed = 0
    for row in rows:
        text = mask(row["text"])
        key = question_key(text)
        if not key.strip():
            key = f"masked:{row['id']}"
        first = kept.get(key)
        if first is None:
            kept[key] = {**row, "key": key, "text": text}
            changed += text != row["text"] or key != row["key"]
            continue
        # The same question once the names and numbers are masked: one row, the counts added up.
        first["count"] += row["count"]
        first["first_seen"] = min(first["first_seen"], row["first_seen"])
        first["last_seen"] = max(first["last_seen"], row["last_seen"])
        if row["reason"] == "thumbs_down":
            first["reason"] = "thumbs_down"
        first["resolved_entry_id"] = first["resolved_entry_id"] or row["resolved_entry_id"]
        first["best_guess"] = first["best_guess"] or row["best_guess"]
        connection.execute(sa.delete(table).where(table.c.id == row["id"]))
        changed += 1
    moved = [values for values in kept.values() if values["key"] != originals[values["id"]]["key"]]
    for values in moved:
        # Keys are unique: park each moved row on its id first, so that two rows trading keys never collide.
        connection.execute(sa.update(table).where(table.c.id == values["id"]).values(key=f"parked:{values['id']}"))
    for values in kept.values():
        if values != originals[values["id"]]:
            connection.execute(sa.update(table).where(table.c.id == values["id"]).values(
                {k: v for k, v in values.items() if k != "id"}))
    return changed
