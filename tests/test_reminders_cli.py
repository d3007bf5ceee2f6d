"""`python bot.py jobs run --now ...` as operators run it: separate processes, one database.

A run that stops in the middle leaves nothing lost and nothing doubled for the next run; two runs started
together send each reminder once. The console channel prints what it sends ("[thông báo] ..."), which is
what these tests read.
"""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import PROJECT_DIR
from sqlalchemy import select
from test_reminders import at

from reminders.models import ReminderRow
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates, follow, verify

NOTICE = "[thông báo] "


def start_jobs(database_url: str, now: str, cwd) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"}}
    env.update(PYTHONIOENCODING="utf-8", NO_COLOR="1", COLUMNS="200")
    return subprocess.Popen([sys.executable, str(PROJECT_DIR / "bot.py"), "--db", database_url, "jobs", "run", "--now", now],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", cwd=cwd, env=env)


def finish(process: subprocess.Popen) -> list[str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return [line[len(NOTICE):] for line in out.splitlines() if line.startswith(NOTICE)]


def dossiers(db, count: int) -> list[str]:
    codes = [f"000.00.12.H12-261120-{n:04d}" for n in range(1, count + 1)]
    with db() as session:
        apply_updates(session, [DossierUpdate(code=c, status=Status.PROCESSING, procedure="Đăng ký khai sinh",
                                              due_at=at("2026-12-10 00:00"), given=frozenset({"procedure", "due_at"}))
                                for c in codes], "test", at("2026-11-20 08:00"))
        for code in codes:
            verify(session, "console", f"chat-{code[-4:]}", code, at("2026-11-20 09:00"))
            follow(session, "console", f"chat-{code[-4:]}", code, now=at("2026-11-20 09:00"))
        session.commit()
    return codes


def ready(db, codes: list[str], now) -> None:
    with db() as session:
        apply_updates(session, [DossierUpdate(code=c, status=Status.RESULT_READY) for c in codes], "test", now)
        session.commit()


def test_two_bot_processes_started_together_send_each_reminder_once(database_url, db, tmp_path):
    codes = dossiers(db, 150)
    ready(db, codes, at("2026-11-25 10:00"))
    first, second = (start_jobs(database_url, "2026-11-25T10:05", tmp_path) for _ in range(2))
    sent = finish(first) + finish(second)
    told = [code for code in codes for text in sent if f"Hồ sơ {code} " in text and "đã có kết quả" in text]
    assert sorted(told) == codes, "each dossier's 'result ready' went out exactly once"
    assert finish(start_jobs(database_url, "2026-11-25T10:30", tmp_path)) == []
    with db() as session:
        states = {r.state for r in session.scalars(select(ReminderRow).where(ReminderRow.kind == "result_ready"))}
    assert states == {"sent"}


def test_runs_across_the_night_and_a_crash_in_the_middle(database_url, db, tmp_path):
    codes = dossiers(db, 3)
    ready(db, codes[:2], at("2026-11-25 22:30"))
    assert finish(start_jobs(database_url, "2026-11-25T22:31", tmp_path)) == [], "quiet hours"
    # The bot was down all night; at 07:00 the next run sends what waited, once.
    morning = finish(start_jobs(database_url, "2026-11-26T07:00", tmp_path))
    assert len(morning) == 2 and all("đã có kết quả" in t for t in morning)
    # A process claims the third's reminder and dies (killed before it sends).
    ready(db, codes[2:], at("2026-11-26 09:00"))
    from conftest import make_settings

    from reminders.dispatch import claim
    from reminders.scan import scan

    settings = make_settings(database_url)
    scan(db, settings, at("2026-11-26 09:01"))
    assert len(claim(db, at("2026-11-26 09:01"), "killed", settings.reminder_lease_seconds, ["console"])) == 1
    assert finish(start_jobs(database_url, "2026-11-26T09:02", tmp_path)) == [], "the lease still runs"
    [late] = finish(start_jobs(database_url, "2026-11-26T09:07", tmp_path))
    assert codes[2] in late
    assert finish(start_jobs(database_url, "2026-11-26T09:30", tmp_path)) == []


def test_a_wrong_now_is_a_clear_error(tmp_path, database_url):
    process = start_jobs(database_url, "01/12/2026 8h", tmp_path)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "--now" in err and "2026-12-01T08:00" in err
