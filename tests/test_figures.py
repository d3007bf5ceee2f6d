"""The overview's figures: counted on the office's days, typed questions only, satisfaction from the votes,
dossiers on time against their first appointment, subscribers and announcements of the range; on both databases."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from broadcasts.models import BroadcastRow, SubscriptionRow
from knowledge import figures, question_log
from reminders.models import DossierRow, DossierStatusRow

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
START, END = date(2026, 3, 1), date(2026, 3, 7)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """An office-time moment, stored (as the bot stores every time) in UTC."""
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


def log(session, chat: str, outcome: str, moment: datetime, entry: str | None = None, typed: bool = True,
        vote: str | None = None, channel: str = "telegram") -> None:
    row = question_log.record(session, channel, chat, outcome, entry, typed=typed, at=moment)
    row.vote = vote


def compute(db, **kwargs) -> figures.Overview:
    with db() as session:
        return figures.overview(session, figures.period(START, END, "Asia/Ho_Chi_Minh"), **kwargs)


def test_questions_are_counted_on_the_office_day_per_channel_and_outcome(db):
    day = date(2026, 3, 2)
    with db.begin() as session:
        log(session, "a", "answered", at(day, 23, 30), "1.001")  # 16:30 UTC: still the 2nd in Hà Nội
        log(session, "a", "clarified", at(day + timedelta(days=1), 0, 30))  # 17:30 UTC on the 2nd: the 3rd here
        log(session, "b", "not_understood", at(day, 9), channel="zalo")
        log(session, "b", "law", at(day, 10), channel="zalo")
        log(session, "b", "answered", at(day, 10, 5), "1.001", typed=False, channel="zalo")  # a tapped choice: not another question
        log(session, "c", "answered", at(START, 0, 0), "1.002")  # the first instant of the range
        log(session, "c", "answered", at(START, 0, 0) - timedelta(seconds=1), "1.002")  # before it
        log(session, "c", "answered", at(END + timedelta(days=1), 0, 0), "1.002")  # after it
    o = compute(db)
    by_day = {d.day: d.counts for d in o.by_day}
    assert [d.day for d in o.by_day] == [START + timedelta(days=n) for n in range(7)]  # every day, even empty ones
    assert by_day[day] == {"answered": 1, "clarified": 0, "not_understood": 1, "law": 1}
    assert by_day[day + timedelta(days=1)] == {"answered": 0, "clarified": 1, "not_understood": 0, "law": 0}
    assert by_day[START]["answered"] == 1
    assert o.questions == 5
    assert o.by_channel == {"telegram": {"answered": 2, "clarified": 1, "not_understood": 0, "law": 0},
                            "zalo": {"answered": 0, "clarified": 0, "not_understood": 1, "law": 1}}
    assert [(d.day, d.channel, d.total) for d in o.by_day_channel] == [
        (START, "telegram", 1), (day, "telegram", 1), (day, "zalo", 2), (day + timedelta(days=1), "telegram", 1)]
    assert o.citizens == 3


def test_satisfaction_is_the_share_of_thumbs_up_among_voted_answers_with_a_daily_trend(db):
    with db.begin() as session:
        for n, vote in enumerate(["up", "up", "up", "down"]):
            log(session, f"c{n}", "answered", at(date(2026, 3, 3), 10), "1.001", vote=vote)
        log(session, "c9", "answered", at(date(2026, 3, 3), 11), "1.001")  # no vote: not in the share
        log(session, "c8", "answered", at(date(2026, 3, 5), 11), "1.001", typed=False, vote="down")  # a tap's answer counts
    o = compute(db)
    assert (o.satisfaction.up, o.satisfaction.down) == (3, 1 + 1)
    assert o.satisfaction.share == 3 / 5
    trend = {v.start: v for v in o.trend}
    assert len(o.trend) == 7 and trend[date(2026, 3, 3)].share == 0.75 and trend[date(2026, 3, 5)].share == 0
    assert trend[date(2026, 3, 4)].share is None  # no vote that day: a gap, not 0 %


def test_ratings_from_one_to_five_join_the_satisfaction_figures(db):
    from knowledge.handoff_store import RatingRow

    with db.begin() as session:
        for score, day in [(5, 3), (4, 3), (1, 5), (5, 20)]:  # the last one is after the range
            session.add(RatingRow(month="2026-03", score=score, source="handoff", chat_hash=f"{score:064d}",
                                  created_at=at(date(2026, 3, day), 23, 50)))  # late evening: still that office day
    o = compute(db)
    assert (o.ratings.count, o.ratings.average) == (3, 10 / 3)
    assert o.ratings.by_score == {1: 1, 2: 0, 3: 0, 4: 1, 5: 1}
    trend = {v.start: v for v in o.trend}
    assert (trend[date(2026, 3, 3)].rated, trend[date(2026, 3, 3)].average) == (2, 4.5)
    assert trend[date(2026, 3, 5)].average == 1 and trend[date(2026, 3, 4)].average is None


def test_a_long_range_shows_the_trend_per_week(db):
    with db() as session:
        o = figures.overview(session, figures.period(date(2026, 1, 1), date(2026, 3, 31), "Asia/Ho_Chi_Minh"))
    assert all(v.label.startswith("Tuần") for v in o.trend) and len(o.trend) == 14
    assert all(v.start.weekday() == 0 for v in o.trend)


def test_most_asked_procedures_count_typed_answers_with_their_names(db):
    with db.begin() as session:
        for n in range(3):
            log(session, f"x{n}", "answered", at(date(2026, 3, 2), 9), "1.001")
        log(session, "y", "answered", at(date(2026, 3, 2), 9), "1.002")
        log(session, "y", "answered", at(date(2026, 3, 2), 9), "1.002", typed=False)
        log(session, "y", "answered", at(date(2026, 3, 2), 9), "1.002", typed=False)
        log(session, "z", "not_understood", at(date(2026, 3, 2), 9))
    names = {"1.001": "Cấp thẻ căn cước"}
    o = compute(db, name_of=names.get)
    assert [(p.entry_id, p.name, p.count) for p in o.procedures] == [
        ("1.001", "Cấp thẻ căn cước", 3), ("1.002", "(không còn trong cơ sở dữ liệu)", 1)]


def dossier(session, code: str, received: datetime, due: datetime | None, status: str, history: list[tuple[str, datetime]],
            new_due: datetime | None = None) -> None:
    last = history[-1][1] if history else received
    session.add(DossierRow(code=code, procedure="Đăng ký khai sinh", received_at=received, due_at=due, new_due_at=new_due,
                           status=status, status_since=last, source="test"))
    session.flush()
    for state, moment in history:
        session.add(DossierStatusRow(dossier_code=code, status=state, changed_at=moment, noticed_at=moment, source="test"))


def test_dossiers_on_time_and_late_against_the_first_appointment(db):
    received = at(date(2026, 3, 2), 8)
    due = at(date(2026, 3, 5), 17)
    now = at(date(2026, 3, 10), 9)
    with db.begin() as session:
        # Result ready on the appointment day, even late in the day: on time (then returned later: still on time).
        dossier(session, "ON-TIME", received, due, "returned",
                [("received", received), ("result_ready", at(date(2026, 3, 5), 20)), ("returned", at(date(2026, 3, 9), 9))])
        # Ready the day after: late, though the office then set a new date.
        dossier(session, "LATE-DONE", received, due, "result_ready", [("result_ready", at(date(2026, 3, 6), 9))],
                new_due=at(date(2026, 3, 8), 17))
        dossier(session, "LATE-OPEN", received, due, "processing", [("processing", received)])  # still at it past the day
        dossier(session, "WAITING", received, due, "needs_documents", [("needs_documents", received)])  # the citizen's turn
        dossier(session, "NOT-YET", received, at(date(2026, 3, 20), 17), "processing", [])  # within its time
        dossier(session, "NO-DUE", received, None, "processing", [])
        dossier(session, "OLD", at(date(2026, 2, 1), 8), due, "processing", [])  # received before the range
    with db() as session:
        d = figures.dossiers(session, figures.period(START, END, "Asia/Ho_Chi_Minh"), now)
    assert (d.received, d.on_time, d.late, d.waiting_citizen, d.in_time_pending, d.no_due_date) == (6, 1, 2, 1, 1, 1)
    assert d.on_time_share == 1 / 3


def test_subscribers_and_announcements_of_the_range(db):
    inside, before = at(date(2026, 3, 3), 9), at(date(2026, 2, 1), 9)
    with db.begin() as session:
        session.add_all([
            SubscriptionRow(channel="telegram", chat_id="1", created_at=before),
            SubscriptionRow(channel="telegram", chat_id="2", created_at=inside),
            SubscriptionRow(channel="telegram", chat_id="3", created_at=before, unsubscribed_at=inside),
            SubscriptionRow(channel="telegram", chat_id="4", created_at=at(date(2026, 4, 1), 9)),
            BroadcastRow(text="Nghỉ lễ", created_by="t", state="done", started_at=inside, recipients=3, sent=2, failed=1),
            BroadcastRow(text="Cũ", created_by="t", state="done", started_at=before, recipients=3, sent=3),
            BroadcastRow(text="Hẹn giờ", created_by="t", state="scheduled"),
        ])
    o = compute(db)
    assert (o.subscribers.active, o.subscribers.joined, o.subscribers.left) == (2, 1, 1)
    assert [(a.text, a.sent, a.failed) for a in o.announcements] == [("Nghỉ lễ", 2, 1)]


def test_ten_thousand_questions_over_ninety_days_are_summed_quickly(db):
    base = at(date(2026, 1, 1), 0)
    rows = [{"asked_at": base + timedelta(minutes=12 * n), "channel": ("telegram", "zalo")[n % 2],
                 "outcome": question_log.OUTCOMES[n % 4], "entry_id": f"1.{n % 50:03d}" if n % 4 == 0 else None,
                 "aspects": None, "typed": True, "citizen": f"{n % 900:064d}", "vote": ("up", "down", None)[n % 3]}
            for n in range(10_000)]
    with db.begin() as session:
        session.execute(question_log.QuestionLogRow.__table__.insert(), rows)
    with db() as session:
        started = clock.perf_counter()
        o = figures.overview(session, figures.period(date(2026, 1, 1), date(2026, 3, 31), "Asia/Ho_Chi_Minh"))
        took = clock.perf_counter() - started
    assert o.questions == 10_000 and o.citizens == 900
    assert took < 2.0, f"{took:.2f} s"  # measured ~0.05 s; generous for a loaded CI machine


def test_a_zone_with_daylight_saving_still_counts_each_question_on_its_local_day(db):
    # Berlin moves from +1 to +2 on 29 March 2026: SQLite cannot add one offset for the whole range.
    berlin = ZoneInfo("Europe/Berlin")
    moments = [datetime(2026, 3, 28, 23, 30, tzinfo=berlin), datetime(2026, 3, 29, 0, 30, tzinfo=berlin),
               datetime(2026, 3, 29, 23, 30, tzinfo=berlin), datetime(2026, 3, 30, 0, 30, tzinfo=berlin)]
    with db.begin() as session:
        for moment in moments:
            log(session, "a", "answered", moment.astimezone(UTC), "1.001", vote="up")
    with db() as session:
        o = figures.overview(session, figures.period(date(2026, 3, 28), date(2026, 3, 30), "Europe/Berlin"))
    assert {d.day.day: d.total for d in o.by_day} == {28: 1, 29: 2, 30: 1}
    assert [v.up for v in o.trend] == [1, 2, 1]
