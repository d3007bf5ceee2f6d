"""Shared fixtures: databases to run the knowledge base on, and one catalog/router for understanding tests.

`database_url` runs a test on a fresh SQLite file and, when TEST_DATABASE_URL is set (e.g.
postgresql://postgres@127.0.0.1:5432/test), on that PostgreSQL database too, emptied before and after.

The suite runs on what the repository holds (knowledge/starter, quality/, tests/data). A test that also
checks against ../shared (present beside a developer's clone, absent on a fresh one) says so in its name
(`..._against_shared_kb`) and is marked `requires_shared(path)`: skipped with its reason when the path is missing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402
from sqlalchemy import Engine, MetaData, text  # noqa: E402

from config import SHARED_DIR, Settings  # noqa: E402
from handlers import build_router  # noqa: E402
from handlers.core import Router  # noqa: E402
from handlers.messages import Incoming, Reply  # noqa: E402
from knowledge.catalog import Catalog  # noqa: E402
from knowledge.db import make_engine, open_database, session_factory  # noqa: E402
from knowledge.loader import open_knowledge_base  # noqa: E402
from knowledge.models import Base  # noqa: E402
from knowledge.starter import read_starter  # noqa: E402

# Hypothesis would keep its caches in ./.hypothesis of the current folder: in the temp folder instead, so the
# tests write nothing into the tree they are run from.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"motcua-hypothesis-{os.getuid()}")
hypothesis_settings.register_profile(
    "motcua", deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
    database=None,  # derandomized: the same examples every run, nothing to replay
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "motcua"))

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
DATA_DIR = Path(__file__).resolve().parent / "data"
# A few hundred records of the national catalogue, owned by the project (the whole file lives in ../shared).
NATIONAL_SAMPLE = DATA_DIR / "national_sample.jsonl.gz"

# ../shared: reference data beside a developer's clone; a fresh clone has none of it.
KB_DIR = SHARED_DIR / "kb"
SHARED_ENTRIES_FILE = KB_DIR / "entries.yaml"
NATIONAL_RECORDS = SHARED_DIR / "data" / "dvcqg" / "procedures_all_ministries.jsonl.gz"


def requires_shared(*paths: Path) -> pytest.MarkDecorator:
    """Skip a test, with the reason, unless every one of `paths` (under ../shared) exists."""
    missing = [str(path) for path in paths if not path.exists()]
    return pytest.mark.skipif(bool(missing), reason=f"reference data outside the repository not found: {', '.join(missing)}")


# --------------------------------------------------------------------------- the project's own reference data

STARTER_IDS: list[str] = sorted(entry.id for entry in read_starter())  # knowledge/starter/*.yaml


@pytest.fixture(scope="session")
def shared_entries() -> dict[str, dict]:
    """The 53 entries the project must ship, by id (../shared/kb/entries.yaml); only for `requires_shared` tests."""
    if not SHARED_ENTRIES_FILE.exists():
        pytest.skip(f"reference data outside the repository not found: {SHARED_ENTRIES_FILE}")
    return {str(e["id"]): e for e in yaml.safe_load(SHARED_ENTRIES_FILE.read_text(encoding="utf-8"))}


# --------------------------------------------------------------------------- waiting for a condition

def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> None:
    """Poll `predicate` until it holds; fail after `timeout` seconds (generous: CI is a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not hold within {timeout:g} s")
        time.sleep(0.02)


async def eventually(predicate: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> None:
    """`wait_until` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not hold within {timeout:g} s")
        await asyncio.sleep(0.02)


def make_settings(database_url: str = "sqlite://", **overrides) -> Settings:
    """Settings that ignore any .env file or environment of the machine running the tests."""
    # No worker processes unless a test asks: spawning one costs seconds (tests/test_workers.py has its own).
    values = dict(telegram_bot_token=None, zalo_bot_token=None, office_phone=None, office_address=None, office_hours=None,
                  core_workers=0)
    values.update(overrides)
    return Settings(_env_file=None, database_url=database_url, **values)


# --------------------------------------------------------------------------- databases

def empty_database(url: str) -> None:
    """Drop every table of the knowledge base, and Alembic's version table, so a run starts from nothing."""
    engine = make_engine(url)
    try:
        Base.metadata.drop_all(engine)
        # Tables of features whose models this process never imported are dropped too.
        leftover = MetaData()
        leftover.reflect(engine)
        leftover.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


_DATABASES = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


@pytest.fixture(params=_DATABASES)
def database_url(request, tmp_path) -> str:
    """A URL to an empty database: a SQLite file, and PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'motcua-test.db'}"
        return
    empty_database(TEST_DATABASE_URL)
    yield TEST_DATABASE_URL
    empty_database(TEST_DATABASE_URL)


@pytest.fixture
def db(database_url):
    """A session factory on the test database with the schema up to date and no entries loaded (for
    the features that keep their own tables: dossiers, announcements)."""
    engine = open_database(database_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def open_kb(database_url):
    """open_knowledge_base on the test database; every engine it hands out is disposed afterwards
    (an idle PostgreSQL connection left open would block dropping the tables)."""
    engines: list[Engine] = []

    def opener(url: str | None = None) -> Engine:
        engine = open_knowledge_base(url or database_url)
        engines.append(engine)
        return engine

    yield opener
    for engine in engines:
        engine.dispose()


# --------------------------------------------------------------------------- one catalog for many tests

@pytest.fixture(scope="session")
def catalog(tmp_path_factory) -> Catalog:
    """The starter knowledge base on SQLite, loaded and indexed once for the whole session."""
    url = f"sqlite:///{tmp_path_factory.mktemp('kb') / 'catalog.db'}"
    engine = open_knowledge_base(url)
    try:
        return Catalog.load(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def index(catalog):
    return catalog.index


@pytest.fixture
def router(catalog) -> Router:
    """A router on the shared catalog with fresh chat memory (cheap: the index is reused)."""
    return build_router(catalog, make_settings())


class Chat:
    """One conversation with the bot, as a channel would hold it."""

    def __init__(self, router: Router, chat_id: str = "chat-1", channel: str = "test", buttonless: bool = False) -> None:
        self.router = router
        self.chat_id = chat_id
        self.channel = channel
        self.buttonless = buttonless  # a platform without buttons (Zalo): choices are typed as numbers

    def send(self, text: str) -> list[Reply]:
        return self.router.handle(Incoming(self.channel, self.chat_id, "user-1", text, buttonless=self.buttonless))

    def press(self, data: str) -> list[Reply]:
        return self.router.handle(Incoming(self.channel, self.chat_id, "user-1", "", button=data, buttonless=self.buttonless))

    def ask(self, text: str) -> Reply:
        replies = self.send(text)
        assert replies, f"no reply to {text!r}"
        return replies[0]


@pytest.fixture
def chat(router) -> Chat:
    return Chat(router)
