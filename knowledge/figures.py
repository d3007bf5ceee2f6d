"""The overview's figures for a range of days in the office's time zone (issue 14), on SQLite and PostgreSQL.

Everything is aggregated in the database (GROUP BY) and only the groups come back. Days are the office's
days: PostgreSQL turns a stored time into its local day with the zone's rules; SQLite, which knows no zones,
adds the zone's offset when it is the same over the whole range (Vietnam: +7, no daylight saving) and else
groups per UTC hour, each hour turned into its local day in Python (exact for whole-hour offsets).

Definitions (also shown on the page):
- a question is a logged question the citizen typed (`typed`); taps on buttons and numbers picking a choice
  are not counted again;
- satisfaction is the share of 👍 among the answers that got a 👍 or 👎 (by the day of the answer);
- a dossier received in the range is *on time* when its result was ready (first status "result ready",
  "returned" or "rejected" in its history, else its current status since) on or before the appointment day
  first given (`due_at`; a later date set with an apology does not make it on time), *late* when the result
  came after that day or it is still being processed (received/processing) after it; a dossier waiting for
  the citizen's documents past the day is not the office's delay and counted apart, as are dossiers still
  within their time and those without an appointment. The on-time share is on time / (on time + late).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from broadcasts.models import BroadcastRow, SubscriptionRow
from knowledge.models import EntryRow, as_utc
from knowledge.question_log import OUTCOMES, QuestionLogRow
from reminders.models import DossierRow, DossierStatusRow
from reminders.statuses import IN_PROGRESS, Status

OUTCOME_LABELS = {
    "answered": "Đã trả lời",
    "clarified": "Hỏi lại cho rõ",
    "not_understood": "Chưa hiểu",
    "law": "Hỏi về pháp luật",
}
RESOLVED = (Status.RESULT_READY.value, Status.RETURNED.value, Status.REJECTED.value)
TREND_BY_DAY_UP_TO = 31  # longer ranges show the satisfaction trend per week
TOP_PROCEDURES = 10


@dataclass(frozen=True)
class Period:
    """Days `start`..`end` (both included) in the office's time zone."""

    start: date
    end: date
    zone: ZoneInfo

    @property
    def utc_start(self) -> datetime:
        return datetime.combine(self.start, time(0), self.zone).astimezone(UTC)

    @property
    def utc_end(self) -> datetime:
        """The instant after the range (exclusive bound)."""
        return datetime.combine(self.end + timedelta(days=1), time(0), self.zone).astimezone(UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def local_day(self, moment: datetime) -> date:
        return as_utc(moment).astimezone(self.zone).date()


def period(start: date, end: date, zone: str) -> Period:
    if end < start:
        start, end = end, start
    return Period(start, end, ZoneInfo(zone))


@dataclass
class DayCounts:
    day: date
    channel: str | None  # None: every channel together
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Votes:
    label: str  # the day or week it covers, as staff read it
    start: date
    up: int = 0
    down: int = 0
    rated: int = 0  # 1–5 ratings given in the period (hand-off, dossiers: issue 15)
    score_sum: int = 0

    @property
    def average(self) -> float | None:
        """The average 1–5 rating, None without any."""
        return self.score_sum / self.rated if self.rated else None

    @property
    def voted(self) -> int:
        return self.up + self.down

    @property
    def share(self) -> float | None:
        """Share of 👍 among voted answers (0..1), None without any vote."""
        return self.up / self.voted if self.voted else None


@dataclass
class Ratings:
    """1–5 ratings of a conversation with an officer (issue 15), when that feature keeps them."""

    count: int
    average: float | None
    by_score: dict[int, int]


@dataclass
class Procedure:
    entry_id: str
    name: str
    count: int


@dataclass
class Dossiers:
    received: int = 0
    on_time: int = 0
    late: int = 0
    in_time_pending: int = 0  # still being processed, appointment not yet passed
    waiting_citizen: int = 0  # waiting for the citizen's documents past the appointment
    no_due_date: int = 0

    @property
    def on_time_share(self) -> float | None:
        decided = self.on_time + self.late
        return self.on_time / decided if decided else None


@dataclass
class Subscribers:
    active: int = 0  # at the end of the range
    joined: int = 0
    left: int = 0


@dataclass
class Announcement:
    id: int
    started_at: datetime
    text: str
    audience: str
    state: str
    recipients: int
    sent: int
    failed: int


@dataclass
class Overview:
    period: Period
    by_day: list[DayCounts]  # every day of the range, all channels
    by_day_channel: list[DayCounts]  # days with questions, per channel
    totals: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    citizens: int
    satisfaction: Votes
    trend: list[Votes]
    ratings: Ratings | None
    procedures: list[Procedure]
    dossiers: Dossiers
    subscribers: Subscribers
    announcements: list[Announcement]

    @property
    def questions(self) -> int:
        return sum(self.totals.values())


PARTS = frozenset({"questions", "citizens", "votes", "procedures", "dossiers", "subscribers", "announcements"})


def _local_day_sql(session: Session, when: Period):
    """A function giving the SQL for the office day of a stored time, or None where SQL cannot say it.

    PostgreSQL converts with the zone's own rules. SQLite knows no zones: a zone with one offset all year
    (Vietnam: +7) has it added in SQL; for another zone the caller converts in Python."""
    if session.get_bind().dialect.name == "postgresql":
        return lambda column: func.date(func.timezone(when.zone.key, column))
    year = when.start.year
    moments = [*(datetime.combine(day, time(12), when.zone) for day in when.days),
               datetime(year, 1, 1, tzinfo=when.zone), datetime(year, 7, 1, tzinfo=when.zone)]
    offsets = {moment.utcoffset() for moment in moments}
    if len(offsets) != 1:
        return None
    shift = f"{int(offsets.pop().total_seconds() // 60):+d} minutes"
    return lambda column: func.date(column, shift)  # SQLite keeps UTC times as text without a zone


def _bucket(session: Session, column, when: Period):
    """SQL grouping stored times by office day, or else by UTC hour (each turned into its day in Python)."""
    day = _local_day_sql(session, when)
    if day is not None:
        return day(column), "day"
    return func.strftime("%Y-%m-%d %H:00:00", column), "hour"


def _as_day(value: object, when: Period) -> date | None:
    """An office day read back from SQL: a date, its ISO text, or a stored time (text on SQLite) to convert."""
    if value is None or type(value) is date:
        return value
    if isinstance(value, str):
        if len(value) == 10:
            return date.fromisoformat(value)
        value = datetime.fromisoformat(value)
    return when.local_day(value)


def _day_of(value: object, kind: str, when: Period) -> date:
    day = _as_day(value, when)
    return min(max(day, when.start), when.end) if kind == "hour" else day  # a half-hour zone's edge hour: its neighbour


def overview(session: Session, when: Period, name_of: Callable[[str], str | None] | None = None,
             now: datetime | None = None, parts: frozenset[str] = PARTS) -> Overview:
    """The figures of the overview page for `when` (only `parts` of them are computed; the rest stay empty)."""
    now = now or datetime.now(UTC)
    in_range = and_(QuestionLogRow.asked_at >= when.utc_start, QuestionLogRow.asked_at < when.utc_end)
    by_day, by_day_channel, totals, by_channel = (_questions(session, when, in_range) if "questions" in parts else
                                                  ([DayCounts(day, None) for day in when.days], [], dict.fromkeys(OUTCOMES, 0), {}))
    citizens = (session.scalar(select(func.count(func.distinct(QuestionLogRow.citizen))).where(in_range)) or 0
                if "citizens" in parts else 0)
    satisfaction, trend = _votes(session, when, in_range) if "votes" in parts else (Votes("Cả kỳ", when.start), [])
    rated = ratings(session, when, trend) if "votes" in parts else None
    return Overview(
        period=when, by_day=by_day, by_day_channel=by_day_channel, totals=totals, by_channel=by_channel, citizens=citizens,
        satisfaction=satisfaction, trend=trend, ratings=rated,
        procedures=_procedures(session, in_range, name_of) if "procedures" in parts else [],
        dossiers=dossiers(session, when, now) if "dossiers" in parts else Dossiers(),
        subscribers=_subscribers(session, when) if "subscribers" in parts else Subscribers(),
        announcements=_announcements(session, when) if "announcements" in parts else [],
    )


def _questions(session: Session, when: Period, in_range) -> tuple[list[DayCounts], list[DayCounts], dict[str, int], dict[str, dict[str, int]]]:
    bucket, kind = _bucket(session, QuestionLogRow.asked_at, when)
    rows = session.execute(
        select(bucket, QuestionLogRow.channel, QuestionLogRow.outcome, func.count())
        .where(in_range, QuestionLogRow.typed.is_(True))
        .group_by(bucket, QuestionLogRow.channel, QuestionLogRow.outcome))
    days = {day: DayCounts(day, None) for day in when.days}
    per_channel: dict[tuple[date, str], DayCounts] = {}
    totals = dict.fromkeys(OUTCOMES, 0)
    by_channel: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for value, channel, outcome, count in rows:
        if outcome not in totals:
            continue
        day = _day_of(value, kind, when)
        days[day].counts[outcome] += count
        per_channel.setdefault((day, channel), DayCounts(day, channel)).counts[outcome] += count
        totals[outcome] += count
        by_channel[channel][outcome] += count
    return (list(days.values()), [per_channel[key] for key in sorted(per_channel)], totals,
            dict(sorted(by_channel.items())))


def _trend_key(when: Period, day: date) -> tuple[date, str]:
    if (when.end - when.start).days < TREND_BY_DAY_UP_TO:
        return day, day.strftime("%d/%m")
    monday = day - timedelta(days=day.weekday())
    return monday, "Tuần " + monday.strftime("%d/%m")


def _votes(session: Session, when: Period, in_range) -> tuple[Votes, list[Votes]]:
    bucket, kind = _bucket(session, QuestionLogRow.asked_at, when)
    rows = session.execute(
        select(bucket, QuestionLogRow.vote, func.count())
        .where(in_range, QuestionLogRow.vote.is_not(None)).group_by(bucket, QuestionLogRow.vote))
    total = Votes("Cả kỳ", when.start)
    trend: dict[date, Votes] = {}
    for day in when.days:
        start, label = _trend_key(when, day)
        trend.setdefault(start, Votes(label, start))
    for value, vote, count in rows:
        start, _ = _trend_key(when, _day_of(value, kind, when))
        for target in (total, trend.get(start)):
            if target is None:
                continue
            if vote == "up":
                target.up += count
            elif vote == "down":
                target.down += count
    return total, list(trend.values())


def ratings(session: Session, when: Period, trend: list[Votes] | None = None) -> Ratings | None:
    """The 1–5 ratings citizens gave in the range (after a conversation with an officer or a dossier's result,
    kept by the hand-off feature: knowledge.handoff_store.RatingRow), added to `trend`'s periods too.

    None when that feature is not there: the satisfaction figure is then the 👍 share alone."""
    try:
        from knowledge.handoff_store import RatingRow
    except ImportError:
        return None
    bucket, kind = _bucket(session, RatingRow.created_at, when)
    rows = session.execute(
        select(bucket, RatingRow.score, func.count())
        .where(RatingRow.created_at >= when.utc_start, RatingRow.created_at < when.utc_end)
        .group_by(bucket, RatingRow.score))
    periods = {v.start: v for v in trend or []}
    by_score = dict.fromkeys(range(1, 6), 0)
    for value, score, count in rows:
        if score not in by_score:
            continue
        by_score[score] += count
        period = periods.get(_trend_key(when, _day_of(value, kind, when))[0])
        if period is not None:
            period.rated += count
            period.score_sum += score * count
    count = sum(by_score.values())
    average = sum(score * n for score, n in by_score.items()) / count if count else None
    return Ratings(count, average, by_score)


def _procedures(session: Session, in_range, name_of: Callable[[str], str | None] | None) -> list[Procedure]:
    """The most asked procedures; names from `name_of` (the live catalog) or else the entries table."""
    rows = session.execute(
        select(QuestionLogRow.entry_id, func.count().label("n"))
        .where(in_range, QuestionLogRow.typed.is_(True), QuestionLogRow.outcome == "answered", QuestionLogRow.entry_id.is_not(None))
        .group_by(QuestionLogRow.entry_id).order_by(func.count().desc(), QuestionLogRow.entry_id).limit(TOP_PROCEDURES)).all()
    ids = [entry_id for entry_id, _ in rows]
    if name_of is None:
        names = {entry_id: short or name for entry_id, short, name in
                 session.execute(select(EntryRow.id, EntryRow.short_name, EntryRow.name).where(EntryRow.id.in_(ids)))}
        name_of = names.get
    return [Procedure(entry_id, name_of(entry_id) or "(không còn trong cơ sở dữ liệu)", count) for entry_id, count in rows]


def dossiers(session: Session, when: Period, now: datetime) -> Dossiers:
    """Dossiers received in the range and whether the office kept their appointment (module docstring)."""
    # The first "resolved" status of each dossier received in the range (an outer join: none yet gives NULL), or
    # the current status's start for a dossier resolved before its history was kept; days worked out in SQL.
    H = DossierStatusRow
    day = _local_day_sql(session, when) or (lambda column: column)
    resolved_at = func.coalesce(func.min(H.changed_at), case((DossierRow.status.in_(RESOLVED), DossierRow.status_since)))
    rows = session.execute(
        select(day(DossierRow.due_at), DossierRow.status, day(resolved_at))
        .outerjoin(H, and_(H.dossier_code == DossierRow.code, H.status.in_(RESOLVED)))
        .where(DossierRow.received_at >= when.utc_start, DossierRow.received_at < when.utc_end)
        .group_by(DossierRow.code, DossierRow.due_at, DossierRow.status, DossierRow.status_since))
    today = now.astimezone(when.zone).date()
    working = {s.value for s in IN_PROGRESS}
    figures = Dossiers()
    for due_value, status, resolved_value in rows:
        figures.received += 1
        due, resolved = _as_day(due_value, when), _as_day(resolved_value, when)
        if due is None:
            figures.no_due_date += 1
        elif resolved is not None:
            if resolved <= due:
                figures.on_time += 1
            else:
                figures.late += 1
        elif today <= due:
            figures.in_time_pending += 1
        elif status in working:
            figures.late += 1
        else:
            figures.waiting_citizen += 1
    return figures


def _subscribers(session: Session, when: Period) -> Subscribers:
    S = SubscriptionRow
    active = session.scalar(select(func.count()).where(
        S.created_at < when.utc_end, or_(S.unsubscribed_at.is_(None), S.unsubscribed_at >= when.utc_end))) or 0
    joined = session.scalar(select(func.count()).where(S.created_at >= when.utc_start, S.created_at < when.utc_end)) or 0
    left = session.scalar(select(func.count()).where(S.unsubscribed_at >= when.utc_start, S.unsubscribed_at < when.utc_end)) or 0
    return Subscribers(active, joined, left)


def _announcements(session: Session, when: Period) -> list[Announcement]:
    """Announcements that started going out in the range (sending, done, or cancelled part-way)."""
    B = BroadcastRow
    rows = session.execute(
        select(B.id, B.started_at, B.text, B.audience, B.state, B.recipients, B.sent, B.failed, B.blocked)
        .where(B.started_at >= when.utc_start, B.started_at < when.utc_end).order_by(B.started_at.desc(), B.id.desc()))
    return [Announcement(id, as_utc(started), text, audience, state, recipients or 0, sent or 0, (failed or 0) + (blocked or 0))
            for id, started, text, audience, state, recipients, sent, failed, blocked in rows]

