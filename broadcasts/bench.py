"""Benchmark of announcement delivery against the fake Bot API of tests/fake_telegram.py.

    python -m broadcasts.bench [--recipients 10000] [--kill-at-half] [--rate 30] [--db URL]

The fake answers 429 (with retry_after) to any message beyond `--rate` in one sliding second. Printed:
sustained messages per second (over the middle 80 % of the messages, by their arrival at the server),
how many chats got the announcement exactly once, lost ones and duplicates. With --kill-at-half the
sending is done by `python bot.py broadcast run` in a subprocess, killed with SIGKILL when half the
chats have their message, then started again; duplicates are checked against the rows that were in
flight at the kill (the only ones allowed to go twice).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select

PROJECT_DIR = Path(__file__).resolve().parent.parent
TESTS_DIR = PROJECT_DIR / "tests"


@dataclass
class BenchResult:
    recipients: int
    delivered_once: int = 0
    lost: int = 0
    duplicates: int = 0
    sustained_rate: float = 0.0  # messages/s over the middle 80 %
    overall_rate: float = 0.0  # messages/s from the first message to the last
    seconds: float = 0.0
    throttled: int = 0  # 429s the fake answered
    in_flight_at_kill: int | None = None
    duplicates_outside_in_flight: int = 0  # must be 0: a duplicate of a message that was not in flight
    sent_before_kill: int | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"recipients: {self.recipients}",
                 (f"sustained rate: {self.sustained_rate:.2f} msg/s (middle 80 % of messages); "
                  f"overall {self.overall_rate:.2f} msg/s; {self.seconds:.1f} s"),
                 f"delivered exactly once: {self.delivered_once} / {self.recipients}; lost: {self.lost}; duplicates: {self.duplicates}",
                 f"429 answered by the server: {self.throttled}"]
        if self.in_flight_at_kill is not None:
            lines.append(f"kill -9 after {self.sent_before_kill} chats had their message; in flight at the kill: "
                         f"{self.in_flight_at_kill}; duplicates of messages not in flight: {self.duplicates_outside_in_flight}")
        return lines + self.notes


def _fake():
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from fake_telegram import FakeTelegram

    return FakeTelegram


def prepare(database_url: str, recipients: int, first_chat: int = 1_000_000) -> int:
    """Subscribe `recipients` Telegram chats and create one announcement to all; returns its id."""
    from broadcasts.compose import Draft, create
    from broadcasts.models import SubscriptionRow, utcnow
    from config import Settings
    from knowledge.db import make_engine, migrate, session_factory

    engine = make_engine(database_url)
    try:
        migrate(engine)
        db = session_factory(engine)
        now = utcnow()
        with db.begin() as session:
            session.execute(insert(SubscriptionRow), [
                {"channel": "telegram", "chat_id": str(first_chat + i), "areas": [], "topics": [], "created_at": now}
                for i in range(recipients)])
        settings = Settings(_env_file=None, database_url=database_url)
        with db.begin() as session:
            return create(session, Draft("Thông báo: Bộ phận Một cửa nghỉ chiều thứ Năm để bảo trì hệ thống."),
                          settings, "bench").id
    finally:
        engine.dispose()


def in_flight_chats(database_url: str, broadcast_id: int) -> set[int]:
    from broadcasts.models import DeliveryRow, DeliveryState
    from knowledge.db import make_engine, session_factory

    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return {int(c) for c in session.scalars(select(DeliveryRow.chat_id).where(
                DeliveryRow.broadcast_id == broadcast_id, DeliveryRow.state == DeliveryState.IN_FLIGHT.value))}
    finally:
        engine.dispose()


def measure(fake, recipients: int, result: BenchResult) -> BenchResult:
    counts = fake.delivered()
    result.delivered_once = sum(1 for n in counts.values() if n == 1)
    result.lost = recipients - len(counts)
    result.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    result.throttled = fake.throttled
    times = sorted(m.at for messages in fake.sent.values() for m in messages)
    if len(times) >= 10:
        low, high = times[len(times) // 10], times[len(times) * 9 // 10]
        result.sustained_rate = (len(times) * 9 // 10 - len(times) // 10) / (high - low) if high > low else 0.0
        result.overall_rate = (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else 0.0
    return result


async def run_in_process(database_url: str, recipients: int, rate_limit: int = 30) -> BenchResult:
    """The dispatcher in this process, sending over real HTTP to the fake."""
    from broadcasts.dispatcher import Dispatcher
    from channels.outbound import TelegramSender
    from config import Settings
    from knowledge.db import make_engine, session_factory

    broadcast_id = prepare(database_url, recipients)
    settings = Settings(_env_file=None, database_url=database_url)
    engine = make_engine(database_url)
    result = BenchResult(recipients)
    try:
        async with _fake()(rate_limit=rate_limit, rate_window="sliding") as fake:
            sender = TelegramSender(fake.token, fake.base_url)
            started = time.monotonic()
            try:
                await Dispatcher(session_factory(engine), {"telegram": sender}, settings).deliver(broadcast_id)
            finally:
                await sender.aclose()
            result.seconds = time.monotonic() - started
            return measure(fake, recipients, result)
    finally:
        engine.dispose()


async def run_killed(database_url: str, recipients: int, rate_limit: int = 30, kill_at: float = 0.5,
                     messages_per_second: float | None = None, timeout: float = 3600) -> BenchResult:
    """`bot.py broadcast run` in a subprocess, SIGKILLed when `kill_at` of the chats have their message, restarted."""
    broadcast_id = prepare(database_url, recipients)
    result = BenchResult(recipients)
    async with _fake()(rate_limit=rate_limit, rate_window="sliding") as fake:
        env = {**os.environ, "TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_API_BASE_URL": fake.base_url,
               "ZALO_BOT_TOKEN": "", "LOG_LEVEL": "WARNING", "DATABASE_URL": database_url}
        if messages_per_second:
            env["BROADCAST_MESSAGES_PER_SECOND"] = str(messages_per_second)
        command = [sys.executable, str(PROJECT_DIR / "bot.py"), "--db", database_url, "broadcast", "run"]
        started = time.monotonic()
        first = await asyncio.create_subprocess_exec(*command, cwd=str(PROJECT_DIR), env=env,
                                                     stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        target = int(recipients * kill_at)
        await fake.wait_for(lambda: len(fake.sent) >= target or first.returncode is not None, timeout,
                            lambda: f"{len(fake.sent)} of {target} chats before the kill")
        if first.returncode is not None:
            result.notes.append("the first run ended before the kill: " + (await first.stderr.read()).decode()[-500:])
        first.send_signal(signal.SIGKILL)
        await first.wait()
        result.sent_before_kill = len(fake.sent)
        before = fake.delivered()
        in_flight = in_flight_chats(database_url, broadcast_id)
        result.in_flight_at_kill = len(in_flight)
        second = await asyncio.create_subprocess_exec(*command, cwd=str(PROJECT_DIR), env=env,
                                                      stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(second.communicate(), timeout)
        if second.returncode != 0:
            result.notes.append(f"the restarted run failed ({second.returncode}): {err.decode()[-1000:]}")
        result.seconds = time.monotonic() - started
        measure(fake, recipients, result)
        counts = fake.delivered()
        result.duplicates_outside_in_flight = sum(n - 1 for chat, n in counts.items() if n > 1 and chat not in in_flight)
        result.notes.append(f"already delivered at the kill: {len(before)} chats")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--kill-at-half", action="store_true", help="send with `bot.py broadcast run`, kill -9 at half, restart")
    parser.add_argument("--rate", type=int, default=30, help="the fake's limit: messages in any one second")
    parser.add_argument("--db", help="an EMPTY database's URL (default: a new SQLite file in a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{Path(folder) / 'bench.db'}"
        if args.kill_at_half:
            result = asyncio.run(run_killed(url, args.recipients, args.rate))
        else:
            result = asyncio.run(run_in_process(url, args.recipients, args.rate))
    for line in result.lines():
        print(line)
    ok = result.lost == 0 and result.duplicates_outside_in_flight == 0 and (args.kill_at_half or result.duplicates == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
