"""The national procedure catalogue (Cổng Dịch vụ công quốc gia records) as knowledge-base entries.

Each line of `procedures_all_ministries.jsonl(.gz)` is one record scraped from the national portal
(see shared/data/dvcqg/SOURCE.md). The portal's tables were flattened without separators, e.g.

    Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến7 Ngày làm việc10,000 Việt Nam Đồng(...)Trực tiếp...

so channels, processing times and fees are parsed out of `cach_thuc_thuc_hien`, documents and their
counts out of `thanh_phan_ho_so`, legal codes out of `can_cu_phap_ly`. Everything here is a pure
function of the record: no database, no printing (oddities go to `logging` at debug level).

Records are cleaned on the way (see "Cleaning"): what a citizen reads from them is whole, said once and
current, and each entry carries a provenance note naming its source and code.

Public API: `iter_records`, `record_to_entry` / `convert_record`, `equivalence_groups`, `load_catalogue`,
`CatalogueError`; for answers and the audit: `national_code`, `is_provenance_note`, `is_conditional`,
`outdated_mentions`, `OUTDATED_CAVEAT`.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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
    "OUTDATED_CAVEAT",
    "CatalogueError",
    "Cleaning",
    "NationalEntries",
    "convert_record",
    "equivalence_groups",
    "is_conditional",
    "is_provenance_note",
    "iter_records",
    "load_catalogue",
    "national_code",
    "outdated_mentions",
    "record_texts",
    "record_to_entry",
    "sentence_key",
    "slugify",
    "split_condition",
    "split_sentences",
]

NATIONAL_PORTAL = "Cổng Dịch vụ công quốc gia"
NO_INFO = "Không có thông tin"
MAX_LINE_BYTES = 10 * 1024 * 1024  # the largest real record is ~90 KB; anything far bigger is not a record
ID_PATTERN = re.compile(r"^\d\.\d{6}$")

MAX_DOCUMENTS = 25
MAX_STEPS = 10
MAX_CONDITIONS = 8
ITEM_CHARS = 300  # an item of several sentences keeps its first whole ones within this
ITEM_HARD_CHARS = 600  # ... and a single sentence is kept whole up to this; only a longer one is cut (at a clause, "…")
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


# --------------------------------------------------------------------------------------------------
# Cleaning: what a citizen reads is whole, said once, and current
#
# The portal's texts run long, repeat themselves and still name bodies abolished on 01/07/2025. What
# the bot repeats from them is made whole (a long text keeps its first whole sentences instead of
# being cut mid-word), said once (a sentence already said in the same field is dropped), and current
# (a certain rule rewrites an outdated name; an uncertain one is left for the answer's caveat).
# Every change is counted in a `Cleaning` so staff can see what was done to which record.

_UPPER = "A-ZĐÁÀẢÃẠĂẮẰẲẴẶÂẤẦẨẪẬÉÈẺẼẸÊẾỀỂỄỆÍÌỈĨỊÓÒỎÕỌÔỐỒỔỖỘƠỚỜỞỠỢÚÙỦŨỤƯỨỪỬỮỰÝỲỶỸỴ"
# a sentence ends at . ! ? (or …) before a space; a list item starts at "- ", "+ ", "• " before a capital or digit
# after a colon or semicolon ("gồm: - Tờ khai"; not the dash of "Bộ Lao động - Thương binh và Xã hội"); a clause also
# ends at ";". (Written to start with a character class, which the regex engine scans for quickly.)
_SENTENCE_BREAK = re.compile(rf"[.!?…]\s+|[ \t]*\n\s*|[;:]\s+(?=[-+•*]\s*[{_UPPER}\d])")  # a line break ends one too
_CLAUSE_BREAK = re.compile(rf"[.!?;…]\s+|[ \t]*\n\s*|:\s+(?=[-+•*]\s*[{_UPPER}\d])")
_ENDS_SENTENCE = tuple(".!?;:,…")
_KEY_JUNK = str.maketrans(dict.fromkeys("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~“”‘’…–—•·«»", " "))
MIN_REPEAT_CHARS = 15  # shorter pieces ("Bản chính.") may rightly recur


# kind of cleaning -> what staff read; the "flag" kinds need a person's look, the others were fixed on import
CLEANING_LABELS = {
    "repeat": "câu/mục lặp đã bỏ",
    "shortened": "đoạn dài rút về câu trọn vẹn",
    "fragment": "câu quá dài, buộc phải cắt",
    "fee": "lệ phí rút về số tiền và quy định",
    "fee_no_figure": "lệ phí không có số tiền (kèm lưu ý)",
    "conditional": "giấy tờ có điều kiện được đánh dấu",
    "structure_rule": "tên cơ quan cũ đã đổi theo quy định hiện hành",
    "structure_caveat": "còn nhắc cấp huyện/thị trấn (câu trả lời kèm lưu ý)",
}
CLEANING_FLAGS = frozenset({"fragment", "fee_no_figure", "structure_caveat"})


class Cleaning:
    """What cleaning changed in one record, by kind (CLEANING_LABELS), for staff to review."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, kind: str, count: int = 1) -> None:
        if count:
            self.counts[kind] = self.counts.get(kind, 0) + count

    @property
    def cleaned(self) -> bool:
        return any(kind not in CLEANING_FLAGS for kind in self.counts)

    @property
    def flagged(self) -> bool:
        return any(kind in CLEANING_FLAGS for kind in self.counts)

    def describe(self) -> str:
        return "; ".join(f"{CLEANING_LABELS[kind]} ({count})" for kind, count in self.counts.items())


def _sentences(text: str, clauses: bool = True) -> list[str]:
    """The pieces of `text`: clauses (ending at ";" too) to shorten it, sentences to find one said twice."""
    pieces, start = [], 0
    for match in (_CLAUSE_BREAK if clauses else _SENTENCE_BREAK).finditer(text):
        end = match.start() + (not text[match.start()].isspace())  # the full stop (or colon) stays with its sentence
        pieces.append(text[start:end].lstrip(" ,;:").rstrip())
        start = match.end()
    pieces.append(text[start:].lstrip(" ,;:").rstrip())
    return [piece for piece in pieces if any(char.isalnum() for char in piece)]


def _key(text: str) -> str:
    """`text` compared as words only: case, punctuation and spacing do not make a sentence new."""
    return " ".join(text.casefold().translate(_KEY_JUNK).split())


def _joined(pieces: list[str]) -> str:
    """Sentences joined into one line; a piece that ended its line without a full stop gets one."""
    text = ""
    for piece in pieces:
        text = f"{text}{'' if not text else ' ' if text.endswith(_ENDS_SENTENCE) else '. '}{piece}"
    return text


def _lined(text: str) -> str:
    """`text` with runs of spaces as one and its line breaks kept (they end sentences)."""
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


def split_sentences(text: str) -> list[str]:
    """The sentences (and list items) of `text`, as cleaning and the audit compare them."""
    return _sentences(text, clauses=False)


def sentence_key(text: str) -> str:
    """What two sentences must share to be the same sentence said twice."""
    return _key(text)


def _once(text: str, seen: set[str], log: Cleaning | None = None) -> str:
    """`text` without the sentences already in `seen` (said earlier in it or in the same field)."""
    kept, dropped = [], 0
    for sentence in _sentences(text, clauses=False):
        key = _key(sentence)
        if len(key) >= MIN_REPEAT_CHARS and key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(sentence)
    if not dropped:
        return text
    if log:
        log.add("repeat", dropped)
    return _joined(kept).strip(" ,;:-")


def _whole(text: str, limit: int, log: Cleaning | None = None, hard: int | None = None) -> str:
    """`text` within `limit` characters without a cut sentence: its first whole sentences, or the first
    sentence alone up to `hard` (2 × limit). Only a sentence longer than that is cut, after its last
    clause (";", ",") that fits, and marked "…" (a fragment, counted for staff)."""
    flat = " ".join(text.split()).lstrip(" ,;:.")
    if len(flat) <= limit:
        return flat
    hard = hard or limit * ITEM_HARD_CHARS // ITEM_CHARS
    sentences = _sentences(_lined(text).lstrip(" ,;:."), clauses=False)
    kept: list[str] = []
    size = 0
    for sentence in sentences:
        if size + len(sentence) > limit:
            break
        kept.append(sentence)
        size += len(sentence) + 1
    if not kept and sentences and len(sentences[0]) <= hard:
        kept = sentences[:1]
    if kept:
        if log:
            log.add("shortened")
        return _joined(kept).rstrip(" ,;:-")
    first = sentences[0] if sentences else flat
    if log:
        log.add("fragment")
    clauses, size = [], 0
    for clause in _sentences(first):
        if size + len(clause) > limit:
            break
        clauses.append(clause)
        size += len(clause) + 2
    if clauses:
        return _joined(clauses).rstrip(" ,;:(-") + "…"
    cut = max(first.rfind(mark, 0, limit) for mark in (", ", " (", " - "))
    return (first[:cut] if cut > limit // 2 else _trim(first, limit).rstrip("…")).rstrip(" ,;:(-") + "…"


def _whole_items(items: list[str], limit: int, log: Cleaning | None = None, said: Iterable[str] = ()) -> list[str]:
    """List items each said once (sentences repeated across the items, or already `said`, dropped) and whole."""
    seen = {_key(text) for text in said}
    result: list[str] = []
    shortened: set[str] = set()
    for item in items:
        item = _once(item, seen, log)
        if not item:
            continue
        item = _whole(item, limit, log)
        if _key(item) in shortened:  # two items that differed only in what shortening left out
            if log:
                log.add("repeat")
            continue
        shortened.add(_key(item))
        result.append(item)
    return result


# -- outdated administrative structure
#
# Since 01/07/2025 there is no district level (two-level local government, Luật Tổ chức chính quyền địa
# phương 2025): communes, wards and special zones (xã, phường, đặc khu) are the level below the province,
# and towns (thị trấn) were merged into them. The paper household book is void since 01/01/2023 (Luật Cư
# trú 2020, Điều 38). Where the current rule is certain (../shared/kb: the curated facts), the record's
# words are rewritten to it, keeping the old name in brackets where a citizen may still know it by that;
# every other mention stays as the record has it and the answer carries OUTDATED_CAVEAT.

OUTDATED_CAVEAT = (
    "⚠ Bản ghi này còn ghi theo tổ chức trước 01/07/2025 (khi còn cấp huyện, thị trấn); nay không còn cấp huyện. "
    "Bạn vui lòng hỏi Bộ phận Một cửa để biết nơi nộp, nơi giải quyết hiện nay."
)
HOUSEHOLD_BOOK_RULE = (
    "đã hết giá trị từ 01/01/2023; nay cơ quan dùng thông tin cư trú trong Cơ sở dữ liệu quốc gia về dân cư"
)
# "cấp huyện", "thị trấn", "Sổ hộ khẩu", and district bodies named without "cấp" ("Công an huyện", "quận, huyện")
OUTDATED = re.compile(
    r"cấp\s+huyện|thị\s+trấn|sổ\s+hộ\s+khẩu|quận\s*,\s*huyện"
    r"|(?:ủy ban nhân dân|uỷ ban nhân dân|ubnd|công an|bảo hiểm xã hội|bhxh|chi cục thuế|kho bạc nhà nước)\s+huyện\b",
    re.IGNORECASE,
)
# words that, in the same line, already give the current rule or mark the mention as history
_RULE_CUES = re.compile(
    r"0?1/0?7/2025|0?1 tháng 0?7 năm 2025|0?1/0?1/2023|31/12/2022|không còn|đã bỏ|bỏ cấp huyện|bãi bỏ|trước đây"
    r"|hết giá trị|nay là|\(nay\b|thay (?:cho )?sổ|không (?:cần|được đòi|phải)[^.;]{0,30}sổ|huyện cũ|trước khi sắp xếp",
    re.IGNORECASE,
)
_COMMUNE_TRIO = re.compile(
    r"\b(?P<a>xã|phường)(?P<s1>\s*[,/]\s*|\s+và\s+)(?P<b>xã|phường)(?P<s2>\s*[,/]\s*|\s+(?:và|hoặc)\s+)thị trấn\b",
    re.IGNORECASE,
)
_SOCIAL_INSURANCE_DISTRICT = re.compile(r"\b(?:Bảo hiểm xã hội|BHXH)\s+(?:cấp\s+)?(?:quận,\s*)?huyện\b", re.IGNORECASE)
# Luật Căn cước: "Công an cấp huyện (nơi không có đơn vị hành chính cấp xã)" — every place has a commune level now
_POLICE_NO_COMMUNE = re.compile(r",?\s*(?:hoặc\s+)?Công an cấp huyện\s*\(\s*nơi không có đơn vị hành chính cấp xã\s*\)", re.IGNORECASE)
_DISTRICT_PEOPLES_COMMITTEE = re.compile(r"\b(?:Ủy ban nhân dân|Uỷ ban nhân dân|UBND)\s+(?:cấp\s+)?huyện\b", re.IGNORECASE)
# the district's justice office ("Phòng Tư pháp", the province has a "Sở Tư pháp")
_JUSTICE_OFFICE = re.compile(r"\bPhòng Tư pháp(?:\s+(?:cấp\s+)?(?:quận,\s*)?huyện)?\b", re.IGNORECASE)
_HOUSEHOLD_BOOK = re.compile(r"sổ\s+hộ\s+khẩu", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.;](?=\s|$)")
# civil status and certification moved from the district to the commune (Nghị định 120/2025/NĐ-CP, Thông tư 08/2025/TT-BTP)
_COMMUNE_FIELDS = frozenset({"ho tich", "chung thuc"})


def _same_case(word: str, like: str) -> str:
    return word.upper() if like.isupper() else word


_OUTDATED_WORDS = ("huyện", "Huyện", "HUYỆN", "trấn", "TRẤN", "khẩu", "KHẨU")  # a cheap look before the patterns


def _may_be_outdated(text: str) -> bool:
    return any(word in text for word in _OUTDATED_WORDS)


def modernise(text: str, field: str = "", log: Cleaning | None = None) -> str:
    """`text` with the outdated names whose current rule is certain rewritten to it (see above)."""
    if not text:
        return text
    justice = fold(field) in _COMMUNE_FIELDS and "Phòng Tư" in text.replace("Phòng tư", "Phòng Tư")
    if not justice and (not _may_be_outdated(text) or not OUTDATED.search(text)):
        return text
    before = text
    text = _COMMUNE_TRIO.sub(
        lambda m: f"{m.group('a')}{m.group('s1')}{m.group('b')}{m.group('s2')}{_same_case('đặc khu', m.group('b'))}", text)
    text = _POLICE_NO_COMMUNE.sub("", text)
    text = _SOCIAL_INSURANCE_DISTRICT.sub("Bảo hiểm xã hội cơ sở (trước đây là Bảo hiểm xã hội cấp huyện)", text)
    if fold(field) in _COMMUNE_FIELDS:
        text = _DISTRICT_PEOPLES_COMMITTEE.sub("Ủy ban nhân dân cấp xã (trước 01/07/2025 là cấp huyện)", text)
        text = _JUSTICE_OFFICE.sub("Ủy ban nhân dân cấp xã (trước 01/07/2025 là Phòng Tư pháp cấp huyện)", text)
    book = _HOUSEHOLD_BOOK.search(text)
    if book and not _RULE_CUES.search(text):  # the rule closes the sentence that names the book
        end = _SENTENCE_END.search(text, book.end())
        at = end.start() if end else len(text.rstrip(" ."))
        text = f"{text[:at]} (sổ hộ khẩu {HOUSEHOLD_BOOK_RULE}){text[at:]}"
    if log and text != before:
        log.add("structure_rule")
    return text


def outdated_mentions(text: str) -> list[str]:
    """The outdated names in `text` ("cấp huyện", "thị trấn", "Sổ hộ khẩu", ...) on lines that give
    neither the current rule nor mark them as history."""
    found: list[str] = []
    if not _may_be_outdated(text):
        return found
    for line in text.split("\n"):
        if OUTDATED.search(line) and not _RULE_CUES.search(line):
            found.extend(match.group(0) for match in OUTDATED.finditer(line))
    return found


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
    if lowered.startswith(("phí", "giá")):
        return "Phí"
    return "Lệ phí"


# a figure in a fee's description: "135.000 đồng", "20 triệu đồng", "50USD", "0,5%", "8.000.000/lần"
_FIGURE = re.compile(
    r"(?<![\d/.,])(?P<num>\d{1,3}(?:[.,]\d{3})+|\d+(?:,\d+)?)\s*(?P<scale>triệu|tỷ|nghìn|ngàn)?\s*"
    r"(?P<cur>đồng|Đồng|VNĐ|VND|đ(?![^\W\d_])|USD|%)"
    r"|(?<![\d/.,])(?P<grouped>\d{1,3}(?:\.\d{3})+)(?![\d.,])",
)
_GLUED_BRACKET = re.compile(r"\)(?=[^\W\d_])")
_FEE_ITEM_LABEL = re.compile(r"^(?:Lệ phí|Phí)\s*:\s*")
_FEE_LABEL_AHEAD = re.compile(r"\s+(?=(?:Lệ phí|Phí)\s*:)")  # "... (Lệ phí ra, vào cảng biển:) Lệ phí: tàu thuyền ...": a new item
_HOW_TO_SUBMIT = re.compile(r"\*?\s*Cách th(?:ực|ức) (?:hiện|nộp)\s*:", re.IGNORECASE)  # the channel's description, not the fee
_SCALES = {"triệu": 1_000_000, "tỷ": 1_000_000_000, "nghìn": 1_000, "ngàn": 1_000}
_EXEMPTION_CLAUSE = re.compile(r"\b(?:miễn|không thu|được giảm|giảm còn)\b", re.IGNORECASE)
_GENERIC_RULE = re.compile(r"luật phí và lệ phí|pháp luật (?:về )?phí|quy định (?:của pháp luật )?về phí", re.IGNORECASE)
_NOT_SET = re.compile(r"^(?:chưa|không) (?:quy định|có quy định)\b", re.IGNORECASE)
_LOCAL_LEVELS = ("cấp tỉnh", "cấp xã", "cấp huyện")
_CODE_KINDS = {"TTLT": "Thông tư liên tịch", "TT": "Thông tư", "NĐ": "Nghị định", "QĐ": "Quyết định", "NQ": "Nghị quyết"}
FEE_CLAUSES_CHARS = 220
NO_FIGURE_PROVINCE = "bản ghi không nêu số tiền; mức thu do HĐND tỉnh quyết định, bạn hỏi Bộ phận Một cửa để biết mức cụ thể"
NO_FIGURE = "bản ghi không nêu số tiền; bạn hỏi cơ quan giải quyết hoặc Bộ phận Một cửa để biết mức cụ thể"


def _figures(text: str) -> list[tuple[int | None, str]]:
    """(amount in đồng or None, kind "vnd" / "usd" / "pct") of each figure in a fee's text."""
    found = []
    for match in _FIGURE.finditer(text):
        if match.group("grouped"):
            found.append((int(match.group("grouped").replace(".", "")), "vnd"))
            continue
        currency = match.group("cur").upper()
        kind = "usd" if currency == "USD" else "pct" if currency == "%" else "vnd"
        number = match.group("num")
        scale = _SCALES.get((match.group("scale") or "").lower())
        if scale and re.fullmatch(r"\d+(?:,\d+)?", number):
            value = round(float(number.replace(",", ".")) * scale)
        else:
            value = _amount(number)
        found.append((value if kind == "vnd" else None, kind))
    return found


def _code_name(code: str) -> str:
    """ "25/2022/TT-BTC" -> "Thông tư 25/2022/TT-BTC" (the document's kind read from its code)."""
    kind = code.split("/")[-1].split("-")[0]
    name = _CODE_KINDS.get(kind) or ("Luật" if re.fullmatch(r"(?:UBTV)?QH\d{2}", kind) else "")
    return f"{name} {code}".strip()


def _codes(text: str) -> list[str]:
    return list(dict.fromkeys(_code_name(_code_at(text, match)[0]) for match in _LEGAL_CODE.finditer(text)))


def _fee_clauses(note: str) -> tuple[list[str], list[str], list[str]]:
    """The description of a fee split into (clauses with a figure, exemptions, the rest), each once."""
    figures, exemptions, rest = [], [], []
    seen: set[str] = set()
    clauses = [clause for part in _FEE_LABEL_AHEAD.split(note) for clause in _sentences(part)]
    for clause in clauses:
        clause = _FEE_ITEM_LABEL.sub("", _unwrap(_strip_bullet(clause)).strip(" .;,"), count=1)
        key = _key(clause)
        if not key or key in seen:
            continue
        seen.add(key)
        if _EXEMPTION_CLAUSE.search(clause) and not any(kind == "vnd" and value for value, kind in _figures(clause)):
            exemptions.append(clause)
        elif _figures(clause):
            figures.append(clause)
        else:
            rest.append(clause)
    return figures, exemptions, rest


def _join_clauses(clauses: list[str], limit: int = FEE_CLAUSES_CHARS) -> str:
    """Whole clauses joined with "; " up to `limit` characters, saying so when some were left out."""
    kept: list[str] = []
    for clause in clauses:
        clause = _whole(clause, limit)
        if kept and sum(len(c) + 2 for c in kept) + len(clause) > limit:
            return "; ".join(kept) + "; và mức khác tùy trường hợp"
        kept.append(clause)
    return "; ".join(kept)


def _figure_column_holds(amount: int, stated: set[int], usd_in_note: bool) -> bool:
    """Whether the table's figure is the fee's amount. Only an implausible one gives way to the description:
    under 1.000 đồng ("50 VNĐ(Phí hải quan 50USD/chuyến bay ...)") or a tenth of every amount it states
    ("1100 VNĐ(Phí công bố ...: 100.000 đồng/lần)"). A description that differs otherwise (a reduced rate
    "áp dụng mức phí 400.000 đồng ... đến hết 31/12/2026") is shown beside the figure, as the record has it."""
    if amount < 1000:
        return not stated and not usd_in_note
    return not stated or amount in stated or amount * 10 >= min(stated)


def _unsaid(rule: str, codes: list[str], clauses: list[str]) -> str:
    """`rule` ("theo Thông tư ...") unless the kept clauses already name its legal texts."""
    said = " ".join(clauses)
    return "" if not rule or all(code.split(" ")[-1] in said for code in codes[:2]) else rule


def _bracket(*parts: str) -> str:
    inside = "; ".join(part for part in parts if part)
    return f" ({inside})" if inside else ""


@dataclass
class _FeeNote:
    """A fee's parenthesised description, read: its figures, exemptions, legal texts and the rest."""

    text: str
    unit: str
    figures: list[str]
    exemption_clauses: list[str]
    rest: list[str]
    codes: list[str]
    by_province: bool

    @property
    def label(self) -> str:
        return _fee_label(self.text) if self.text else "Lệ phí"

    @property
    def rule(self) -> str:
        return f"theo {', '.join(self.codes[:2])}" if self.codes else ""

    @property
    def exemptions(self) -> str | None:
        return _join_clauses(self.exemption_clauses, 200) or None

    @property
    def basis(self) -> str | None:
        return self.codes[0].split(" ")[-1] if self.codes else None

    def stated(self) -> set[int]:
        return {value for clause in self.figures for value, kind in _figures(clause) if kind == "vnd" and value}

    def in_dollars(self) -> bool:
        return any(kind == "usd" for clause in self.figures for _, kind in _figures(clause))


def _read_fee_note(note: str) -> _FeeNote:
    note = _GLUED_BRACKET.sub(") ", _unwrap(_strip_bullet(note)))
    note = _HOW_TO_SUBMIT.split(note, maxsplit=1)[0].strip(" :;,-*")
    unit = ""
    if note.startswith(("/", "đ/")):  # "20,000 VNĐ(/hồ sơ (Thông tư ...))": the unit of the figure
        note = note[1:] if note.startswith("đ/") else note
        unit = re.split(r"[(;]", note, maxsplit=1)[0].rstrip(" .,")
        if len(unit) > 60:  # not a unit but a sentence: it stays in the description
            unit = ""
        note = _unwrap(note[len(unit) :].strip(" .,;"))
        unit = unit.replace(" ", "") if len(unit) < 4 else unit.replace("/ ", "/")
    figures, exemption_clauses, rest = _fee_clauses(note) if note else ([], [], [])
    by_province = bool(note and _PROVINCE.search(note)) or "chính quyền địa phương" in note.casefold()
    return _FeeNote(note, unit, figures, exemption_clauses, rest, _codes(note) if note else [], by_province)


def _fee_from_note(channel: Channel, head: str, note: str, amount: int | None, currency: str | None,
                   level: str | None = None, log: Cleaning | None = None) -> Fee | None:
    """One fee from its figure (or "Miễn phí"/"Không có thông tin") and its parenthesised description,
    reduced to the amounts and the rule: the figures the description gives, the legal text that sets
    them, who decides where no figure is given; never a description cut in the middle."""
    read = _read_fee_note(note)
    if log and read.text and (len(read.text) > FEE_NOTE_CHARS or len(read.figures) + len(read.rest) + len(read.exemption_clauses) > 1):
        log.add("fee")
    common = {"channel": channel, "exemptions": read.exemptions, "basis": read.basis}
    if head == "amount" and currency and currency.upper() == "USD":
        if amount is None:
            return None
        text = f"{read.label}: {amount:,} USD".replace(",", ".") + read.unit
        return Fee(amount_vnd=None, text=text + _bracket(_join_clauses(read.figures), read.rule), **common)
    if head == "amount" and amount and not read.by_province and _figure_column_holds(amount, read.stated(), read.in_dollars()):
        # the description adds other amounts, the rule, or what this amount is for ("Xe ô tô trên 10 chỗ")
        extras = [clause for clause in read.figures if {value for value, _ in _figures(clause)} - {amount} or len(clause) > 40]
        first = read.rest[0] if read.rest else ""
        if not extras and first and len(first) <= 80 and not _GENERIC_RULE.search(first) and not _LEGAL_CODE.search(first):
            extras = [first]
        text = f"{read.label}: {_vnd(amount)}{read.unit}" + _bracket(_join_clauses(extras), _unsaid(read.rule, read.codes, extras))
        return Fee(amount_vnd=amount, text=text, **common)
    if read.by_province:
        text = f"{read.label}: do HĐND cấp tỉnh quy định" + _bracket(_join_clauses(read.figures), _unsaid(read.rule, read.codes, read.figures))
        return Fee(amount_vnd=None, set_by_province=True, text=text, **common)
    if read.figures:
        # the figure column says "Miễn phí" or an implausible number: the description has the amounts
        stated = read.stated()
        single = next(iter(stated)) if len(stated) == 1 and not read.in_dollars() else None
        text = f"{read.label}: {_join_clauses(read.figures)}" + _bracket(_unsaid(read.rule, read.codes, read.figures))
        return Fee(amount_vnd=single, text=text, **common)
    return _fee_without_figure(channel, head == "free" or (head == "amount" and amount == 0), read, level, log)


def _fee_without_figure(channel: Channel, says_free: bool, read: _FeeNote, level: str | None, log: Cleaning | None) -> Fee | None:
    """A fee for which neither the table nor the description gives a figure: free, not set, or the rule the
    record gives and who tells the amount (the province for a local procedure, else whoever handles it)."""
    common = {"channel": channel, "basis": read.basis}
    if not read.text:
        return Fee(amount_vnd=0, text="Miễn lệ phí", **common) if says_free else None  # else nothing known
    if _NOT_SET.match(read.text):
        if says_free:  # "Miễn phí(Chưa quy định)"
            return Fee(amount_vnd=0, text="Miễn lệ phí (chưa có quy định thu phí, lệ phí)", **common)
        return Fee(amount_vnd=None, text="Chưa có quy định thu phí, lệ phí cho thủ tục này", exemptions=read.exemptions, **common)
    if _SAYS_FREE.match(read.text) and not _MONEY.search(read.text):
        first = read.rest[0] if read.rest else ""
        said = "" if re.fullmatch(r"(?:không|không có|không quy định|không thu|miễn phí|miễn lệ phí)\.?", first, re.IGNORECASE) else first
        said = said or (read.exemption_clauses[0] if read.exemption_clauses and len(read.exemption_clauses[0]) > 12 else "")
        suffix = f" ({_whole(said, FEE_NOTE_CHARS)})" if said and fold(said) not in {"mien phi", "mien le phi"} else ""
        return Fee(amount_vnd=0, text=f"Miễn lệ phí{suffix}", exemptions=None if suffix else read.exemptions, **common)
    if log:
        log.add("fee_no_figure")
    levels = (level or "").casefold()
    local = "cấp bộ" not in levels and any(word in levels for word in _LOCAL_LEVELS)  # a ministry's fee is not the province's
    if read.codes:
        said, caveat = f"mức thu {read.rule}", NO_FIGURE
    else:
        first = (read.rest or read.exemption_clauses or [read.text])[0]
        said = "theo quy định của pháp luật về phí, lệ phí" if _GENERIC_RULE.search(read.text) else _whole(first, 120)
        caveat = NO_FIGURE_PROVINCE if local else NO_FIGURE
    said = said[:1].lower() + said[1:] if said.startswith(("Theo", "Mức")) else said
    return Fee(amount_vnd=None, set_by_province=caveat is NO_FIGURE_PROVINCE, exemptions=read.exemptions,
               text=f"Phí, lệ phí: {said}; {caveat}.", **common)


def _row_fees(channel: Channel, fee_part: str, level: str | None = None, log: Cleaning | None = None) -> list[Fee]:
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
        main = _fee_from_note(channel, head, note, amount, currency, level, log)
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
        note = _unwrap(_strip_bullet(note)).strip(" .;,")
        if note:
            text += f" ({_whole(note, FEE_NOTE_CHARS, log)})"
        fees.append(Fee(channel=channel, amount_vnd=amount_vnd, text=text))
    return fees


def parse_channels(text: str, level: str | None = None, log: Cleaning | None = None) -> tuple[list[Duration], list[Fee], set[Channel]]:
    """Durations, fees and the channels listed in the flattened "Hình thức nộp" table (`level`: the
    record's level, which says whether a fee without a figure is a province's to set)."""
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
        for fee in _row_fees(channel, row[fee_start:], level, log):
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


_ATTACHMENT = re.compile(r"\s*(?:Mau\s*\d+[a-z]?\s*)?-?\s*Phu luc\s+\S*_\S*\s*$")  # unaccented: a file name, not Vietnamese


def _strip_form_file(name: str) -> str:
    """Remove the attached template's file name glued to the end ("...(NA20).Mau NA20-BCA.docx")."""
    name = _ATTACHMENT.sub("", name)
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


def parse_documents(text: str, log: Cleaning | None = None) -> list[Document]:
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
        if form is DocumentForm.COPY and re.search(r"(?:bản sao|sao y)\s+(?:có\s+)?(?:công chứng|chứng thực)", name, re.IGNORECASE):
            form = DocumentForm.CERTIFIED_COPY
        if count is not None and count > 20:
            logger.debug("document count %d above 20 dropped: %s", count, name[:60])
            count = None
        name = _strip_bullet(_whole(name, ITEM_CHARS, log)).rstrip(" .;,:")
        key = name.casefold()
        if key in seen:
            continue
        seen.add(key)
        documents.append(Document(name=name, form=form, count=count, note=note))
        if len(documents) >= MAX_DOCUMENTS:
            break
    return _mark_conditional(_said_once(_distinct_documents(documents, log), log), log)


def _said_once(documents: list[Document], log: Cleaning | None = None) -> list[Document]:
    """Each sentence of the list said once: a document's description loses what an earlier document said,
    and a document that is only what an earlier one said ("Một trong các giấy tờ sau: + A; + B", then "A")
    is dropped."""
    said: set[str] = set()
    kept = []
    for document in documents:
        name = _described_once(document.name, said, log).rstrip(" .;,:")
        if name:
            kept.append(document if name == document.name else document.model_copy(update={"name": name}))
    return kept


def _described_once(name: str, said: set[str], log: Cleaning | None = None) -> str:
    """A document's name without the sentences of its description (all but the first, which names it) that
    an earlier document already said, as its name or in its description; `said` collects them all.
    Empty when the document is only what an earlier one said."""
    sentences = _sentences(name, clauses=False)
    if not sentences:
        return name
    first = _key(sentences[0])
    if len(sentences) == 1:
        if first in said and len(first) >= MIN_REPEAT_CHARS:
            if log:
                log.add("repeat")
            return ""
        said.add(first)
        return name
    rest = " ".join(sentences[1:])
    kept = _once(rest, said, log)
    said.add(first)
    return name if kept == rest else _joined([sentences[0], kept]) if kept else sentences[0]


def _distinct_documents(documents: list[Document], log: Cleaning | None = None) -> list[Document]:
    """Each document once: a name that repeats an earlier one, or only its beginning, is dropped (the
    longer wording kept in the earlier place)."""
    kept: list[Document] = []
    keys: list[str] = []
    for document in documents:
        key = _key(document.name)
        twin = next((index for index, other in enumerate(keys) if key == other
                     or min(len(key), len(other)) >= 25 and (other.startswith(key) or key.startswith(other))), None)
        if twin is None:
            kept.append(document)
            keys.append(key)
            continue
        if log:
            log.add("repeat")
        if len(key) > len(keys[twin]):
            kept[twin], keys[twin] = kept[twin].model_copy(update={"name": document.name}), key
    return kept


# A document needed only in some cases: "Trường hợp X: Y", "Trường hợp X thì nộp thêm Y", "Đối với X, Y",
# "Y (nếu có)", "Y (đối với trường hợp X)", "Y trong trường hợp X". Cleaning keeps Y as the name and puts the
# condition first in the note ("nếu X"), and lists such documents after the ones always required.
_CONDITION_LEAD = re.compile(r"^\(?\s*(?P<lead>Trong trường hợp|Đối với trường hợp|Trường hợp|Nếu|Khi|Đối với)\s+(?P<rest>.+)$",
                             re.IGNORECASE | re.DOTALL)
_CONDITION_SPLIT = re.compile(r"\s*:\s*|\s+thì\s+")
_DOCUMENT_VERB = re.compile(r"^(?:thì\s+)?(?:phải\s+|cần\s+)?(?:nộp bổ sung|nộp thêm|nộp|có thêm|bổ sung thêm|bổ sung|kèm theo|gửi kèm)\s+",
                            re.IGNORECASE)
_IF_ANY = re.compile(r"\s*\(\s*nếu có\s*\)\s*[.;]?$", re.IGNORECASE)
_CONDITION_TAIL = re.compile(
    r"\s*\((?P<q>(?:chỉ\s+)?(?:(?:áp dụng|dùng)\s+(?:đối với|cho)|đối với|trong trường hợp|trường hợp|nếu|khi)\b[^()]*)\)\s*[.;]?$",
    re.IGNORECASE)
_CONDITION_CLAUSE = re.compile(
    r"^(?P<doc>.{20,}?)\s+(?:trong trường hợp|đối với trường hợp)\s+(?P<q>(?:(?!\bhoặc\b)[^();]){5,120}?)[.;]?$",
    re.IGNORECASE | re.DOTALL)
CONDITION_MARK = re.compile(r"^(?:nếu|khi|đối với|chỉ)\b", re.IGNORECASE)
ANY_CASE_NOTE = "nếu thuộc trường hợp nêu trên"


def _as_condition(text: str) -> str:
    """A qualifier as the note's "nếu ..." ("trường hợp bị rách" -> "nếu bị rách"), whole and short."""
    text = text.strip(" ,;:.")
    text = re.sub(r"^(?:chỉ\s+)?(?:áp dụng|dùng)\s+(?:đối với|cho)\s+", "đối với ", text, flags=re.IGNORECASE)
    text = re.sub(r"^(?:đối với\s+|trong\s+)?trường hợp\s+", "nếu ", text, flags=re.IGNORECASE)
    text = text[:1].lower() + text[1:]
    return _whole(text, 150)


def split_condition(name: str) -> tuple[str, str] | None:
    """(the document, its condition as "nếu ...") when `name` says the document is needed only in some cases."""
    lead = _CONDITION_LEAD.match(name)
    if lead:
        word = lead.group("lead").casefold()
        rest = lead.group("rest")
        split = _CONDITION_SPLIT.search(rest)
        if not split and word in {"nếu", "khi", "đối với"}:
            split = re.search(r",\s+", rest)
        prefix = "khi" if word == "khi" else "đối với" if word == "đối với" else "nếu"
        if split:
            document = _strip_bullet(_DOCUMENT_VERB.sub("", rest[split.end():])).strip(" .;")
            if len(document) >= 6:
                return document[:1].upper() + document[1:], _whole(f"{prefix} {rest[: split.start()].strip(' ,;:')}", 150)
        return name, ANY_CASE_NOTE
    if _IF_ANY.search(name):
        return _strip_bullet(_IF_ANY.sub("", name)).rstrip(" .;"), "nếu có"
    tail = _CONDITION_TAIL.search(name)
    if tail and tail.start() >= 10:
        return _strip_bullet(name[: tail.start()]).rstrip(" .;"), _as_condition(tail.group("q"))
    clause = _CONDITION_CLAUSE.match(name)
    if clause:
        return _strip_bullet(clause.group("doc")).rstrip(" ,;"), _as_condition("nếu " + clause.group("q"))
    return None


def is_conditional(document: Document) -> bool:
    """Whether the document is marked as needed only in some cases (its note starts with "nếu ...")."""
    return bool(document.note and CONDITION_MARK.match(document.note))


def _mark_conditional(documents: list[Document], log: Cleaning | None = None) -> list[Document]:
    required, conditional = [], []
    for document in documents:
        split = split_condition(document.name) if not is_conditional(document) else None
        if split is None:
            (conditional if is_conditional(document) else required).append(document)
            continue
        name, condition = split
        name = name.rstrip(" .;,") or document.name
        note = f"{condition}; {document.note}" if document.note else condition
        conditional.append(document.model_copy(update={"name": name, "note": note}))
        if log:
            log.add("conditional")
    by_name: dict[str, int] = {}
    result: list[Document] = []
    for document in required + conditional:
        twin = by_name.get(document.name.casefold())
        if twin is None:
            by_name[document.name.casefold()] = len(result)
            result.append(document)
        elif is_conditional(result[twin]) and is_conditional(document):  # one document, needed in either case
            result[twin] = result[twin].model_copy(update={"note": _whole(f"{result[twin].note}; hoặc {document.note}", ITEM_CHARS)})
    return result


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
        elif len(name) > ITEM_CHARS - len(code) - 3:
            result.append(_code_name(code))  # a title too long to repeat: the document named by its code, not cut
        elif code in re.sub(r"\s?-\s?", "-", name):
            result.append(name)
        elif _BARE_TYPE.match(fold(name)):
            result.append(f"{name} {code}")  # "Thông tư số" + "29/2025/TT-BTC"
        else:
            result.append(f"{name} ({code})")
    if len(tail) > 5:
        result.append(_whole(tail, ITEM_CHARS, hard=ITEM_CHARS))  # a last name without a dated code ("Quyết định 1291/QĐ-TTg")
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


def parse_steps(text: str, log: Cleaning | None = None, title: str = "") -> list[str]:
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
        step = _strip_bullet(_lined(part))  # its line breaks end sentences, for shortening at a whole one
        if step and step.casefold() not in {"không có thông tin"}:
            steps.append(step)
        if len(steps) >= MAX_STEPS:
            break
    return _whole_items(steps, ITEM_CHARS, log, said=[title] if title else [])  # a heading repeating the title goes


def parse_conditions(text: str, log: Cleaning | None = None) -> list[str]:
    if _blank(text) or re.fullmatch(r"\s*(?:không|không có|không quy định|không yêu cầu)\.?\s*", text, re.IGNORECASE):
        return []
    return _whole_items(_lines(text), ITEM_CHARS, log)[:MAX_CONDITIONS]


def parse_result(text: str, log: Cleaning | None = None) -> str | None:
    text = _text(text)
    text = re.split(r"Mã\s*:|Từ khóa", text, maxsplit=1)[0]
    text = re.sub(r"\.{2,}$", ".", text).strip()
    if not _info(text):
        return None
    return _whole(_once(text, set(), log), ITEM_CHARS, log)


# --------------------------------------------------------------------------------------------------
# Names and levels

_NAME_PREFIX = re.compile(r"^(?:Thủ tục hành chính|Thủ tục|TTHC)\s*[:\-–]?\s+", re.IGNORECASE)
_LEVEL_WORDS = r"(?:xã|huyện|tỉnh|tinh|bộ|trung ương|tw|cơ sở|trung uơng)"
_LEVEL_SUFFIX = re.compile(
    rf"\s*(?:\(\s*(?:thực hiện\s+)?(?:(?:tại|ở)\s+)?cấp\s+{_LEVEL_WORDS}\s*\)"
    rf"|[-–,]?\s*(?:thực hiện\s+)?(?:tại|ở)\s+cấp\s+{_LEVEL_WORDS}"
    rf"|\s[-–]\s*cấp\s+{_LEVEL_WORDS})"
    # a remark after the level says who handles it there ("... tại cấp xã (phải là cán bộ ...)")
    r"(?:\s*\([^()]*\))?\s*\.?\s*$",
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


PROVENANCE_PREFIX = "Nguồn: Cơ sở dữ liệu quốc gia về thủ tục hành chính"


def provenance_note(code: str) -> str:
    """The note an imported entry carries: where its facts come from. Answers show it as one line and
    staff see (and may remove) it in their files; curated entries have none."""
    return f"{PROVENANCE_PREFIX} (Cổng Dịch vụ công quốc gia), mã {code}."


def is_provenance_note(note: str) -> bool:
    return note.startswith(PROVENANCE_PREFIX)


def national_code(entry: Entry) -> str | None:
    """The national code an entry's facts were imported under, or None for a curated entry."""
    for note in entry.notes:
        if is_provenance_note(note):
            match = re.search(r"mã\s+(\d\.\d{6})", note)
            return match.group(1) if match else entry.id
    return None


def _first_items(text: str, limit: int) -> str:
    """A list ("A, B, C") within `limit` characters: its first whole items, then "và các cơ quan khác"."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    for item in re.split(r"\s*[,;]\s+", text):
        if kept and sum(len(k) + 2 for k in kept) + len(item) > limit:
            return ", ".join(kept) + " và các cơ quan khác"
        kept.append(item)
    return _whole(text, limit)


def record_to_entry(record: dict) -> Entry:
    """One national record as a knowledge-base `Entry` (kind "procedure", keyed by its national code)."""
    return convert_record(record)[0]


def convert_record(record: dict) -> tuple[Entry, Cleaning]:
    """One national record as a cleaned `Entry`, and what cleaning changed in it."""
    log = Cleaning()
    # some records mix decomposed (NFD) Vietnamese with composed text; compose everything once
    record = {key: unicodedata.normalize("NFC", value) if isinstance(value, str) else value for key, value in record.items()}
    code = _text(record.get("ma_thu_tuc"))
    name = _text(record.get("ten_thu_tuc")).lstrip(" .,;:-") or _text(record.get("ten_thu_tuc"))  # ". Đăng ký thuế ..."
    field = _info(record.get("linh_vuc"))
    level = _info(record.get("cap_thuc_hien")) or None
    agency = _info(record.get("co_quan_thuc_hien")) or _info(record.get("co_quan_co_tham_quyen"))
    address = _info(record.get("dia_chi_tiep_nhan"))

    summary = _whole(name, 200).rstrip(".") + "."
    if agency:
        summary += f" Cơ quan thực hiện: {_first_items(agency, 150).rstrip('.')}."
    if field:
        summary += f" Lĩnh vực: {field.rstrip('.')}."

    channels_text = record.get("cach_thuc_thuc_hien") if isinstance(record.get("cach_thuc_thuc_hien"), str) else ""
    durations, fees, channels = parse_channels(channels_text, level, log)
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
        note = _whole(address, ITEM_CHARS) or None
        places.append(Place(agency=_first_items(_strip_bullet(agency), ITEM_CHARS), level=level, note=note))
    elif address:
        places.append(Place(agency=_whole(_strip_bullet(address), ITEM_CHARS), level=level))

    alias = base_name(name)
    alias = alias[:1].upper() + alias[1:]  # "Thủ tục nộp dần tiền thuế nợ" → "Nộp dần tiền thuế nợ"
    aliases = [alias] if alias and fold(alias) != fold(name) else []

    entry = Entry(
        id=code,
        kind="procedure",
        name=name,
        short_name=None,
        group=slugify(field),
        level=level,
        summary=summary,
        aliases=aliases,
        examples=[],
        documents=parse_documents(_as_str(record.get("thanh_phan_ho_so")), log),
        fees=fees,
        durations=durations,
        places=places,
        online=online,
        postal=postal,
        steps=parse_steps(_as_str(record.get("trinh_tu_thuc_hien")), log, title=name),
        conditions=parse_conditions(_as_str(record.get("yeu_cau_dieu_kien")), log),
        legal_basis=parse_legal_basis(_as_str(record.get("can_cu_phap_ly"))),
        result=parse_result(_as_str(record.get("ket_qua_xu_ly")), log),
        notes=[provenance_note(code)],
    )
    entry = _current(entry, field, log)
    return entry, log


def _current(entry: Entry, field: str, log: Cleaning) -> Entry:
    """`entry` with the outdated names of its texts rewritten where the rule is certain (`modernise`);
    names left for the answer's caveat are counted as flagged. Legal titles and the official name stay."""

    def now(text: str | None) -> str | None:
        return modernise(text, field, log) if text else text

    def now_within(text: str) -> str:  # what the rule adds may not push an item past its bound
        current = now(text) or text
        return current if len(current) <= ITEM_HARD_CHARS else _whole(current, ITEM_CHARS, log)

    update = {
        "summary": now(entry.summary),
        "documents": [d.model_copy(update={"name": now(d.name), "note": now(d.note)}) for d in entry.documents],
        "fees": [f.model_copy(update={"text": now(f.text), "exemptions": now(f.exemptions)}) for f in entry.fees],
        "places": [p.model_copy(update={"agency": now(p.agency), "note": now(p.note)}) for p in entry.places],
        "steps": [now_within(step) for step in entry.steps],
        "conditions": [now_within(condition) for condition in entry.conditions],
        "result": now(entry.result),
    }
    entry = entry.model_copy(update=update)
    shown = [entry.name, entry.summary, entry.result or "", *entry.steps, *entry.conditions]
    shown += [f"{d.name} {d.note or ''}" for d in entry.documents] + [f.text for f in entry.fees]
    shown += [f"{p.agency} {p.note or ''}" for p in entry.places]
    left = sum(len(outdated_mentions(text)) > 0 for text in shown)
    log.add("structure_caveat", left)
    return entry


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


def record_texts(path: Path) -> dict[str, str]:
    """Each record's own words (all its text fields) by code: where the figures of its answers must come from."""
    texts = {}
    for _, record in iter_records(Path(path)):
        values = (value for value in record.values() if isinstance(value, (str, int, float)) and not isinstance(value, bool))
        texts[_text(record.get("ma_thu_tuc"))] = unicodedata.normalize("NFC", " ".join(map(str, values)))
    return texts


class NationalEntries(list):
    """Entries read from the national catalogue, with what cleaning changed in each (`cleaning`, by id)."""

    def __init__(self, entries: list[Entry], cleaning: dict[str, Cleaning]) -> None:
        super().__init__(entries)
        self.cleaning = cleaning

    def cleaned(self) -> list[str]:
        return [entry_id for entry_id, log in self.cleaning.items() if log.cleaned]

    def flagged(self) -> list[str]:
        return [entry_id for entry_id, log in self.cleaning.items() if log.flagged]


def load_catalogue(path: Path) -> NationalEntries:
    """Every record of the file as a cleaned `Entry`, with `equivalents` filled in from `equivalence_groups`."""
    path = Path(path)
    entries: list[Entry] = []
    cleaning: dict[str, Cleaning] = {}
    lines: dict[str, int] = {}
    too_long: list[str] = []
    for line, record in iter_records(path):
        try:
            entry, log = convert_record(record)
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
        cleaning[entry.id] = log
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
    return NationalEntries([entry.model_copy(update={"equivalents": others[entry.id]}) if entry.id in others else entry
                            for entry in entries], cleaning)
