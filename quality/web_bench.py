"""How fast the web console's pages answer with a realistic office's data (issue 14: median under 300 ms).

The database holds a knowledge base (the national catalogue when --db names one it was imported into, e.g.
`python bot.py --db sqlite:////work/tmp/full.db kb import .../procedures_all_ministries.jsonl.gz`; otherwise a
fresh SQLite file with the starter data), topped up to 10,000 logged questions over the last 90 days, 2,000
dossiers and 500 subscribers (topping up: running it again adds nothing). Each main page is then fetched
through a TestClient signed in as an admin (a real one-time link), a few times to warm up and then --repeat
times, and the median and p90 of the wall time per request are printed.

    python -m quality.web_bench [--db URL] [--repeat 30] [--questions 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGET_MS = 300.0
WARM_UP = 3
BENCH_STAFF = "990000001"  # the admin the bench signs in as
PAGES = [
    ("/tongquan", "Tổng quan, 30 ngày"),
    ("/tongquan?from={d90}&to={today}", "Tổng quan, 90 ngày"),
    ("/tongquan/bang/cau-hoi-theo-ngay-va-kenh.xlsx?from={d90}&to={today}", "Tải XLSX, 90 ngày"),
    ("/cauhoi", "Câu hỏi cần dạy"),
    ("/kienthuc", "Kiến thức"),
    ("/kienthuc?q=cấp lại thẻ căn cước", "Kiến thức: tìm"),
    ("/hoso", "Hồ sơ"),
    ("/hoso?loc=tre", "Hồ sơ trễ"),
    ("/thongbao", "Thông báo"),
    ("/canbo", "Cán bộ"),
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def fill(bot, questions: int, days: int, dossiers: int, subscribers: int, seed: int = 14) -> dict[str, int]:
    """Top the database up to the wanted amounts of data (nothing is added when it already holds them)."""
    from sqlalchemy import func, select

    from broadcasts.models import BroadcastRow, SubscriptionRow
    from knowledge.models import EntryRow
    from knowledge.question_log import OUTCOMES, QuestionLogRow
    from reminders.models import DossierRow, DossierStatusRow

    rng = random.Random(seed)
    now = datetime.now(UTC)
    since = now - timedelta(days=days)
    added = {}
    with bot.db.begin() as session:
        ids = list(session.scalars(select(EntryRow.id).order_by(EntryRow.id)))
        popular = rng.sample(ids, min(300, len(ids)))
        have = session.scalar(select(func.count()).select_from(QuestionLogRow).where(QuestionLogRow.asked_at >= since)) or 0
        rows = []
        for n in range(max(0, questions - have)):
            outcome = rng.choices(OUTCOMES, weights=(70, 15, 12, 3))[0]
            answered = outcome == "answered"
            rows.append({"asked_at": since + timedelta(seconds=rng.uniform(0, days * 86400)),
                             "channel": rng.choices(("telegram", "zalo", "zalo_oa"), weights=(6, 3, 1))[0], "outcome": outcome,
                             "entry_id": rng.choice(popular) if answered else None, "aspects": "fee" if answered else None,
                             "typed": rng.random() > 0.1, "citizen": f"{rng.randrange(3000):064x}",
                             "vote": rng.choices(("up", "down", None), weights=(20, 5, 75))[0] if answered else None})
        if rows:
            session.execute(QuestionLogRow.__table__.insert(), rows)
        added["questions"] = len(rows)

        have = session.scalar(select(func.count()).select_from(DossierRow).where(DossierRow.code.like("BENCH-%"))) or 0
        statuses = ("received", "processing", "needs_documents", "result_ready", "returned", "rejected")
        for n in range(have, dossiers):
            received = since + timedelta(seconds=rng.uniform(0, days * 86400))
            due = received + timedelta(days=rng.randint(3, 15))
            status = rng.choice(statuses)
            since_status = min(now, received + timedelta(days=rng.uniform(0, 20)))
            code = f"BENCH-{n:06d}"
            session.add(DossierRow(code=code, procedure="Đăng ký khai sinh", received_at=received, due_at=due, status=status,
                                   status_since=since_status, source="bench", phone_last4=f"{rng.randrange(10000):04d}"))
            session.add(DossierStatusRow(dossier_code=code, status=status, changed_at=since_status, noticed_at=since_status,
                                         source="bench"))
        added["dossiers"] = max(0, dossiers - have)

        have = session.scalar(select(func.count()).select_from(SubscriptionRow).where(SubscriptionRow.channel == "bench")) or 0
        session.add_all(SubscriptionRow(channel="bench", chat_id=str(n), created_at=since + timedelta(hours=n))
                        for n in range(have, subscribers))
        added["subscribers"] = max(0, subscribers - have)
        if not session.scalar(select(func.count()).select_from(BroadcastRow).where(BroadcastRow.created_by == "bench")):
            session.add_all(BroadcastRow(text=f"Thông báo thử {n}", created_by="bench", state="done", recipients=subscribers,
                                         sent=subscribers, started_at=since + timedelta(days=n * 7), finished_at=since + timedelta(days=n * 7))
                            for n in range(days // 7))
    return added


def sign_in(bot):
    """A TestClient signed in as an admin through a one-time link, with the session's CSRF header."""
    import re

    from starlette.testclient import TestClient

    from knowledge import staff, web_access
    from knowledge.staff import Role
    from web.server import create_web_app

    with bot.db.begin() as session:
        if staff.role_of(session, "telegram", BENCH_STAFF) is None:
            staff.add(session, "telegram", BENCH_STAFF, Role.ADMIN)
        token = web_access.issue_link(session, "telegram", BENCH_STAFF)
    client = TestClient(create_web_app(bot), follow_redirects=False)
    assert client.post(f"/dangnhap/{token}").status_code == 303, "sign-in failed"
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', client.get("/matkhau").text)
    if found:
        client.headers["X-CSRF-Token"] = found.group(1)
    return client


def measure(client, path: str, repeat: int) -> tuple[int, list[float]]:
    status = 0
    for _ in range(WARM_UP):
        status = client.get(path).status_code
    if status != 200:
        return status, []
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            return response.status_code, []
    return 200, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quality.web_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file with the starter data)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per page (default 30)")
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--dossiers", type=int, default=2_000)
    parser.add_argument("--subscribers", type=int, default=500)
    args = parser.parse_args(argv)

    from app import build_app
    from config import Settings

    workdir = None
    url = args.db
    if not url:
        workdir = tempfile.TemporaryDirectory(prefix="motcua-web-bench-")
        url = f"sqlite:///{Path(workdir.name) / 'bench.db'}"
    settings = Settings(_env_file=None, database_url=url, record_questions=False, telegram_bot_token=None,
                        zalo_bot_token=None, core_workers=0)
    started = time.perf_counter()
    bot = build_app(settings, live=False)
    try:
        print(f"knowledge base: {len(bot.source.current.entries):,} entries, loaded in {time.perf_counter() - started:.1f} s")
        added = fill(bot, args.questions, args.days, args.dossiers, args.subscribers)
        print("added: " + ", ".join(f"{n:,} {what}" for what, n in added.items()))
        client = sign_in(bot)
        today = datetime.now(UTC).date()
        values = {"today": today.isoformat(), "d90": (today - timedelta(days=args.days - 1)).isoformat()}
        print(f"\n{'page':<60} {'median ms':>10} {'p90 ms':>8}  ")
        slow = []
        for path, label in PAGES:
            path = path.format(**values)
            status, times = measure(client, path, args.repeat)
            if not times:
                print(f"{label + ' ' + path:<60} {'—':>10} {'—':>8}  (HTTP {status}: not measured)")
                continue
            median, p90 = statistics.median(times), percentile(times, 0.9)
            mark = "ok" if median < TARGET_MS else "SLOW"
            if median >= TARGET_MS:
                slow.append(path)
            print(f"{label + ' ' + path:<60} {median:>10.1f} {p90:>8.1f}  {mark}")
        print(f"\ntarget: median < {TARGET_MS:.0f} ms per page; {len(slow)} page(s) over it" + (f": {', '.join(slow)}" if slow else ""))
        return 1 if slow else 0
    finally:
        bot.close()
        if workdir is not None:
            workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
