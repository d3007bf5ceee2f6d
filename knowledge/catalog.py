"""The knowledge base as the running bot sees it: entries in memory plus their search index."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine

from knowledge.db import session_factory
from knowledge.repository import load_entries
from knowledge.schema import Entry
from nlp import EntryText, KnowledgeIndex


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
