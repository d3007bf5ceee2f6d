"""Engine, sessions and schema migrations for whichever database DATABASE_URL names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from filelock import FileLock
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_LOCK_KEY = 0x6B625F736368656D  # "kb_schem": the PostgreSQL advisory lock held while the schema is set up


def make_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created and foreign keys are enforced."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Error texts would otherwise quote the statement's parameters: chat ids, questions, tokens.
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.drivername == "postgresql":  # plain postgresql:// means psycopg 3 here, the driver we install
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Held while the schema is brought up to date (and the starter entries loaded): the bot and the web
    console started at once on a new database would otherwise both find no tables and both create them.
    PostgreSQL: a session advisory lock; a SQLite file: a lock file beside it; an in-memory SQLite
    database belongs to one process and needs none."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
                connection.commit()
        return
    on_disk = url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:"
    with FileLock(f"{url.database}.lock") if on_disk else nullcontext():
        yield


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it already is)."""
    with schema_lock(engine):
        upgrade(engine)


def upgrade(engine: Engine) -> None:
    """`migrate` for a caller that already holds `schema_lock`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(url: str) -> Engine:
    """An engine on an up-to-date schema, without loading the knowledge base's entries (the dossier and
    announcement commands need the tables, not the starter data)."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
