"""One bot token, two kinds of traffic: a broadcast to 3,000 subscribers while 200 citizens ask questions.

The real Telegram application (python-telegram-bot, long polling, the starter knowledge base) and the
broadcast dispatcher (its own Bot, as the background service runs it) share one event loop and one token,
against the fake Bot API of tests/fake_telegram.py on 127.0.0.1, which refuses (429) anything beyond 30
messages in any one second, as Telegram does. The fake counts the bot's messages per second; a citizen's
latency is from the moment their update is queued on the server to the moment it receives the answer.

    python -m quality.limiter_bench [--recipients 3000] [--chats 200] [--ask-seconds 10] [--runs 3]

Printed per run and as medians over the runs: the broadcast's rate, the bot's peak messages in any one second
(and in any whole second), 429s received, and the citizens' reply latency (median, p99, max) during the broadcast.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from quality.channel_bench import _fake_server_class, _questions, build_bench_router, percentile

PLATFORM_LIMIT = 30  # Telegram's messages per second for one bot, enforced by the fake
WARM_UP = 10  # questions answered before the measurement: imports, first connections, the tokenizer's model
WARM_UP_CHATS = 900_000  # warm-up chat ids, apart from the measured ones
SUBSCRIBERS = 1_000_000  # first subscriber's chat id


@dataclass
class Run:
    recipients: int
    chats: int
    broadcast_sent: int = 0
    broadcast_seconds: float = 0.0
    broadcast_rate: float = 0.0  # messages per second, first to last announcement
    sent_while_asking: int = 0  # announcements that went out while questions were being answered
    peak_per_second: int = 0  # the bot's messages (any method counted by the fake) in any one second
    peak_whole_second: int = 0  # ... in any whole second from the first message
    rejected_429: int = 0
    answered: int = 0
    answered_before_broadcast_end: int = 0
    median_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    def line(self) -> str:
        return (f"broadcast {self.broadcast_sent}/{self.recipients} in {self.broadcast_seconds:.1f} s "
                f"({self.broadcast_rate:.1f}/s; {self.sent_while_asking} while questions were answered); "
                f"peak {self.peak_per_second} msg in any second ({self.peak_whole_second} in a whole second), "
                f"429s {self.rejected_429}; {self.answered}/{self.chats} questions answered "
                f"({self.answered_before_broadcast_end} before the broadcast ended): median {self.median_ms} ms, "
                f"p99 {self.p99_ms} ms, max {self.max_ms} ms")


def _prepare_broadcast(database_url: str, recipients: int, settings) -> tuple[object, int]:
    """A database with `recipients` Telegram subscribers and one announcement to all of them."""
    from sqlalchemy import insert

    from broadcasts import compose
    from broadcasts.models import SubscriptionRow, utcnow
    from knowledge.db import open_database, session_factory

    engine = open_database(database_url)
    db = session_factory(engine)
    with db.begin() as session:
        session.execute(insert(SubscriptionRow), [{"channel": "telegram", "chat_id": str(SUBSCRIBERS + i), "areas": [],
                                                   "topics": [], "created_at": utcnow()} for i in range(recipients)])
    with db.begin() as session:
        broadcast_id = compose.create(session, compose.Draft(text="Thông báo: Bộ phận Một cửa nghỉ chiều thứ Sáu tuần này."),
                                      settings, "bench").id
    return engine, broadcast_id


async def _run(router, database_url: str, recipients: int, chats: int, ask_seconds: float) -> Run:
    from broadcasts.dispatcher import Dispatcher
    from channels import telegram as tg
    from channels.outbound import TelegramSender
    from knowledge.db import session_factory

    questions = _questions()
    result = Run(recipients, chats)
    async with _fake_server_class()(rate_limit=PLATFORM_LIMIT, rate_window="sliding") as fake:
        settings = router.context.settings.model_copy(update={"telegram_bot_token": fake.token, "database_url": database_url})
        engine, broadcast_id = await asyncio.to_thread(_prepare_broadcast, database_url, recipients, settings)
        app = tg.build_application(router, settings, base_url=fake.base_url)
        sender = TelegramSender(fake.token, fake.base_url)
        await tg.start(app)
        try:
            warm = [WARM_UP_CHATS + i for i in range(WARM_UP)]
            for i, chat in enumerate(warm):
                fake.push_text(chat, questions[-1 - i])
            await fake.wait_for(lambda: all(fake.sent.get(c) for c in warm), 90, lambda: "warm-up")
            await asyncio.sleep(1.1)  # the warm-up's second passes before the counting starts
            counted_from = time.perf_counter()
            subscribers = range(SUBSCRIBERS, SUBSCRIBERS + recipients)
            sending = asyncio.create_task(Dispatcher(session_factory(engine), {"telegram": sender}, settings).deliver(broadcast_id))
            await fake.wait_for(lambda: len(fake.sent) >= WARM_UP + 100 or sending.done(), 120, lambda: "the broadcast's start")
            askers = list(range(1, chats + 1))
            pushed: dict[int, int] = {}
            asking_started = time.perf_counter()
            for n, chat in enumerate(askers):
                due = asking_started + ask_seconds * n / chats
                if (delay := due - time.perf_counter()) > 0:
                    await asyncio.sleep(delay)
                pushed[chat] = fake.push_text(chat, questions[chat % len(questions)])["update_id"]
            try:
                await fake.wait_for(lambda: all(fake.sent.get(c) for c in askers), 300,
                                    lambda: f"{sum(1 for c in askers if fake.sent.get(c))} of {chats} answered")
            except AssertionError:
                pass  # reported as answered < chats
            answers = {c: fake.sent[c][0].at for c in askers if fake.sent.get(c)}
            await asyncio.wait_for(sending, 3600)
        finally:
            await sender.aclose()
            await tg.stop(app)
            engine.dispose()
        announcements = sorted(fake.sent[c][0].at for c in subscribers if fake.sent.get(c))
        latencies = [(at - fake.pushed_at[pushed[c]]) * 1000 for c, at in answers.items()]
        last_answer = max(answers.values(), default=asking_started)
        result.broadcast_sent = len(announcements)
        if len(announcements) > 1:
            result.broadcast_seconds = announcements[-1] - announcements[0]
            result.broadcast_rate = (len(announcements) - 1) / result.broadcast_seconds
        result.sent_while_asking = sum(1 for at in announcements if asking_started <= at <= last_answer)
        result.peak_per_second = fake.peak_per_second(since=counted_from)
        result.peak_whole_second = max(_whole_seconds(fake, counted_from), default=0)
        result.rejected_429 = fake.throttled
        result.answered = len(latencies)
        result.answered_before_broadcast_end = sum(1 for at in answers.values() if announcements and at < announcements[-1])
        if latencies:
            result.median_ms = round(statistics.median(latencies), 1)
            result.p99_ms = round(percentile(latencies, 0.99), 1)
            result.max_ms = round(max(latencies), 1)
    return result


def _whole_seconds(fake, since: float) -> list[int]:
    times = [t for t in fake.send_times() if t >= since]
    counts: dict[int, int] = {}
    for at in times:
        counts[int(at - since)] = counts.get(int(at - since), 0) + 1
    return list(counts.values())


def run_limiter_bench(recipients: int = 3000, chats: int = 200, ask_seconds: float = 10.0, runs: int = 3) -> list[Run]:
    """`runs` runs, each on fresh databases; prints each run and the medians."""
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="motcua-limiter-bench-") as workdir:
            router = build_bench_router(Path(workdir))
            url = f"sqlite:///{Path(workdir) / 'broadcast.db'}"
            result = asyncio.run(_run(router, url, recipients, chats, ask_seconds))
        print(result.line(), flush=True)
        results.append(result)
    print(summary(results))
    return results


def summary(results: list[Run]) -> str:
    def median(name: str) -> float:
        values = [v for r in results if (v := asdict(r)[name]) is not None]
        return round(statistics.median(values), 1) if values else float("nan")

    return (f"median of {len(results)} runs: broadcast {median('broadcast_rate')}/s, peak {median('peak_per_second')} "
            f"msg in any second (limit {PLATFORM_LIMIT}; highest of all runs {max(r.peak_per_second for r in results)}), "
            f"429s {median('rejected_429')}, reply latency median {median('median_ms')} ms, p99 {median('p99_ms')} ms, "
            f"max {median('max_ms')} ms; answered before the broadcast ended: {median('answered_before_broadcast_end')}"
            f"/{results[0].chats}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=200, help="citizens asking one question each during the broadcast")
    parser.add_argument("--ask-seconds", type=float, default=10.0, help="the questions arrive evenly over this time (0: at once)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    results = run_limiter_bench(args.recipients, args.chats, args.ask_seconds, args.runs)
    ok = all(r.peak_per_second <= PLATFORM_LIMIT and r.answered == r.chats and r.broadcast_sent == r.recipients for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
