"""Staff files: the knowledge base as YAML, CSV or XLSX, out and back in, with errors that name their place.

The CSV (and the XLSX sheet "entries") has one row per entry, its id in the first column. List fields
hold one item per line inside the cell; structured items (documents, fees, durations, places) separate
their parts with " | ", in the order given in COLUMNS. Reading never touches the database: it returns
validated entries, or every problem found with its place (file, sheet, row, column, reason).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError

from knowledge.repository import too_long
from knowledge.schema import Entry

MAX_FILE_BYTES = 20 * 1024 * 1024  # a knowledge base of 10,000 entries is a few MB; more is a wrong file
SHEET = "entries"
HELP_SHEET = "huong-dan"
MAX_ERRORS = 50
SEP = " | "

# column -> (what staff see in the help sheet, how a cell is read back)
COLUMNS: dict[str, str] = {
    "id": "Mã thủ tục quốc gia (vd 1.001193) hoặc mã chủ đề (chữ thường, gạch nối). Bắt buộc, không trùng.",
    "kind": "procedure (thủ tục) hoặc topic (chủ đề).",
    "name": "Tên chính thức.",
    "short_name": "Tên thường gọi, dùng trong câu trả lời.",
    "group": "Nhóm (vd ho-tich, cu-tru).",
    "level": "Cấp thực hiện (vd Cấp xã).",
    "equivalents": "Mã cùng thủ tục ở cấp khác, mỗi dòng một mã.",
    "summary": "Một hai câu giới thiệu.",
    "aliases": "Tên người dân hay gọi, mỗi dòng một tên.",
    "examples": "Câu hỏi mẫu, mỗi dòng một câu.",
    "documents": "Giấy tờ, mỗi dòng: tên | hình thức (original/copy/certified_copy/present/form/electronic) | số bản | ghi chú",
    "fees": "Lệ phí, mỗi dòng: kênh (any/in_person/online/postal) | số tiền (đồng, để trống nếu không cố định) | do tỉnh quy định (có/không) | nội dung | miễn giảm | căn cứ",
    "durations": "Thời hạn, mỗi dòng: kênh | số ngày làm việc | nội dung",
    "places": "Nơi nộp, mỗi dòng: cơ quan | cấp | ghi chú",
    "online_level": "Nộp trực tuyến: full (toàn trình), partial (một phần), none, unknown.",
    "online_portals": "Cổng nộp trực tuyến, mỗi dòng một cổng.",
    "online_note": "Ghi chú về nộp trực tuyến.",
    "postal_submit": "Gửi hồ sơ qua bưu điện: có / không / để trống nếu chưa rõ.",
    "postal_receive_result": "Nhận kết quả qua bưu điện: có / không / để trống.",
    "postal_note": "Ghi chú về bưu điện.",
    "steps": "Các bước, mỗi dòng một bước.",
    "conditions": "Điều kiện, mỗi dòng một ý.",
    "legal_basis": "Căn cứ pháp lý, mỗi dòng một văn bản.",
    "result": "Kết quả nhận được.",
    "notes": "Lưu ý thêm, mỗi dòng một ý.",
}
LIST_COLUMNS = {"equivalents", "aliases", "examples", "online_portals", "steps", "conditions", "legal_basis", "notes"}
PARTS = {
    "documents": ("name", "form", "count", "note"),
    "fees": ("channel", "amount_vnd", "set_by_province", "text", "exemptions", "basis"),
    "durations": ("channel", "working_days", "text"),
    "places": ("agency", "level", "note"),
}
_YES = {"có", "co", "yes", "true", "1", "x", "đúng", "dung"}
_NO = {"không", "khong", "no", "false", "0", "sai"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a staff file, with its place."""

    file: str
    reason: str
    row: int | None = None
    column: str | None = None
    sheet: str | None = None

    def __str__(self) -> str:
        place = [self.file]
        if self.sheet:
            place.append(f"sheet {self.sheet}")
        if self.row is not None:
            place.append(f"hàng {self.row}")
        if self.column:
            place.append(f"cột {self.column}")
        return ", ".join(place) + f": {self.reason}"


class StaffEntries(list):
    """Entries read from a staff file, and the columns the file left out (their facts are kept as they are)."""

    def __init__(self, entries: list[Entry], missing_columns: frozenset[str] = frozenset()) -> None:
        super().__init__(entries)
        self.missing_columns = missing_columns


def fill_missing_columns(entry: Entry, existing: Entry, columns: frozenset[str]) -> Entry:
    """`entry` with the facts of the left-out `columns` taken from the stored `existing` entry."""
    row = entry_to_row(entry)
    stored = entry_to_row(existing)
    row.update({column: stored[column] for column in columns if column in stored})
    merged, problems = row_to_entry("", None, 0, row)
    return merged if merged is not None and not problems else entry


class FileProblems(Exception):
    """The file cannot be imported; `problems` lists every reason found (at most MAX_ERRORS)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


# ---------------------------------------------------------------- writing


def _join(items: Iterable[object]) -> str:
    return "\n".join("" if i is None else str(i) for i in items)


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("có" if value else "không")


def entry_to_row(entry: Entry) -> dict[str, str]:
    """One flat row of text cells (what the CSV and the XLSX hold)."""
    data = entry.model_dump(mode="json")
    row: dict[str, str] = {}
    for column in COLUMNS:
        if column == "online_portals":
            row[column] = _join(data["online"]["portals"])
        elif column in LIST_COLUMNS:
            row[column] = _join(data[column])
        elif column in PARTS:
            lines = []
            for item in data[column]:
                cells = []
                for part in PARTS[column]:
                    value = item.get(part)
                    cells.append(_yes_no(value) if isinstance(value, bool) else ("" if value is None else _number(value)))
                lines.append(SEP.join(cells).rstrip(" |"))
            row[column] = "\n".join(lines)
        elif column.startswith("online_"):
            row[column] = str(data["online"][column[7:]] or "")
        elif column.startswith("postal_"):
            value = data["postal"][column[7:]]
            row[column] = _yes_no(value) if column != "postal_note" else (value or "")
        else:
            row[column] = "" if data[column] is None else str(data[column])
    return row


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def export_yaml(entries: list[Entry]) -> str:
    data = [e.model_dump(mode="json", exclude_defaults=True) | {"id": e.id, "kind": e.kind} for e in entries]
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)


def export_csv(entries: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(entry_to_row(entry))
    return out.getvalue()


def export_xlsx(entries: list[Entry], path: Path, progress: Callable[[int], None] | None = None) -> None:
    """The "entries" sheet (one row per entry, wrapped cells) and a sheet explaining every column."""
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for number, entry in enumerate(entries, 1):
        sheet.append(list(entry_to_row(entry).values()))
        if progress:
            progress(number)
    wrap = Alignment(wrap_text=True, vertical="top")
    for column_cells in sheet.iter_cols(min_row=2):
        for cell in column_cells:
            cell.alignment = wrap
    sheet.freeze_panes = "B2"
    guide = book.create_sheet(HELP_SHEET)
    guide.append(["cột", "ý nghĩa"])
    for column, meaning in COLUMNS.items():
        guide.append([column, meaning])
    book.save(path)


# ---------------------------------------------------------------- reading


def read_entries(path: Path) -> list[Entry]:
    """Validated entries from a staff file (YAML, CSV or XLSX); raises FileProblems listing every error."""
    name = path.name
    if not path.exists():
        raise FileProblems([Problem(name, "không tìm thấy tệp.")])
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise FileProblems([Problem(name, f"tệp quá lớn ({size // (1024 * 1024)} MB); tệp kiến thức hợp lệ nhỏ hơn {MAX_FILE_BYTES // (1024 * 1024)} MB.")])
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return _read_yaml(path)
    if suffix == ".csv":
        return _read_rows(name, None, _csv_rows(path))
    if suffix in (".xlsx", ".xlsm"):
        return _read_rows(name, SHEET, _xlsx_rows(path))
    raise FileProblems([Problem(name, "định dạng không hỗ trợ; dùng .yaml, .csv, .xlsx (hoặc .jsonl/.jsonl.gz của Cổng DVC quốc gia).")])


def _read_yaml(path: Path) -> list[Entry]:
    name = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FileProblems([Problem(name, "tệp không phải văn bản UTF-8.")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise FileProblems([Problem(name, f"YAML sai cú pháp: {getattr(error, 'problem', error)}", row=mark.line + 1 if mark else None)]) from None
    if isinstance(raw, dict) and "entries" in raw:
        raw = raw["entries"]
    if not isinstance(raw, list):
        raise FileProblems([Problem(name, "tệp YAML phải là một danh sách các mục.")])
    problems: list[Problem] = []
    entries: list[Entry] = []
    first: dict[str, int] = {}
    for number, item in enumerate(raw, 1):
        label = f"mục thứ {number}" + (f" ({item.get('id')})" if isinstance(item, dict) and item.get("id") else "")
        try:
            entry = Entry.model_validate(item)
        except ValidationError as error:
            problems.extend(Problem(name, f"{label}: {_reason(e)}", column=_loc(e)) for e in error.errors())
            continue
        too_long_here = [Problem(name, f"{label}: {reason}", column=column) for column, reason in length_problems(entry)]
        if too_long_here:
            problems.extend(too_long_here)
            continue
        if entry.id in first:
            problems.append(_duplicate(name, None, entry.id, first[entry.id], None, f"{label} và mục thứ"))
            continue
        first[entry.id] = number
        entries.append(entry)
    return _finish(name, None, entries, problems)


def _csv_rows(path: Path) -> Iterable[tuple[int, dict[str, str]] | Problem]:
    name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        yield Problem(name, "tệp không phải văn bản UTF-8 (lưu lại từ Excel bằng \"CSV UTF-8\").")
        return
    if "\x00" in text:
        yield Problem(name, "tệp không phải CSV (có ký tự nhị phân).")
        return
    reader = csv.DictReader(io.StringIO(text))
    yield from _check_header(name, None, reader.fieldnames or [])
    for number, row in enumerate(reader, 2):
        if None in row:
            yield Problem(name, "hàng có nhiều ô hơn tiêu đề.", row=number)
            continue
        yield number, {k: (v or "") for k, v in row.items()}


def _xlsx_rows(path: Path) -> Iterable[tuple[int, dict[str, str]] | Problem]:
    name = path.name
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, OSError, KeyError, ValueError) as error:
        yield Problem(name, f"không phải tệp Excel (.xlsx) hợp lệ ({type(error).__name__}).")
        return
    except Exception as error:  # noqa: BLE001 - zipfile and XML parsers raise many kinds on junk
        yield Problem(name, f"không đọc được tệp Excel ({type(error).__name__}).")
        return
    if SHEET not in book.sheetnames:
        yield Problem(name, f"không có sheet \"{SHEET}\" (các sheet có: {', '.join(book.sheetnames)}).")
        return
    rows = book[SHEET].iter_rows(values_only=True)
    header = [str(c).strip() if c is not None else "" for c in next(rows, [])]
    while header and not header[-1]:
        header.pop()
    yield from _check_header(name, SHEET, header)
    for number, values in enumerate(rows, 2):
        if values is None or all(v is None or str(v).strip() == "" for v in values):
            continue
        cells = ["" if v is None else _number(v) for v in values]
        if any(cells[len(header):]):
            yield Problem(name, "hàng có ô nằm ngoài các cột có tiêu đề.", row=number, sheet=SHEET)
            continue
        yield number, dict(zip(header, cells + [""] * (len(header) - len(cells))))
    book.close()


def _check_header(name: str, sheet: str | None, header: list[str]) -> Iterable[Problem]:
    if not header:
        yield Problem(name, "không có hàng tiêu đề.", row=1, sheet=sheet)
        return
    for column in header:
        if column not in COLUMNS:
            yield Problem(name, f"cột lạ \"{column}\" (các cột hợp lệ xem sheet {HELP_SHEET} hoặc README).", row=1, column=column, sheet=sheet)
    if header[0] != "id":
        yield Problem(name, "cột đầu tiên phải là id.", row=1, sheet=sheet)


def _read_rows(name: str, sheet: str | None, rows: Iterable[tuple[int, dict[str, str]] | Problem]) -> list[Entry]:
    problems: list[Problem] = []
    entries: list[Entry] = []
    first: dict[str, int] = {}
    present: set[str] = set()
    for item in rows:
        if isinstance(item, Problem):
            problems.append(item)
            if item.row is None or item.column is None and item.row == 1:
                break  # no readable file or header: the rows below cannot be read meaningfully
            continue
        number, row = item
        present.update(row)
        entry, row_problems = row_to_entry(name, sheet, number, row)
        problems.extend(row_problems)
        if entry is not None:
            if entry.id in first:
                problems.append(_duplicate(name, sheet, entry.id, first[entry.id], number, "hàng"))
            else:
                first[entry.id] = number
                entries.append(entry)
        if len(problems) >= MAX_ERRORS:
            break
    # A column staff deleted (one they do not use) means "leave these facts alone", not "erase them".
    return StaffEntries(_finish(name, sheet, entries, problems), frozenset(COLUMNS) - present)


def row_to_entry(name: str, sheet: str | None, number: int, row: dict[str, str]) -> tuple[Entry | None, list[Problem]]:
    problems: list[Problem] = []

    def problem(column: str | None, reason: str) -> None:
        problems.append(Problem(name, reason, row=number, column=column, sheet=sheet))

    if not row.get("id", "").strip():
        problem("id", "thiếu id.")
        return None, problems
    data: dict[str, object] = {"online": {}, "postal": {}}
    for column, cell in row.items():
        if column not in COLUMNS:
            continue  # reported once for the header
        cell = (cell or "").strip()
        if column in LIST_COLUMNS and column != "online_portals":
            data[column] = _lines(cell)
        elif column in PARTS:
            data[column] = [_parts(column, line, idx, problem) for idx, line in enumerate(_lines(cell), 1)]
        elif column == "online_portals":
            data["online"]["portals"] = _lines(cell)
        elif column in ("online_level", "online_note"):
            if cell:
                data["online"][column[7:]] = cell
        elif column in ("postal_submit", "postal_receive_result"):
            data["postal"][column[7:]] = _bool(cell, column, problem)
        elif column == "postal_note":
            data["postal"]["note"] = cell or None
        else:
            data[column] = cell or None
    if problems:
        return None, problems
    try:
        entry = Entry.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as error:
        for e in error.errors():
            problem(_loc(e).split(".")[0] or None, _reason(e))
        return None, problems
    for where, reason in length_problems(entry):
        problem(where, reason)
    return (None if problems else entry), problems


def length_problems(entry: Entry) -> list[tuple[str, str]]:
    """(column, reason) for each value longer than the database holds (limits from the SQLAlchemy model)."""
    return [(where.split("[")[0].split(".")[0], f"{where} dài {length} ký tự, tối đa {limit} ký tự.")
            for where, length, limit in too_long(entry)]


def _lines(cell: str) -> list[str]:
    return [line.strip() for line in cell.replace("\r\n", "\n").split("\n") if line.strip()]


def _parts(column: str, line: str, idx: int, problem: Callable[[str | None, str], None]) -> dict[str, object]:
    names = PARTS[column]
    cells = [c.strip() for c in line.split("|")]
    if len(cells) > len(names):
        problem(column, f"dòng {idx} có {len(cells)} phần, tối đa {len(names)} ({' | '.join(names)}).")
        return {}
    item: dict[str, object] = {}
    for part, cell in zip(names, cells):
        if not cell:
            continue
        if part in ("amount_vnd", "count"):
            digits = cell.replace(".", "").replace(",", "").replace(" ", "").removesuffix("đ").removesuffix("đồng")
            if not (digits.isascii() and digits.isdigit()):
                problem(column, f"dòng {idx}: {part} \"{cell}\" không phải là số (ghi số nguyên, vd 30000).")
                continue
            item[part] = int(digits)
        elif part == "working_days":
            try:
                item[part] = float(cell.replace(",", "."))
            except ValueError:
                problem(column, f"dòng {idx}: số ngày \"{cell}\" không phải là số.")
        elif part == "set_by_province":
            item[part] = _bool(cell, column, problem) or False
        else:
            item[part] = cell
    if column == "fees" and "text" not in item:
        amount = item.get("amount_vnd")
        item["text"] = f"{amount:,} đồng".replace(",", ".") if isinstance(amount, int) else "Theo quy định của tỉnh"
    return item


def _bool(cell: str, column: str, problem: Callable[[str | None, str], None]) -> bool | None:
    value = cell.strip().lower()
    if not value:
        return None
    if value in _YES:
        return True
    if value in _NO:
        return False
    problem(column, f"\"{cell}\" không phải có/không.")
    return None


def _loc(error: dict) -> str:
    return ".".join(str(p) for p in error.get("loc", ()))


def _reason(error: dict) -> str:
    where = _loc(error)
    return f"{where}: {error.get('msg', 'giá trị không hợp lệ')}" if where else error.get("msg", "giá trị không hợp lệ")


def _finish(name: str, sheet: str | None, entries: list[Entry], problems: list[Problem]) -> list[Entry]:
    if problems:
        raise FileProblems(problems[:MAX_ERRORS])
    if not entries:
        raise FileProblems([Problem(name, "tệp không có mục nào.", sheet=sheet)])
    return entries


def _duplicate(name: str, sheet: str | None, entry_id: str, first: int, row: int | None, what: str) -> Problem:
    return Problem(name, f"id {entry_id} trùng với {what} {first}.", row=row, column="id", sheet=sheet)
