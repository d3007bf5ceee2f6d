"""Two processes starting at once on a new database (the bot and the web console, or two workers), on
SQLite and PostgreSQL: both start, the schema is created once and the starter entries are loaded once.

The race is forced, not left to luck: each process runs `open_knowledge_base` with a hook (see
`race_main`) that stops it right after it has read which schema revision the database is at, until the
other process has read it too or is waiting for the schema lock. Without a lock both read "no tables"
and both create them, and one fails ("table entries already exists").
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
    """`python tests/test_first_start.py BARRIER NAME COUNT URL`: open the knowledge base at URL, held
    after the first read of the schema revision until every other process has read it or is waiting."""
    barrier, name, count, url = argv
    sys.path.insert(0, str(PROJECT_DIR))
    race = Barrier(barrier, name, int(count))
    arrive, wait_for_others = race.arrive, race.wait_for_others

    from alembic.runtime.migration import MigrationContext

    original = MigrationContext.get_current_heads
    reached = False

    def hooked(self):
        nonlocal reached
        heads = original(self)
        if not reached:
            reached = True
            arrive("read")
            wait_for_others()
        return heads

    MigrationContext.get_current_heads = hooked
    import knowledge.db as db
    import knowledge.loader as loader

    lock = getattr(db, "schema_lock", None)  # absent before the fix: nothing serialized the first start
    if lock is not None:
        def announced(engine):
            arrive("waiting")
            return lock(engine)

        loader.schema_lock = announced
    loader.open_knowledge_base(url).dispose()


if __name__ == "__main__":
    race_main(sys.argv[1:])


# ----------------------------------------------------------------------------------------- the tests

from sqlalchemy import func, select, text  # noqa: E402

from knowledge.db import make_engine, session_factory  # noqa: E402
from knowledge.loader import open_knowledge_base  # noqa: E402
from knowledge.models import EntryRow  # noqa: E402
from knowledge.starter import read_starter  # noqa: E402


def start_together(tmp_path: Path, url: str, count: int = 2) -> list[subprocess.CompletedProcess]:
    folder = tmp_path / f"barrier-{time.monotonic_ns()}"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"DATABASE_URL", "TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN"}}
    processes = [subprocess.Popen([sys.executable, __file__, str(folder), f"p{i}", str(count), url],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                  cwd=PROJECT_DIR, env=env) for i in range(count)]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=2 * BARRIER_SECONDS)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def test_two_processes_starting_on_a_new_database_both_start_and_load_the_starter_entries_once(database_url, tmp_path):
    results = start_together(tmp_path, database_url)

    for result in results:
        assert "race hook" not in result.stderr, result.stderr
        assert result.returncode == 0, result.stderr[-3000:]
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            stored = session.scalar(select(func.count()).select_from(EntryRow))
            versions = session.execute(text("SELECT version_num FROM alembic_version")).all()
        assert stored == len(read_starter())
        assert len(versions) == 1
    finally:
        engine.dispose()
    # ... and a later start finds everything in place.
    open_knowledge_base(database_url).dispose()
