"""Opening the knowledge base: migrate the schema, load the starter entries once, read entries out."""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from knowledge import repository
from knowledge.editing import bump_version
from knowledge.db import make_engine, migrate, session_factory
from knowledge.starter import read_starter, starter_digest

log = logging.getLogger(__name__)

STARTER_KEY = "starter_digest"


def seed_starter(session: Session) -> int:
    """Insert starter entries the database lacks; returns how many. Loading twice changes nothing.

    Entries already present are never overwritten: once staff have edited one, their version stands.
    """
    digest = starter_digest()
    if repository.get_meta(session, STARTER_KEY) == digest:
        return 0
    present = repository.existing_ids(session)
    added = 0
    for entry in read_starter():
        if entry.id not in present:
            session.add(repository.to_row(entry, source="starter"))
            added += 1
    repository.set_meta(session, STARTER_KEY, digest)
    if added:
        bump_version(session)
    return added


def open_knowledge_base(url: str) -> Engine:
    """An engine on an up-to-date schema with the starter entries loaded."""
    engine = make_engine(url)
    migrate(engine)
    with session_factory(engine).begin() as session:
        added = seed_starter(session)
    if added:
        log.info("loaded %d starter entries", added)
    return engine
