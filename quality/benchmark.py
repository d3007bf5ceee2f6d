"""`bot.py bench`: how fast questions are understood and answered, and what it costs in memory."""

from __future__ import annotations

import json
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from underthesea import word_tokenize

from config import Settings
from handlers import build_router
from handlers.messages import Incoming
from knowledge.catalog import Catalog
from knowledge.loader import open_knowledge_base
from nlp.features import compounds


@dataclass
class BenchResult:
    entries: int
    questions: int
    passes: int
    build_seconds: float
    per_question_ms: list[float]
    tokenizer_ms: list[float]
    peak_rss_mb: float

    def percentile(self, values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _questions(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line)["q"])
    return out


def run_bench(settings: Settings, path: Path, passes: int = 5) -> BenchResult:
    engine = open_knowledge_base(settings.database_url)
    start = time.perf_counter()
    catalog = Catalog.load(engine)
    build_seconds = time.perf_counter() - start
    router = build_router(catalog, settings.model_copy(update={"record_questions": False}))
    questions = _questions(path)
    for q in questions:  # warm up: imports, regexes, the tokenizer's model
        word_tokenize(q)
        router.handle(Incoming("bench", "warmup", "warmup", q))

    per_question: list[float] = []
    tokenizer: list[float] = []
    for n in range(passes):
        # Each pass runs the tokenizer alone and the whole pipeline on the same questions, interleaved,
        # so machine noise hits both alike; caches are emptied so no pass reuses the last one's work.
        for i, q in enumerate(questions):
            t0 = time.perf_counter_ns()
            word_tokenize(q)
            t1 = time.perf_counter_ns()
            compounds.cache_clear()
            router.handle(Incoming("bench", f"{n}-{i}", "bench", q))
            t2 = time.perf_counter_ns()
            tokenizer.append((t1 - t0) / 1e6)
            per_question.append((t2 - t1) / 1e6)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchResult(len(catalog.entries), len(questions), passes, build_seconds, per_question, tokenizer, peak)


def print_bench(result: BenchResult) -> None:
    median = statistics.median(result.per_question_ms)
    tok_median = statistics.median(result.tokenizer_ms)
    table = Table(title=f"Benchmark: {result.questions} questions × {result.passes} passes, {result.entries} entries, one core")
    table.add_column("figure")
    table.add_column("value")
    rows = [
        ("median time per question", f"{median:.3f} ms (target ≤ 2 ms)"),
        ("p95 time per question", f"{result.percentile(result.per_question_ms, 0.95):.3f} ms"),
        ("p99 time per question", f"{result.percentile(result.per_question_ms, 0.99):.3f} ms"),
        ("questions per second", f"{1000 * len(result.per_question_ms) / sum(result.per_question_ms):.0f}"),
        ("tokenizer alone, median", f"{tok_median:.3f} ms"),
        ("ratio to tokenizer (medians)", f"{median / tok_median:.2f}× (target ≤ 3×)"),
        ("ratio to tokenizer (totals)", f"{sum(result.per_question_ms) / sum(result.tokenizer_ms):.2f}×"),
        ("index build time", f"{result.build_seconds:.2f} s"),
        ("peak memory (max RSS)", f"{result.peak_rss_mb:.0f} MB"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
