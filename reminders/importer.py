"""Importing the one-stop software's export (CSV or XLSX): every row checked, every problem reported with
its row and column, and nothing written unless the whole file is right (the knowledge base import's rules).

Columns are found by their heading, whatever the case or diacritics ("Mã hồ sơ", "MA HO SO"); the
heading row may sit below a title, as in many exports; columns the bot does not use are left alone.
The filer's phone and ID numbers, when the export has them, are cut to their last 4 digits as they are
read: the bot checks a chat against those and never holds the full numbers.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from knowledge.spreadsheet import MAX_ERRORS, MAX_FILE_BYTES, FileProblems, Problem
from nlp.normalize import fold
from reminders.codes import EXAMPLE, last_four, normalize_code
from reminders.statuses import known_statuses, parse_status
from reminders.store import DossierUpdate

REQUIRED = {"code": "Mã hồ sơ", "procedure": "Thủ tục", "received_at": "Ngày tiếp nhận", "due_at": "Ngày hẹn trả",
            "status": "Trạng thái"}
OPTIONAL = {"note": "Ghi chú", "delivery": "Hình thức trả kết quả", "new_due_at": "Ngày hẹn trả mới",
            "phone_last4": "Số điện thoại", "id_last4": "Số CCCD"}
COLUMNS = REQUIRED | OPTIONAL
# Other headings offices use for the same columns (folded).
_ALIASES = {"ma ho so": "code", "so ho so": "code", "ten thu tuc": "procedure", "thu tuc hanh chinh": "procedure",
            "ngay nhan": "received_at", "ngay hen tra ket qua": "due_at", "ngay hen": "due_at",
            "tinh trang": "status", "trang thai ho so": "status", "hinh thuc nhan ket qua": "delivery",
            "ngay hen moi": "new_due_at", "ngay hen tra ket qua moi": "new_due_at",
            # The filer's phone / ID number, or a column already holding their last 4 digits.
            "sdt": "phone_last4", "so dt": "phone_last4", "dien thoai": "phone_last4", "so dien thoai lien he": "phone_last4",
            "dien thoai lien he": "phone_last4", "sdt lien he": "phone_last4", "so dien thoai nguoi nop": "phone_last4",
            "4 so cuoi sdt": "phone_last4", "4 so cuoi so dien thoai": "phone_last4", "4 so cuoi dien thoai": "phone_last4",
            "cccd": "id_last4", "so can cuoc": "id_last4", "so can cuoc cong dan": "id_last4", "so cmnd": "id_last4",
            "so cmnd cccd": "id_last4", "cmnd cccd": "id_last4", "so giay to tuy than": "id_last4", "giay to tuy than": "id_last4",
            "so dinh danh": "id_last4", "so dinh danh ca nhan": "id_last4", "so giay to": "id_last4",
            "4 so cuoi cccd": "id_last4", "4 so cuoi giay to": "id_last4", "4 so cuoi so cccd": "id_last4"}
SECOND_FACTOR = ("phone_last4", "id_last4")
HEADER_SEARCH_ROWS = 10
# Plausible dates: dossier codes carry their day from 2000 on, and an appointment is months ahead, not years.
# Outside, a date is a "no date" placeholder (01/01/1900, 31/12/9999) or a typo, and must not be stored:
# 31/12/9999 once made every reminder scan fail (issue 10).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_YEARS_AHEAD = 5
_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T,]+(\d{1,2})[:hg](\d{2})(?::(\d{2}))?)?")


def _key(heading: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", fold(heading)).split())


_HEADINGS = {_key(label): field for field, label in COLUMNS.items()} | _ALIASES


def parse_date(cell: object, zone: ZoneInfo) -> datetime | None:
    """dd/mm/yyyy with an optional time (office time), or an Excel date; raises ValueError with a plain reason."""
    if isinstance(cell, datetime):
        return (cell if cell.tzinfo else cell.replace(tzinfo=zone))
    if isinstance(cell, date):
        return datetime.combine(cell, time(0), zone)
    text = str(cell).strip()
    match = _DATE.fullmatch(text)
    if not match:
        raise ValueError(f"\"{text}\" không phải ngày dạng dd/mm/yyyy (có thể kèm giờ hh:mm).")
    day, month, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
    hour, minute, second = (int(match.group(i) or 0) for i in (4, 5, 6))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        raise ValueError(f"ngày \"{text}\" không có thật.") from None


def check_plausible(moment: datetime, now: datetime | None = None) -> datetime:
    """`moment` if it lies between 01/01/2000 and 5 years from now; else ValueError with a plain reason."""
    latest = (now or datetime.now(UTC)) + timedelta(days=365 * MAX_YEARS_AHEAD + 1)
    try:
        fine = EARLIEST <= moment <= latest
    except OverflowError:  # 31/12/9999 23:59 at UTC-5 is past the last datetime Python knows
        fine = False
    if not fine:
        raise ValueError(f"ngày {moment.day:02d}/{moment.month:02d}/{moment.year} nằm ngoài khoảng hợp lý "
                         f"(01/01/2000 – {latest:%d/%m/%Y}); nếu chưa có ngày, để trống ô này.")
    return moment


def read_dossiers(path: Path, timezone: str = "Asia/Ho_Chi_Minh", now: datetime | None = None) -> list[DossierUpdate]:
    """Checked updates from an export file; raises FileProblems listing every problem with its place."""
    name = path.name
    if not path.exists():
        raise FileProblems([Problem(name, "không tìm thấy tệp.")])
    if path.stat().st_size > MAX_FILE_BYTES:
        raise FileProblems([Problem(name, f"tệp quá lớn; tệp xuất hồ sơ hợp lệ nhỏ hơn {MAX_FILE_BYTES // (1024 * 1024)} MB.")])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        sheet, rows = None, _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        sheet, rows = _xlsx_rows(path)
    else:
        raise FileProblems([Problem(name, "định dạng không hỗ trợ; dùng tệp .csv hoặc .xlsx xuất từ phần mềm một cửa.")])
    return _read(name, sheet, rows, ZoneInfo(timezone), now or datetime.now(UTC))


def _csv_rows(path: Path) -> list[list[object]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblems([Problem(path.name, "tệp không phải văn bản UTF-8 (lưu lại từ Excel bằng \"CSV UTF-8\").")]) from None
    if "\x00" in text:
        raise FileProblems([Problem(path.name, "tệp không phải CSV (có ký tự nhị phân).")])
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","  # Excel in Vietnamese locales writes ';'
    return [list(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter)]


def _xlsx_rows(path: Path) -> tuple[str, list[list[object]]]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # noqa: BLE001 - zipfile and XML parsers raise many kinds on junk
        raise FileProblems([Problem(path.name, f"không phải tệp Excel (.xlsx) hợp lệ ({type(error).__name__}).")]) from None
    try:
        for sheet in book.worksheets:  # the first sheet with the headings: exports name their sheets freely
            rows = [list(r) for r in sheet.iter_rows(values_only=True)]
            if _find_header(rows) is not None:
                return sheet.title, rows
        first = book.worksheets[0]
        return first.title, [list(r) for r in first.iter_rows(values_only=True)]
    finally:
        book.close()


def _find_header(rows: list[list[object]]) -> int | None:
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if any(_HEADINGS.get(_key(str(c))) == "code" for c in row if c is not None):
            return index
    return None


def _read(name: str, sheet: str | None, rows: list[list[object]], zone: ZoneInfo, now: datetime) -> list[DossierUpdate]:
    problems: list[Problem] = []
    header_index = _find_header(rows)
    if header_index is None:
        raise FileProblems([Problem(name, f"không tìm thấy hàng tiêu đề có cột \"{REQUIRED['code']}\" "
                                          f"(cần các cột: {', '.join(REQUIRED.values())}).", row=1, sheet=sheet)])
    header = ["" if c is None else str(c).strip() for c in rows[header_index]]
    columns: dict[str, int] = {}
    for position, heading in enumerate(header):
        field = _HEADINGS.get(_key(heading))
        if field is None:
            continue
        if field in columns:
            problems.append(Problem(name, f"cột \"{heading}\" trùng với cột \"{header[columns[field]]}\".",
                                    row=header_index + 1, column=heading, sheet=sheet))
        columns[field] = position
    missing = [label for field, label in REQUIRED.items() if field not in columns]
    if missing:
        problems.append(Problem(name, f"thiếu cột {', '.join(missing)}.", row=header_index + 1, sheet=sheet))
    if problems:
        raise FileProblems(problems)
    updates: list[DossierUpdate] = []
    first_row: dict[str, int] = {}
    for offset, cells in enumerate(rows[header_index + 1:]):
        number = header_index + 2 + offset
        if all(c is None or str(c).strip() == "" for c in cells):
            continue
        update = _row(name, sheet, number, cells, columns, zone, now, problems)
        if update is not None:
            if update.code in first_row:
                problems.append(Problem(name, f"mã hồ sơ {update.code} trùng với hàng {first_row[update.code]}.",
                                        row=number, column=COLUMNS["code"], sheet=sheet))
            else:
                first_row[update.code] = number
                updates.append(update)
        if len(problems) >= MAX_ERRORS:
            break
    if problems:
        raise FileProblems(problems[:MAX_ERRORS])
    if not updates:
        raise FileProblems([Problem(name, "tệp không có hồ sơ nào.", sheet=sheet)])
    return updates


def _row(name: str, sheet: str | None, number: int, cells: list[object], columns: dict[str, int], zone: ZoneInfo,
         now: datetime, problems: list[Problem]) -> DossierUpdate | None:
    count = len(problems)

    def cell(field: str) -> object:
        position = columns.get(field)
        if position is None or position >= len(cells) or cells[position] is None:
            return ""
        value = cells[position]
        if isinstance(value, (datetime, date)) or field in SECOND_FACTOR and isinstance(value, (int, float)):
            return value  # a phone number typed as a number keeps its digits (no "1.2e+11")
        return str(value).strip()

    def problem(field: str, reason: str) -> None:
        problems.append(Problem(name, reason, row=number, column=COLUMNS[field], sheet=sheet))

    values: dict[str, object] = {}
    for field in REQUIRED:
        if cell(field) == "":
            problem(field, "ô bắt buộc đang trống.")
    raw_code = cell("code")
    code = normalize_code(str(raw_code)) if raw_code != "" else None
    if raw_code != "" and code is None:
        problem("code", f"mã \"{raw_code}\" không đúng dạng mã hồ sơ (vd {EXAMPLE}).")
    raw_status = cell("status")
    status = parse_status(raw_status) if raw_status != "" else None
    if raw_status != "" and status is None:
        problem("status", f"trạng thái \"{raw_status}\" không rõ nghĩa (dùng một trong: {known_statuses()}).")
    for field in ("received_at", "due_at", "new_due_at"):
        raw = cell(field)
        if raw == "":
            continue
        try:
            values[field] = check_plausible(parse_date(raw, zone), now)
        except ValueError as error:
            problem(field, str(error))
    received, due, new_due = values.get("received_at"), values.get("due_at"), values.get("new_due_at")
    if isinstance(received, datetime) and isinstance(due, datetime) and due.date() < received.date():
        problem("due_at", "ngày hẹn trả trước ngày tiếp nhận.")
    if isinstance(due, datetime) and isinstance(new_due, datetime) and new_due.date() < due.date():
        problem("new_due_at", "ngày hẹn trả mới trước ngày hẹn trả.")
    digits: dict[str, str] = {}
    for field in SECOND_FACTOR:
        raw = cell(field)
        if raw == "":
            continue  # an empty cell keeps what is stored: it does not mean the filer has no phone
        try:
            digits[field] = last_four(raw)
        except ValueError as error:
            problem(field, str(error))
    if len(problems) > count or code is None or status is None:
        return None
    given = {"procedure", "received_at", "due_at"} | {f for f in OPTIONAL if f in columns and f not in SECOND_FACTOR} | set(digits)
    return DossierUpdate(code=code, status=status, procedure=str(cell("procedure")), received_at=received, due_at=due,
                         new_due_at=new_due, note=str(cell("note")) or None, delivery=str(cell("delivery")) or None,
                         given=frozenset(given), **digits)
