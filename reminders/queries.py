"""Read-only views of dossiers for staff (the web console): filtered lists, one dossier's record, and what an
import would change. Nothing here writes; imports are applied by `reminders.store.apply_updates`, as the CLI does.

"Late" and "due soon" follow the reminders' own rule (reminders.decide): a dossier is late when its appointment
(the new date if the office set one) is a past day and the office is still working on it (received or in
progress). Waiting for the citizen's documents or a result waiting to be collected is not the office's delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reminders.models import DossierRow, DossierStatusRow, FollowRow, ReminderRow, VerificationRow, as_utc
from reminders.statuses import IN_PROGRESS, Status
from reminders.store import OPTIONAL_FIELDS, DossierUpdate, _differs, _value

PER_PAGE = 50
DUE_SOON_DAYS = 2  # "due within two days": today, tomorrow and the day after
_WORKING = sorted(s.value for s in IN_PROGRESS)


class Filter(StrEnum):
    ALL = "tat-ca"
    LATE = "tre-han"
    DUE_SOON = "sap-den-han"
    NEEDS_DOCUMENTS = "bo-sung"


FILTER_LABELS: dict[Filter, str] = {
    Filter.ALL: "Tất cả",
    Filter.LATE: "Trễ hẹn",
    Filter.DUE_SOON: f"Đến hẹn trong {DUE_SOON_DAYS} ngày",
    Filter.NEEDS_DOCUMENTS: "Chờ bổ sung giấy tờ",
}


def parse_filter(text: str | None) -> Filter:
    try:
        return Filter(text or Filter.ALL)
    except ValueError:
        return Filter.ALL


def normalize_search(text: str | None) -> str:
    """What staff typed to find a code: upper case, no spaces (codes are stored canonical)."""
    return "".join((text or "").split()).upper()[:64]


def start_of_day(now: datetime, zone: ZoneInfo, days: int = 0) -> datetime:
    """Midnight (office time) of today + `days`, in UTC: the bounds that dates are compared with."""
    today = as_utc(now).astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(today, time(0), zone).astimezone(UTC)


def _appointment():
    return func.coalesce(DossierRow.new_due_at, DossierRow.due_at)


def _conditions(which: Filter, now: datetime, zone: ZoneInfo) -> list:
    D = DossierRow
    today = start_of_day(now, zone)
    if which is Filter.LATE:
        return [D.status.in_(_WORKING), _appointment() < today]
    if which is Filter.DUE_SOON:
        return [D.status.in_(_WORKING), _appointment() >= today, _appointment() < start_of_day(now, zone, DUE_SOON_DAYS + 1)]
    if which is Filter.NEEDS_DOCUMENTS:
        return [D.status == Status.NEEDS_DOCUMENTS.value]
    return []


def _order(which: Filter) -> list:
    D = DossierRow
    if which in (Filter.LATE, Filter.DUE_SOON):
        return [_appointment(), D.code]  # the most urgent first
    if which is Filter.NEEDS_DOCUMENTS:
        return [D.status_since, D.code]  # waiting longest first
    return [D.updated_at.desc(), D.code]


@dataclass(frozen=True)
class ListedDossier:
    code: str
    procedure: str
    status: str
    status_since: datetime
    received_at: datetime | None
    due_at: datetime | None
    new_due_at: datetime | None
    verifiable: bool  # the filer's digits are known (never the digits themselves)
    scan_problem: str | None
    followers: int
    late: bool

    @property
    def appointment(self) -> datetime | None:
        return self.new_due_at or self.due_at


@dataclass
class DossierPage:
    items: list[ListedDossier]
    total: int
    page: int
    pages: int
    which: Filter
    search: str


def is_late(status: str, appointment: datetime | None, now: datetime, zone: ZoneInfo) -> bool:
    return status in _WORKING and appointment is not None and as_utc(appointment) < start_of_day(now, zone)


def list_dossiers(session: Session, which: Filter, now: datetime, zone: ZoneInfo, search: str = "", page: int = 1,
                  per_page: int = PER_PAGE) -> DossierPage:
    """One page of the dossiers matching a filter and, optionally, a part of their code."""
    D = DossierRow
    where = _conditions(which, now, zone)
    search = normalize_search(search)
    if search:
        where.append(D.code.contains(search, autoescape=True))
    total = session.scalar(select(func.count()).select_from(D).where(*where)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(D.code, D.procedure, D.status, D.status_since, D.received_at, D.due_at, D.new_due_at,
               (D.phone_last4.is_not(None) | D.id_last4.is_not(None)), D.scan_problem)
        .where(*where).order_by(*_order(which)).offset((page - 1) * per_page).limit(per_page)).all()
    codes = [row[0] for row in rows]
    followers = dict(session.execute(select(FollowRow.dossier_code, func.count()).where(FollowRow.dossier_code.in_(codes))
                                     .group_by(FollowRow.dossier_code)).all()) if codes else {}
    items = []
    for code, procedure, status, since, received, due, new_due, verifiable, problem in rows:
        due, new_due = as_utc(due), as_utc(new_due)
        items.append(ListedDossier(code, procedure, status, as_utc(since), as_utc(received), due, new_due, bool(verifiable),
                                   problem, followers.get(code, 0), is_late(status, new_due or due, now, zone)))
    return DossierPage(items, total, page, pages, which, search)


def filter_counts(session: Session, now: datetime, zone: ZoneInfo) -> dict[Filter, int]:
    """How many dossiers each filter holds (the tabs' figures)."""
    return {which: session.scalar(select(func.count()).select_from(DossierRow).where(*_conditions(which, now, zone))) or 0
            for which in Filter}


# --------------------------------------------------------------------------- one dossier

@dataclass(frozen=True)
class FollowSummary:
    """Who follows a dossier, as counts: staff need to know that citizens wait, not who they are."""

    total: int = 0
    muted: int = 0
    unreachable: int = 0
    verified: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReminderView:
    id: int
    follower: int | None  # the follow's number on this dossier (1, 2...), None once the follow is gone
    channel: str
    kind: str
    due_at: datetime
    state: str
    reason: str | None
    sent_at: datetime | None
    attempts: int
    text: str


@dataclass
class DossierRecord:
    dossier: DossierRow
    history: list[DossierStatusRow]
    follows: FollowSummary
    reminders: list[ReminderView]
    late: bool


def dossier_record(session: Session, code: str, now: datetime, zone: ZoneInfo) -> DossierRecord | None:
    """A dossier with its status history, its followers counted and every reminder with its state and reason."""
    dossier = session.get(DossierRow, code)
    if dossier is None:
        return None
    history = list(session.scalars(select(DossierStatusRow).where(DossierStatusRow.dossier_code == code)
                                   .order_by(DossierStatusRow.id.desc())))
    follows = session.execute(select(FollowRow.id, FollowRow.channel, FollowRow.chat_id, FollowRow.muted, FollowRow.unreachable)
                              .where(FollowRow.dossier_code == code).order_by(FollowRow.id)).all()
    verified = set(session.execute(select(VerificationRow.channel, VerificationRow.chat_id)
                                   .where(VerificationRow.dossier_code == code)).all())
    numbers = {fid: number for number, (fid, *_rest) in enumerate(follows, 1)}
    channels: dict[str, int] = {}
    for _fid, channel, _chat, _muted, _unreachable in follows:
        channels[channel] = channels.get(channel, 0) + 1
    summary = FollowSummary(total=len(follows), muted=sum(1 for f in follows if f[3]), unreachable=sum(1 for f in follows if f[4]),
                            verified=sum(1 for f in follows if (f[1], f[2]) in verified), by_channel=channels)
    reminders = [ReminderView(r.id, numbers.get(r.follow_id) if r.follow_id is not None else None, r.channel, r.kind,
                              as_utc(r.due_at), r.state, r.reason, as_utc(r.sent_at), r.attempts, r.text)
                 for r in session.scalars(select(ReminderRow).where(ReminderRow.dossier_code == code)
                                          .order_by(ReminderRow.due_at.desc(), ReminderRow.id.desc()))]
    late = is_late(dossier.status, dossier.new_due_at or dossier.due_at, now, zone)
    return DossierRecord(dossier, history, summary, reminders, late)


# --------------------------------------------------------------------------- what an import would change

NEW, STATUS, INFO, SAME = "new", "status", "info", "same"


@dataclass(frozen=True)
class RowChange:
    code: str
    procedure: str
    change: str  # NEW | STATUS | INFO | SAME
    old_status: str | None
    new_status: str
    fields: tuple[str, ...]  # names of the other facts that change (never their values for the filer's digits)


@dataclass
class ImportPreview:
    changes: list[RowChange]

    def count(self, change: str) -> int:
        return sum(1 for c in self.changes if c.change == change)

    @property
    def changed(self) -> list[RowChange]:
        return [c for c in self.changes if c.change != SAME]


def preview_import(session: Session, updates: Sequence[DossierUpdate]) -> ImportPreview:
    """Row by row, what `apply_updates` would do with these updates (same comparisons; nothing is written)."""
    stored: dict[str, DossierRow] = {}
    codes = [u.code for u in updates]
    for start in range(0, len(codes), 500):
        stored.update({r.code: r for r in session.scalars(select(DossierRow).where(DossierRow.code.in_(codes[start:start + 500])))})
    changes = []
    for u in updates:
        row = stored.get(u.code)
        if row is None:
            changes.append(RowChange(u.code, u.procedure or "", NEW, None, u.status.value, ()))
            continue
        fields = []
        for name in OPTIONAL_FIELDS:
            if name not in u.given:
                continue
            value = _value(u, name)
            if name == "procedure" and not value:
                continue
            if _differs(getattr(row, name), value):
                fields.append(name)
        stale = u.changed_at is not None and as_utc(u.changed_at) < as_utc(row.status_since)
        if row.status != u.status.value and not stale:
            change = STATUS
        else:
            change = INFO if fields else SAME
        changes.append(RowChange(u.code, u.procedure or row.procedure, change, row.status, u.status.value, tuple(fields)))
    return ImportPreview(changes)
