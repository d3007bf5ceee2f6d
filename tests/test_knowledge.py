"""The knowledge base: schema migrated by Alembic, the 53 starter entries loaded once and never
overwritten, and starter facts that invent no figure. Database tests run on SQLite and, when
TEST_DATABASE_URL is set, on PostgreSQL. Tests named `..._against_shared_kb` also check the starter data
against ../shared/kb and are skipped where it is absent (a fresh clone)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from conftest import KB_DIR, NATIONAL_RECORDS, SHARED_ENTRIES_FILE, requires_shared
from sqlalchemy import func, inspect, select, text

from handlers.answers import write_answer
from knowledge import loader
from knowledge.db import MIGRATIONS_DIR, session_factory
from knowledge.loader import seed_starter
from knowledge.models import Base, DocumentRow, EntryRow, EquivalentRow, FeeRow, MetaRow, PhraseRow
from knowledge.repository import get_entry, load_entries
from knowledge.schema import Entry
from knowledge.starter import read_starter
from nlp.aspects import Aspect

STARTER_COUNT = 53  # 47 procedures and 6 topics


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def _row_counts(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in Base.metadata.sorted_tables}


def _updated_at(engine) -> dict[str, object]:
    with session_factory(engine)() as session:
        return dict(session.execute(select(EntryRow.id, EntryRow.updated_at)).all())


@pytest.fixture(scope="module")
def starter() -> list[Entry]:
    return read_starter()


# --------------------------------------------------------------------------- schema and loading

def test_schema_is_migrated_by_alembic_to_head(open_kb):
    engine = open_kb()
    tables = set(inspect(engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [_head_revision()]


def test_all_53_entries_are_loaded_with_their_ids_and_equivalents(open_kb, starter):
    engine = open_kb()
    with session_factory(engine)() as session:
        entries = {e.id: e for e in load_entries(session)}
    assert len(entries) == STARTER_COUNT
    assert sorted(entries) == sorted(e.id for e in starter), "the database must hold exactly the starter ids"
    for wanted in starter:
        entry = entries[wanted.id]
        assert sorted(entry.equivalents) == sorted(wanted.equivalents), wanted.id
        assert entry.group == wanted.group, wanted.id
        assert entry.kind == ("procedure" if re.fullmatch(r"\d\.\d{6}", wanted.id) else "topic"), wanted.id
        assert entry.summary and entry.name, wanted.id


@requires_shared(SHARED_ENTRIES_FILE)
def test_the_starter_entries_are_the_53_required_ones_against_shared_kb(starter, shared_entries):
    """The ids, equivalents and groups the project must ship (../shared/kb/entries.yaml) are the starter's."""
    assert len(shared_entries) == STARTER_COUNT
    by_id = {e.id: e for e in starter}
    assert sorted(by_id) == sorted(shared_entries)
    for entry_id, wanted in shared_entries.items():
        assert sorted(by_id[entry_id].equivalents) == sorted(wanted.get("equivalents", [])), entry_id
        assert by_id[entry_id].group == wanted["group"], entry_id


def test_entries_read_back_from_the_database_equal_the_starter_files(open_kb, starter):
    engine = open_kb()
    with session_factory(engine)() as session:
        stored = sorted(load_entries(session), key=lambda e: e.id)
    shipped = sorted(starter, key=lambda e: e.id)
    assert [e.id for e in stored] == [e.id for e in shipped]
    for got, want in zip(stored, shipped):  # equivalents are a set: their order is not kept
        got = got.model_copy(update={"equivalents": sorted(got.equivalents)})
        want = want.model_copy(update={"equivalents": sorted(want.equivalents)})
        assert got == want, f"{want.id} changed on its way through the database"


def test_an_equivalent_id_finds_its_entry(catalog, starter):
    with_equivalents = {e.id: e.equivalents for e in starter if e.equivalents}
    assert with_equivalents, "the starter data names equivalents (e.g. 2.000986 = 2.001023)"
    for entry_id, others in with_equivalents.items():
        for other in others:
            assert catalog.get(other) is not None and catalog.get(other).id == entry_id


def test_loading_twice_changes_nothing(open_kb, database_url):
    engine = open_kb()
    counts, stamps = _row_counts(engine), _updated_at(engine)
    assert counts["entries"] == STARTER_COUNT

    with session_factory(engine).begin() as session:
        assert seed_starter(session) == 0
    again = open_kb(database_url)  # a second start of the bot on the same database
    assert _row_counts(again) == counts
    assert _updated_at(again) == stamps


def test_loading_again_without_the_marker_adds_no_duplicate(open_kb):
    """Even if the 'starter loaded' marker is gone, entries already present are not inserted again."""
    engine = open_kb()
    counts = _row_counts(engine)
    with session_factory(engine).begin() as session:
        session.execute(MetaRow.__table__.delete())
    with session_factory(engine).begin() as session:
        assert seed_starter(session) == 0
    after = _row_counts(engine)
    # The marker rows themselves were deleted on purpose; every other table must be untouched.
    counts.pop("kb_meta"), after.pop("kb_meta")
    assert after == counts


def test_an_entry_edited_in_the_database_is_not_overwritten_by_a_new_start(open_kb, database_url, monkeypatch):
    engine = open_kb()
    with session_factory(engine).begin() as session:
        row = session.get(EntryRow, "1.001193")
        row.summary = "Bản do cán bộ xã sửa: mang theo giấy chứng sinh."
        row.fees[0].text = "Miễn lệ phí (cán bộ đã kiểm tra lại)."
        row.source = "staff"
        session.add(PhraseRow(entry_id="1.001193", kind="alias", text="khai sinh cho bé", position=99))
        session.execute(DocumentRow.__table__.delete().where(DocumentRow.entry_id == "1.001193", DocumentRow.position == 4))

    def check(eng) -> None:
        with session_factory(eng)() as session:
            entry = get_entry(session, "1.001193")
            source = session.get(EntryRow, "1.001193").source
        assert entry.summary == "Bản do cán bộ xã sửa: mang theo giấy chứng sinh."
        assert entry.fees[0].text == "Miễn lệ phí (cán bộ đã kiểm tra lại)."
        assert "khai sinh cho bé" in entry.aliases
        assert len(entry.documents) == 4
        assert source == "staff"

    check(open_kb(database_url))  # the same starter data
    monkeypatch.setattr(loader, "starter_digest", lambda: "a-newer-release")  # a release with changed starter files
    check(open_kb(database_url))
    assert _row_counts(engine)["entries"] == STARTER_COUNT


def test_a_deleted_child_row_does_not_break_loading(open_kb):
    """Staff may remove every fee of an entry; the entry still loads and is answered politely."""
    engine = open_kb()
    with session_factory(engine).begin() as session:
        session.execute(FeeRow.__table__.delete().where(FeeRow.entry_id == "1.000894"))
        session.execute(EquivalentRow.__table__.delete())
    with session_factory(engine)() as session:
        entries = {e.id: e for e in load_entries(session)}
    assert len(entries) == STARTER_COUNT
    entry = entries["1.000894"]
    assert entry.fees == [] and entry.equivalents == []
    assert "Bộ phận Một cửa" in write_answer(entry, (Aspect.FEE,))


# --------------------------------------------------------------------------- the starter facts

def test_starter_files_hold_each_id_exactly_once(starter):
    ids = [e.id for e in starter]
    assert len(ids) == len(set(ids)), "an id is written twice in knowledge/starter"
    assert len(ids) == STARTER_COUNT
    assert sum(e.kind == "procedure" for e in starter) == 47


def test_every_starter_entry_has_the_facts_a_citizen_asks_for(starter):
    for entry in starter:
        assert entry.aliases or entry.examples, f"{entry.id} has no phrasing to match questions with"
        if entry.kind == "procedure":
            assert entry.documents, f"{entry.id} lists no documents"
            assert entry.places, f"{entry.id} says nowhere to file"
            assert entry.legal_basis, f"{entry.id} has no legal basis"


def test_a_fee_set_by_the_province_has_no_amount_and_says_the_province_decides(starter):
    province_fees = [(e, f) for e in starter for f in e.fees if f.set_by_province]
    assert province_fees, "the starter data has fees set by each province (hộ tịch, hộ kinh doanh, đất đai...)"
    for entry, fee in province_fees:
        assert fee.amount_vnd is None, f"{entry.id}: a fee set by the province cannot have a national amount"
        answer = write_answer(entry, (Aspect.FEE,))
        assert "tỉnh" in fee.text.lower() or "tỉnh" in answer.lower(), f"{entry.id}: the answer must say the province decides"


def _amount_pattern(amount: int) -> re.Pattern[str]:
    """30000 as 30.000, 30,000, 30 000 or 30000 (and not as part of 130.000 or 30.0001)."""
    digits, groups = str(amount), []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return re.compile(r"(?<![\d.,])" + r"[.,\s]?".join(groups) + r"(?![\d]|[.,]\d)")


@pytest.fixture(scope="module")
def shared_facts(shared_entries) -> str:
    """The facts the starter data may take figures from: ../shared/kb and the national records of its entries."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(KB_DIR.glob("*.yaml"))]
    ids = set(shared_entries) | {o for e in shared_entries.values() for o in e.get("equivalents", [])}
    with gzip.open(NATIONAL_RECORDS, "rt", encoding="utf-8") as handle:
        for line in handle:
            if json.loads(line).get("ma_thu_tuc") in ids:
                texts.append(line)
    return "\n".join(texts)


@requires_shared(SHARED_ENTRIES_FILE, NATIONAL_RECORDS)
def test_no_invented_fee_amount_against_shared_kb(starter, shared_facts):
    amounts = [(e.id, f.amount_vnd) for e in starter for f in e.fees if f.amount_vnd]
    assert amounts, "the starter data has fixed national fees (e.g. thẻ căn cước, trích lục)"
    invented = [(entry_id, amount) for entry_id, amount in amounts if not _amount_pattern(amount).search(shared_facts)]
    assert not invented, f"fee amounts found in no shared fact: {invented}"


@pytest.mark.parametrize("amount, text, found", [
    (30000, "lệ phí 30.000 đồng", True), (30000, "30,000 Việt Nam Đồng", True), (30000, "30000đ", True),
    (30000, "130.000 đồng", False), (30000, "30.0001", False), (1500000, "1.500.000 đồng", True),
])
def test_the_amount_check_itself(amount, text, found):
    assert bool(_amount_pattern(amount).search(text)) is found


def test_the_first_card_is_free_and_online_residence_filing_is_cheaper(starter):
    """Facts citizens ask most, straight from procedures.yaml: no fee for a first căn cước card
    (1.014061); đăng ký thường trú (1.004222) costs less online than at the counter."""
    by_id = {e.id: e for e in starter}
    card = by_id["1.014061"]
    assert card.fees and all(f.amount_vnd in (None, 0) for f in card.fees)
    assert any(f.amount_vnd == 0 or "không thu" in f.text.lower() or "miễn" in f.text.lower() for f in card.fees)
    residence = by_id["1.004222"]
    online = [f.amount_vnd for f in residence.fees if f.channel == "online" and f.amount_vnd is not None]
    counter = [f.amount_vnd for f in residence.fees if f.channel in ("in_person", "any") and f.amount_vnd is not None]
    assert online and counter and min(online) < min(counter)
