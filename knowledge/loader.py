"""Opening the knowledge base: migrate the schema, load the starter entries once, read entries out."""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from knowledge import editing, repository
from knowledge.db import make_engine, schema_lock, session_factory, upgrade
from knowledge.models import EntryRow, RevisionRow
from knowledge.schema import Entry
from knowledge.starter import read_starter, starter_digest

log = logging.getLogger(__name__)

STARTER_KEY = "starter_digest"
FINGERPRINT_PREFIX = "starter:"  # + entry id: the fingerprint of the starter text last loaded into it


def seed_starter(session: Session) -> int:
    """Bring the starter entries in; returns how many were added or upgraded. Loading twice changes nothing.

    A starter entry the database lacks is inserted. One it has is upgraded to a newer release's text
    only if nobody changed it since it was loaded (its content still has the fingerprint recorded
    then): once staff have edited an entry, their version stands.
    """
    digest = starter_digest()
    if repository.get_meta(session, STARTER_KEY) == digest:
        return 0
    # Two processes starting on a new database at once: the second waits, then finds the work done.
    session.expire_all()
    editing.lock_knowledge(session)
    if repository.get_meta(session, STARTER_KEY) == digest:
        return 0
    rows = {row.id: row for row in session.scalars(select(EntryRow).options(*repository.LOAD_ALL))}
    changed = 0
    for entry in read_starter():
        key = f"{FINGERPRINT_PREFIX}{entry.id}"
        release = fingerprint(entry)
        row = rows.get(entry.id)
        if row is None:
            session.add(repository.to_row(entry, source="starter"))
        else:
            current = fingerprint(repository.to_entry(row))
            loaded = repository.get_meta(session, key)
            if current == release:
                repository.set_meta(session, key, release)
                continue
            if current != loaded:  # someone changed it since it was loaded (or it predates fingerprints)
                log.info("starter entry %s was edited in this database; keeping that version", entry.id)
                continue
            before = editing.entry_dict(repository.to_entry(row))
            repository.apply_entry(row, entry)
            session.add(RevisionRow(entry_id=entry.id, action="update", actor="starter", source="new release",
                                    before=before, after=editing.entry_dict(entry)))
        repository.set_meta(session, key, release)
        changed += 1
    repository.set_meta(session, STARTER_KEY, digest)
    if changed:
        session.flush()
        editing.bump_version(session)
    return changed


def fingerprint(entry: Entry) -> str:
    return hashlib.sha256(json.dumps(editing.entry_dict(entry), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


def open_knowledge_base(url: str) -> Engine:
    """An engine on an up-to-date schema with the starter entries loaded."""
    engine = make_engine(url)
    with schema_lock(engine):  # two processes starting at once must not both load the starter entries
        upgrade(engine)
        with session_factory(engine).begin() as session:
            changed = seed_starter(session)
    if changed:
        log.info("loaded or upgraded %d starter entries", changed)
    return engine
