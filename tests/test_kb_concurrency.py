"""Knowledge changes at the same time (issue 10, item 5): two staff imports, or two `kb revert N`, run
by two real `python bot.py` processes at once, on SQLite and PostgreSQL. Every fact is stored exactly
once, the history tells what really happened (each change's "before" is what the previous one left),
one of two reverts of the same change applies, and a change prepared against an older version of the
knowledge base is refused with a message instead of overwriting what someone else did meanwhile.

The race is forced, not left to luck: each process runs the real CLI with a hook (see `race_main`
below) that stops it right after it has read what its change is based on, until the other process
has read too, or is waiting for the knowledge base's write lock. Without a lock both read the same
state and both write; with it the second waits and reads what the first wrote.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from race_barrier import BARRIER_SECONDS, Barrier

PROJECT_DIR = Path(__file__).resolve().parent.parent


def race_main(argv: list[str]) -> None:
    """`python tests/test_kb_concurrency.py BARRIER NAME COUNT module:function -- bot.py arguments`.

    Runs `bot.py` with `module.function` wrapped: after its first call returns, the process marks
    itself "read" in the BARRIER folder and waits until each of the COUNT processes (p0, p1, ...) has
    either read too or announced it is waiting for the knowledge lock (`knowledge.editing._acquire`).
    """
    import importlib

    barrier, name, count, target, separator, *args = argv
    assert separator == "--", argv
    sys.path.insert(0, str(PROJECT_DIR))
    race = Barrier(barrier, name, int(count))
    arrive, wait_for_others = race.arrive, race.wait_for_others

    module_name, attribute = target.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, attribute)
    reached = False

    def hooked(*call_args, **call_kwargs):
        nonlocal reached
        result = original(*call_args, **call_kwargs)
        if not reached:
            reached = True
            arrive("read")
            wait_for_others()
        return result

    setattr(module, attribute, hooked)
    import knowledge.editing as editing

    acquire = getattr(editing, "_acquire", None)  # absent before the fix: nothing serialized the changes
    if acquire is not None:
        def announced(session):
            arrive("waiting")
            return acquire(session)

        editing._acquire = announced
    import bot

    bot.app(args=args, prog_name="bot.py")


if __name__ == "__main__":
    race_main(sys.argv[1:])


# ----------------------------------------------------------------------------------------- the tests

import re  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import select  # noqa: E402
from test_kb_files import (  # noqa: E402, F401 - fixtures
    FEE_ENTRY,
    Snapshot,
    edit_csv_fee,
    export,
    flat,
    history_rows,
    kb,
    kb_url,
    read_csv,
    snapshot,
    starter_db,
    write_csv,
)

from knowledge.db import session_factory  # noqa: E402
from knowledge.editing import entry_dict  # noqa: E402
from knowledge.loader import open_knowledge_base  # noqa: E402
from knowledge.models import RevisionRow  # noqa: E402
from knowledge.spreadsheet import read_entries  # noqa: E402

SECOND_FEE_ENTRY = "1.001193"  # đăng ký khai sinh: another entry with a fee line


def race(tmp_path: Path, target: str, *commands: list[object]) -> list[subprocess.CompletedProcess]:
    """Run each `bot.py` command line in its own process, all started together and held at `target`."""
    folder = tmp_path / f"barrier-{time.monotonic_ns()}"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"}}
    env.update(PYTHONIOENCODING="utf-8", COLUMNS="250", NO_COLOR="1")
    processes = [
        subprocess.Popen([sys.executable, __file__, str(folder), f"p{i}", str(len(commands)), target, "--", *map(str, command)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", cwd=PROJECT_DIR, env=env)
        for i, command in enumerate(commands)
    ]
    results = []
    for process, command in zip(processes, commands):
        stdout, stderr = process.communicate(timeout=2 * BARRIER_SECONDS)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    for result in results:
        assert "race hook" not in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    return results


def file_entries(path: Path) -> dict[str, dict]:
    """What the knowledge base holds once `path` (a full export, edited) is imported."""
    return {entry.id: entry_dict(entry) for entry in read_entries(path)}


def revisions(url: str) -> list[RevisionRow]:
    engine = open_knowledge_base(url)
    try:
        with session_factory(engine)() as session:
            return list(session.scalars(select(RevisionRow).order_by(RevisionRow.id)))
    finally:
        engine.dispose()


def assert_history_consistent(url: str, before: Snapshot, since: int) -> Snapshot:
    """Each entry's revisions after `since` chain up: the first starts from `before`, each next one
    starts where the previous ended, the last ends at what is stored now."""
    now = snapshot(url)
    by_entry: dict[str, list[RevisionRow]] = {}
    for revision in revisions(url)[since:]:
        by_entry.setdefault(revision.entry_id, []).append(revision)
    for entry_id, chain in by_entry.items():
        state = before.entries.get(entry_id)
        for revision in chain:
            assert revision.before == state, f"revision #{revision.id} of {entry_id} does not start where the previous ended"
            state = revision.after
        assert state == now.entries.get(entry_id), f"the history of {entry_id} does not end at what is stored"
    changed = {i for i in before.entries.keys() | now.entries.keys() if before.entries.get(i) != now.entries.get(i)}
    assert changed <= set(by_entry), f"changed without a revision: {changed - set(by_entry)}"
    return now


def edited_export(url: str, tmp_path: Path, name: str, edits: dict[str, int], new_entry: str | None = None) -> Path:
    """A full CSV export with the first fee of each entry in `edits` raised by its amount (and a new entry)."""
    path = export(url, tmp_path, "csv", name)
    for entry_id, by in edits.items():
        edit_csv_fee(path, entry_id, by)
    if new_entry:
        rows = read_csv(path)
        rows.append({**rows[0], "id": new_entry, "name": f"Thủ tục thử {new_entry}", "short_name": f"thủ tục thử {new_entry}"})
        write_csv(path, rows)
    return path


def test_two_imports_of_one_file_at_once_store_every_fact_once(kb_url, tmp_path):
    before = snapshot(kb_url)  # also loads the starter entries, before the processes start
    path = edited_export(kb_url, tmp_path, "kb", {FEE_ENTRY: 5000, SECOND_FEE_ENTRY: 1000}, new_entry="9.999999")
    wanted = file_entries(path)

    first, second = race(tmp_path, "knowledge.editing:plan", ["--db", kb_url, "kb", "import", path],
                         ["--db", kb_url, "kb", "import", path])

    assert first.returncode == second.returncode == 0, (first.stderr, second.stderr)
    said = sorted(flat(done.stdout) for done in (first, second))
    assert "1 mục mới, 2 mục sửa" in said[1] and "0 mục mới, 0 mục sửa" in said[0], "one wrote, the other found it done"
    after = assert_history_consistent(kb_url, before, before.revisions)
    assert after.entries == wanted, "every fee, document and entry exactly once"
    assert len(after.entries[FEE_ENTRY]["fees"]) == len(before.entries[FEE_ENTRY]["fees"])
    assert after.revisions == before.revisions + 3 and after.version == before.version + 1


def test_two_different_imports_at_once_apply_one_after_the_other_in_full(kb_url, tmp_path):
    before = snapshot(kb_url)
    small = edited_export(kb_url, tmp_path, "small", {FEE_ENTRY: 5000})
    large = edited_export(kb_url, tmp_path, "large", {FEE_ENTRY: 20000, SECOND_FEE_ENTRY: 1000})
    files = {"small.csv": file_entries(small), "large.csv": file_entries(large)}

    results = race(tmp_path, "knowledge.editing:plan", ["--db", kb_url, "kb", "import", small],
                   ["--db", kb_url, "kb", "import", large])

    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    after = assert_history_consistent(kb_url, before, before.revisions)
    fee_history = [r for r in revisions(kb_url)[before.revisions:] if r.entry_id == FEE_ENTRY]
    assert len(fee_history) == 2, "both changed the fee, one after the other"
    last = fee_history[-1].source.removeprefix("file:")
    assert after.entries == files[last], "the file applied last is stored in full, nothing of a mix"
    assert after.version == before.version + 2


def test_two_imports_checked_on_one_version_at_once_one_is_refused(kb_url, tmp_path):
    before = snapshot(kb_url)
    small = edited_export(kb_url, tmp_path, "small", {FEE_ENTRY: 5000})
    large = edited_export(kb_url, tmp_path, "large", {FEE_ENTRY: 20000, SECOND_FEE_ENTRY: 1000})
    checked = kb(kb_url, "kb", "validate", small)
    assert checked.exit_code == 0 and f"--if-version {before.version}" in flat(checked.output)

    results = race(tmp_path, "knowledge.editing:plan",
                   ["--db", kb_url, "kb", "import", small, "--if-version", before.version],
                   ["--db", kb_url, "kb", "import", large, "--if-version", before.version])

    assert sorted(r.returncode for r in results) == [0, 1], [r.stderr for r in results]
    applied, refused = sorted(results, key=lambda r: r.returncode)
    said = flat(refused.stderr)
    assert f"Cơ sở kiến thức đã có thay đổi khác (phiên bản {before.version} → {before.version + 1})" in said
    assert "chưa ghi gì" in said and refused.stdout.strip() == ""
    after = assert_history_consistent(kb_url, before, before.revisions)
    assert after.entries == file_entries(Path(applied.args[4])), "the accepted file in full, nothing of the refused one"
    assert after.version == before.version + 1


def test_two_reverts_of_one_change_at_once_apply_once(kb_url, tmp_path):
    original = snapshot(kb_url)
    path = edited_export(kb_url, tmp_path, "kb", {FEE_ENTRY: 5000})
    assert kb(kb_url, "kb", "import", path).exit_code == 0
    (change_id, *_), = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
    changed = snapshot(kb_url)

    results = race(tmp_path, "knowledge.repository:to_entry", ["--db", kb_url, "kb", "revert", change_id],
                   ["--db", kb_url, "kb", "revert", change_id])

    assert sorted(r.returncode for r in results) == [0, 1], [(r.stdout, r.stderr) for r in results]
    done, refused = sorted(results, key=lambda r: r.returncode)
    undo_id = re.search(r"ghi nhận là thay đổi #(\d+)", flat(done.stdout)).group(1)
    assert f"Thay đổi số {change_id} đã được hoàn tác (bởi thay đổi số {undo_id})" in flat(refused.stderr)
    after = assert_history_consistent(kb_url, changed, changed.revisions)
    assert after.entries == original.entries
    assert after.revisions == changed.revisions + 1 and after.version == changed.version + 1
    rows = history_rows(kb(kb_url, "kb", "history", FEE_ENTRY).output)
    assert [r[0] for r in rows] == [change_id, undo_id] and rows[0][6] == undo_id


def test_an_import_checked_on_an_older_version_is_refused_and_writes_nothing(kb_url, tmp_path):
    before = snapshot(kb_url)
    mine = edited_export(kb_url, tmp_path, "mine", {FEE_ENTRY: 5000})
    theirs = edited_export(kb_url, tmp_path, "theirs", {SECOND_FEE_ENTRY: 1000})
    assert kb(kb_url, "kb", "import", theirs).exit_code == 0  # someone else, after `mine` was checked
    moved = snapshot(kb_url)

    refused = kb(kb_url, "kb", "import", mine, "--if-version", before.version)
    assert refused.exit_code == 1
    assert f"phiên bản {before.version} → {moved.version}" in flat(refused.output) and "chưa ghi gì" in flat(refused.output)
    assert snapshot(kb_url) == moved, "their change stands, nothing of mine written"

    done = kb(kb_url, "kb", "import", mine, "--if-version", moved.version)
    assert done.exit_code == 0, done.output
    assert snapshot(kb_url).version == moved.version + 1


@pytest.mark.parametrize("action", ["import", "revert"])
def test_a_change_waits_for_the_lock_and_then_goes_through(kb_url, tmp_path, monkeypatch, action):
    """In one process too: a change started while another transaction holds the lock waits for it
    (no "database is locked"), then is made once on what is stored by then."""
    import threading

    import knowledge.editing as editing

    path = edited_export(kb_url, tmp_path, "kb", {FEE_ENTRY: 5000})
    entries = read_entries(path)
    engine = open_knowledge_base(kb_url)
    try:
        db = session_factory(engine)
        if action == "revert":
            with db.begin() as session:
                editing.apply(session, entries, "cli:test", "file:kb.csv")
            change_id = revisions(kb_url)[-1].id
        before = snapshot(kb_url)
        waiting = threading.Event()
        acquire = editing._acquire

        def announced(session) -> None:
            if threading.current_thread() is not threading.main_thread():
                waiting.set()
            acquire(session)

        monkeypatch.setattr(editing, "_acquire", announced)
        outcome: list[object] = []

        def second_change() -> None:
            with db.begin() as session:
                if action == "import":
                    outcome.append(editing.apply(session, entries, "cli:other", "file:kb.csv"))
                else:
                    outcome.append(editing.revert(session, change_id, "cli:other", "cli"))

        thread = threading.Thread(target=second_change)
        with db.begin() as holder:
            editing.lock_knowledge(holder)
            thread.start()
            assert waiting.wait(timeout=60)
            assert snapshot(kb_url) == before, "nothing written while the lock is held"
        thread.join(timeout=60)
        assert not thread.is_alive() and len(outcome) == 1
        after = assert_history_consistent(kb_url, before, before.revisions)
        assert after.version == before.version + 1
    finally:
        engine.dispose()
