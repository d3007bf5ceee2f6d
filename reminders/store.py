"""Dossiers and follows in the database: applying status updates from any source, following, muting.

Every source (file import, push endpoint, poller) goes through `apply_updates`, so a status change is
noticed once whichever way it arrives, and the history keeps when and from where.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from reminders.decide import DossierFacts, FollowFacts
from reminders.models import (
    PENDING,
    DossierRow,
    DossierStatusRow,
    FollowRow,
    ReminderRow,
    VerificationRow,
    as_utc,
    utc_now,
)
from reminders.statuses import Status

MAX_FOLLOWS_PER_CHAT = 20  # a citizen follows their own few dossiers; more is someone harvesting statuses
OPTIONAL_FIELDS = ("procedure", "received_at", "due_at", "new_due_at", "note", "delivery", "phone_last4", "id_last4")


@dataclass(frozen=True)
class DossierUpdate:
    """What a source says about one dossier; fields not in `given` are left as they are."""

    code: str
    status: Status
    procedure: str | None = None
    received_at: datetime | None = None
    due_at: datetime | None = None
    new_due_at: datetime | None = None
    note: str | None = None
    delivery: str | None = None
    phone_last4: str | None = None  # the last 4 digits only (reminders.codes.last_four), never the full number
    id_last4: str | None = None
    changed_at: datetime | None = None  # when the status changed, if the source says
    given: frozenset[str] = field(default_factory=frozenset)


@dataclass
class ApplyResult:
    created: int = 0
    changed: int = 0  # status changes noticed (new dossiers included)
    updated: int = 0  # other facts changed

    def describe(self) -> str:
        return f"{self.created} hồ sơ mới, {self.changed} thay đổi trạng thái, {self.updated} hồ sơ cập nhật thông tin khác"


def apply_updates(session: Session, updates: Sequence[DossierUpdate], source: str, now: datetime | None = None) -> ApplyResult:
    """Write updates in the caller's transaction; a status differing from the stored one is a change, noticed once."""
    now = as_utc(now) or utc_now()
    result = ApplyResult()
    noticed: list[tuple[DossierRow, DossierStatusRow]] = []
    codes = [u.code for u in updates]
    rows: dict[str, DossierRow] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        rows.update({r.code: r for r in session.scalars(select(DossierRow).where(DossierRow.code.in_(chunk)))})
    for u in updates:
        row = rows.get(u.code)
        since = as_utc(u.changed_at) or now
        if row is None:
            row = DossierRow(code=u.code, procedure=u.procedure or "", status=u.status.value, status_since=since,
                             source=source, updated_at=now)
            for name in OPTIONAL_FIELDS:
                if name in u.given and name != "procedure":
                    setattr(row, name, _value(u, name))
            session.add(row)
            rows[u.code] = row
            result.created += 1
            noticed.append((row, _change(row, u, since, now, source)))
            result.changed += 1
            continue
        touched = False
        for name in OPTIONAL_FIELDS:
            if name in u.given:
                value = _value(u, name)
                if name == "procedure" and not value:
                    continue  # a dossier always keeps its procedure's name
                if _differs(getattr(row, name), value):
                    setattr(row, name, value)
                    touched = True
        # An update older than the status we hold (a slow feed after a push) must not turn the dossier back.
        stale = u.changed_at is not None and as_utc(u.changed_at) < as_utc(row.status_since)
        changed = row.status != u.status.value and not stale
        if changed:
            row.status = u.status.value
            row.status_since = since
            noticed.append((row, _change(row, u, since, now, source)))
            result.changed += 1
        elif touched:
            result.updated += 1
        if touched or changed:
            row.updated_at = now
            row.source = source
            row.scan_problem = None  # corrected or not, the next scan says again
    session.add_all([history for _, history in noticed])
    session.flush()  # one flush for all: history ids come back together
    for row, history in noticed:
        row.status_history_id = history.id
    session.flush()
    return result


def _value(u: DossierUpdate, name: str):
    value = getattr(u, name)
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def _differs(stored, value) -> bool:
    if isinstance(stored, datetime) or isinstance(value, datetime):
        return as_utc(stored) != as_utc(value)
    return stored != value


def _change(row: DossierRow, u: DossierUpdate, since: datetime, now: datetime, source: str) -> DossierStatusRow:
    return DossierStatusRow(dossier_code=row.code, status=u.status.value, note=row.note, changed_at=since,
                            noticed_at=now, source=source)


# --------------------------------------------------------------------------- reading

def facts(row: DossierRow, noticed_at: datetime | None = None) -> DossierFacts:
    return DossierFacts(code=row.code, procedure=row.procedure, status=row.status, status_since=as_utc(row.status_since),
                        received_at=as_utc(row.received_at), due_at=as_utc(row.due_at), new_due_at=as_utc(row.new_due_at),
                        status_history_id=row.status_history_id, status_noticed_at=as_utc(noticed_at),
                        note=row.note, delivery=row.delivery)


def follow_facts(row: FollowRow) -> FollowFacts:
    return FollowFacts(created_at=as_utc(row.created_at), muted=row.muted, unreachable=row.unreachable)


def get_dossier(session: Session, code: str) -> DossierRow | None:
    return session.get(DossierRow, code)


def has_second_factor(row: DossierRow) -> bool:
    """Whether the source gave the filer's digits, so a chat can prove it filed the dossier."""
    return bool(row.phone_last4 or row.id_last4)


def history(session: Session, code: str) -> list[DossierStatusRow]:
    return list(session.scalars(select(DossierStatusRow).where(DossierStatusRow.dossier_code == code).order_by(DossierStatusRow.id)))


def reminders_of(session: Session, code: str) -> list[ReminderRow]:
    return list(session.scalars(select(ReminderRow).where(ReminderRow.dossier_code == code).order_by(ReminderRow.id)))


# --------------------------------------------------------------------------- follows

class TooManyFollows(Exception):
    pass


def follows_of(session: Session, channel: str, chat_id: str) -> list[tuple[FollowRow, DossierRow]]:
    rows = session.execute(select(FollowRow, DossierRow).join(DossierRow, DossierRow.code == FollowRow.dossier_code)
                           .where(FollowRow.channel == channel, FollowRow.chat_id == chat_id).order_by(FollowRow.id))
    return [(f, d) for f, d in rows]


def find_follow(session: Session, channel: str, chat_id: str, code: str) -> FollowRow | None:
    return session.scalar(select(FollowRow).where(FollowRow.channel == channel, FollowRow.chat_id == chat_id,
                                                  FollowRow.dossier_code == code))


def follow(session: Session, channel: str, chat_id: str, code: str, now: datetime | None = None) -> tuple[FollowRow, bool]:
    """Follow a known dossier; (the follow, whether it is new). A chat writing again is reachable again."""
    reachable_again(session, channel, chat_id)
    existing = find_follow(session, channel, chat_id, code)
    if existing is not None:
        return existing, False
    count = len(session.scalars(select(FollowRow.id).where(FollowRow.channel == channel, FollowRow.chat_id == chat_id)).all())
    if count >= MAX_FOLLOWS_PER_CHAT:
        raise TooManyFollows
    row = FollowRow(channel=channel, chat_id=chat_id, dossier_code=code, muted=False, created_at=as_utc(now) or utc_now())
    session.add(row)
    session.flush()
    return row, True


def reachable_again(session: Session, channel: str, chat_id: str) -> None:
    session.execute(update(FollowRow).where(FollowRow.channel == channel, FollowRow.chat_id == chat_id,
                                            FollowRow.unreachable.is_not(None)).values(unreachable=None))


def cancel_pending(session: Session, follow_ids: Iterable[int], reason: str) -> int:
    ids = list(follow_ids)
    if not ids:
        return 0
    result = session.execute(update(ReminderRow).where(ReminderRow.follow_id.in_(ids), ReminderRow.state.in_(PENDING))
                             .values(state="cancelled", reason=reason, claimed_by=None))
    return result.rowcount or 0


def unfollow(session: Session, channel: str, chat_id: str, code: str) -> bool:
    row = find_follow(session, channel, chat_id, code)
    if row is None:
        return False
    cancel_pending(session, [row.id], "người dân ngừng theo dõi hồ sơ")
    session.delete(row)
    return True


def set_muted(session: Session, channel: str, chat_id: str, code: str, muted: bool) -> bool:
    row = find_follow(session, channel, chat_id, code)
    if row is None:
        return False
    row.muted = muted
    if muted:
        cancel_pending(session, [row.id], "người dân tắt nhắc hồ sơ này")
    return True


def forget_chat(session: Session, channel: str, chat_id: str) -> int:
    """Everything kept about a chat's dossiers is deleted (follows, the reminders addressed to it, the dossiers it
    proved it filed); returns the follows and verifications removed."""
    session.execute(delete(ReminderRow).where(ReminderRow.channel == channel, ReminderRow.chat_id == chat_id))
    follows = session.execute(delete(FollowRow).where(FollowRow.channel == channel, FollowRow.chat_id == chat_id))
    verified = session.execute(delete(VerificationRow).where(VerificationRow.channel == channel, VerificationRow.chat_id == chat_id))
    return (follows.rowcount or 0) + (verified.rowcount or 0)


# --------------------------------------------------------------------------- verified chats

def is_verified(session: Session, channel: str, chat_id: str, code: str) -> bool:
    return session.scalar(select(VerificationRow.id).where(VerificationRow.channel == channel, VerificationRow.chat_id == chat_id,
                                                           VerificationRow.dossier_code == code)) is not None


def verified_codes(session: Session, channel: str, chat_id: str) -> set[str]:
    return set(session.scalars(select(VerificationRow.dossier_code).where(VerificationRow.channel == channel,
                                                                          VerificationRow.chat_id == chat_id)))


def verify(session: Session, channel: str, chat_id: str, code: str, now: datetime | None = None) -> None:
    """Record that this chat gave the right digits for this dossier (once; a second time changes nothing)."""
    from reminders.scan import dialect_insert

    insert = dialect_insert(session)  # two bot processes answering one chat at once: one row, no IntegrityError
    session.execute(insert(VerificationRow).values(channel=channel, chat_id=chat_id, dossier_code=code,
                                                   verified_at=as_utc(now) or utc_now())
                    .on_conflict_do_nothing(index_elements=["channel", "chat_id", "dossier_code"]))
