"""Benchmark: 10,000 followed dossiers. Prints the time of one scan for due reminders (target ≤ 1 s) and
the delay from a status change to its reminder being sent while the service runs (target ≤ 60 s).

    python -m reminders.bench [--db URL] [--dossiers 10000] [--repeat 5] [--changes 200] [--duration 45]

Without --db it works on a fresh SQLite file in a temporary folder. The latency run starts the real
ReminderService on an APScheduler with the configured scan interval (REMINDER_SCAN_SECONDS, default
15 s); status changes are written straight to the database at random moments, as an import by staff
or another bot process would (so the service has no push to wake it and finds them by scanning), and
a recording sender notes when each message goes out. Quiet hours are switched off for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from channels.outbound import Delivery, Outcome
from config import Settings
from knowledge.db import make_engine, migrate, session_factory
from reminders.models import DossierRow, FollowRow, ReminderRow, VerificationRow
from reminders.scan import scan
from reminders.statuses import Status
from reminders.store import DossierUpdate, apply_updates


class RecordingSender:
    channel = "console"
    max_text = 4096
    messages_per_second = 1000.0
    seconds_per_chat = 0.0

    def __init__(self) -> None:
        self.ready_at: dict[str, float] = {}  # chat -> when its "result ready" message went out

    async def send(self, chat_id: str, text: str, buttons=None) -> Delivery:
        if "đã có kết quả" in text and "Nhắc lịch" not in text:
            self.ready_at.setdefault(chat_id, time.time())
        return Delivery(Outcome.SENT)

    async def aclose(self) -> None:
        pass


def code(n: int) -> str:
    return f"000.00.12.H12-261120-{n:05d}"


def populate(db, count: int, now: datetime) -> None:
    rng = random.Random(5)
    statuses = [Status.RECEIVED, Status.PROCESSING, Status.PROCESSING, Status.NEEDS_DOCUMENTS, Status.RESULT_READY]
    updates = [DossierUpdate(code=code(n), status=rng.choice(statuses), procedure="Đăng ký khai sinh",
                             received_at=now - timedelta(days=rng.randint(1, 10)), due_at=now + timedelta(days=rng.randint(-3, 20)),
                             phone_last4=f"{n % 10000:04d}",
                             given=frozenset({"procedure", "received_at", "due_at", "phone_last4"})) for n in range(count)]
    with db() as session:
        for start in range(0, count, 2000):
            apply_updates(session, updates[start:start + 2000], "bench", now - timedelta(days=1))
        session.execute(insert(FollowRow), [{"channel": "console", "chat_id": f"chat-{n}", "dossier_code": code(n), "muted": False,
                                                 "created_at": now - timedelta(hours=12)} for n in range(count)])
        # Every follower proved they filed the dossier, as /theodoi <mã> <4 số> requires: the scan's real path.
        session.execute(insert(VerificationRow), [{"channel": "console", "chat_id": f"chat-{n}", "dossier_code": code(n),
                                                       "verified_at": now - timedelta(hours=12)} for n in range(count)])
        session.commit()


def time_scans(db, settings: Settings, repeat: int) -> tuple[float, list[float], int]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    first = scan(db, settings, now)
    first_time = time.perf_counter() - started
    steady = []
    for _ in range(repeat):
        started = time.perf_counter()
        scan(db, settings, datetime.now(UTC))
        steady.append(time.perf_counter() - started)
    return first_time, steady, first.planned


async def latency(db, settings: Settings, count: int, changes: int, duration: float) -> list[float]:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from reminders.service import ReminderService

    sender = RecordingSender()
    service = ReminderService(settings, db)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    # Reminders already due from the set-up (late dossiers...) go out first, outside the measurement.
    await service.start(scheduler, {"console": sender})
    scheduler.start()
    while service.ticks < 1:
        await asyncio.sleep(0.1)
    rng = random.Random(7)
    with db() as session:
        open_codes = list(session.scalars(select(DossierRow.code).where(DossierRow.status.in_(["received", "processing"]))))
    picked = rng.sample(open_codes, min(changes, len(open_codes)))
    moments = sorted(rng.uniform(0, duration) for _ in picked)
    changed_at: dict[str, float] = {}
    begin = time.time()
    for dossier_code, offset in zip(picked, moments):
        await asyncio.sleep(max(0.0, begin + offset - time.time()))

        def change(c=dossier_code):
            with db() as session:
                apply_updates(session, [DossierUpdate(code=c, status=Status.RESULT_READY)], "bench")
                session.commit()

        await asyncio.to_thread(change)
        changed_at[f"chat-{int(dossier_code.rsplit('-', 1)[1])}"] = time.time()
    deadline = time.time() + settings.reminder_scan_seconds + 60
    while time.time() < deadline and not all(chat in sender.ready_at for chat in changed_at):
        await asyncio.sleep(0.2)
    scheduler.shutdown(wait=False)
    await service.stop()
    missing = [chat for chat in changed_at if chat not in sender.ready_at]
    if missing:
        print(f"  NOT SENT within the wait: {len(missing)} reminders")
    return [sender.ready_at[chat] - at for chat, at in changed_at.items() if chat in sender.ready_at]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--dossiers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed scans after the first")
    parser.add_argument("--changes", type=int, default=200, help="status changes during the latency run")
    parser.add_argument("--duration", type=float, default=45.0, help="seconds over which the changes are spread")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="motcua-bench-")
    url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
    settings = Settings(_env_file=None, database_url=url, telegram_bot_token=None, zalo_bot_token=None,
                        quiet_hours_start="00:00", quiet_hours_end="00:00")
    engine = make_engine(url)
    migrate(engine)
    db = session_factory(engine)
    with db() as session:
        if session.scalar(select(FollowRow.id).limit(1)) is not None:
            raise SystemExit("the benchmark needs an empty database (it writes 10,000 dossiers)")
    started = time.perf_counter()
    populate(db, args.dossiers, datetime.now(UTC))
    print(f"{args.dossiers:,} dossiers, each followed by one chat, on {engine.dialect.name} "
          f"(set up in {time.perf_counter() - started:.1f} s)")
    first, steady, planned = time_scans(db, settings, args.repeat)
    print(f"scan for due reminders: first {first:.3f} s (planned {planned:,} reminders); "
          f"then median {statistics.median(steady):.3f} s, max {max(steady):.3f} s over {len(steady)} scans  [target ≤ 1 s]")
    delays = asyncio.run(latency(db, settings, args.dossiers, args.changes, args.duration))
    if delays:
        delays.sort()
        p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
        print(f"status change → reminder sent, service running (scan every {settings.reminder_scan_seconds:g} s): "
              f"{len(delays)} reminders, median {statistics.median(delays):.1f} s, p95 {p95:.1f} s, max {delays[-1]:.1f} s  [target ≤ 60 s]")
    with db() as session:
        total = session.query(ReminderRow).count()
    print(f"reminder rows at the end: {total:,}")
    engine.dispose()


if __name__ == "__main__":
    main()
