"""Shared fixtures: databases to run the knowledge base on, and one catalog/router for understanding tests.

`database_url` runs a test on a fresh SQLite file and, when TEST_DATABASE_URL is set (e.g.
postgresql://postgres@127.0.0.1:5432/test), on that PostgreSQL database too, emptied before and after.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, MetaData, text  # noqa: E402

from config import SHARED_DIR, Settings  # noqa: E402
from handlers import build_router  # noqa: E402
from handlers.core import Router  # noqa: E402
from handlers.messages import Incoming, Reply  # noqa: E402
from knowledge.catalog import Catalog  # noqa: E402
from knowledge.db import make_engine, open_database, session_factory  # noqa: E402
from knowledge.loader import open_knowledge_base  # noqa: E402
from knowledge.models import Base  # noqa: E402

hypothesis_settings.register_profile(
    "motcua", deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "motcua"))

KB_DIR = SHARED_DIR / "kb"
ENTRIES_FILE = KB_DIR / "entries.yaml"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "").strip()


# --------------------------------------------------------------------------- shared reference data

def _shared_entries() -> list[dict]:
    return yaml.safe_load(ENTRIES_FILE.read_text(encoding="utf-8"))


SHARED_ENTRIES: list[dict] = _shared_entries()
SHARED_IDS: list[str] = [str(e["id"]) for e in SHARED_ENTRIES]


@pytest.fixture(scope="session")
def shared_entries() -> dict[str, dict]:
    """The 53 entries the project must ship, by id (../shared/kb/entries.yaml)."""
    return {str(e["id"]): e for e in SHARED_ENTRIES}


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

    def __init__(self, router: Router, chat_id: str = "chat-1", channel: str = "test") -> None:
        self.router = router
        self.chat_id = chat_id
        self.channel = channel

    def send(self, text: str) -> list[Reply]:
        return self.router.handle(Incoming(self.channel, self.chat_id, "user-1", text))

    def press(self, data: str) -> list[Reply]:
        return self.router.handle(Incoming(self.channel, self.chat_id, "user-1", "", button=data))

    def ask(self, text: str) -> Reply:
        replies = self.send(text)
        assert replies, f"no reply to {text!r}"
        return replies[0]


@pytest.fixture
def chat(router) -> Chat:
    return Chat(router)
