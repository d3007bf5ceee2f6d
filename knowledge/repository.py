"""Reading and writing entries: database rows in, validated `schema.Entry` objects out (and back)."""

from __future__ import annotations

from sqlalchemy import String, inspect, select
from sqlalchemy.orm import Session, selectinload

from knowledge.models import DocumentRow, DurationRow, EntryRow, EquivalentRow, FeeRow, MetaRow, PhraseRow, PlaceRow
from knowledge.schema import Document, Duration, Entry, Fee, Online, Place, Postal

LOAD_ALL = (
    selectinload(EntryRow.documents),
    selectinload(EntryRow.fees),
    selectinload(EntryRow.durations),
    selectinload(EntryRow.places),
    selectinload(EntryRow.phrases),
    selectinload(EntryRow.equivalents),
)


# Rows are read this many entries at a time: the ORM objects of the whole national catalogue at once
# took about 120 MB more at the peak than the entries they are turned into (the session's identity map
# holds rows only weakly, so each batch is freed once converted).
LOAD_BATCH = 250


def load_entries(session: Session) -> list[Entry]:
    """Every entry with every fact, in id order."""
    ids = list(session.scalars(select(EntryRow.id).order_by(EntryRow.id)))
    entries: list[Entry] = []
    for start in range(0, len(ids), LOAD_BATCH):
        batch = select(EntryRow).where(EntryRow.id.in_(ids[start:start + LOAD_BATCH])).options(*LOAD_ALL).order_by(EntryRow.id)
        entries += [to_entry(row) for row in session.scalars(batch)]
    return entries


def get_entry(session: Session, entry_id: str) -> Entry | None:
    row = session.get(EntryRow, entry_id, options=LOAD_ALL)
    return to_entry(row) if row is not None else None


def existing_ids(session: Session) -> set[str]:
    return set(session.scalars(select(EntryRow.id)))


def to_entry(row: EntryRow) -> Entry:
    return Entry(
        id=row.id, kind=row.kind, name=row.name, short_name=row.short_name, group=row.group, level=row.level,
        equivalents=[e.equivalent_id for e in row.equivalents], summary=row.summary,
        aliases=[p.text for p in row.phrases if p.kind == "alias"],
        examples=[p.text for p in row.phrases if p.kind == "example"],
        documents=[Document(name=d.name, form=d.form, count=d.count, note=d.note) for d in row.documents],
        fees=[Fee(channel=f.channel, amount_vnd=f.amount_vnd, set_by_province=f.set_by_province, text=f.text,
                  exemptions=f.exemptions, basis=f.basis) for f in row.fees],
        durations=[Duration(channel=d.channel, text=d.text, working_days=d.working_days) for d in row.durations],
        places=[Place(agency=p.agency, level=p.level, note=p.note) for p in row.places],
        online=Online(level=row.online_level, portals=row.online_portals or [], note=row.online_note),
        postal=Postal(submit=row.postal_submit, receive_result=row.postal_receive_result, note=row.postal_note),
        steps=row.steps or [], conditions=row.conditions or [], legal_basis=row.legal_basis or [],
        result=row.result, notes=row.notes or [],
    )


def to_row(entry: Entry, source: str) -> EntryRow:
    row = EntryRow(id=entry.id, source=source)
    apply_entry(row, entry)
    return row


def apply_entry(row: EntryRow, entry: Entry) -> None:
    """Overwrite every fact of `row` with those of `entry` (children replaced wholesale)."""
    row.kind, row.name, row.short_name, row.group, row.level = entry.kind, entry.name, entry.short_name, entry.group, entry.level
    row.summary, row.result = entry.summary, entry.result
    row.online_level, row.online_portals, row.online_note = entry.online.level.value, list(entry.online.portals), entry.online.note
    row.postal_submit, row.postal_receive_result, row.postal_note = entry.postal.submit, entry.postal.receive_result, entry.postal.note
    row.steps, row.conditions, row.legal_basis, row.notes = list(entry.steps), list(entry.conditions), list(entry.legal_basis), list(entry.notes)
    row.documents = [DocumentRow(position=i, name=d.name, form=d.form.value if d.form else None, count=d.count, note=d.note)
                     for i, d in enumerate(entry.documents)]
    row.fees = [FeeRow(position=i, channel=f.channel.value, amount_vnd=f.amount_vnd, set_by_province=f.set_by_province,
                       text=f.text, exemptions=f.exemptions, basis=f.basis) for i, f in enumerate(entry.fees)]
    row.durations = [DurationRow(position=i, channel=d.channel.value, text=d.text, working_days=d.working_days)
                     for i, d in enumerate(entry.durations)]
    row.places = [PlaceRow(position=i, agency=p.agency, level=p.level, note=p.note) for i, p in enumerate(entry.places)]
    row.phrases = [PhraseRow(position=i, kind="alias", text=t) for i, t in enumerate(entry.aliases)] + [
        PhraseRow(position=i, kind="example", text=t) for i, t in enumerate(entry.examples)]
    row.equivalents = [EquivalentRow(equivalent_id=e) for e in dict.fromkeys(entry.equivalents)]


def too_long(entry: Entry) -> list[tuple[str, int, int]]:
    """(field, length, limit) for each value of `entry` longer than its String(n) column holds.

    The limits come from the SQLAlchemy model itself (the row `to_row` would write), so a column added
    or resized later is checked without a list to keep in step. PostgreSQL refuses such a value and
    fails the whole import; SQLite would store it silently.
    """
    found: list[tuple[str, int, int]] = []
    row = to_row(entry, source="staff")
    _check_row(row, "", found)
    for relationship in inspect(EntryRow).relationships:
        for index, child in enumerate(getattr(row, relationship.key)):
            _check_row(child, f"{relationship.key}[{index + 1}].", found)
    return found


def _check_row(row: object, prefix: str, found: list[tuple[str, int, int]]) -> None:
    mapper = inspect(type(row))
    for attribute in mapper.column_attrs:
        column = attribute.columns[0]
        limit = column.type.length if isinstance(column.type, String) else None
        value = getattr(row, attribute.key)
        if limit and isinstance(value, str) and len(value) > limit and not column.foreign_keys:
            name = attribute.key
            if isinstance(row, EquivalentRow):  # one id of the equivalents list, shown as it is written
                prefix, name = prefix.rstrip("."), ""
            found.append((f"{prefix}{name}", len(value), limit))


def describe_too_long(entry: Entry) -> list[str]:
    """`too_long` in words for staff, one line per value ("group dài 193 ký tự, tối đa 64")."""
    return [f"{where} dài {length} ký tự, tối đa {limit} ký tự" for where, length, limit in too_long(entry)]


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(MetaRow, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(MetaRow, key)
    if row is None:
        session.add(MetaRow(key=key, value=value))
    else:
        row.value = value
