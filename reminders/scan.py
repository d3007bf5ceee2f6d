"""The scan: for every follow, store the reminders `decide` calls for and cancel those it no longer does.

One pass reads follows joined with their dossiers and the keys of reminders already stored, as plain
rows (no ORM objects: 10,000 follows must take well under a second). Inserting a reminder that another
process inserted meanwhile does nothing (ON CONFLICT DO NOTHING on follow + key), so two bots may scan
the same database at once.

Each follow is decided on its own: a record that makes deciding fail (a date no source should have let in,
a status nobody knows) is logged, noted on the dossier for staff (`dossiers list` / `dossiers show`, and
`jobs run` prints it) and skipped, and everyone else's reminders go out.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from reminders.access import Level, level
from reminders.codes import mask_code
from reminders.decide import DossierFacts, FollowFacts, reminders_for
from reminders.models import PENDING, DossierRow, DossierStatusRow, FollowRow, ReminderRow, VerificationRow, as_utc

log = logging.getLogger(__name__)

NO_LONGER = "không còn phù hợp: trạng thái hoặc ngày hẹn của hồ sơ đã thay đổi, hoặc đã qua thời điểm nhắc"
MUTED = "người dân tắt nhắc hồ sơ này"
UNREACHABLE = "không nhắn được tới cuộc trò chuyện này"
UNVERIFIED = "người theo dõi chưa xác nhận là người nộp hồ sơ"
BAD_RECORD = "dữ liệu hồ sơ lỗi, không lập được nhắc"


@dataclass
class ScanResult:
    follows: int = 0
    planned: int = 0
    cancelled: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # dossier code -> why its follows could not be decided


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock first: a read transaction that later writes fails at once when
    another process wrote meanwhile (WAL), while BEGIN IMMEDIATE waits its turn."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def dialect_insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def retrying(action: Callable, attempts: int = 5):
    """Two bots on one database may collide: SQLite answers "database is locked" past its busy timeout,
    PostgreSQL may pick one transaction as a deadlock victim. Both are worth one more try."""
    for attempt in range(attempts):
        try:
            return action()
        except OperationalError as error:
            message = str(error).lower()
            if ("locked" not in message and "deadlock" not in message) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def scan(db: sessionmaker[Session], settings: Settings, now: datetime) -> ScanResult:
    return retrying(lambda: _scan(db, settings, now))


def _scan(db: sessionmaker[Session], settings: Settings, now: datetime) -> ScanResult:
    now = as_utc(now)
    result = ScanResult()
    F, D, H, R, V = FollowRow, DossierRow, DossierStatusRow, ReminderRow, VerificationRow
    with db() as session:
        begin_write(session)
        follows = session.execute(
            select(F.id, F.channel, F.chat_id, F.created_at, F.muted, F.unreachable,
                   D.code, D.procedure, D.status, D.status_since, D.received_at, D.due_at, D.new_due_at,
                   D.status_history_id, D.note, D.delivery, H.noticed_at,
                   or_(D.phone_last4.is_not(None), D.id_last4.is_not(None)), V.verified_at)
            .join(D, D.code == F.dossier_code).outerjoin(H, H.id == D.status_history_id)
            .outerjoin(V, and_(V.channel == F.channel, V.chat_id == F.chat_id, V.dossier_code == F.dossier_code))
            .order_by(F.id)).all()  # every process writes in the same order: concurrent scans wait, not deadlock
        problems = dict(session.execute(select(D.code, D.scan_problem).where(D.scan_problem.is_not(None))).all())
        stored: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
        for rid, fid, key, state in session.execute(select(R.id, R.follow_id, R.key, R.state).where(R.follow_id.is_not(None))):
            stored[fid][key] = (rid, state)
        # Texts of reminders still to go out: a plan whose wording changed (e.g. the result became ready
        # before "your appointment is tomorrow" went out) is sent as decided now, not as first planned.
        waiting = dict(session.execute(select(R.id, R.text).where(R.state.in_(PENDING))).all())
        new_rows: list[dict] = []
        reworded: list[dict] = []
        cancel: dict[str, list[int]] = defaultdict(list)
        for row in follows:
            (fid, channel, chat_id, created, muted, unreachable, code, procedure, status, since, received, due, new_due,
             history_id, note, delivery, noticed, verifiable, verified_at) = row
            have = stored.get(fid, {})
            if code in result.skipped:
                continue
            access = level(verified_at is not None, bool(verifiable), settings)
            try:
                # A follow verified after it started (one from before verification existed) hears only of what
                # happens after: what was true then, the citizen saw when verifying.
                heard = max(as_utc(created), as_utc(verified_at)) if verified_at is not None else as_utc(created)
                follow = FollowFacts(created_at=heard, muted=muted, unreachable=unreachable)
                dossier = DossierFacts(code=code, procedure=procedure, status=status, status_since=as_utc(since),
                                       received_at=as_utc(received), due_at=as_utc(due), new_due_at=as_utc(new_due),
                                       status_history_id=history_id, status_noticed_at=as_utc(noticed), note=note,
                                       delivery=delivery, verifiable=bool(verifiable))
                wanted = reminders_for(dossier, follow, now, settings, access)
            except Exception as error:  # noqa: BLE001 - one bad record must not hold back everyone else's reminders
                result.skipped[code] = f"{type(error).__name__}: {error}"[:300]
                log.error("reminder scan skipped dossier %s: %s", mask_code(code), result.skipped[code])
                continue
            keys = set()
            for plan in wanted:
                keys.add(plan.key)
                if plan.key in have:
                    rid = have[plan.key][0]
                    if rid in waiting and waiting[rid] != plan.text:
                        reworded.append({"rid": rid, "new_text": plan.text})
                else:
                    new_rows.append({"follow_id": fid, "channel": channel, "chat_id": chat_id, "dossier_code": code, "kind": plan.kind,
                                         "key": plan.key, "text": plan.text, "due_at": plan.due_at, "state": "planned", "attempts": 0,
                                         "created_at": now})
            reason = MUTED if muted else UNREACHABLE if unreachable else UNVERIFIED if access is Level.NONE else NO_LONGER
            for key, (rid, state) in have.items():
                if state in PENDING and key not in keys:
                    cancel[reason].append(rid)
        result.follows = len(follows)
        # Staff see on the dossier why it is skipped, and that it no longer is once fixed.
        for code, problem in result.skipped.items():
            if problems.get(code) != f"{BAD_RECORD}: {problem}":
                session.execute(update(D).where(D.code == code).values(scan_problem=f"{BAD_RECORD}: {problem}"),
                                execution_options={"synchronize_session": False})
        scanned = {row[6] for row in follows}
        for code in sorted(set(problems) - set(result.skipped)):
            if code in scanned:
                session.execute(update(D).where(D.code == code).values(scan_problem=None),
                                execution_options={"synchronize_session": False})
        if new_rows:
            insert = dialect_insert(session)
            for start in range(0, len(new_rows), 1000):
                statement = insert(R).on_conflict_do_nothing(index_elements=["follow_id", "key"])
                session.execute(statement, new_rows[start:start + 1000])
        if reworded:
            table = R.__table__  # a Core executemany: the ORM would read a list of rows as a bulk update by primary key
            pending = or_(*(table.c.state == state for state in PENDING))  # IN (...) cannot expand in an executemany
            session.connection().execute(update(table).where(table.c.id == bindparam("rid"), pending)
                                         .values(text=bindparam("new_text")), reworded)
        for reason, ids in cancel.items():
            ids.sort()
            for start in range(0, len(ids), 1000):
                session.execute(update(R).where(R.id.in_(ids[start:start + 1000]), R.state.in_(PENDING))
                                .values(state="cancelled", reason=reason), execution_options={"synchronize_session": False})
        session.commit()
        result.planned = len(new_rows)
        result.cancelled = sum(len(ids) for ids in cancel.values())
    if result.planned or result.cancelled:
        log.info("reminder scan: %d follows, %d planned, %d cancelled", result.follows, result.planned, result.cancelled)
    return result
