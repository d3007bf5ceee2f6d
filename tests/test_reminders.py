"""Reminders as a citizen following a dossier would notice them: which message arrives, when, and only once.

Time moves with explicit `now=` arguments; messages are caught by a ConsoleSender (channel "console")
or by senders that answer with a platform's outcomes. Every test runs on SQLite, and on PostgreSQL
when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from conftest import make_settings
from sqlalchemy import select

from channels.outbound import ConsoleSender, Delivery, Outcome
from knowledge.db import make_engine, session_factory
from reminders.decide import QuietHours
from reminders.dispatch import claim, dispatch
from reminders.models import FollowRow, ReminderRow
from reminders.scan import scan
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates, follow, set_muted, verify

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CODE = "000.00.12.H12-261120-0001"
OTHER = "000.00.12.H12-261120-0002"


def at(text: str) -> datetime:
    """Office time "2026-12-01 08:00" as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=VN).astimezone(UTC)


@pytest.fixture
def settings(database_url):
    return make_settings(database_url, office_address="12 Trần Phú", office_hours="7:30–17:00 thứ Hai đến thứ Sáu",
                         uncollected_days=5)


def put(db, code: str, status: Status, now: datetime, **facts) -> None:
    given = frozenset(facts) | {"procedure"}
    facts.setdefault("procedure", "Đăng ký khai sinh")
    with db() as session:
        apply_updates(session, [DossierUpdate(code=code, status=status, given=given, **facts)], "test", now)
        session.commit()


def follow_at(db, code: str, now: datetime, chat: str = "c1", channel: str = "console") -> int:
    """A chat that gave the right 4 digits and followed, as /theodoi <mã> <4 số> does."""
    with db() as session:
        verify(session, channel, chat, code, now)
        row, _ = follow(session, channel, chat, code, now=now)
        session.commit()
        return row.id


def run(db, settings, now: datetime, senders=None):
    """One `jobs run --now`: plan, then send whatever is due; returns the texts sent this run."""
    senders = senders or {"console": ConsoleSender(echo=False)}
    before = {name: len(getattr(s, "sent", [])) for name, s in senders.items()}
    scan(db, settings, now)
    asyncio.run(dispatch(db, senders, settings, now))
    return [text for name, s in senders.items() for _, text in getattr(s, "sent", [])[before[name]:]]


def reminders(db, kind: str | None = None) -> list[ReminderRow]:
    with db() as session:
        query = select(ReminderRow).order_by(ReminderRow.id)
        return list(session.scalars(query.where(ReminderRow.kind == kind) if kind else query))


# --------------------------------------------------------------------------- each kind of reminder

def test_each_status_change_is_told_once_with_what_to_do(db, settings):
    put(db, CODE, Status.RECEIVED, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"), received_at=at("2026-11-20 08:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    sender = ConsoleSender(echo=False)
    senders = {"console": sender}
    assert run(db, settings, at("2026-11-20 09:01"), senders) == [], "what the citizen saw when following is not repeated"

    put(db, CODE, Status.RECEIVED, at("2026-11-21 09:00"))  # the same status again: no change
    assert run(db, settings, at("2026-11-21 09:05"), senders) == []

    put(db, CODE, Status.NEEDS_DOCUMENTS, at("2026-11-22 09:00"), note="Bản sao giấy chứng nhận kết hôn")
    [needs] = run(db, settings, at("2026-11-22 09:01"), senders)
    assert CODE in needs and "Đăng ký khai sinh" in needs
    assert "cần bổ sung" in needs and "Bản sao giấy chứng nhận kết hôn" in needs
    assert "/tatnhac " + CODE in needs

    put(db, CODE, Status.PROCESSING, at("2026-11-24 09:00"))
    assert run(db, settings, at("2026-11-24 09:01"), senders) == [], "'đang xử lý' alone is not worth a message"

    put(db, CODE, Status.RESULT_READY, at("2026-11-26 10:00"))
    [ready] = run(db, settings, at("2026-11-26 10:01"), senders)
    assert "đã có kết quả" in ready and "12 Trần Phú" in ready and "7:30–17:00" in ready and "giấy tờ tùy thân" in ready

    put(db, CODE, Status.RETURNED, at("2026-11-27 10:00"))
    [returned] = run(db, settings, at("2026-11-27 10:01"), senders)
    assert "đã được trả kết quả" in returned
    assert run(db, settings, at("2026-12-20 10:00"), senders) == [], "a finished dossier is quiet"
    rows = reminders(db)
    assert [r.kind for r in rows if r.state == "sent"] == ["needs_documents", "result_ready", "returned"]
    assert all(r.state == "cancelled" and r.reason for r in rows if r.state != "sent"), "planned ones no longer due are closed"


def test_received_and_result_by_post(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"), delivery="Qua dịch vụ bưu chính công ích")
    follow_at(db, CODE, at("2026-11-20 09:00"))
    put(db, CODE, Status.RECEIVED, at("2026-11-20 10:00"), received_at=at("2026-11-20 10:00"))
    [received] = run(db, settings, at("2026-11-20 10:01"))
    assert "đã được tiếp nhận ngày 20/11/2026" in received and "Ngày hẹn trả kết quả: 10/12/2026" in received
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    [ready] = run(db, settings, at("2026-11-25 10:01"))
    assert "qua bưu điện" in ready and "không cần đến nhận" in ready
    assert run(db, settings, at("2026-12-05 10:00")) == [], "a result sent by post is never 'not collected'"


def test_appointment_tomorrow_at_eight_the_day_before(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-02 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    assert run(db, settings, at("2026-12-01 07:59")) == []
    [tomorrow] = run(db, settings, at("2026-12-01 08:00"))
    assert "ngày mai (02/12/2026)" in tomorrow and CODE in tomorrow and "Đăng ký khai sinh" in tomorrow
    assert run(db, settings, at("2026-12-01 12:00")) == []


def test_a_planned_reminder_says_what_is_true_when_it_goes_out(db, settings):
    for code in (CODE, OTHER):
        put(db, code, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-02 00:00"))
        follow_at(db, code, at("2026-11-20 09:00"))
    assert run(db, settings, at("2026-11-25 09:00")) == []  # "appointment tomorrow" is planned for 01/12 08:00
    for code in (CODE, OTHER):
        put(db, code, Status.RESULT_READY, at("2026-11-30 10:00"))
    assert all("đã có kết quả" in t for t in run(db, settings, at("2026-11-30 10:01")))
    tomorrow = run(db, settings, at("2026-12-01 08:00"))
    assert len(tomorrow) == 2
    assert all("ngày mai (02/12/2026)" in t and "Kết quả đã sẵn sàng" in t and "Nếu hồ sơ có thay đổi" not in t for t in tomorrow)


def test_late_dossier_gets_an_apology_then_the_new_date(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-02 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    run(db, settings, at("2026-12-01 08:00"))  # the appointment reminder
    assert run(db, settings, at("2026-12-02 16:00")) == [], "not late on the appointment day itself"
    [sorry] = run(db, settings, at("2026-12-03 07:00"))
    assert "xin lỗi" in sorry and "quá ngày hẹn trả 02/12/2026" in sorry and "ngày hẹn mới" in sorry
    assert run(db, settings, at("2026-12-03 10:00")) == []

    put(db, CODE, Status.PROCESSING, at("2026-12-03 11:00"), new_due_at=at("2026-12-09 00:00"))
    sent = run(db, settings, at("2026-12-03 11:01"))
    [again] = [t for t in sent if "xin lỗi" in t]
    assert "Ngày hẹn trả mới: 09/12/2026" in again
    [tomorrow] = run(db, settings, at("2026-12-08 08:00"))
    assert "ngày mai (09/12/2026)" in tomorrow
    [late_again] = [t for t in run(db, settings, at("2026-12-10 07:00")) if "xin lỗi" in t]
    assert "quá ngày hẹn trả 09/12/2026" in late_again


def test_result_not_collected_after_n_days(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-11-30 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    [ready] = run(db, settings, at("2026-11-25 10:05"))
    assert "đã có kết quả" in ready
    assert [t for t in run(db, settings, at("2026-11-30 09:59")) if "chưa được nhận" in t] == []
    [reminder] = run(db, settings, at("2026-11-30 10:00"))
    assert "đã có kết quả từ ngày 25/11/2026 nhưng chưa được nhận" in reminder
    assert run(db, settings, at("2026-12-20 10:00")) == [], "reminded once, not every day"


# --------------------------------------------------------------------------- quiet hours, mute, superseded

def test_quiet_hours_hold_messages_until_seven(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 22:10"))
    assert run(db, settings, at("2026-11-25 22:15")) == []
    [row] = reminders(db, "result_ready")
    assert row.state == "deferred" and "giờ yên lặng 21:00–07:00" in row.reason and "07:00 26/11/2026" in row.reason
    assert run(db, settings, at("2026-11-26 06:59")) == []
    [ready] = run(db, settings, at("2026-11-26 07:00"))
    assert "đã có kết quả" in ready
    [row] = reminders(db, "result_ready")
    assert row.state == "sent" and "giờ yên lặng" in row.reason, "the deferral stays on record"


def test_quiet_hours_from_settings():
    quiet = QuietHours.from_settings(make_settings(quiet_hours_start="22:30", quiet_hours_end="06:00"))
    assert quiet.contains(at("2026-12-01 23:00")) and quiet.contains(at("2026-12-02 05:59"))
    assert not quiet.contains(at("2026-12-01 22:29")) and not quiet.contains(at("2026-12-02 06:00"))
    assert quiet.ends_after(at("2026-12-01 23:00")) == at("2026-12-02 06:00")


def test_a_muted_dossier_sends_nothing_until_unmuted(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    put(db, CODE, Status.NEEDS_DOCUMENTS, at("2026-11-22 22:00"), note="Tờ khai")
    run(db, settings, at("2026-11-22 22:01"))  # deferred by quiet hours
    with db() as session:
        set_muted(session, "console", "c1", CODE, True)
        session.commit()
    assert run(db, settings, at("2026-11-23 07:00")) == []
    [row] = reminders(db)
    assert row.state == "cancelled" and "tắt nhắc" in row.reason
    with db() as session:
        set_muted(session, "console", "c1", CODE, False)
        session.commit()
    put(db, CODE, Status.RESULT_READY, at("2026-11-24 09:00"))
    [ready] = run(db, settings, at("2026-11-24 09:01"))
    assert "đã có kết quả" in ready


def test_a_status_superseded_before_it_went_out_is_not_sent(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    put(db, CODE, Status.NEEDS_DOCUMENTS, at("2026-11-22 22:00"), note="Tờ khai")
    run(db, settings, at("2026-11-22 22:01"))
    put(db, CODE, Status.RESULT_READY, at("2026-11-22 23:00"))
    [only] = run(db, settings, at("2026-11-23 07:00"))
    assert "đã có kết quả" in only
    states = {r.kind: (r.state, r.reason) for r in reminders(db)}
    assert states["needs_documents"][0] == "cancelled" and "không còn phù hợp" in states["needs_documents"][1]


# --------------------------------------------------------------------------- restart and two processes

def test_a_process_dying_after_claiming_leaves_the_reminder_to_the_next_run_sent_once(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"))
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    now = at("2026-11-25 10:01")
    scan(db, settings, now)
    # The first process claims the reminder, then dies before sending or marking it.
    [taken] = claim(db, now, "dead-process", settings.reminder_lease_seconds, ["console"])
    assert [r.state for r in reminders(db, "result_ready")] == ["claimed"]
    assert run(db, settings, now + timedelta(seconds=60)) == [], "while the lease runs, nobody else sends it"
    [ready] = run(db, settings, now + timedelta(seconds=settings.reminder_lease_seconds + 1))
    assert "đã có kết quả" in ready and taken.id == reminders(db, "result_ready")[0].id
    assert run(db, settings, now + timedelta(hours=1)) == []
    [row] = reminders(db, "result_ready")
    assert row.state == "sent" and row.attempts == 2


class SlowSender(ConsoleSender):
    """Records like the console and takes a moment per message, so two workers overlap."""

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.lock = threading.Lock()

    async def send(self, chat_id, text, buttons=None):
        await asyncio.sleep(0.003)
        with self.lock:
            self.sent.append((chat_id, text))
        return Delivery(Outcome.SENT)


def test_two_processes_on_one_database_send_each_reminder_exactly_once(database_url, db, settings):
    count = 60
    updates = [DossierUpdate(code=f"000.00.12.H12-261120-{n:04d}", status=Status.PROCESSING, procedure="Đăng ký khai sinh",
                             due_at=at("2026-12-10 00:00"), given=frozenset({"procedure", "due_at"})) for n in range(1, count + 1)]
    with db() as session:
        apply_updates(session, updates, "test", at("2026-11-20 08:00"))
        for u in updates:
            verify(session, "console", f"chat-{u.code[-4:]}", u.code, at("2026-11-20 09:00"))
            follow(session, "console", f"chat-{u.code[-4:]}", u.code, now=at("2026-11-20 09:00"))
        session.commit()
    with db() as session:
        apply_updates(session, [DossierUpdate(code=u.code, status=Status.RESULT_READY) for u in updates], "test", at("2026-11-25 10:00"))
        session.commit()
    now = at("2026-11-25 10:05")
    sender = SlowSender()
    results = []
    start = threading.Barrier(2)

    def worker():
        engine = make_engine(database_url)  # a separate engine: its own connections, as another process has
        try:
            own = session_factory(engine)
            start.wait()
            scan(own, settings, now)
            results.append(asyncio.run(dispatch(own, {"console": sender}, settings, now, token=uuid.uuid4().hex, batch=5)))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2, "both workers finished"
    chats = [chat for chat, _ in sender.sent]
    assert len(chats) == count and len(set(chats)) == count, "every citizen got the message, nobody twice"
    assert sum(r.sent for r in results) == count
    sent = reminders(db, "result_ready")
    assert all(r.state == "sent" for r in sent) and len(sent) == count


# --------------------------------------------------------------------------- what platforms answer

class AnsweringSender(ConsoleSender):
    def __init__(self, channel: str, *outcomes: Delivery) -> None:
        super().__init__(echo=False)
        self.channel = channel
        self.outcomes = list(outcomes)

    async def send(self, chat_id, text, buttons=None):
        delivery = self.outcomes.pop(0) if self.outcomes else Delivery(Outcome.SENT)
        if delivery.sent:
            self.sent.append((chat_id, text))
        return delivery


def test_a_user_who_blocked_the_bot_is_not_tried_again(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    put(db, OTHER, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-11 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"), chat="777", channel="telegram")
    follow_at(db, OTHER, at("2026-11-20 09:00"), chat="777", channel="telegram")
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    sender = AnsweringSender("telegram", Delivery(Outcome.BLOCKED, "Forbidden: bot was blocked by the user"))
    assert run(db, settings, at("2026-11-25 10:01"), {"telegram": sender}) == []
    [row] = reminders(db, "result_ready")
    assert row.state == "undeliverable" and "chặn bot" in row.reason and "blocked by the user" in row.reason
    with db() as session:
        assert all(f.unreachable for f in session.scalars(select(FollowRow)))
    put(db, OTHER, Status.RESULT_READY, at("2026-11-26 10:00"))
    assert run(db, settings, at("2026-11-26 10:01"), {"telegram": sender}) == []
    assert len(reminders(db, "result_ready")) == 1, "nothing more is planned for a chat that blocked the bot"
    assert all(r.state in ("undeliverable", "cancelled") for r in reminders(db)), "its other reminders are closed too"


def test_zalo_refusal_is_recorded_and_transient_errors_are_retried(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    put(db, OTHER, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"), chat="z1", channel="zalo")
    follow_at(db, OTHER, at("2026-11-20 09:00"), chat="z2", channel="zalo")
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    put(db, OTHER, Status.RESULT_READY, at("2026-11-25 10:00"))
    sender = AnsweringSender("zalo", Delivery(Outcome.REJECTED, "error 400: not allowed"), Delivery(Outcome.TRANSIENT, "timeout"))
    assert run(db, settings, at("2026-11-25 10:01"), {"zalo": sender}) == []
    rows = {r.chat_id: r for r in reminders(db, "result_ready")}
    assert rows["z1"].state == "undeliverable" and "Zalo" in rows["z1"].reason and "not allowed" in rows["z1"].reason
    assert rows["z2"].state == "planned" and "thử lại" in rows["z2"].reason
    assert run(db, settings, at("2026-11-25 10:01:30"), {"zalo": sender}) == [], "not before the back-off"
    [ready] = run(db, settings, at("2026-11-25 10:03"), {"zalo": sender})
    assert OTHER in ready


def test_rate_limited_is_retried_after_the_platforms_wait(db, settings):
    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    follow_at(db, CODE, at("2026-11-20 09:00"), chat="5", channel="telegram")
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    sender = AnsweringSender("telegram", Delivery(Outcome.RATE_LIMITED, "Too Many Requests", 7))
    assert run(db, settings, at("2026-11-25 10:01"), {"telegram": sender}) == []
    assert reminders(db, "result_ready")[0].state == "planned"
    [ready] = run(db, settings, at("2026-11-25 10:01:08"), {"telegram": sender})
    assert CODE in ready


# --------------------------------------------------------------------------- one bad record

def test_a_bad_record_already_stored_is_skipped_and_shown_while_everyone_else_is_reminded(db, settings, tmp_path, database_url):
    from test_cli import run_bot

    from reminders.models import DossierRow

    put(db, CODE, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    put(db, OTHER, Status.PROCESSING, at("2026-11-20 08:00"), due_at=at("2026-12-10 00:00"))
    with db() as session:  # as an older version let it in: "no date" as the one-stop software writes it
        session.get(DossierRow, CODE).due_at = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
        session.commit()
    follow_at(db, CODE, at("2026-11-20 09:00"), chat="unlucky")
    follow_at(db, OTHER, at("2026-11-20 09:00"), chat="everyone-else")
    put(db, CODE, Status.RESULT_READY, at("2026-11-25 10:00"))
    put(db, OTHER, Status.RESULT_READY, at("2026-11-25 10:00"))
    result = scan(db, settings, at("2026-11-25 10:01"))
    assert list(result.skipped) == [CODE] and "OverflowError" in result.skipped[CODE]
    [ready] = run(db, settings, at("2026-11-25 10:02"))
    assert OTHER in ready and "đã có kết quả" in ready

    shown = run_bot(["--db", database_url, "dossiers", "show", CODE], tmp_path)
    assert shown.returncode == 0 and "lỗi, không lập được nhắc" in shown.stdout and "31/12/9999" in shown.stdout
    listed = run_bot(["--db", database_url, "dossiers", "list"], tmp_path)
    assert "⚠ lỗi dữ liệu" in " ".join(listed.stdout.split())
    jobs = run_bot(["--db", database_url, "jobs", "run", "--now", "2026-11-25T10:03"], tmp_path)
    assert jobs.returncode == 0 and f"Bỏ qua hồ sơ {CODE}" in " ".join(jobs.stderr.split())

    with db() as session:  # staff fix the record at its source and import it again
        apply_updates(session, [DossierUpdate(code=CODE, status=Status.RESULT_READY, due_at=at("2026-12-10 00:00"),
                                              given=frozenset({"due_at"}))], "test", at("2026-11-25 11:00"))
        session.commit()
    assert scan(db, settings, at("2026-11-25 11:01")).skipped == {}
    with db() as session:
        assert session.get(DossierRow, CODE).scan_problem is None
