"""Staff files (issue 3): export the knowledge base as CSV, XLSX or YAML, change one fee the way staff
would in Excel, import it back, and only that fee changes; every bad file is refused with its place
(file, row, column or sheet), a non-zero exit, and nothing written.

The helpers here (kb, snapshot, raise_fee, ...) are shared by the other test_kb_*.py files.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
import yaml
from conftest import NATIONAL_SAMPLE
from sqlalchemy import func, select
from typer.testing import CliRunner

from knowledge.db import session_factory
from knowledge.editing import current_version, entry_dict
from knowledge.loader import open_knowledge_base
from knowledge.models import RevisionRow
from knowledge.repository import load_entries

RECORDS = NATIONAL_SAMPLE  # a few hundred national records the project owns (the whole catalogue is in ../shared)
FEE_ENTRY = "1.014064"  # làm lại thẻ căn cước bị mất: one fee line with an amount and a text naming it
FEE_QUESTION = "làm lại thẻ căn cước bị mất hết bao nhiêu tiền"


# --------------------------------------------------------------------------- shared fixtures and helpers


@pytest.fixture(scope="session")
def starter_db(tmp_path_factory) -> Path:
    """One SQLite file with the starter entries loaded (loading them takes ~1.5 s: the YAML parser)."""
    path = tmp_path_factory.getbasetemp() / "starter-template" / "starter.db"
    if not path.exists():  # the fixture is imported by the other test_kb_* modules: build it once
        path.parent.mkdir(exist_ok=True)
        open_knowledge_base(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def kb_url(database_url, starter_db) -> str:
    """`database_url` (SQLite, and PostgreSQL when TEST_DATABASE_URL is set) with the starter entries
    loaded; on SQLite a copy of `starter_db`, so each test does not pay for loading them again."""
    if database_url.startswith("sqlite:///"):
        target = Path(database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal"):
            if Path(f"{starter_db}{suffix}").exists():
                shutil.copyfile(f"{starter_db}{suffix}", f"{target}{suffix}")
    return database_url



def kb(url: str, *args: object):
    """`python bot.py --db URL ...` in this process (a wide terminal, so tables are not cut)."""
    from bot import app

    return CliRunner().invoke(app, ["--db", url, *map(str, args)], env={"COLUMNS": "250"})


def flat(text: str) -> str:
    """Output with its line wrapping undone, for looking phrases up."""
    return " ".join(text.split())


@dataclass
class Snapshot:
    version: int
    revisions: int
    entries: dict[str, dict]


def snapshot(url: str) -> Snapshot:
    """Everything an import could change: the version bots reload on, the revisions, every entry."""
    engine = open_knowledge_base(url)
    try:
        with session_factory(engine)() as session:
            return Snapshot(current_version(session), session.scalar(select(func.count(RevisionRow.id))),
                            {e.id: entry_dict(e) for e in load_entries(session)})
    finally:
        engine.dispose()


def money(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def raise_fee(cell: str, by: int = 5000) -> tuple[str, int, int]:
    """The fee cell with its first line's amount raised (and the amount written in its text too), as
    staff would retype it: "any | 35000 | không | … tức 35.000 đồng/thẻ. | | …"."""
    first, *rest = cell.split("\n")
    parts = first.split(" | ")
    old = int(parts[1])
    new = old + by
    parts[1] = str(new)
    assert money(old) in parts[3], f"the fee text names its amount: {parts[3]!r}"
    parts[3] = parts[3].replace(money(old), money(new))
    return "\n".join([" | ".join(parts), *rest]), old, new


def with_amount(cell: str, amount: str) -> str:
    """The fee cell with the amount of its first line replaced by `amount` (as typed)."""
    first, *rest = cell.split("\n")
    parts = first.split(" | ")
    parts[1] = amount
    return "\n".join([" | ".join(parts), *rest])


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    """As Excel's "CSV UTF-8" saves it (with a byte-order mark)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or list(rows[0]), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8-sig")
    return path


def edit_csv_fee(path: Path, entry_id: str = FEE_ENTRY, by: int = 5000) -> tuple[int, int]:
    rows = read_csv(path)
    original = [dict(r) for r in rows]
    row = next(r for r in rows if r["id"] == entry_id)
    row["fees"], old, new = raise_fee(row["fees"], by)
    write_csv(path, rows)
    edited = read_csv(path)
    cells = [(i, c) for i, (a, b) in enumerate(zip(original, edited)) for c in a if a[c] != b[c]]
    assert len(cells) == 1, f"exactly one cell edited, not {cells}"
    return old, new


def edit_xlsx_fee(path: Path, entry_id: str = FEE_ENTRY, by: int = 5000) -> tuple[int, int]:
    book = openpyxl.load_workbook(path)
    sheet = book["entries"]
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[header.index("id")].value == entry_id)
    cell = row[header.index("fees")]
    cell.value, old, new = raise_fee(cell.value, by)
    book.save(path)
    return old, new


def edit_yaml_fee(path: Path, entry_id: str = FEE_ENTRY, by: int = 5000) -> tuple[int, int]:
    """Retype `amount_vnd:` in the entry's block of the YAML, leaving every other line as it was."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f"- id: '{entry_id}'")
    end = text.find("\n- id:", start + 1)
    end = len(text) if end < 0 else end
    block = text[start:end]
    found = re.search(r"amount_vnd: (\d+)", block)
    old = int(found.group(1))
    new = old + by
    path.write_text(text[:start] + block.replace(found.group(0), f"amount_vnd: {new}", 1) + text[end:], encoding="utf-8")
    return old, new


EDITS = {"csv": edit_csv_fee, "xlsx": edit_xlsx_fee, "yaml": edit_yaml_fee}

_HISTORY_ROW = re.compile(r"^│\s*(\d+)\s*│(.*)│\s*$")


def history_rows(output: str) -> list[list[str]]:
    """The rows of the `kb history` table: [#, lúc, ai, từ đâu, thao tác, trường đã đổi, hoàn tác bởi]."""
    rows = []
    for line in output.splitlines():
        match = _HISTORY_ROW.match(line.strip())
        if match:
            rows.append([match.group(1), *[cell.strip() for cell in match.group(2).split("│")]])
    return rows


def changed_entries(before: Snapshot, after: Snapshot) -> dict[str, list[str]]:
    """Entry id -> fields that differ (entries added or removed count with every field)."""
    changed = {}
    for entry_id in before.entries.keys() | after.entries.keys():
        old, new = before.entries.get(entry_id, {}), after.entries.get(entry_id, {})
        fields = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if fields:
            changed[entry_id] = fields
    return changed


def export(url: str, tmp_path: Path, fmt: str, name: str = "kb") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    done = kb(url, "kb", "export", "--format", fmt, "--out", path)
    assert done.exit_code == 0, done.output
    assert path.exists() and path.stat().st_size > 0
    return path


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "yaml"])
def test_round_trip_changes_exactly_the_edited_fee(kb_url, tmp_path, fmt):
    path = export(kb_url, tmp_path, fmt)
    before = snapshot(kb_url)
    old, new = EDITS[fmt](path)

    done = kb(kb_url, "kb", "import", path)
    assert done.exit_code == 0, done.output
    said = flat(done.output)
    assert f"0 mục mới, 1 mục sửa, {len(before.entries) - 1} mục không đổi" in said
    assert f"{FEE_ENTRY}: sửa fees" in said

    after = snapshot(kb_url)
    assert changed_entries(before, after) == {FEE_ENTRY: ["fees"]}, "only the edited fee changed"
    fees_before, fees_after = before.entries[FEE_ENTRY]["fees"], after.entries[FEE_ENTRY]["fees"]
    assert (fees_before[0]["amount_vnd"], fees_after[0]["amount_vnd"]) == (old, new)
    assert [{k: v for k, v in f.items() if k not in ("amount_vnd", "text")} for f in fees_after] == [
        {k: v for k, v in f.items() if k not in ("amount_vnd", "text")} for f in fees_before]
    assert after.revisions == before.revisions + 1 and after.version == before.version + 1

    history = kb(kb_url, "kb", "history", FEE_ENTRY)
    assert history.exit_code == 0, history.output
    rows = history_rows(history.output)
    assert len(rows) == 1, history.output
    _, when, who, where, action, fields, undone = rows[0]
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", when)
    assert who.startswith("cli") and where == f"file:{path.name}" and action == "update"
    assert fields == "fees" and undone == ""

    if fmt == "xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        assert book.sheetnames == ["entries", "huong-dan"], "the columns are explained in the file itself"
    if fmt == "csv":
        assert next(iter(read_csv(path)[0])) == "id", "the id comes first"

    again = kb(kb_url, "kb", "import", path)
    assert again.exit_code == 0, again.output
    assert f"0 mục mới, 0 mục sửa, {len(before.entries)} mục không đổi" in flat(again.output)
    assert snapshot(kb_url) == after, "importing the same file again changes nothing"


# --------------------------------------------------------------------------- bad input


def _csv_rows(url: str, tmp_path: Path) -> list[dict[str, str]]:
    return read_csv(export(url, tmp_path, "csv", "exported"))


def missing_id(url, tmp_path):
    rows = _csv_rows(url, tmp_path)
    rows[4]["id"] = ""
    return write_csv(tmp_path / "thieu-id.csv", rows), ["thieu-id.csv", "hàng 6", "cột id", "thiếu id"]


def no_id_column(url, tmp_path):
    rows = _csv_rows(url, tmp_path)
    return write_csv(tmp_path / "khong-cot-id.csv", rows, [c for c in rows[0] if c != "id"]), [
        "khong-cot-id.csv", "hàng 1", "cột đầu tiên phải là id"]


def duplicate_id(url, tmp_path):
    rows = _csv_rows(url, tmp_path)
    rows[6]["id"] = rows[2]["id"]
    return write_csv(tmp_path / "trung.csv", rows), ["trung.csv", "hàng 8", "cột id", f"id {rows[2]['id']} trùng với hàng 4"]


def fee_not_a_number(url, tmp_path):
    rows = _csv_rows(url, tmp_path)
    row = next(r for r in rows if r["id"] == FEE_ENTRY)
    row["fees"] = with_amount(row["fees"], "ba mươi lăm nghìn")
    number = rows.index(row) + 2
    return write_csv(tmp_path / "le-phi.csv", rows), ["le-phi.csv", f"hàng {number}", "cột fees", "\"ba mươi lăm nghìn\" không phải là số"]


def unknown_column(url, tmp_path):
    rows = _csv_rows(url, tmp_path)
    for row in rows:
        row["phi_moi"] = "40000"
    return write_csv(tmp_path / "cot-la.csv", rows), ["cot-la.csv", "hàng 1", "cột phi_moi", "cột lạ"]


def wrong_sheet(url, tmp_path):
    path = export(url, tmp_path, "xlsx", "sai-sheet")
    book = openpyxl.load_workbook(path)
    book["entries"].title = "Sheet1"
    book.save(path)
    return path, ["sai-sheet.xlsx", "không có sheet \"entries\"", "Sheet1"]


def png_named_xlsx(url, tmp_path):
    path = tmp_path / "anh-chup.xlsx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(1).randbytes(4000))
    return path, ["anh-chup.xlsx", "Excel"]


def binary_named_csv(url, tmp_path):
    path = tmp_path / "van-ban.csv"
    path.write_bytes(b"id,name\nday la van ban\x00\x01\x02\x03 co ky tu nhi phan\n")
    return path, ["van-ban.csv", "không phải CSV"]


def truncated_gz(url, tmp_path):
    data = RECORDS.read_bytes()
    path = tmp_path / "procedures_half.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    return path, ["procedures_half.jsonl.gz", "line ", "truncated"]


_JUNK: list[Path] = []


def junk_50mb(suffix: str):
    """50 MB of random bytes (written once, then linked under each name)."""
    def make(url, tmp_path):
        if not _JUNK or not _JUNK[0].exists():
            junk = tmp_path / "junk.bin"
            junk.write_bytes(random.Random(50).randbytes(50 * 1024 * 1024))
            _JUNK[:] = [junk]
        path = tmp_path / f"rac{suffix}"
        path.symlink_to(_JUNK[0])
        return path, [path.name]
    make.__name__ = f"junk_50mb{suffix.replace('.', '_')}"
    return make


BAD_FILES = [missing_id, no_id_column, duplicate_id, fee_not_a_number, unknown_column, wrong_sheet, png_named_xlsx,
             binary_named_csv, truncated_gz, junk_50mb(".xlsx"), junk_50mb(".csv"), junk_50mb(".jsonl.gz"), junk_50mb(".jsonl")]


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda f: f.__name__)
def test_a_bad_file_is_refused_with_its_place_and_nothing_written(kb_url, tmp_path, bad):
    path, places = bad(kb_url, tmp_path)
    before = snapshot(kb_url)

    done = kb(kb_url, "kb", "import", path)
    assert done.exit_code != 0, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), f"a clear error, not a crash: {done.exception!r}"
    said = flat(done.output)
    for place in places:
        assert place in said, f"{place!r} missing from: {said}"
    assert "Traceback" not in done.output
    assert snapshot(kb_url) == before, "nothing written"


@pytest.mark.parametrize("bad", [missing_id, wrong_sheet, binary_named_csv], ids=lambda f: f.__name__)
def test_validate_reports_the_same_errors(kb_url, tmp_path, bad):
    path, places = bad(kb_url, tmp_path)
    before = snapshot(kb_url)
    done = kb(kb_url, "kb", "validate", path)
    assert done.exit_code != 0
    assert all(place in flat(done.output) for place in places), done.output
    assert snapshot(kb_url) == before


def test_every_error_of_a_file_is_listed_at_once(kb_url, tmp_path):
    rows = _csv_rows(kb_url, tmp_path)
    rows[1]["id"] = ""
    rows[3]["fees"] = "any | nhiều tiền"
    rows[5]["postal_submit"] = "chắc là có"
    rows[7]["id"] = rows[8]["id"]
    path = write_csv(tmp_path / "nhieu-loi.csv", rows)
    before = snapshot(kb_url)
    done = kb(kb_url, "kb", "import", path)
    said = flat(done.output)
    assert done.exit_code == 1
    assert "Có 4 lỗi, không ghi gì vào cơ sở dữ liệu" in said
    for place in ("hàng 3, cột id", "hàng 5, cột fees", "hàng 7, cột postal_submit", "hàng 10, cột id"):
        assert place in said, said
    assert snapshot(kb_url) == before


# --------------------------------------------------------------------------- bugs


def test_a_file_missing_a_column_loses_nothing(kb_url, tmp_path):
    rows = _csv_rows(kb_url, tmp_path)
    path = write_csv(tmp_path / "bo-cot.csv", rows, [c for c in rows[0] if c != "legal_basis"])
    before = snapshot(kb_url)
    done = kb(kb_url, "kb", "import", path)
    after = snapshot(kb_url)
    if done.exit_code != 0:
        assert "legal_basis" in flat(done.output), "the refusal names the missing column"
    assert after.entries == before.entries, f"legal_basis wiped from {len(changed_entries(before, after))} entries"


def test_a_fee_with_a_superscript_is_a_placed_error_not_a_crash(kb_url, tmp_path):
    rows = _csv_rows(kb_url, tmp_path)
    row = next(r for r in rows if r["id"] == FEE_ENTRY)
    row["fees"] = with_amount(row["fees"], row["fees"].split(" | ")[1] + "²")
    path = write_csv(tmp_path / "mu.csv", rows)
    before = snapshot(kb_url)
    done = kb(kb_url, "kb", "import", path)
    assert snapshot(kb_url) == before
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    assert done.exit_code == 1 and "cột fees" in flat(done.output)


# --------------------------------------------------------------------------- column limits (issue 10)


def test_values_longer_than_the_database_holds_are_placed_errors_and_nothing_written(kb_url, tmp_path):
    """PostgreSQL refuses a value longer than its column and the whole import failed with a traceback;
    SQLite stored it silently. Now each is an error with its row and column, on both databases."""
    rows = _csv_rows(kb_url, tmp_path)
    rows[2]["group"] = "nhom-" + "a" * 295
    rows[4]["places"] = "UBND cấp xã | " + "Cấp xã " * 30 + "|"
    rows[6]["equivalents"] = "1.000001\n" + "ma-" + "b" * 70
    path = write_csv(tmp_path / "qua-dai.csv", rows)
    before = snapshot(kb_url)
    for command in ("validate", "import"):
        done = kb(kb_url, "kb", command, path)
        said = flat(done.output)
        assert done.exit_code == 1, said
        assert "Có 3 lỗi, không ghi gì vào cơ sở dữ liệu" in said
        assert "qua-dai.csv, hàng 4, cột group: group dài 300 ký tự, tối đa 255 ký tự." in said
        assert "qua-dai.csv, hàng 6, cột places: places[1].level dài 209 ký tự, tối đa 128 ký tự." in said
        assert "qua-dai.csv, hàng 8, cột equivalents: equivalents[2] dài 73 ký tự, tối đa 64 ký tự." in said
        assert "Traceback" not in done.output
        assert snapshot(kb_url) == before


def test_a_too_long_value_in_a_yaml_file_names_its_entry(kb_url, tmp_path):
    path = export(kb_url, tmp_path, "yaml")
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = entries["entries"] if isinstance(entries, dict) else entries
    index = next(i for i, e in enumerate(entries) if str(e["id"]) == FEE_ENTRY)
    entries[index]["level"] = "Cấp xã " * 30
    path.write_text(yaml.safe_dump(entries, allow_unicode=True, sort_keys=False), encoding="utf-8")
    before = snapshot(kb_url)
    done = kb(kb_url, "kb", "import", path)
    said = flat(done.output)
    assert done.exit_code == 1, said
    assert f"kb.yaml, cột level: mục thứ {index + 1} ({FEE_ENTRY}): level dài 209 ký tự, tối đa 128 ký tự." in said
    assert snapshot(kb_url) == before


def test_a_national_record_too_long_for_the_database_is_named_by_line(kb_url, tmp_path):
    lines = gzip.decompress(RECORDS.read_bytes()).decode("utf-8").splitlines()[:3]
    record = json.loads(lines[1])
    record["linh_vuc"] = "Lĩnh vực " * 40
    lines[1] = json.dumps(record, ensure_ascii=False)
    path = tmp_path / "quoc-gia.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(kb_url)
    for command in ("validate", "import"):
        done = kb(kb_url, "kb", command, path)
        said = flat(done.output)
        assert done.exit_code == 1, said
        assert f"quoc-gia.jsonl, dòng 2, mục {record['ma_thu_tuc']}: group dài 359 ký tự, tối đa 255 ký tự" in said
        assert snapshot(kb_url) == before


def test_the_limits_checked_are_the_models(kb_url, tmp_path, monkeypatch):
    """The limits are read from the SQLAlchemy model, not from a list kept beside it: a column made
    narrower there is checked at once."""
    from knowledge.models import PlaceRow

    monkeypatch.setattr(PlaceRow.__table__.c.level.type, "length", 7)
    path = export(kb_url, tmp_path, "csv")
    done = kb(kb_url, "kb", "validate", path)
    said = flat(done.output)
    assert done.exit_code == 1 and "cột places: places[1].level dài 8 ký tự, tối đa 7 ký tự." in said, said


def test_a_file_with_a_very_long_name_imports_and_its_name_is_kept_shortened(kb_url, tmp_path):
    path = export(kb_url, tmp_path, "csv", "a" * 250)
    edit_csv_fee(path)
    done = kb(kb_url, "kb", "import", path)
    assert done.exit_code == 0, done.output
    engine = open_knowledge_base(kb_url)
    try:
        with session_factory(engine)() as session:
            source = session.scalar(select(RevisionRow.source).order_by(RevisionRow.id.desc()))
    finally:
        engine.dispose()
    assert source.startswith("file:aaaa") and source.endswith("…") and len(source) == 256
