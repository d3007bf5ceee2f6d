"""The command line as the checks use it: `bot.py ask --jsonl` (the answer contract of
../shared/eval/README.md), `bot.py ask "câu hỏi"` and `bot.py eval`, each on a temporary database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_DIR
from typer.testing import CliRunner

from bot import DEFAULT_EVAL
from knowledge.starter import read_starter
from quality.contract import answer_lines

CONTRACT_KEYS = {"chat", "id", "aspect", "candidates", "answer"}
ASPECTS = {"overview", "documents", "fee", "duration", "place", "online", "postal", "steps", "conditions", "legal"}
FIGURES = ["top1", "top3", "top1_no_diacritics", "follow_up", "out_of_scope_rejected", "aspect"]


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"


def run_bot(args: list[str], cwd, stdin: str | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"}}
    env.update(PYTHONIOENCODING="utf-8", COLUMNS="200", LOG_LEVEL="INFO", NO_COLOR="1")
    return subprocess.run([sys.executable, str(PROJECT_DIR / "bot.py"), *args], input=stdin, capture_output=True,
                          text=True, encoding="utf-8", cwd=cwd, env=env, timeout=timeout)


def check_contract_object(obj: dict) -> None:
    assert set(obj) == CONTRACT_KEYS, f"keys {sorted(obj)}"
    assert obj["id"] is None or isinstance(obj["id"], str)
    assert isinstance(obj["candidates"], list) and len(obj["candidates"]) <= 5
    assert all(isinstance(c, str) for c in obj["candidates"])
    assert len(set(obj["candidates"])) == len(obj["candidates"])
    if obj["id"] is not None:
        assert obj["candidates"] and obj["candidates"][0] == obj["id"], "the answered entry is the best candidate"
        aspects = obj["aspect"] if isinstance(obj["aspect"], list) else [obj["aspect"]]
        assert aspects and set(aspects) <= ASPECTS
    else:
        assert obj["aspect"] is None
    assert isinstance(obj["answer"], str) and obj["answer"].strip()


QUESTIONS = [
    {"chat": "c1", "q": "làm lại thẻ căn cước bị mất"},
    {"chat": "c1", "q": "mất bao lâu"},
    {"chat": "c2", "q": "dang ky khai sinh can giay to gi", "expect": ["1.001193"], "aspect": "documents"},
    "this line is not JSON {",
    {"chat": "c3", "q": "mất bao lâu"},
    {"chat": "c4", "q": "chào bạn"},
    {"chat": "c5", "q": "'; DROP TABLE entries; --"},
    {"chat": "c6", "q": "làm thẻ căn cước lần đầu mất bao nhiêu tiền"},
]


def test_ask_jsonl_answers_each_line_in_order_with_the_contract_keys(cli_db, tmp_path):
    stdin = "\n".join(q if isinstance(q, str) else json.dumps(q, ensure_ascii=False) for q in QUESTIONS) + "\n"
    done = run_bot(["--db", cli_db, "ask", "--jsonl"], tmp_path, stdin)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(QUESTIONS), done.stdout
    out = [json.loads(line) for line in lines]  # nothing but JSON on standard output

    for question, obj in zip(QUESTIONS, out):
        if isinstance(question, str):
            assert obj["id"] is None and obj["candidates"] == [] and obj["answer"].strip()
            assert CONTRACT_KEYS <= set(obj)
            continue
        check_contract_object(obj)
        assert obj["chat"] == question["chat"]

    first, follow_up, documents, _, other_chat, hello, sql, fee = out
    assert first["id"] == "1.014064"
    assert follow_up["id"] == "1.014064" and follow_up["aspect"] == "duration", "turns of one chat share state"
    assert documents["id"] == "1.001193" and documents["aspect"] == "documents"
    assert other_chat["id"] is None, "different chats share no state"
    assert hello["id"] is None and sql["id"] is None
    assert fee["id"] == "1.014061" and fee["aspect"] == "fee"
    assert "loaded or upgraded 53 starter entries" in done.stderr, "logs go to standard error"


def test_ask_one_question(cli_db, tmp_path):
    done = run_bot(["--db", cli_db, "ask", "làm thẻ căn cước lần đầu mất bao nhiêu tiền"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    check_contract_object(obj)
    assert obj["id"] == "1.014061" and obj["aspect"] == "fee"


def test_eval_prints_the_figures_on_the_projects_own_questions_by_default(cli_db, tmp_path):
    """`bot.py eval` with no file works on a fresh clone: its default is a labelled file of the repository."""
    done = run_bot(["--db", cli_db, "eval"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in FIGURES:
        assert name in done.stdout, f"{name} missing from:\n{done.stdout}"
    labelled = [line for line in DEFAULT_EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    in_scope = sum(1 for line in labelled if json.loads(line)["expect"])
    assert f"/{in_scope} " in done.stdout, f"top-1 is not counted over the {in_scope} answerable questions:\n{done.stdout}"


def test_eval_reads_questions_without_a_chat_each_as_a_conversation_of_its_own(cli_db, tmp_path):
    """The project's own training files have no "chat": they are scored, each question alone. Read as one
    conversation, the bare "lệ phí bao nhiêu?" would be answered about the birth registration asked before."""
    from bot import app

    questions = tmp_path / "own.jsonl"
    questions.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in [
        {"q": "đăng ký khai sinh cần giấy tờ gì", "expect": ["1.001193"], "aspect": "documents"},
        {"q": "lệ phí bao nhiêu?", "expect": [], "aspect": None},
    ]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(questions), "--db", cli_db])
    assert result.exit_code == 0, result.output
    assert re.search(r"top1 +│ 1\.000 +│ 1/1 ", result.stdout), result.stdout
    assert re.search(r"out_of_scope_rejected +│ 1\.000 +│ 1/1 ", result.stdout), result.stdout
    # No follow-up was asked: the figure is not measured, rather than shown as 0 and failed.
    assert re.search(r"follow_up +│ – +│ 0/0 +│ not measured", result.stdout), result.stdout


@pytest.mark.parametrize(("line", "message"), [
    ('{"chat": "a", "q": "khai sinh", "expect": ["1.001193"]', "line 2: not JSON"),
    ('{"chat": "a", "expect": []}', 'line 2: no question ("q")'),
    ('{"chat": "a", "q": "khai sinh"}', 'line 2: "expect" must be a list of entry ids'),
    ('{"chat": "a", "q": "khai sinh", "expect": "1.001193"}', 'line 2: "expect" must be a list of entry ids'),
])
def test_eval_names_the_line_it_cannot_score_and_asks_nothing(cli_db, tmp_path, line, message):
    from bot import app

    questions = tmp_path / "bad.jsonl"
    questions.write_text(json.dumps({"chat": "x", "q": "đăng ký khai sinh", "expect": ["1.001193"]}) + "\n" + line + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(questions), "--db", cli_db])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output, result.output
    assert "top1" not in result.output, "figures were printed for a file that could not be read"


def test_eval_says_when_the_questions_expect_entries_the_knowledge_base_lacks(cli_db, tmp_path):
    """A file labelled for the national catalogue, scored before the catalogue is imported, is all wrong: say why."""
    from bot import app

    questions = tmp_path / "national.jsonl"
    questions.write_text(json.dumps({"chat": "x", "q": "chế độ ốm đau", "expect": ["1.001667"]}, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(questions), "--db", cli_db])
    assert result.exit_code == 0, result.output
    assert "1 questions expect entries this knowledge base does not have" in result.stdout, result.stdout
    assert "bot.py kb import" in result.stdout


@pytest.mark.parametrize(("lines", "targets", "top1_target"), [
    # Written questions (dev.jsonl, the blind set): the strictest floors.
    ([{"chat": "x", "q": "đăng ký khai sinh cần giấy tờ gì", "expect": ["1.001193"], "aspect": "documents"}],
     "questions written as citizens type them, starter entries", "≥ 0.95"),
    # Real citizens' questions carry their source (real_starter.jsonl) ...
    ([{"chat": "x", "q": "đăng ký khai sinh cần giấy tờ gì", "expect": ["1.001193"], "aspect": "documents",
       "kind": "proc", "source": "capphutho_faq"}],
     "real citizens' questions, starter entries", "≥ 0.92"),
    # ... and one labelled for the national catalogue expects a record the starter entries lack (real_full.jsonl).
    ([{"chat": "x", "q": "đăng ký khai sinh cần giấy tờ gì", "expect": ["1.001193"], "aspect": "documents",
       "kind": "proc", "source": "capphutho_faq"},
      {"chat": "y", "q": "chế độ ốm đau", "expect": ["1.001667"], "aspect": "overview", "kind": "proc", "source": "capphutho_faq"}],
     "real citizens' questions, national catalogue imported", "≥ 0.75"),
])
def test_eval_holds_each_kind_of_question_set_to_its_own_targets(cli_db, tmp_path, lines, targets, top1_target):
    """Issue 11 sets top-1 ≥ 0.95 for written questions, 0.92 for real ones, 0.75 with the catalogue: a real
    set marked against the written one's floors showed failures that were not."""
    from bot import app

    questions = tmp_path / "set.jsonl"
    questions.write_text("\n".join(json.dumps(item, ensure_ascii=False) for item in lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(questions), "--db", cli_db])
    assert result.exit_code == 0, result.output
    assert f"targets: {targets}" in " ".join(result.stdout.split()), result.stdout
    assert re.search(rf"top1 +│ [0-9.]+ +│ \d+/\d+ +│ {top1_target} ", result.stdout), result.stdout


def test_the_default_eval_file_is_the_projects_and_labelled_with_starter_ids():
    assert DEFAULT_EVAL.is_relative_to(PROJECT_DIR) and DEFAULT_EVAL.exists()
    starter = read_starter()
    known = {e.id for e in starter} | {other for e in starter for other in e.equivalents}
    items = [json.loads(line) for line in DEFAULT_EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(items) >= 100
    for item in items:
        assert item["q"].strip() and item["chat"], item
        assert set(item["expect"]) <= known, f"{item['chat']} expects an id the knowledge base does not have: {item['expect']}"
        aspects = item["aspect"] if isinstance(item["aspect"], list) else [item["aspect"]]
        assert (aspects == [None]) if not item["expect"] else set(aspects) <= ASPECTS, item


def test_db_option_after_the_command_as_the_contract_writes_it(cli_db):
    """../shared/eval/README.md: `python bot.py ask --jsonl` takes `--db URL`, so the checks may pass it there."""
    from bot import app

    result = CliRunner().invoke(app, ["ask", "--jsonl", "--db", cli_db], input='{"chat": "x", "q": "dang ky khai sinh can giay to gi"}\n')
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout.strip().splitlines()[-1])
    assert obj["chat"] == "x" and obj["id"] == "1.001193"


def test_a_malformed_line_gets_an_object_with_exactly_the_contract_keys(router):
    lines = ['{"chat": "a", "q": "dang ky khai sinh can giay to gi"}', "not json", '{"chat": "b"}', '{"q": "no chat"}', '{"chat": "c", "q": 5}', "[]"]
    out = [json.loads(line) for line in answer_lines(router, lines)]
    assert len(out) == len(lines)
    assert out[0]["id"] == "1.001193"
    for obj in out[1:]:
        assert set(obj) == CONTRACT_KEYS, f"keys {sorted(obj)}"
        assert obj["id"] is None and obj["aspect"] is None and obj["candidates"] == []


def test_the_printable_qr_sheet_has_the_zalo_oa_code_beside_telegrams(tmp_path, cli_db):
    """An office with a Zalo OA posts its QR code too: zalo.me/<oa id> opens the OA's chat."""
    from PIL import ImageChops

    from channels.links import qr_png

    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL"))}
    env.update(TELEGRAM_BOT_USERNAME="motcua_xa_bot", ZALO_OA_ID="4318888888", PYTHONIOENCODING="utf-8")
    done = subprocess.run([sys.executable, str(PROJECT_DIR / "bot.py"), "--db", cli_db, "qr", "1.001193", "--out", str(tmp_path)],
                          capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 mã QR" in done.stdout
    from PIL import Image

    def same(png: Path, link: str) -> bool:
        expected = qr_png(link, tmp_path / "expected.png")
        return ImageChops.difference(Image.open(png).convert("L"), Image.open(expected).convert("L")).getbbox() is None

    assert same(tmp_path / "zalo-oa.png", "https://zalo.me/4318888888")
    assert same(tmp_path / "1.001193.png", "https://t.me/motcua_xa_bot?start=1_001193")
    assert (tmp_path / "ma-qr-thu-tuc.pdf").stat().st_size > 1000


def test_bench_prints_its_figures_and_the_spread_of_the_ratio_pass_by_pass(cli_db, tmp_path):
    """`bot.py bench` as the README runs it, on a few questions: the times, the ratio to the tokenizer with its
    target, and each pass's ratio (their spread says how far one run can be trusted on a noisy machine)."""
    questions = tmp_path / "few.jsonl"
    questions.write_text("\n".join(json.dumps({"q": q}, ensure_ascii=False) for q in
                                   ["làm căn cước mất bao lâu", "lệ phí đăng ký khai sinh", "xin chào"]) + "\n", encoding="utf-8")
    done = run_bot(["bench", str(questions), "--repeat", "3", "--db", cli_db], cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "3 questions × 3 passes" in out
    assert re.search(r"ratio to tokenizer \(medians\) │ [\d.]+× \(target ≤ 3×\)", out), out
    spread = re.search(r"ratio to tokenizer, pass by pass │ ([\d.]+)–([\d.]+)× \(median ([\d.]+)× over 3 passes\)", out)
    assert spread, out
    low, high, median = map(float, spread.groups())
    assert low <= median <= high


def test_bench_says_so_when_its_file_is_missing(cli_db, tmp_path):
    done = run_bot(["bench", str(tmp_path / "none.jsonl"), "--db", cli_db], cwd=tmp_path)
    assert done.returncode == 2
    assert "File not found" in done.stderr
