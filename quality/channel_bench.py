"""The Telegram channel under a burst: N chats send a question at the same moment.

The real Telegram application (python-telegram-bot, long polling) runs against the fake Bot API server
of tests/fake_telegram.py with the starter knowledge base; each chat's latency is from the moment its
update is queued on the server to the moment the server receives the bot's reply.

    python -m quality.channel_bench [--chats 200] [--runs 3] [--workers 1] [--flood-limit]

`--workers 1` (the default) answers in one worker process beside the bot's, as CORE_WORKERS=1 does on a
server with two cores or more; `--workers 0` answers in the bot's own process.

Without --flood-limit the bot's overall rate limiter is lifted, so the figures measure the bot itself
(polling, the core, sending). With it, the bot keeps Telegram's ~30 messages/s and the fake refuses
anything beyond: then 200 answers need about 200/30 ≈ 6.5 s whatever the bot's speed, and the figure
shows that they all arrive without a single 429.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from config import PROJECT_DIR, SHARED_DIR, Settings

# The dev questions when ../shared is beside the clone (the README's figures were measured on them), else
# the project's own labelled questions, so the benchmark (and tests/test_workers.py) run on a fresh clone.
DEV_QUESTIONS = SHARED_DIR / "eval" / "dev.jsonl"
OWN_QUESTIONS = PROJECT_DIR / "quality" / "blind_questions.jsonl"
QUESTIONS_FILE = DEV_QUESTIONS if DEV_QUESTIONS.exists() else OWN_QUESTIONS
WARM_UP = 20  # chats answered before the burst: imports, first connections, the tokenizer's model
TARGET_P99_MS = 250.0


def _fake_server_class():
    """tests/ is not an installed package: load the fake server from its file."""
    path = PROJECT_DIR / "tests" / "fake_telegram.py"
    spec = importlib.util.spec_from_file_location("motcua_fake_telegram", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.FakeTelegram


def _questions() -> list[str]:
    lines = QUESTIONS_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["q"] for line in lines if line.strip()]


def build_bench_router(workdir: Path):
    """The starter knowledge base on a fresh SQLite file, wired like the running bot (with its database)."""
    from handlers import build_router
    from knowledge.catalog import Catalog
    from knowledge.db import session_factory
    from knowledge.loader import open_knowledge_base

    settings = _settings(workdir)
    engine = open_knowledge_base(settings.database_url)
    return build_router(Catalog.load(engine, settings.office_level), settings, session_factory(engine))


def _settings(workdir: Path) -> Settings:
    return Settings(_env_file=None, database_url=f"sqlite:///{workdir / 'channel-bench.db'}", telegram_bot_token=None,
                    record_questions=False)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _burst(router, chats: int, flood_limit: bool, workers: int = 0) -> dict:
    from telegram.constants import FloodLimit

    from channels import telegram as tg
    from nlp.understanding import forget_earlier_questions

    questions = _questions()
    warm, burst = questions[-WARM_UP:], [questions[i % (len(questions) - WARM_UP)] for i in range(chats)]
    fake_class = _fake_server_class()
    rate = FloodLimit.MESSAGES_PER_SECOND
    async with fake_class(rate_limit=rate if flood_limit else None) as fake:
        settings = router.context.settings.model_copy(update={"telegram_bot_token": fake.token})
        # With the flood limit the bot runs as in production; without, its own limiter is lifted too.
        limit = {} if flood_limit else {"overall_max_rate": 0}
        core, pool = router, None
        if workers:  # held here, as the runner holds them: the channel talks to the core in front of them
            from channels.workers import CoreWorkers, WorkerCore

            pool = await CoreWorkers(router.context.settings, workers).start()
            core = WorkerCore(router, pool)
        app = tg.build_application(core, settings, base_url=fake.base_url, **limit)
        await tg.start(app)
        try:
            for i, question in enumerate(warm):
                fake.push_text(-1 - i, question)  # warm-up chats never mix with the measured ones
            await fake.wait_for(lambda: all(fake.sent.get(-1 - i) for i in range(len(warm))), 90, lambda: "warm-up")
            if flood_limit:
                await asyncio.sleep(1.1)  # let the flood window of the warm-up pass
            forget_earlier_questions()  # no question of the burst is answered from an earlier one's caches
            throttled_before = fake.throttled
            start = time.perf_counter()
            pushed = {chat: fake.push_text(chat, burst[chat - 1])["update_id"] for chat in range(1, chats + 1)}
            try:
                await fake.wait_for(lambda: all(fake.sent.get(chat) for chat in pushed), 120,
                                    lambda: f"{sum(1 for c in pushed if fake.sent.get(c))} of {chats} chats answered")
            except AssertionError:
                pass  # reported below as answered < chats
            wall = time.perf_counter() - start
            latencies = [(fake.sent[chat][0].at - fake.pushed_at[update_id]) * 1000
                         for chat, update_id in pushed.items() if fake.sent.get(chat)]
            throttled = fake.throttled - throttled_before
        finally:
            await tg.stop(app)
            if not flood_limit:  # the token's limiter is shared in the process: give it back its limit
                from channels.limits import limiter_for

                limiter_for(tg.CHANNEL, fake.token, messages_per_second=router.context.settings.telegram_messages_per_second)
            if pool is not None:
                pool.shutdown()
    return {
        "chats": chats,
        "answered": len(latencies),
        "all_answered": len(latencies) == chats,
        "median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "wall_s": round(wall, 3),
        "flood_limit": flood_limit,
        "workers": workers,
        "rejected_429": throttled,
    }


def run_channel_bench(chats: int = 200, *, flood_limit: bool = False, workers: int = 0, router=None) -> dict:
    """One burst of `chats` simultaneous questions; prints and returns median and p99 update-to-reply times."""
    with tempfile.TemporaryDirectory(prefix="motcua-channel-bench-") as workdir:
        router = router or build_bench_router(Path(workdir))
        result = asyncio.run(_burst(router, chats, flood_limit, workers))
    print(_line(result))
    return result


def _line(result: dict) -> str:
    mode = "with Telegram's 30 msg/s flood limit" if result["flood_limit"] else "bot alone (no flood limit)"
    mode += f", {result['workers']} core worker process(es)" if result["workers"] else ", core in the bot's process"
    return (f"{result['answered']}/{result['chats']} chats answered, {mode}: median {result['median_ms']} ms, "
            f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms, all answered in {result['wall_s']} s, "
            f"429s {result['rejected_429']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flood-limit", action="store_true", help="keep Telegram's ~30 messages/s (fake enforces it)")
    parser.add_argument("--workers", type=int, default=1, help="core worker processes, as CORE_WORKERS (0: in the bot's process)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="motcua-channel-bench-") as workdir:
        router = build_bench_router(Path(workdir))
        results = [run_channel_bench(args.chats, flood_limit=args.flood_limit, workers=args.workers, router=router)
                   for _ in range(args.runs)]
    median_p99 = statistics.median(r["p99_ms"] or float("inf") for r in results)
    all_answered = all(r["all_answered"] for r in results)
    summary = {
        "runs": len(results),
        "median_of_median_ms": statistics.median(r["median_ms"] or float("inf") for r in results),
        "median_of_p99_ms": median_p99,
        "all_answered": all_answered,
    }
    verdict = "" if args.flood_limit else f" (target ≤ {TARGET_P99_MS:.0f} ms: {'met' if median_p99 <= TARGET_P99_MS else 'NOT met'})"
    print(f"median of {len(results)} runs: median {summary['median_of_median_ms']} ms, p99 {median_p99} ms{verdict}; "
          f"all answered: {all_answered}")
    return 0 if all_answered else 1


if __name__ == "__main__":
    sys.exit(main())
