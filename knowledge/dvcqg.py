"""The national procedure catalogue (Cổng Dịch vụ công quốc gia records) as knowledge-base entries.

Each line of `procedures_all_ministries.jsonl(.gz)` is one record scraped from the national portal
(see shared/data/dvcqg/SOURCE.md). The portal's tables were flattened without separators, e.g.

    Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến7 Ngày làm việc10,000 Việt Nam Đồng(...)Trực tiếp...

so channels, processing times and fees are parsed out of `cach_thuc_thuc_hien`, documents and their
counts out of `thanh_phan_ho_so`, legal codes out of `can_cu_phap_ly`. Everything here is a pure
function of the record: no database, no printing (oddities go to `logging` at debug level).

Public API: `iter_records`, `record_to_entry`, `equivalence_groups`, `load_catalogue`, `CatalogueError`.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from knowledge.repository import describe_too_long
from knowledge.schema import (
    Channel,
    Document,
    DocumentForm,
    Duration,
    Entry,
    Fee,
    Online,
    OnlineLevel,
    Place,
    Postal,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CatalogueError",
    "equivalence_groups",
    "iter_records",
    "load_catalogue",
    "record_to_entry",
    "slugify",
]

NATIONAL_PORTAL = "Cổng Dịch vụ công quốc gia"
NO_INFO = "Không có thông tin"
MAX_LINE_BYTES = 10 * 1024 * 1024  # the largest real record is ~90 KB; anything far bigger is not a record
ID_PATTERN = re.compile(r"^\d\.\d{6}$")

MAX_DOCUMENTS = 25
MAX_STEPS = 10
MAX_CONDITIONS = 8
ITEM_CHARS = 300
FEE_NOTE_CHARS = 150


# --------------------------------------------------------------------------------------------------
# Errors and reading


class CatalogueError(ValueError):
    """A national-records file that cannot be read, with its place and a plain-language reason."""

    def __init__(self, path: Path | str, line: int | None, reason: str, problems: list[str] | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        self.problems = problems or []  # one line per record at fault, when there are several
        super().__init__(str(self))

    def __str__(self) -> str:
        place = f"{self.path}, line {self.line}" if self.line is not None else str(self.path)
        return f"{place}: {self.reason}"


def _open_lines(path: Path) -> tuple[Any, Any]:
    """(raw file handle, stream of byte lines); gzip is recognised by its magic bytes, not only its name."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise CatalogueError(path, None, "the file does not exist") from None
    except IsADirectoryError:
        raise CatalogueError(path, None, "this is a folder, not a file") from None
    except OSError as error:
        raise CatalogueError(path, None, f"the file cannot be opened ({error.strerror or error})") from None
    try:
        head = handle.read(2)
        handle.seek(0)
    except OSError as error:
        handle.close()
        raise CatalogueError(path, None, f"the file cannot be read ({error.strerror or error})") from None
    if not head:
        handle.close()
        raise CatalogueError(path, None, "the file is empty")
    is_gzip = head == b"\x1f\x8b"
    if path.suffix.lower() == ".gz" and not is_gzip:
        handle.close()
        raise CatalogueError(path, 1, "the file is named .gz but is not gzip-compressed (wrong or damaged file)")
    return handle, (gzip.GzipFile(fileobj=handle, mode="rb") if is_gzip else handle)


def iter_records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line of a `.jsonl` or `.jsonl.gz` file.

    Raises `CatalogueError` naming the line for anything that is not a procedure record: a truncated
    or corrupt gzip file, bytes that are not UTF-8 text, a line that is not JSON or not a JSON object,
    a record without `ma_thu_tuc` / `ten_thu_tuc`, a code that is not a national code.
    """
    path = Path(path)
    handle, stream = _open_lines(path)
    with handle:
        line_no = 0
        while True:
            line_no += 1
            try:
                raw = stream.readline(MAX_LINE_BYTES + 1)
            except EOFError:
                raise CatalogueError(
                    path, line_no, "the gzip file is truncated (it ends in the middle of the data)"
                ) from None
            except (gzip.BadGzipFile, zlib.error) as error:
                raise CatalogueError(path, line_no, f"the gzip data is corrupt ({error})") from None
            except OSError as error:
                raise CatalogueError(path, line_no, f"the file cannot be read ({error})") from None
            if not raw:
                return
            if len(raw) > MAX_LINE_BYTES:
                raise CatalogueError(
                    path, line_no, "this line is longer than 10 MB: not a procedure record (binary data?)"
                )
            record = _parse_line(path, line_no, raw)
            if record is not None:
                yield line_no, record


def _parse_line(path: Path, line_no: int, raw: bytes) -> dict | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CatalogueError(path, line_no, "this line is not UTF-8 text (binary data?)") from None
    if line_no == 1:
        text = text.lstrip("\ufeff")
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise CatalogueError(
            path, line_no, f"this line is not JSON ({error.msg} at column {error.colno})"
        ) from None
    except RecursionError:
        raise CatalogueError(path, line_no, "this line is not a procedure record (JSON nested too deeply)") from None
    if not isinstance(record, dict):
        kind = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true/false"}
        found = kind.get(type(record), "null")
        raise CatalogueError(path, line_no, f"this line is JSON {found}, not an object (one procedure record)")
    code = record.get("ma_thu_tuc")
    if code is None or (isinstance(code, str) and not code.strip()):
        raise CatalogueError(path, line_no, "missing ma_thu_tuc (the procedure's national code)")
    if not isinstance(code, str) or not ID_PATTERN.match(code.strip()):
        raise CatalogueError(path, line_no, f"ma_thu_tuc {code!r} is not a national code like \"1.001193\"")
    name = record.get("ten_thu_tuc")
    if not isinstance(name, str) or not name.strip():
        raise CatalogueError(path, line_no, "missing ten_thu_tuc (the procedure's name)")
    return record


# --------------------------------------------------------------------------------------------------
# Text helpers

_BULLET = re.compile(
    r"^(?:[-+*•·–—\ue000-\uf8ff]+|\d{1,2}[.)](?!\d)|[a-zđ]\)|[ivx]{1,4}\)|\((?:\d{1,2}|[ivx]{1,4}|[a-zđ])\))\s*",
    re.IGNORECASE,
)


def _text(value: Any) -> str:
    """The value with runs of whitespace as one space; "" for anything that is not text or a number."""
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            return ""
    return " ".join(value.split())


def _info(value: Any) -> str:
    """The field's text, or "" when the portal had nothing ("Không có thông tin")."""
    text = _text(value)
    return "" if text.rstrip(".").casefold() in {"không có thông tin", ""} else text


def _blank(value: Any) -> bool:
    """True for an empty field or the portal's "Không có thông tin" (cheap on long texts)."""
    if not isinstance(value, str):
        return value is None
    text = value.strip()
    return not text or (len(text) < 30 and _info(text) == "")


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _strip_bullet(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _BULLET.sub("", text, count=1).strip()
    return text


_COMBINING = re.compile(r"[\u0300-\u036f]+")


def fold(text: str) -> str:
    """Lowercase text without Vietnamese diacritics ("Hộ tịch" → "ho tich", "đ" → "d")."""
    text = text.replace("đ", "d").replace("Đ", "D")
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFD", text)).lower()


def slugify(text: str, default: str = "khac") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", fold(_text(text))).strip("-")
    return slug or default


def _balanced(text: str, start: int) -> tuple[str, int]:
    """Content of the parenthesis opening at `start` and the index after it (end of text if unclosed)."""
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index], index + 1
    return text[start + 1 :], len(text)


def _unwrap(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        inner, end = _balanced(text, 0)
        if end != len(text):
            break
        text = inner.strip()
    return text


# --------------------------------------------------------------------------------------------------
# Channels, times and fees (cach_thuc_thuc_hien)

_CHANNELS = {"Trực tiếp": Channel.IN_PERSON, "Trực tuyến": Channel.ONLINE, "Dịch vụ bưu chính": Channel.POSTAL}
_TABLE_HEAD = re.compile(r"^\s*Hình thức nộp\s*Thời gian\s*Phí, lệ phí\s*Mô tả")
# A row starts with a channel glued to its time (a digit) or to a capitalised word ("Không có thông tin");
# the same words inside a description are followed by a space, a colon or a lowercase word.
_ROW = re.compile(r"(Trực tiếp|Trực tuyến|Dịch vụ bưu chính)(?=\d|[^\W\d_])")
_TIME = re.compile(
    r"(?P<num>\d+(?:[.,]\d+)?)\s*(?P<unit>Ngày làm việc|ngày làm việc|Ngày|ngày|Giờ|giờ|Tháng|tháng|Tuần|tuần|Năm|năm|Phút|phút)?"
)
_CURRENCY = r"(?:Việt Nam Đồng|VNĐ|VND|USD|Đồng|đồng)"
_CURRENCY_AHEAD = re.compile(rf"[\d.,]*\s*{_CURRENCY}")
_FEE_TOKEN = re.compile(
    rf"(?P<free>Miễn phí)|(?P<none>Không có thông tin)|(?P<amount>\d[\d.,]*)?\s*(?P<currency>{_CURRENCY})"
)
_FEE_ITEM = re.compile(
    rf"(?P<label>Lệ phí|Phí|lệ phí)\s*:\s*(?P<amount>\d[\d.,]*)(?:\s*/\s*[^\s()]+)?\s*(?P<currency>{_CURRENCY})"
)
_LEADING_AMOUNT = re.compile(rf"^\s*(?:(?:Lệ phí|Phí)\s*:\s*)?(?:\d[\d.,]*\s*)?(?:{_CURRENCY})?\s*", re.IGNORECASE)
_PROVINCE = re.compile(
    r"Hội đồng nhân dân|HĐND|UBND (?:cấp )?tỉnh quy định|Ủy ban nhân dân (?:cấp )?tỉnh(?:, thành phố)?[^.;]{0,40}quy định"
    r"|Uỷ ban nhân dân (?:cấp )?tỉnh[^.;]{0,40}quy định",
    re.IGNORECASE,
)
_MONEY = re.compile(r"\d{1,3}(?:[.,]\d{3})+|\d+\s*(?:đồng|đ\b|VNĐ|USD)", re.IGNORECASE)
_SAYS_FREE = re.compile(r"^(?:không|miễn|0\s*đồng|phí\s*:\s*0\b)", re.IGNORECASE)
_EXEMPTION = re.compile(r"(?:Miễn|Không thu) (?:lệ phí|phí)[^.;]*(?:cho|đối với)[^.;]*", re.IGNORECASE)
_TIME_UNITS_DAYS = {"ngày làm việc", "ngày"}


def _amount(digits: str) -> int | None:
    digits = digits.strip().rstrip(".,")
    if not digits:
        return None
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", digits) or digits.isdigit():
        return int(re.sub(r"[.,]", "", digits))
    # "1,5" or "2.5" (a decimal, e.g. of a currency other than đồng) is not a whole amount of đồng
    return None


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


def _table_rows(text: str) -> list[tuple[Channel, str]]:
    body = _TABLE_HEAD.sub("", text, count=1)
    starts = list(_ROW.finditer(body))
    rows = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(body)
        rows.append((_CHANNELS[match.group(1)], body[match.end() : end]))
    return rows


def _parse_time(row: str) -> tuple[str | None, float | None, int]:
    """(duration text, working days, index where the fee part begins) of one table row."""
    match = _TIME.match(row)
    if match:
        number, unit = match.group("num"), match.group("unit")
        if unit:
            value = float(number.replace(",", "."))
            days = value if unit.casefold() in _TIME_UNITS_DAYS else None
            return f"{number} {unit}", days, match.end()
        if _CURRENCY_AHEAD.match(row, match.end()):
            return None, None, 0  # "Trực tuyến120 VNĐ(...)": no time given, the number is the fee
        # a bare number: the portal dropped the unit; look for it in the row's own description
        described = re.search(
            rf"(?<!\d)0*{re.escape(number.lstrip('0') or '0')}\s*(?:\([^)]{{1,12}}\)\s*)?(ngày làm việc|ngày|giờ|tháng)",
            row[match.end() :],
            re.IGNORECASE,
        )
        if described:
            unit = described.group(1).capitalize()
            value = float(number.replace(",", "."))
            return f"{number} {unit}", value if unit.casefold() in _TIME_UNITS_DAYS else None, match.end()
        logger.debug("processing time %r has no unit; skipped", number)
        return None, None, match.end()
    if row.startswith(NO_INFO):
        after = row[len(NO_INFO) :]
        fee = _FEE_TOKEN.match(after)
        if fee:  # "Không có thông tin" was the time, a fee follows
            return None, None, len(NO_INFO)
        return None, None, 0  # it is the fee column; no time given
    # free text in the time column ("Không quy định", "Không phải trả kết quả ...") up to the fee
    fee = _FEE_TOKEN.search(row, 0, 400)
    if not fee:
        return None, None, 0
    text = _text(row[: fee.start()]).rstrip(".")
    if not text or text.casefold() in {"không"}:
        return None, None, fee.start()
    return _trim(text, 150), None, fee.start()


def _fee_label(note: str) -> str:
    lowered = note.casefold()
    if lowered.startswith("phí") or lowered.startswith("giá"):
        return "Phí"
    return "Lệ phí"


def _fee_from_note(channel: Channel, head: str, note: str, amount: int | None, currency: str | None) -> Fee | None:
    """One fee from its figure (or "Miễn phí"/"Không có thông tin") and its parenthesised description."""
    note = _unwrap(_strip_bullet(note))
    unit = ""
    if note.startswith("/"):  # "20,000 VNĐ(/hồ sơ (Thông tư ...))": the unit of the figure
        unit = _trim(re.split(r"[(;]", note, maxsplit=1)[0].rstrip(" .,"), 40)
        note = _unwrap(note[len(unit) :].strip(" .,;"))
        unit = unit.replace(" ", "") if len(unit) < 4 else unit.replace("/ ", "/")
    short = _trim(note, FEE_NOTE_CHARS) if note else ""
    exemption = _EXEMPTION.search(note) if note else None
    exemptions = _trim(exemption.group(0), 200) if exemption else None
    basis_match = _LEGAL_CODE.search(note) if note else None
    basis = basis_match.group(0).replace("- ", "-") if basis_match else None
    by_province = bool(note and _PROVINCE.search(note))
    suffix = f" ({short})" if short else ""
    label = _fee_label(note) if note else "Lệ phí"
    if head == "amount" and currency and currency.upper() == "USD":
        if amount is None:
            return None
        return Fee(channel=channel, amount_vnd=None, set_by_province=False,
                   text=f"{label}: {amount:,} USD".replace(",", ".") + unit + suffix, exemptions=exemptions, basis=basis)
    if head == "amount" and amount:
        if by_province:
            return Fee(channel=channel, amount_vnd=None, set_by_province=True,
                       text=f"{label}: do HĐND cấp tỉnh quy định{suffix}", exemptions=exemptions, basis=basis)
        return Fee(channel=channel, amount_vnd=amount, text=f"{label}: {_vnd(amount)}{unit}{suffix}",
                   exemptions=exemptions, basis=basis)
    # no figure: "Miễn phí", "0 Đồng", "Không có thông tin" or a currency without a number
    if by_province:
        return Fee(channel=channel, amount_vnd=None, set_by_province=True,
                   text=f"Lệ phí: do HĐND cấp tỉnh quy định{suffix}", exemptions=exemptions, basis=basis)
    says_free = head == "free" or (head == "amount" and amount == 0)
    if not note:
        if says_free:
            return Fee(channel=channel, amount_vnd=0, text="Miễn lệ phí")
        return None  # nothing known
    if _SAYS_FREE.match(note) and not _MONEY.search(note):
        if re.fullmatch(r"(?:không|không có|không quy định|không thu|miễn phí|miễn lệ phí)\.?", note, re.IGNORECASE):
            suffix = ""  # "Miễn phí(Không có)": nothing to add to "Miễn lệ phí"
        return Fee(channel=channel, amount_vnd=0, text=f"Miễn lệ phí{suffix}", exemptions=exemptions, basis=basis)
    return Fee(channel=channel, amount_vnd=None, text=f"Phí, lệ phí: {short}", exemptions=exemptions, basis=basis)


def _row_fees(channel: Channel, fee_part: str) -> list[Fee]:
    token = _FEE_TOKEN.match(fee_part.lstrip())
    offset = len(fee_part) - len(fee_part.lstrip())
    fees: list[Fee] = []
    if token:
        head = "free" if token.group("free") else "none" if token.group("none") else "amount"
        amount = _amount(token.group("amount") or "") if head == "amount" else None
        currency = token.group("currency")
        after = offset + token.end()
        rest = fee_part[after:]
        stripped = rest.lstrip()
        paren = ""
        if stripped.startswith("("):
            paren, end = _balanced(stripped, 0)
            rest = stripped[end:]
            if re.fullmatch(r"\s*(?:[a-zđ]|[ivx]{1,4}|\d{1,2})\s*", paren, re.IGNORECASE):
                paren, rest = stripped[end:], ""  # "Miễn phí(a) Về cấp giấy phép ...": an enumeration, not a note
        # the description may repeat the figure ("Lệ phí : 50.000 Đồng (...)") and list more items
        note = _LEADING_AMOUNT.sub("", paren.strip(), count=1)
        if note.startswith("("):
            inner, end = _balanced(note, 0)
            more = note[end:]
            note = inner
        else:
            first_item = _FEE_ITEM.search(note)
            more = note[first_item.start() :] if first_item else ""
            note = note[: first_item.start()] if first_item else note
        main = _fee_from_note(channel, head, note, amount, currency)
        if main:
            fees.append(main)
        seen_amounts = {amount} if amount else set()
        item_text = more + " " + rest
    else:
        seen_amounts = set()
        item_text = fee_part
    for item in _FEE_ITEM.finditer(item_text):
        value = _amount(item.group("amount"))
        if value is None or value in seen_amounts:
            continue
        seen_amounts.add(value)
        tail = item_text[item.end() :].lstrip()
        note = _balanced(tail, 0)[0] if tail.startswith("(") else ""
        label = "Lệ phí" if item.group("label").casefold() == "lệ phí" else "Phí"
        if item.group("currency").upper() == "USD":
            text = f"{label}: {value:,} USD".replace(",", ".")
            amount_vnd = None
        else:
            text, amount_vnd = (f"{label}: {_vnd(value)}" if value else "Miễn lệ phí"), value
        note = _unwrap(_strip_bullet(note))
        if note:
            text += f" ({_trim(note, FEE_NOTE_CHARS)})"
        fees.append(Fee(channel=channel, amount_vnd=amount_vnd, text=text))
    return fees


def parse_channels(text: str) -> tuple[list[Duration], list[Fee], set[Channel]]:
    """Durations, fees and the channels listed in the flattened "Hình thức nộp" table."""
    durations: list[Duration] = []
    fees: list[Fee] = []
    channels: set[Channel] = set()
    seen_durations: set[tuple] = set()
    seen_fees: set[tuple] = set()
    for channel, row in _table_rows(text or ""):
        channels.add(channel)
        time_text, days, fee_start = _parse_time(row)
        if time_text and (channel, time_text) not in seen_durations:
            seen_durations.add((channel, time_text))
            durations.append(Duration(channel=channel, text=time_text, working_days=days))
        for fee in _row_fees(channel, row[fee_start:]):
            key = (fee.channel, fee.text)
            if key not in seen_fees:
                seen_fees.add(key)
                fees.append(fee)
    return durations, fees, channels


# --------------------------------------------------------------------------------------------------
# Documents (thanh_phan_ho_so)

_DOC_HEAD = re.compile(r"Tên giấy tờ\s*Mẫu đơn, tờ khai\s*Số lượng")
# "1 bản chính", "0 bản chính,1 bản sao": found by the words (fast literal search), then the number before;
# "... doanh nghiệp nộp 02 bản chính tờ khai ..." (a lowercase word follows) is inside a name
_DOC_COUNT = re.compile(r"bản\s*(?P<af>chính|sao)(?:\s*,\s*(?P<b>\d{1,2})\s*bản\s*(?P<bf>chính|sao))?")
_COUNT_BEFORE = re.compile(r"(\d{1,2})\s*$")


def _count_tokens(text: str) -> Iterator[tuple[int, int, int, str, int, str | None]]:
    """(start, end, first count, its form, second count, its form) of each count in the table."""
    for match in _DOC_COUNT.finditer(text):
        number = _COUNT_BEFORE.search(text, max(0, match.start() - 6), match.start())
        if not number:
            continue
        after = text[match.end() : match.end() + 2]
        if after[:1].isspace() and after[1:2].islower():
            continue  # "... nộp 02 bản chính tờ khai ...": inside a name
        digits, begin = number.group(1), number.start(1)
        if len(digits) == 2 and begin > 0 and text[begin - 1].isdigit():
            digits, begin = digits[1], begin + 1  # "...năm 20201 bản chính": the year keeps its digits
        second = int(match.group("b")) if match.group("b") else 0
        yield begin, match.end(), int(digits), match.group("af"), second, match.group("bf")


# lines of the table that are remarks, not documents (they come with "0 bản chính")
_DOC_REMARK = re.compile(
    r"^(?:Trường hợp|Lưu ý|Ghi chú|Chú ý|Đối với|Khi |Thời hạn|Các bản sao|Bản chụp các|Người tiếp nhận|Cơ quan|Giấy tờ phải"
    r"|(?:\d+\s*/\s*)?Số lượng|Chậm nhất|Để |Có thể|Việc |Không quy định|Phiếu này|Các tài liệu quy định)"
    r"|(?:gồm|sau|sau đây|như sau)\s*:?$",
    re.IGNORECASE,
)
_COUNT_IN_NAME = re.compile(r"(?<!\d)(\d{1,2}) bản (chụp|sao|chính)")
_FILE_EXT = re.compile(r"\.(?:docx?|pdf|xlsx?|rar|zip|odt|rtf)$", re.IGNORECASE)


def _strip_form_file(name: str) -> str:
    """Remove the attached template's file name glued to the end ("...(NA20).Mau NA20-BCA.docx")."""
    ext = _FILE_EXT.search(name)
    if not ext:
        return name
    body = name[: ext.start()]
    window = max(0, len(body) - 70)
    # the file name starts after the last sentence end glued to it, or at a lowercase→Uppercase seam
    cut = None
    for match in re.finditer(r"[.;:](?=\S)", body[window:]):
        cut = window + match.end()
    if cut is None:
        for index in range(window + 1, len(body)):
            before, char = body[index - 1], body[index]
            if (before.islower() or before in ")]") and (char.isupper() or char.isdigit()):
                cut = index  # "...thuộc BộMau02-ĐN(BHYT)": a lowercase→Uppercase seam
                break
    if cut is None or cut < 5:
        return body.rstrip()
    return body[:cut].rstrip()


def parse_documents(text: str) -> list[Document]:
    text = text or ""
    documents: list[Document] = []
    seen: set[str] = set()
    previous_end = 0
    for begin, end, first, first_form, second, second_form in _count_tokens(text):
        segment = text[previous_end:begin]
        previous_end = end
        heads = list(_DOC_HEAD.finditer(segment))
        if heads:
            segment = segment[heads[-1].end() :]
        name = _strip_form_file(_text(segment))
        name = _strip_bullet(name)
        name = re.sub(r"[;,]\s*\d{1,2}[.)]?$", "", name).rstrip(" ;,:").strip()  # "...;5." starts the next item
        if name.endswith(":") or len(name) < 3:
            continue
        counts = {first_form: first}
        if second_form:
            counts[second_form] = counts.get(second_form, 0) + second
        originals, copies = counts.get("chính", 0), counts.get("sao", 0)
        note = None
        if originals and copies:
            form, count = DocumentForm.ORIGINAL, originals
            note = f"{originals} bản chính, {copies} bản sao"
        elif copies:
            form, count = DocumentForm.COPY, copies
        elif originals:
            form, count = DocumentForm.ORIGINAL, originals
        else:
            if _DOC_REMARK.search(name) or len(name) > 200 or " thì " in name or not name[0].isupper():
                continue
            form, count = None, None  # "0 bản chính": the portal gives no count
            stated = _COUNT_IN_NAME.search(name)  # "Hóa đơn thương mại: 01 bản chụp"
            if stated and int(stated.group(1)):
                count = int(stated.group(1))
                form = DocumentForm.ORIGINAL if stated.group(2) == "chính" else DocumentForm.COPY
        if form is DocumentForm.ORIGINAL and not copies and re.match(r"Bản sao(?! hoặc bản chính)", name):
            form = DocumentForm.COPY  # the name is more specific than the portal's count column
        if form is DocumentForm.COPY and re.search(r"(?:bản sao|sao y)\s+(?:có\s+)?(?:công chứng|chứng thực)", name, re.I):
            form = DocumentForm.CERTIFIED_COPY
        if count is not None and count > 20:
            logger.debug("document count %d above 20 dropped: %s", count, name[:60])
            count = None
        name = _trim(name, ITEM_CHARS)
        key = name.casefold()
        if key in seen:
            continue
        seen.add(key)
        documents.append(Document(name=name, form=form, count=count, note=note))
        if len(documents) >= MAX_DOCUMENTS:
            break
    return documents


# --------------------------------------------------------------------------------------------------
# Legal basis (can_cu_phap_ly)

_LEGAL_HEAD = re.compile(r"^\s*Tên văn bản pháp lý\s*Mã văn bản")
# 85/2019/TT-BTC, 60/2014/QH13, 123/2015/NĐ-CP, 66.7/2025/NQ-CP, 20/2013/TTLT-BYT-BCT-BNNPTNT, 05/2024/UBTVQH15
_LEGAL_CODE = re.compile(
    r"(?<!/)(?P<num>\d{1,6}(?:\.\d{1,3})?[a-z]?)/(?P<year>(?:19|20)\d{2})/"
    r"(?P<kind>(?:UBTV)?QH\d{2}|[A-ZĐ]+(?:\s?-\s?(?:TTg|[A-ZĐ]+))*)"
)
# Issuers seen in the catalogue; the flattened table glues the next name's capitals to a code
# ("123/2015/NĐ-CPNghị định ..."), so an unknown issuer is cut back to the longest known one.
_ISSUERS = frozenset(
    "CP TTg TTG BTC NHNN BCA BTP BNNMT BGTVT BNNPTNT BXD BTNMT BKHĐT BLĐTBXH UBND HĐND BYT BKHCN BVHTTDL "
    "VPCP BNV BQP BCT BNN VKSNDTC TANDTC BNG CTN HĐTP BTTTT BGDĐT KTNN UBDT BHXH UBCKNN TLĐ LLTP BNTMT "
    "UBTVQH QH TW NĐ TT TTLT NQ QĐ CT BKH BTM BTS BCN BVHTT BBCVT BNNMT".split()
)


def _code_at(text: str, match: re.Match) -> tuple[str, int, int]:
    """(code, start, end) of `match`, without capitals of the next name glued to its end and without
    the year of the previous name glued to its number ("Luật Khiếu nại năm 201102/2011/QH13")."""
    code, start, end = match.group(0), match.start(), match.end()
    kind = match.group("kind")
    if not re.fullmatch(r"(?:UBTV)?QH\d{2}", kind):
        issuer = re.split(r"\s?-\s?", kind)[-1]
        if issuer not in _ISSUERS:
            known = next((issuer[:n] for n in range(len(issuer) - 1, 1, -1) if issuer[:n] in _ISSUERS), None)
            if known:
                cut = len(issuer) - len(known)
            elif end < len(text) and text[end].islower() and len(issuer) > 2:
                cut = 1  # "...TT-BTCThông tư": the capital starts the next word
            else:
                cut = 0
            code, end = code[: len(code) - cut], end - cut
    num = match.group("num")
    if len(num) > 4 and num[:2] in {"19", "20"} and num[:4].isdigit():
        code, start = code[4:], start + 4
    return re.sub(r"\s?-\s?", "-", code), start, end


_BARE_TYPE = re.compile(r"^(?:thong tu|nghi dinh|luat|quyet dinh|nghi quyet|phap lenh|van ban|chi thi)(?: lien tich)?(?: so)?$")


def _spaced(text: str, start: int, end: int, gaps: list[int]) -> str:
    """text[start:end] with a space inserted at each position of `gaps` inside it."""
    pieces, previous = [], start
    for gap in gaps:
        if start < gap < end:
            pieces.append(text[previous:gap])
            previous = gap
    pieces.append(text[previous:end])
    return " ".join(pieces)


def parse_legal_basis(text: str) -> list[str]:
    """Legal documents as "name (code)" strings from the flattened "Tên văn bản pháp lýMã văn bản" table."""
    if _blank(text):
        return []
    body = _LEGAL_HEAD.sub("", text, count=1)
    found = [_code_at(body, match) for match in _LEGAL_CODE.finditer(body)]
    items: list[tuple[str, str]] = []
    glued: list[int] = []
    position = 0
    for index, (code, start, end) in enumerate(found):
        following = body[end : end + 2]
        again = any(other == code for other, _, _ in found[index + 1 :])
        if not following or following[0].isdigit() or following[0].isupper():
            inside_name = False  # glued to the next name or the end: the code column
        elif following[0].isspace() and following[1:2].isupper():
            inside_name = again  # "Thông tư số 66/2023/TT-BCA Sửa đổi ...66/2023/TT-BCA"
        elif following[0].isalpha():
            inside_name = again  # "Thông tư số 53/2025/TT-BCAngày ...53/2025/TT-BCA" vs "...NĐ-CPvề kinh doanh"
        else:
            inside_name = True  # "... 08/2025/TT-BTP ngày 12/6/2025", "...NĐ-CP)"
        if inside_name:
            if following[:1].isalpha():
                glued.append(end)  # "53/2025/TT-BCAngày" → "53/2025/TT-BCA ngày"
            continue
        name = _text(_spaced(body, position, start, glued))
        if not name and items:
            # "Nghị định 05/2012/NĐ-CP05/2012/NĐ-CP": the previous code was the end of this name
            previous_name, previous_code = items.pop()
            name = _text(f"{previous_name} {previous_code}")
        items.append((name, code))
        position = end
    tail = _text(_spaced(body, position, len(body), glued)).strip(" .;,")
    result: list[str] = []
    seen: set[str] = set()
    for name, code in items:
        name = _strip_bullet(name).strip(" .;,:")
        if code in seen:
            continue
        seen.add(code)
        if not name or name == code:
            result.append(code)
        elif code in re.sub(r"\s?-\s?", "-", name):
            result.append(_trim(name, ITEM_CHARS))
        elif _BARE_TYPE.match(fold(name)):
            result.append(f"{name} {code}")  # "Thông tư số" + "29/2025/TT-BTC"
        else:
            result.append(f"{_trim(name, ITEM_CHARS - len(code) - 3)} ({code})")
    if len(tail) > 5:
        result.append(_trim(tail, ITEM_CHARS))  # a last name without a dated code ("Quyết định 1291/QĐ-TTg")
    return result


# --------------------------------------------------------------------------------------------------
# Steps, conditions, result

_STEP = re.compile(r"Bước[ \t]*\d+[ \t]*[:.)\-–]?[ \t]*")
_STEP_LEAD = re.compile(r"(?:[-+*•][ \t]*)?(?:[a-zđ]\)[ \t]*)?[ \t]*$")


def _step_markers(text: str) -> list[tuple[int, int]]:
    """(start, end) of each "Bước N" marker that begins a step: at a line start, after a sentence end,
    or glued to the previous step ("...xử lýBước 10"), not "theo Bước 2" inside a sentence."""
    markers = []
    for match in _STEP.finditer(text):
        lead = _STEP_LEAD.search(text, max(0, match.start() - 8), match.start())
        begin = lead.start() if lead else match.start()
        before = text[begin - 1] if begin else "\n"
        glued = begin == match.start()
        if before in "\n.;:" or (glued and (before.islower() or before == ")")):
            markers.append((begin, match.end()))
    return markers


def _lines(text: str) -> list[str]:
    return [line for line in (_strip_bullet(_text(part)) for part in re.split(r"\n+", text or "")) if line]


def parse_steps(text: str) -> list[str]:
    text = text or ""
    if _blank(text):
        return []
    markers = _step_markers(text)
    if len(markers) >= 2 or (markers and markers[0][0] < 40):
        ends = [start for start, _ in markers[1:]] + [len(text)]
        parts = [text[marker_end:next_start] for (_, marker_end), next_start in zip(markers, ends)]
    else:
        parts = re.split(r"\n+", text)
    steps = []
    for part in parts:
        head, _, rest = part.strip().partition("\n")
        head = _text(head)
        if rest.strip() and len(head) <= 80 and head[-1:].isalnum():
            part = f"{head}: {rest}"  # "Bước 1: Thụ lý giải quyết khiếu nại\n\nNếu ..." → "Thụ lý ...: Nếu ..."
        step = _strip_bullet(_text(part))
        if step and step.casefold() not in {"không có thông tin"}:
            steps.append(_trim(step, ITEM_CHARS))
        if len(steps) >= MAX_STEPS:
            break
    return steps


def parse_conditions(text: str) -> list[str]:
    if _blank(text) or re.fullmatch(r"\s*(?:không|không có|không quy định|không yêu cầu)\.?\s*", text, re.I):
        return []
    conditions = [_trim(line, ITEM_CHARS) for line in _lines(text)]
    return conditions[:MAX_CONDITIONS]


def parse_result(text: str) -> str | None:
    text = _text(text)
    text = re.split(r"Mã\s*:|Từ khóa", text, maxsplit=1)[0]
    text = re.sub(r"\.{2,}$", ".", text).strip()
    if not _info(text):
        return None
    return _trim(text, ITEM_CHARS)


# --------------------------------------------------------------------------------------------------
# Names and levels

_NAME_PREFIX = re.compile(r"^(?:Thủ tục hành chính|Thủ tục|TTHC)\s*[:\-–]?\s+", re.IGNORECASE)
_LEVEL_WORDS = r"(?:xã|huyện|tỉnh|tinh|bộ|trung ương|tw|cơ sở|trung uơng)"
_LEVEL_SUFFIX = re.compile(
    rf"\s*(?:\(\s*(?:thực hiện\s+)?(?:(?:tại|ở)\s+)?cấp\s+{_LEVEL_WORDS}\s*\)"
    rf"|[-–,]?\s*(?:thực hiện\s+)?(?:tại|ở)\s+cấp\s+{_LEVEL_WORDS}"
    rf"|\s[-–]\s*cấp\s+{_LEVEL_WORDS})\s*\.?\s*$",
    re.IGNORECASE,
)


def base_name(name: str) -> str:
    """The name without a boilerplate prefix ("Thủ tục ...") and the level suffix ("(cấp tỉnh)")."""
    name = _text(name)
    previous = None
    while previous != name:
        previous = name
        name = _NAME_PREFIX.sub("", name, count=1)
        name = _LEVEL_SUFFIX.sub("", name, count=1).strip()
    return name.rstrip(" .;,") or _text(name)


def equivalence_key(name: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", fold(base_name(name))))


# --------------------------------------------------------------------------------------------------
# Records to entries

_FULL_ONLINE = re.compile(r"(?<!không )(?<!chưa )toàn trình")  # on lowercased text
_POSTAL_RESULT = re.compile(r"(?:trả|nhận) kết quả[^.;\n]{0,60}bưu (?:chính|điện)")  # on lowercased text


def record_to_entry(record: dict) -> Entry:
    """One national record as a knowledge-base `Entry` (kind "procedure", keyed by its national code)."""
    # some records mix decomposed (NFD) Vietnamese with composed text; compose everything once
    record = {key: unicodedata.normalize("NFC", value) if isinstance(value, str) else value for key, value in record.items()}
    code = _text(record.get("ma_thu_tuc"))
    name = _text(record.get("ten_thu_tuc"))
    field = _info(record.get("linh_vuc"))
    level = _info(record.get("cap_thuc_hien")) or None
    agency = _info(record.get("co_quan_thuc_hien")) or _info(record.get("co_quan_co_tham_quyen"))
    address = _info(record.get("dia_chi_tiep_nhan"))

    summary = _trim(name, 200).rstrip(".") + "."
    if agency:
        summary += f" Cơ quan thực hiện: {_trim(agency, 150).rstrip('.')}."
    if field:
        summary += f" Lĩnh vực: {field.rstrip('.')}."

    channels_text = record.get("cach_thuc_thuc_hien") if isinstance(record.get("cach_thuc_thuc_hien"), str) else ""
    durations, fees, channels = parse_channels(channels_text)
    procedure_text = f"{channels_text}\n{record.get('trinh_tu_thuc_hien') or ''}"

    lowered = procedure_text.lower()
    if Channel.ONLINE in channels:
        full = "toàn trình" in lowered and _FULL_ONLINE.search(lowered)
        online = Online(level=OnlineLevel.FULL if full else OnlineLevel.PARTIAL, portals=[NATIONAL_PORTAL])
    elif channels:
        online = Online(level=OnlineLevel.NONE)
    else:
        online = Online()
    postal = Postal()
    if Channel.POSTAL in channels:
        receives = "kết quả" in lowered and _POSTAL_RESULT.search(lowered)
        postal = Postal(submit=True, receive_result=True if receives else None)

    places = []
    if agency:
        note = _trim(address, ITEM_CHARS) or None
        places.append(Place(agency=_trim(_strip_bullet(agency), ITEM_CHARS), level=level, note=note))
    elif address:
        places.append(Place(agency=_trim(_strip_bullet(address), ITEM_CHARS), level=level))

    alias = base_name(name)
    alias = alias[:1].upper() + alias[1:]  # "Thủ tục nộp dần tiền thuế nợ" → "Nộp dần tiền thuế nợ"
    aliases = [alias] if alias and fold(alias) != fold(name) else []

    return Entry(
        id=code,
        kind="procedure",
        name=name,
        short_name=None,
        group=slugify(field),
        level=level,
        summary=summary,
        aliases=aliases,
        examples=[],
        documents=parse_documents(record.get("thanh_phan_ho_so") if isinstance(record.get("thanh_phan_ho_so"), str) else ""),
        fees=fees,
        durations=durations,
        places=places,
        online=online,
        postal=postal,
        steps=parse_steps(_as_str(record.get("trinh_tu_thuc_hien"))),
        conditions=parse_conditions(_as_str(record.get("yeu_cau_dieu_kien"))),
        legal_basis=parse_legal_basis(_as_str(record.get("can_cu_phap_ly"))),
        result=parse_result(_as_str(record.get("ket_qua_xu_ly"))),
    )


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def equivalence_groups(entries: Iterable[Entry]) -> list[list[str]]:
    """Ids of records that are one procedure at several levels (same name once the level is removed).

    Records sharing a name but all at the same level (e.g. two ministries' "Giải quyết khiếu nại")
    are different procedures, not level variants, and are not grouped.
    """
    by_key: dict[str, list[Entry]] = {}
    for entry in entries:
        key = equivalence_key(entry.name)
        if key:
            by_key.setdefault(key, []).append(entry)
    groups = []
    for members in by_key.values():
        if len(members) < 2:
            continue
        levels = {fold(member.level or "") for member in members}
        suffixed = any(base_name(member.name) != member.name.rstrip(" .;,") for member in members)
        if len(levels) < 2 and not suffixed:
            continue
        groups.append([member.id for member in members])
    return groups


def load_catalogue(path: Path) -> list[Entry]:
    """Every record of the file as an `Entry`, with `equivalents` filled in from `equivalence_groups`."""
    path = Path(path)
    entries: list[Entry] = []
    lines: dict[str, int] = {}
    too_long: list[str] = []
    for line, record in iter_records(path):
        try:
            entry = record_to_entry(record)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "record"
            raise CatalogueError(
                path, line, f"record {record.get('ma_thu_tuc')} does not fit the schema: {where}: {first.get('msg')}"
            ) from None
        except Exception as error:  # a record shaped like nothing seen so far: report it, never a traceback
            logger.debug("record on line %d could not be converted", line, exc_info=True)
            raise CatalogueError(
                path, line, f"record {record.get('ma_thu_tuc')} could not be converted ({type(error).__name__}: {error})"
            ) from None
        if entry.id in lines:
            raise CatalogueError(path, line, f"ma_thu_tuc {entry.id} was already given on line {lines[entry.id]}")
        lines[entry.id] = line
        entries.append(entry)
        too_long += [f"{path.name}, dòng {line}, mục {entry.id}: {text}" for text in describe_too_long(entry)]
    if not entries:
        raise CatalogueError(path, None, "the file holds no procedure records")
    if too_long:
        raise CatalogueError(path, None, f"{len(too_long)} giá trị dài hơn cơ sở dữ liệu chứa được:\n" + "\n".join(too_long[:20]),
                             problems=too_long)
    others: dict[str, list[str]] = {}
    for group in equivalence_groups(entries):
        for entry_id in group:
            others[entry_id] = [other for other in group if other != entry_id]
    return [entry.model_copy(update={"equivalents": others[entry.id]}) if entry.id in others else entry for entry in entries]
