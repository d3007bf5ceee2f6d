"""Changing the knowledge base: every change is planned, applied in one transaction, recorded as a
revision (who, when, from where, before and after) and bumps the version running bots reload on.

Changes are serialized: each one first takes the knowledge base's write lock (`lock_knowledge`), then
reads, plans and writes. Two imports at once therefore run one after the other, the second planned
against what the first wrote, and a change prepared against an older version can be refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session

from knowledge import repository
from knowledge.models import EntryRow, MetaRow, RevisionRow
from knowledge.schema import Entry

VERSION_KEY = "kb_version"
CURATED_SOURCES = frozenset({"starter", "staff"})
LOCK_KEY = 0x6B625F6C6F636B  # "kb_lock": the PostgreSQL advisory lock every knowledge change takes
LOCK_WAIT_SECONDS = 120  # a national import holds the lock ~10-30 s; a second change waits for it, not forever
_LOCK_INFO = "knowledge_lock"


class EditError(Exception):
    """A change that cannot be made; the message is for staff, in plain words."""


class StaleChange(EditError):
    """A change prepared against an older version of the knowledge base, which has moved on since."""

    def __init__(self, expected: int, current: int) -> None:
        self.expected, self.current = expected, current
        super().__init__(
            f"Cơ sở kiến thức đã có thay đổi khác (phiên bản {expected} → {current}) sau khi tệp được kiểm tra, "
            "nên chưa ghi gì để không đè lên thay đổi đó. Vui lòng xuất hoặc kiểm tra lại tệp rồi nhập lại."
        )


def lock_knowledge(session: Session, expected_version: int | None = None) -> int:
    """Take the knowledge base's write lock until the transaction ends and return the current version.

    PostgreSQL: a transaction-level advisory lock; SQLite: BEGIN IMMEDIATE (one writer at a time).
    Call it before reading what the change is based on, so the reads see every earlier change.
    Raises StaleChange when `expected_version` is given and the knowledge base has moved past it.
    """
    session.connection()  # begins the transaction, so the lock is tied to this one
    if session.info.get(_LOCK_INFO) is not session.get_transaction():
        _acquire(session)
        session.info[_LOCK_INFO] = session.get_transaction()
    version = current_version(session)
    if expected_version is not None and version != expected_version:
        raise StaleChange(expected_version, version)
    return version


def _acquire(session: Session) -> None:
    connection = session.connection()
    dialect = connection.dialect.name
    try:
        if dialect == "sqlite":
            raw = connection.connection.dbapi_connection
            if raw.in_transaction:  # a write already ran in this transaction: it holds the write lock
                return
            waited = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_WAIT_SECONDS * 1000}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited or 0)}")
        elif dialect == "postgresql":
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_SECONDS}s'"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            connection.execute(text("SET LOCAL lock_timeout = 0"))
        else:  # another database: the version row's lock serializes the changes as well
            session.get(MetaRow, VERSION_KEY, with_for_update=True)
    except OperationalError as error:
        message = str(error).lower()
        if "locked" in message or "lock timeout" in message:
            raise EditError("Cơ sở kiến thức đang được cập nhật bởi một thay đổi khác; vui lòng thử lại sau ít phút.") from None
        raise


@dataclass
class Change:
    entry_id: str
    action: str  # create | update | unchanged | skipped
    fields: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ChangeSummary:
    changes: list[Change] = field(default_factory=list)

    def ids(self, action: str) -> list[str]:
        return [c.entry_id for c in self.changes if c.action == action]

    @property
    def created(self) -> list[str]:
        return self.ids("create")

    @property
    def updated(self) -> list[str]:
        return self.ids("update")

    @property
    def unchanged(self) -> list[str]:
        return self.ids("unchanged")

    @property
    def skipped(self) -> list[str]:
        return self.ids("skipped")

    def describe(self) -> str:
        """A short Vietnamese summary for staff ("2 mục mới, 1 mục sửa: 1.001193 (fees)")."""
        parts = [f"{len(self.created)} mục mới", f"{len(self.updated)} mục sửa", f"{len(self.unchanged)} mục không đổi"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} mục giữ bản do cán bộ biên soạn")
        lines = [", ".join(parts) + "."]
        lines += [f"• {c.entry_id}: sửa {', '.join(c.fields)}" for c in self.changes if c.action == "update"][:20]
        lines += [f"⚠ {c.entry_id}: {w}" for c in self.changes for w in c.warnings][:20]
        return "\n".join(lines)


def entry_dict(entry: Entry) -> dict:
    return entry.model_dump(mode="json")


def changed_fields(before: Entry, after: Entry) -> list[str]:
    old, new = entry_dict(before), entry_dict(after)
    return [name for name in new if old.get(name) != new.get(name)]


def fee_warnings(before: Entry, after: Entry) -> list[str]:
    """Citizens read a fee's text, not its amount: an amount changed with the same text is likely a slip."""
    old = {(f.channel, f.text): f.amount_vnd for f in before.fees}
    return [f"số tiền lệ phí đổi ({old[(f.channel, f.text)]} → {f.amount_vnd}) nhưng nội dung người dân đọc vẫn là \"{f.text[:60]}\"; "
            "hãy sửa cả nội dung." for f in after.fees if (f.channel, f.text) in old and old[(f.channel, f.text)] != f.amount_vnd]


def fit(column: InstrumentedAttribute[str], value: str) -> str:
    """`value` cut to what the model's String(n) `column` holds (a long file name must not fail an import)."""
    length = getattr(column.type, "length", None)
    return value if length is None or len(value) <= length else value[: length - 1] + "…"


def current_version(session: Session) -> int:
    return int(repository.get_meta(session, VERSION_KEY) or 0)


def bump_version(session: Session) -> int:
    """Count one more change. The row is locked (PostgreSQL) so two editors committing together both
    count, and every bot that saw the first change also sees the second."""
    row = session.get(MetaRow, VERSION_KEY, with_for_update=True)
    if row is None:
        row = MetaRow(key=VERSION_KEY, value="0")
        session.add(row)
    row.value = str(int(row.value or 0) + 1)
    session.flush()
    return int(row.value)


def _load_rows(session: Session, ids: list[str]) -> dict[str, EntryRow]:
    rows = session.scalars(select(EntryRow).where(EntryRow.id.in_(ids)).options(*repository.LOAD_ALL)).all() if ids else []
    return {row.id: row for row in rows}


def complete(session: Session, entries: list[Entry]) -> list[Entry]:
    """Entries from a file that left columns out, with those facts taken from the stored entries."""
    missing = getattr(entries, "missing_columns", frozenset())
    if not missing:
        return entries
    from knowledge.spreadsheet import fill_missing_columns

    stored = {}
    ids = [e.id for e in entries]
    for start in range(0, len(ids), 500):
        stored.update(_load_rows(session, ids[start:start + 500]))
    return [fill_missing_columns(e, repository.to_entry(stored[e.id]), missing) if e.id in stored else e for e in entries]


def plan(session: Session, entries: list[Entry], keep_curated: bool = False) -> ChangeSummary:
    """What importing `entries` would change, without changing anything."""
    entries = complete(session, entries)
    summary = ChangeSummary()
    rows = {}
    ids = [e.id for e in entries]
    for start in range(0, len(ids), 500):
        rows.update(_load_rows(session, ids[start:start + 500]))
    for entry in entries:
        row = rows.get(entry.id)
        if row is None:
            summary.changes.append(Change(entry.id, "create"))
            continue
        if keep_curated and row.source in CURATED_SOURCES:
            summary.changes.append(Change(entry.id, "skipped"))
            continue
        stored = repository.to_entry(row)
        fields = changed_fields(stored, entry)
        summary.changes.append(Change(entry.id, "update" if fields else "unchanged", fields, fee_warnings(stored, entry)))
    return summary


def apply(session: Session, entries: list[Entry], actor: str, source: str, *, origin: str = "staff",
          keep_curated: bool = False, expected_version: int | None = None) -> ChangeSummary:
    """Write `entries` (create or update), one revision per real change; the caller commits.

    `origin` is stored with each entry (starter / staff / dvcqg); with `keep_curated`, entries that
    staff or the starter data wrote are left alone (a catalogue import must not undo their work).
    With `expected_version` (the version a preview was computed on), a knowledge base changed since
    is refused with StaleChange and nothing is written.
    """
    lock_knowledge(session, expected_version)
    actor, source = fit(RevisionRow.actor, actor), fit(RevisionRow.source, source)
    entries = complete(session, entries)
    summary = plan(session, entries, keep_curated)
    by_id = {e.id: e for e in entries}
    touched = [c for c in summary.changes if c.action in ("create", "update")]
    rows = _load_rows(session, [c.entry_id for c in touched if c.action == "update"])
    for change in touched:
        entry = by_id[change.entry_id]
        if change.action == "create":
            session.add(repository.to_row(entry, source=origin))
            before = None
        else:
            row = rows[change.entry_id]
            before = entry_dict(repository.to_entry(row))
            repository.apply_entry(row, entry)
            row.source = origin
        session.add(RevisionRow(entry_id=entry.id, action=change.action, actor=actor, source=source,
                                before=before, after=entry_dict(entry)))
    if touched:
        session.flush()
        bump_version(session)
    return summary


def add_phrase(session: Session, entry_id: str, phrase: str, actor: str, source: str, kind: str = "alias") -> RevisionRow:
    """Attach a citizen's phrasing to an entry as an alias (or example), recorded as a revision."""
    phrase = " ".join(phrase.split())
    if not phrase:
        raise EditError("Cụm từ trống.")
    lock_knowledge(session)
    actor, source = fit(RevisionRow.actor, actor), fit(RevisionRow.source, source)
    row = session.get(EntryRow, entry_id, options=repository.LOAD_ALL)
    if row is None:
        raise EditError(f"Không có mục {entry_id}.")
    before = repository.to_entry(row)
    existing = before.aliases if kind == "alias" else before.examples
    if phrase.casefold() in (p.casefold() for p in existing):
        raise EditError(f"Mục {entry_id} đã có cụm từ này.")
    update = {"aliases": [*before.aliases, phrase]} if kind == "alias" else {"examples": [*before.examples, phrase]}
    after = before.model_copy(update=update)
    repository.apply_entry(row, after)
    revision = RevisionRow(entry_id=entry_id, action="update", actor=actor, source=source,
                           before=entry_dict(before), after=entry_dict(after))
    session.add(revision)
    session.flush()
    bump_version(session)
    return revision


def last_revision_id(session: Session) -> int:
    return session.scalar(select(func.max(RevisionRow.id))) or 0


def changed_since(session: Session, revision_id: int) -> tuple[set[str], int]:
    """Ids of entries changed by revisions after `revision_id`, and the newest revision id."""
    rows = session.execute(select(RevisionRow.id, RevisionRow.entry_id).where(RevisionRow.id > revision_id)).all()
    return {entry_id for _, entry_id in rows}, max((rid for rid, _ in rows), default=revision_id)


def history(session: Session, entry_id: str) -> list[RevisionRow]:
    return list(session.scalars(select(RevisionRow).where(RevisionRow.entry_id == entry_id).order_by(RevisionRow.id)))


def revert(session: Session, revision_id: int, actor: str, source: str, force: bool = False) -> RevisionRow:
    """Undo one revision. Refuses when the entry changed since (unless forced) or it was undone already.

    Under the knowledge lock: of two reverts of one change at once, the second finds it undone."""
    lock_knowledge(session)
    actor, source = fit(RevisionRow.actor, actor), fit(RevisionRow.source, f"{source} (hoàn tác #{revision_id})")
    revision = session.get(RevisionRow, revision_id)
    if revision is None:
        raise EditError(f"Không có thay đổi số {revision_id}.")
    if revision.reverted_by is not None:
        raise EditError(f"Thay đổi số {revision_id} đã được hoàn tác (bởi thay đổi số {revision.reverted_by}).")
    row = session.get(EntryRow, revision.entry_id, options=repository.LOAD_ALL)
    now = entry_dict(repository.to_entry(row)) if row is not None else None
    if not force and now != revision.after:
        raise EditError(
            f"Mục {revision.entry_id} đã được sửa tiếp sau thay đổi số {revision_id}; hoàn tác sẽ làm mất các sửa đổi đó. "
            "Xem `kb history` và hoàn tác các thay đổi mới hơn trước (hoặc dùng --force)."
        )
    target = revision.before
    if target is None:
        if row is not None:
            session.delete(row)
        action = "delete"
    elif row is None:
        session.add(repository.to_row(Entry.model_validate(target), source="staff"))
        action = "create"
    else:
        repository.apply_entry(row, Entry.model_validate(target))
        action = "update"
    undo = RevisionRow(entry_id=revision.entry_id, action=action, actor=actor, source=source,
                       before=now, after=target)
    session.add(undo)
    session.flush()
    revision.reverted_by = undo.id
    bump_version(session)
    return undo
