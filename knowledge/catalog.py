"""The knowledge base as the running bot sees it: entries in memory plus their search index."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from sqlalchemy import Engine

from knowledge.db import session_factory
from knowledge.editing import changed_since, current_version, last_revision_id
from knowledge.repository import get_entry, load_entries
from knowledge.schema import Entry
from nlp import EntryText, KnowledgeIndex
from nlp.names import everyday_names, plain_name, shared_names
from nlp.normalize import fold

log = logging.getLogger(__name__)

CATALOGUE_NAMES = Path(__file__).resolve().parent / "catalogue_names.yaml"


@cache
def catalogue_names(path: Path = CATALOGUE_NAMES) -> dict[str, tuple[str, ...]]:
    """How citizens call national records that have only their official name (knowledge/catalogue_names.yaml)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(code): tuple(str(name) for name in names) for code, names in raw.items()}


def entry_text(entry: Entry, shared: frozenset[str] = frozenset()) -> EntryText:
    """What the index reads of an entry: its names, how citizens ask about it, and what it says.
    `shared`: derived names too many official names contain to name this one (`nlp.names.shared_names`)."""
    aliases = [a for a in (entry.short_name, *entry.aliases) if a]
    if not entry.short_name and not entry.examples:
        # Nobody described how citizens call it (a national record): the names the project knows for it, and
        # names derived from the official one, which is itself one when it has no boilerplate ("Đăng ký lại
        # khai tử"), so that a question containing a record's name counts as naming it, whatever it looked like.
        aliases += catalogue_names().get(entry.id, ())
        known = {fold(a) for a in aliases}
        whole = plain_name(entry.name)
        aliases += [n for n in everyday_names(entry.name)
                    if fold(n) not in known and (n == whole or " ".join(fold(n).lower().replace(",", " ").split()) not in shared)]
    phrases = tuple(dict.fromkeys((*aliases, *(e for e in entry.examples if e))))
    # Steps are left out: mostly the same words in every procedure ("nộp hồ sơ", "trả kết quả"), they
    # made BM25 worse on the project's question sets, and they are half of all the text.
    body = tuple(t for t in (entry.summary, *(d.name for d in entry.documents), *entry.conditions) if t)
    return EntryText(entry.id, entry.name, phrases, tuple(entry.equivalents), tuple(dict.fromkeys(aliases)), body)


DEFAULT_LEVEL = "Cấp xã"


def representatives(entries: dict[str, Entry], office_level: str) -> dict[str, str]:
    """For each group of equivalent entries (the same procedure at several levels), the one to
    answer with: the variant of the office's own level, else the richest (curated) one."""
    parent = {entry_id: entry_id for entry_id in entries}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for entry in entries.values():
        for other in entry.equivalents:
            if other in entries:
                parent[find(other)] = find(entry.id)
    groups: dict[str, list[str]] = defaultdict(list)
    for entry_id in entries:
        groups[find(entry_id)].append(entry_id)
    level = office_level.casefold()
    chosen: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        best = max(members, key=lambda i: (level in (entries[i].level or "").casefold(),
                                           len(entries[i].examples) + len(entries[i].aliases), i))
        chosen.update({member: best for member in members})
    return chosen


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, Entry]
    index: KnowledgeIndex

    @classmethod
    def from_entries(cls, entries: list[Entry], office_level: str = DEFAULT_LEVEL) -> Catalog:
        by_id = {e.id: e for e in entries}
        derived = [e for e in entries if not e.short_name and not e.examples]
        shared = shared_names({n for e in derived for n in everyday_names(e.name) if n != plain_name(e.name)},
                              (e.name for e in entries))
        return cls(by_id, KnowledgeIndex([entry_text(e, shared) for e in entries], representatives(by_id, office_level)))

    @classmethod
    def load(cls, engine: Engine, office_level: str = DEFAULT_LEVEL) -> Catalog:
        with session_factory(engine)() as session:
            return cls.from_entries(load_entries(session), office_level)

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

    def __init__(self, engine: Engine, check_every: float = 1.0, office_level: str = DEFAULT_LEVEL) -> None:
        self._engine = engine
        self._check_every = check_every
        self._office_level = office_level
        with session_factory(engine)() as session:
            self.version, self._revision = current_version(session), last_revision_id(session)
        self.current = Catalog.load(engine, office_level)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Reload now if the knowledge base changed; True when a new catalogue was swapped in.

        Only the entries named by new revisions are read again; a change without revisions (new
        starter data) reloads everything.
        """
        with session_factory(self._engine)() as session:
            version = current_version(session)
            if version == self.version:
                return False
            changed, revision = changed_since(session, self._revision)
            if changed:
                entries = dict(self.current.entries)
                for entry_id in changed:
                    entry = get_entry(session, entry_id)
                    if entry is None:
                        entries.pop(entry_id, None)
                    else:
                        entries[entry_id] = entry
                catalog = Catalog.from_entries(list(entries.values()), self._office_level)
            else:
                catalog = Catalog.from_entries(load_entries(session), self._office_level)
        self.current, self.version, self._revision = catalog, version, revision
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
            except Exception:  # a failed reload keeps the old catalogue serving
                log.exception("knowledge base reload failed; still answering from version %d", self.version)
