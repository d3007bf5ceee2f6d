"""Any table of the console as a download: CSV (UTF-8 with a BOM, so Excel shows Vietnamese right) or XLSX.

    return table_download("cau-hoi-theo-ngay", headers, rows, "xlsx")

Cells are written as they are (numbers stay numbers, dates stay dates in XLSX). Text that a spreadsheet would
run as a formula (=, +, -, @ first) gets a leading apostrophe in CSV, the usual guard against formula
injection; openpyxl writes XLSX cells as text (strings) anyway, but the same guard keeps the two alike.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from urllib.parse import quote

from fastapi.responses import Response

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return _safe_text(value)
    return value


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence[object]], sheet: str = "Bảng") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    page = book.create_sheet(sheet[:31])
    bold = Font(bold=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(page, value=header)
        cell.font = bold
        header_cells.append(cell)
    page.append(header_cells)
    for row in rows:
        values = []
        for value in row:
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.replace(tzinfo=None)  # Excel has no time zones: the caller gives office time
            elif isinstance(value, str):
                value = _safe_text(value)
            values.append(value)
        page.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def table_download(name: str, headers: Sequence[str], rows: Iterable[Sequence[object]], fmt: str,
                   sheet: str = "Bảng") -> Response:
    """The table as an attachment named `<name>.<fmt>`; `fmt` is "csv" or "xlsx" (ValueError otherwise)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    body = to_csv(headers, rows) if fmt == "csv" else to_xlsx(headers, rows, sheet)
    filename = f"{name}.{fmt}"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return Response(body, media_type=FORMATS[fmt], headers={"Content-Disposition": disposition})
