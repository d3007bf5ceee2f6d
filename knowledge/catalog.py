"""The knowledge base as the running bot sees it: entries in memory plus their search index."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine

from knowledge.db import session_factory
from knowledge.editing import current_version
from knowledge.repository import load_entries
from knowledge.schema import Entry
from nlp import EntryText, KnowledgeIndex

log = logging.getLogger(__name__)


def entry_text(entry: Entry) -> EntryText:
    phrases = tuple(p for p in (entry.short_name, *entry.aliases, *entry.examples) if p)
    aliases = tuple(a for a in (entry.short_name, *entry.aliases) if a)
    return EntryText(entry.id, entry.name, phrases, tuple(entry.equivalents), aliases)


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, Entry]
    index: KnowledgeIndex

    @classmethod
    def from_entries(cls, entries: list[Entry]) -> Catalog:
        return cls({e.id: e for e in entries}, KnowledgeIndex([entry_text(e) for e in entries]))

    @classmethod
    def load(cls, engine: Engine) -> Catalog:
        with session_factory(engine)() as session:
            return cls.from_entries(load_entries(session))

    def get(self, entry_id: str) -> Entry | None:
        return self.entries.get(self.index.canonical(entry_id))

    def groups(self) -> dict[str, list[Entry]]:
        grouped: dict[str, list[Entry]] = defaultdict(list)
        for entry in self.entries.values():
            grouped[entry.group].append(entry)
        return dict(grouped)


class FixedCatalog:
    """A catalogue that never changes (tests, one-shot commands)."""

    def __init__(self, catalog: Catalog) -> None:
        self.current = catalog


class LiveCatalog:
    """The catalogue a running bot answers from, rebuilt when the knowledge base's version changes.

    A background thread reads the version (one small query) every `check_every` seconds; when an
    import, a revert or a new alias bumped it (in this process or any other sharing the database),
    the new catalogue is built beside the old one and swapped in, so questions never wait for it.
    """

    def __init__(self, engine: Engine, check_every: float = 1.0) -> None:
        self._engine = engine
        self._check_every = check_every
        self.version = self._read_version()
        self.current = Catalog.load(engine)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_version(self) -> int:
        with session_factory(self._engine)() as session:
            return current_version(session)

    def refresh(self) -> bool:
        """Reload now if the knowledge base changed; True when a new catalogue was swapped in."""
        version = self._read_version()
        if version == self.version:
            return False
        catalog = Catalog.load(self._engine)
        self.current, self.version = catalog, version
        log.info("knowledge base reloaded at version %d (%d entries)", version, len(catalog.entries))
        return True

    def start(self) -> LiveCatalog:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="kb-reload", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._check_every):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a failed reload keeps the old catalogue serving
                log.exception("knowledge base reload failed; still answering from version %d", self.version)
