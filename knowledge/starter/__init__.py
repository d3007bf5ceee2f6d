"""The starter knowledge base shipped with the project: the 53 entries of ../shared/kb/entries.yaml,
written in our own words from the checked facts there. One YAML file per group of procedures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from knowledge.schema import Entry, EntryFile

STARTER_DIR = Path(__file__).resolve().parent


def starter_files() -> list[Path]:
    return sorted(STARTER_DIR.glob("*.yaml"))


def read_starter() -> list[Entry]:
    """All starter entries, validated; raises if a shipped file is broken (a bug, caught by tests)."""
    entries: list[Entry] = []
    for path in starter_files():
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        entries.extend(EntryFile.model_validate({"entries": raw}).entries)
    return entries


def starter_digest() -> str:
    digest = hashlib.sha256()
    for path in starter_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
