"""The composition root: settings → database → knowledge source → chat memory → router, in one place.

The CLI (bot.py), the worker processes answering for the channels (channels.workers) and (later) the web
console all assemble the bot here, so each gets the same wiring and none imports another's entry point.
Channel state (which channels have buttons, the worker processes) is not part of the app: the channels and
their runner hold it (channels.base, channels.runner).

    app = build_app(get_settings(), live=True)
    app.router.handle(Incoming(...))
    app.close()
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config import Settings

if TYPE_CHECKING:  # imported when building, not before logging is set up: underthesea configures logging on import
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from handlers.core import CatalogSource, Router
    from handlers.state import ChatMemory

log = logging.getLogger(__name__)


@dataclass
class App:
    """One assembled bot: what every entry point needs, and how to let it go."""

    settings: Settings
    engine: Engine
    db: sessionmaker[Session]
    source: CatalogSource
    router: Router

    def close(self) -> None:
        """Stop following the knowledge base and close the database's connections."""
        stop = getattr(self.source, "stop", None)
        if stop is not None:
            stop()
        self.engine.dispose()


def setup_logging(settings: Settings) -> None:
    """Standard error at LOG_LEVEL, every record redacted (tokens, keys, passwords) before any handler writes it."""
    import redaction

    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    redaction.install(settings)


def open_database(settings: Settings) -> Engine:
    """The database named by the settings, its schema up to date and the starter entries loaded once.

    The one place a process opens its database: waiting for a database that is not up yet (retry with
    backoff, one line to say so) belongs here.
    """
    from knowledge.loader import open_knowledge_base

    return open_knowledge_base(settings.database_url)


def open_source(engine: Engine, settings: Settings, live: bool) -> CatalogSource:
    """The knowledge base to answer from: live (follows imports, reverts and staff edits from any process)
    for a running bot, or read once for one-shot commands."""
    from knowledge.catalog import Catalog, FixedCatalog, LiveCatalog

    if live:
        return LiveCatalog(engine, settings.reload_seconds, settings.office_level).start()
    return FixedCatalog(Catalog.load(engine, settings.office_level))


def build_app(settings: Settings, *, live: bool = False, memory: ChatMemory | None = None) -> App:
    """Assemble the bot from its settings.

    `memory` replaces the chats' memory kept in the database (e.g. an in-memory one for an evaluation run,
    whose conversations must not mix with the stored chats').
    """
    from handlers import build_router
    from knowledge.db import session_factory

    engine = open_database(settings)
    try:
        db = session_factory(engine)
        source = open_source(engine, settings, live)
        router = build_router(source, settings, db, memory)
    except BaseException:
        engine.dispose()
        raise
    return App(settings, engine, db, source, router)
