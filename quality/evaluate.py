"""`bot.py eval`: scored figures on a labelled question set, as ../shared/eval/README.md defines them."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from config import SHARED_DIR
from handlers.core import Router
from nlp.normalize import expand_at, fold, words
from quality.contract import answer_one, fresh

VILEXNORM = SHARED_DIR / "data" / "vilexnorm" / "ViLexNorm_dev.csv"

FIGURES = ("top1", "top3", "top1_no_diacritics", "follow_up", "out_of_scope_rejected", "aspect")
# A wrong answer given as if sure is worse than "here are three choices": its share of all scored
# questions is printed beside the figures above (lower is better).
WRONG_CONFIDENT = "wrong_confident"
CEILINGS = {WRONG_CONFIDENT: 0.05}


@dataclass(frozen=True)
class Targets:
    """The floors a kind of question set is held to (issue 11); a figure without one is shown without a mark."""

    name: str
    floors: dict[str, float]


# Questions written as citizens type them (../shared/eval/dev.jsonl, quality/blind_questions.jsonl).
WRITTEN = Targets("questions written as citizens type them, starter entries", {
    "top1": 0.95, "top3": 0.98, "top1_no_diacritics": 0.93, "follow_up": 0.95, "out_of_scope_rejected": 0.95, "aspect": 0.93})
# Real citizens' questions (lines with a "source": ../shared/eval/real_*.jsonl): long, legalistic, often about the law.
REAL = Targets("real citizens' questions, starter entries", {"top1": 0.92, "out_of_scope_rejected": 0.92, "aspect": 0.85})
REAL_CATALOGUE = Targets("real citizens' questions, national catalogue imported",
                         {"top1": 0.75, "top3": 0.92, "out_of_scope_rejected": 0.92, "aspect": 0.85})
# Written questions labelled for the catalogue (the project's own check lines): no target was set for them.
WRITTEN_CATALOGUE = Targets("questions written as citizens type them, national catalogue imported", {})


@dataclass
class Tally:
    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.right += ok

    @property
    def rate(self) -> float:
        return self.right / self.total if self.total else 0.0


@dataclass
class Report:
    figures: dict[str, Tally] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    # Questions expecting only entries this knowledge base lacks: a file for the national catalogue scored
    # on a database it was never imported into counts them all wrong, which the report must say.
    missing_entries: int = 0
    targets: Targets = WRITTEN

    def tally(self, name: str) -> Tally:
        return self.figures.setdefault(name, Tally())


def has_diacritics(text: str) -> bool:
    return fold(text) != text.lower()


class LabelledFileError(ValueError):
    """A line of a labelled file that cannot be scored (not JSON, or no question or no expected ids)."""


def labelled_items(path: Path) -> list[dict]:
    """The labelled questions of a JSON-lines file, checked before any is asked: a bad line is reported
    with its number rather than failing half-way through a run. A line without "chat" is a conversation
    of its own (the project's training files have none: each of their questions stands alone)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LabelledFileError("not UTF-8 text") from None
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabelledFileError(f"line {number}: not JSON ({error.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("q"), str) or not item["q"].strip():
            raise LabelledFileError(f'line {number}: no question ("q")')
        expect = item.get("expect")
        if not isinstance(expect, list) or not all(isinstance(e, str) for e in expect):
            raise LabelledFileError(f'line {number}: "expect" must be a list of entry ids ([] for a question the bot must not answer)')
        if not isinstance(item.get("chat"), str) or not item["chat"]:
            item = {**item, "chat": f"line-{number}"}
        items.append(item)
    return items


def targets_for(items: list[dict]) -> Targets:
    """The targets a labelled file is held to: real citizens' questions carry their "source"; a file
    expecting an entry that is not a starter entry was labelled for the national catalogue."""
    from knowledge.starter import read_starter

    starter = {entry_id for entry in read_starter() for entry_id in (entry.id, *entry.equivalents)}
    catalogue = any(entry_id not in starter for item in items for entry_id in item["expect"])
    if any("source" in item for item in items):
        return REAL_CATALOGUE if catalogue else REAL
    return WRITTEN_CATALOGUE if catalogue else WRITTEN


def run_eval(router: Router, path: Path) -> Report:
    """Score the labelled questions of `path`; every run starts with no memory of any chat (`fresh`).
    Raises LabelledFileError, before asking anything, when a line cannot be scored."""
    items = labelled_items(path)
    router = fresh(router)
    report = Report(targets=targets_for(items))
    entries = router.context.catalog
    previous_chat = None
    for item in items:
        follow_up = item["chat"] == previous_chat
        previous_chat = item["chat"]
        got = answer_one(router, item["chat"], item["q"])
        if item.get("unsure"):
            continue  # answered (later turns may depend on it) but not scored: its label is in doubt
        expect = set(item["expect"])
        for entry_id in list(expect):
            entry = entries.get(entry_id)
            if entry is not None:
                expect |= {entry.id, *entry.equivalents}
        if not expect:
            ok = got["id"] is None
            report.tally("out_of_scope_rejected").add(ok)
            report.tally(WRONG_CONFIDENT).add(not ok)
            if not ok:
                report.errors.append({**item, "got": got["id"], "why": "claimed an entry"})
            continue
        if not any(entries.get(entry_id) is not None for entry_id in item["expect"]):
            report.missing_entries += 1
        top1 = got["id"] in expect
        ranked = ([got["id"]] if got["id"] else []) + got["candidates"]
        top3 = bool(expect & set(dict.fromkeys(ranked[:3])))
        report.tally("top1").add(top1)
        report.tally("top3").add(top3)
        report.tally(WRONG_CONFIDENT).add(got["id"] is not None and not top1)
        if not has_diacritics(item["q"]):
            report.tally("top1_no_diacritics").add(top1)
        if follow_up:
            report.tally("follow_up").add(top1)
        aspect_ok = None
        entry = entries.get(next(iter(item["expect"])))
        if top1 and item.get("aspect") and entry is not None and entry.kind != "topic":
            wanted = item["aspect"] if isinstance(item["aspect"], list) else [item["aspect"]]
            answered = got["aspect"] if isinstance(got["aspect"], list) else [got["aspect"]]
            aspect_ok = answered[0] in wanted
            report.tally("aspect").add(aspect_ok)
        if not top1 or aspect_ok is False:
            report.errors.append({**item, "got": got["id"], "got_aspect": got["aspect"], "candidates": got["candidates"][:3]})
    return report


def normaliser_accuracy(path: Path = VILEXNORM) -> tuple[float, float, int] | None:
    """Token accuracy of our teencode expansion on ViLexNorm, and of leaving the text unchanged.

    Only rows whose original and normalised forms have the same number of tokens are aligned.
    """
    if not path.exists():
        return None
    ours = unchanged = total = 0
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            source, target = words(row["original"].lower()), words(row["normalized"].lower())
            if len(source) != len(target):
                continue
            for index, wanted in enumerate(target):
                total += 1
                ours += expand_at(source, index) == wanted
                unchanged += source[index] == wanted
    return (ours / total, unchanged / total, total) if total else None


def _value(tally: Tally) -> str:
    return f"{tally.rate:.3f}" if tally.total else "–"


def _shown(tally: Tally, against_target: str) -> tuple[str, str, str]:
    """A figure's value, count and target; a figure the file has no questions for (follow-ups in a file of
    single questions) is not measured, rather than shown as 0 and failed."""
    return _value(tally), f"{tally.right}/{tally.total}", against_target if tally.total else "not measured"


def print_report(report: Report, show_errors: bool = False) -> None:
    console = Console()
    table = Table(title="Evaluation", caption=f"targets: {report.targets.name}")
    for column in ("figure", "value", "right / total", "target"):
        table.add_column(column)
    for name in FIGURES:
        tally = report.figures.get(name, Tally())
        target = report.targets.floors.get(name)
        if target is None:
            table.add_row(name, *_shown(tally, "–"))
            continue
        mark = "✓" if tally.rate >= target else "✗"
        table.add_row(name, *_shown(tally, f"≥ {target:.2f} {mark}"))
    for name, ceiling in CEILINGS.items():
        tally = report.figures.get(name, Tally())
        mark = "✓" if tally.rate <= ceiling else "✗"
        table.add_row(name, *_shown(tally, f"≤ {ceiling:.2f} {mark}"))
    console.print(table)
    if report.missing_entries:
        console.print(f"{report.missing_entries} questions expect entries this knowledge base does not have, and count as wrong "
                      "(a file labelled for the national catalogue needs it imported first: bot.py kb import).", highlight=False,
                      soft_wrap=True)
    if show_errors:
        for error in report.errors:
            console.print(json.dumps(error, ensure_ascii=False), highlight=False, soft_wrap=True)
    norm = normaliser_accuracy()
    if norm:
        console.print(f"normaliser on ViLexNorm: token accuracy {norm[0]:.3f} (unchanged text {norm[1]:.3f}, {norm[2]} tokens)")
    summary = ", ".join(f"{name} {_value(report.figures.get(name, Tally()))}" for name in [*FIGURES, *CEILINGS])
    console.print(summary, highlight=False)
