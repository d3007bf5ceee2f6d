"""Everyday names of procedures, derived from their official names.

National records carry only their official name: "Thủ tục cấp hộ chiếu phổ thông ở trong nước (thực
hiện tại cấp tỉnh)". Citizens say "cấp hộ chiếu phổ thông". Dropping the boilerplate (the "Thủ tục"
prefix, the level, "trong nước", remarks in brackets, a long "đối với ..." qualifier) gives names a
question can contain whole, which is what the matcher counts as naming an entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from nlp.normalize import fold

_LEVEL = r"(?:xã|huyện|tỉnh|tinh|bộ|trung ương|trung uơng|tw|cơ sở)"
_PREFIX = re.compile(r"^(?:trình tự,?\s*)?(?:thủ tục hành chính|thủ tục|tthc)\s*(?:về\s+)?[:\-–]?\s*", re.IGNORECASE)
_BRACKETS = re.compile(r"\s*\([^()]*\)")
# "thực hiện tại cấp tỉnh", "tại cấp xã", "- cấp tỉnh", "cấp Trung ương" at the end: where, not what.
_LEVEL_PHRASE = re.compile(
    # "ở" only after "thực hiện": in "nhà ở cấp tỉnh" it belongs to "nhà ở"
    rf"\s*(?:[-–,]\s*)?(?:(?:được\s+)?thực hi[eệ]n\s+(?:(?:tại|ở)\s+)?|tại\s+)?cấp\s+{_LEVEL}\b(?=\s*$|\s*[,;/])", re.IGNORECASE
)
_WHERE = re.compile(r"\s*[-–,]?\s*thực hi[eệ]n\s+(?:tại|ở)\s+.*$", re.IGNORECASE)
_DOMESTIC = re.compile(r"\s*(?:ở\s+)?trong nước\b", re.IGNORECASE)
_ANYONE = re.compile(r"\s+(?:theo yêu cầu\s+)?(?:của|cho|đối với)\s+(?:tổ chức|cá nhân)(?:\s*(?:,|và|hoặc)\s*(?:tổ chức|cá nhân))*\s*$",
                     re.IGNORECASE)
# Qualifiers that narrow a procedure to a case: the name before them is how people call it, when the
# qualifier is long and what is left still names something.
_QUALIFIER = re.compile(
    r"\s+(?:đối với|trong trường hợp|trường hợp|theo yêu cầu của|thuộc thẩm quyền|thuộc phạm vi|theo quy định|quy định tại"
    r"|do\s+(?:chủ tịch\s+)?(?:ubnd|ủy ban nhân dân)|theo nghị định|theo thông tư)\s+",
    re.IGNORECASE,
)
_LONG_QUALIFIER_WORDS = 5
_MIN_HEAD_WORDS = 5  # syllables: "cấp đổi giấy phép" alone would name every licence
_MAX_NAMES = 6
_MAX_WORDS = 25  # longer is no name anyone types
# "Cấp, cấp lại, cấp đổi giấy phép X": one name per verb ("cấp lại giấy phép X").
_VERBS = (
    "cấp lại", "cấp đổi", "cấp mới", "cấp", "gia hạn", "điều chỉnh", "bổ sung", "sửa đổi", "thay đổi", "đăng ký lại",
    "đăng ký", "thu hồi", "chuyển đổi", "công nhận", "công nhận lại", "xác nhận", "thẩm định", "phê duyệt", "chấp thuận",
)
_VERB_LIST = re.compile(
    r"^((?:(?:" + "|".join(sorted(map(re.escape, _VERBS), key=len, reverse=True)) + r")\s*(?:,|và|hoặc)\s*)+)"
    r"(" + "|".join(sorted(map(re.escape, _VERBS), key=len, reverse=True)) + r")\s+(.+)$",
    re.IGNORECASE,
)


# How a dossier is filed, in the names of procedures that exist once for each way ("Cấp lại chứng nhận đăng ký
# xe ... thực hiện bằng dịch vụ công trực tuyến toàn trình" / "... một phần hoặc trực tiếp"; foreigners'
# temporary residence "bằng Phiếu khai báo tạm trú" / "qua Trang thông tin điện tử").
_CHANNEL = re.compile(
    r"\s*(?:(?:thực hiện\s+)?bằng dịch vụ công(?:\s+trực tuyến)?\s+(?:toàn trình|một phần)(?:\s+hoặc\s+trực tiếp)?"
    r"|qua trang thông tin điện tử|bằng phiếu khai báo tạm trú)\b", re.IGNORECASE)


def _tidy(text: str) -> str:
    """Single spaces, no dangling punctuation or joining words at either end."""
    text = " ".join(text.split())
    text = re.sub(r"\s+([,;.])", r"\1", text)
    previous = None
    while previous != text:
        previous = text
        text = text.strip(" ,;.:-–/")
        text = re.sub(r"\s+(?:và|hoặc|của|cho|về)$", "", text, flags=re.IGNORECASE)
    return text


def _strip_boilerplate(name: str) -> str:
    """The name without "Thủ tục", remarks in brackets, the level and "trong nước"."""
    text = _BRACKETS.sub("", name)
    text = _PREFIX.sub("", _tidy(text))
    text = _WHERE.sub("", text)
    text = _LEVEL_PHRASE.sub("", text)
    text = _DOMESTIC.sub("", text)
    text = _ANYONE.sub("", text)
    return _tidy(text)


def _without_qualifier(name: str) -> str | None:
    """The name before a long "đối với ..."/"trong trường hợp ..." qualifier, if enough is left."""
    found = _QUALIFIER.search(name)
    if found is None:
        return None
    head, tail = name[: found.start()], name[found.end():]
    if len(head.split()) < _MIN_HEAD_WORDS or len(tail.split()) < _LONG_QUALIFIER_WORDS:
        return None
    return _tidy(head)


def _per_verb(name: str) -> list[str]:
    """"Cấp, cấp lại giấy phép X" -> "cấp giấy phép X", "cấp lại giấy phép X"."""
    found = _VERB_LIST.match(name)
    if found is None:
        return []
    listed = [v.strip() for v in re.split(r",|\bvà\b|\bhoặc\b", found.group(1)) if v.strip()]
    return [f"{verb} {found.group(3)}" for verb in (*listed, found.group(2))]


def _names_an_act(part: str, first_word: str) -> bool:
    """Whether a later part of a listing name is itself a procedure: it starts as the first did, or with a verb."""
    folded = part.casefold()
    if _PREFIX.match(part) and not re.match(r"^(?:thủ tục|tthc)\s+đối với", folded):
        return True
    return folded.split(maxsplit=1)[0] == first_word or any(folded.startswith(verb + " ") for verb in _VERBS)


@lru_cache(maxsize=20_000)  # the catalogue is re-read on every knowledge-base change; its names seldom change
def everyday_names(name: str) -> tuple[str, ...]:
    """Names citizens may use for a procedure with this official name (none identical to another, folded)."""
    base = _strip_boilerplate(name)
    candidates: list[str] = []
    # Several procedures in one name ("Đăng ký X/ Đăng ký thay đổi X", "Thủ tục A; Thủ tục B").
    parts = [p for p in re.split(r"\s*;\s*|/\s+(?=[A-ZĐÀ-Ỹ])|\s+/(?=\s)", base) if p.strip()]
    first_word = parts[0].split(maxsplit=1)[0].casefold() if parts else ""
    for number, part in enumerate(parts):
        if number and not _names_an_act(part, first_word):
            continue  # a list of objects or cases after the first procedure, not another procedure's name
        part = _strip_boilerplate(part)
        for variant in (part, *_per_verb(part)):
            candidates.append(variant)
            short = _without_qualifier(variant)
            if short:
                candidates.append(short)
    seen: set[str] = set()
    names: list[str] = []
    for candidate in candidates:
        candidate = _tidy(candidate)
        key = candidate.casefold()
        if 2 <= len(candidate.split()) <= _MAX_WORDS and key not in seen:
            seen.add(key)
            names.append(candidate)
    return tuple(names[:_MAX_NAMES])


# A name that this many official names contain names none of them: "Cấp giấy phép hoạt động" (left of
# "Cấp giấy phép hoạt động đối với cơ sở cai nghiện ma túy") is in dozens of licences' names, and a question
# containing it would count as naming one licence outright.
SHARED_NAME_LIMIT = 3


def plain_name(name: str) -> str:
    """The official name without its boilerplate (what `everyday_names` cuts further)."""
    return _strip_boilerplate(name)


def without_channel(name: str) -> str | None:
    """The folded name of a procedure without how its dossier is filed (and without its boilerplate), or
    None when the name says nothing of that: procedures with the same such name are one procedure filed in
    different ways, which a citizen who asks about it does not tell apart."""
    plain = _strip_boilerplate(name)
    if not _CHANNEL.search(plain):
        return None
    return " ".join(_folded_words(_tidy(_CHANNEL.sub("", plain))))


def channel_of(name: str) -> str | None:
    """How a procedure's dossier is filed, as its name says it ("bằng dịch vụ công trực tuyến toàn trình",
    "qua Trang thông tin điện tử"), or None."""
    found = _CHANNEL.search(name)
    return re.sub(r"^thực hiện\s+", "", found.group(0).strip(), flags=re.IGNORECASE) if found else None


def _folded_words(text: str) -> list[str]:
    return fold(text).lower().replace(",", " ").split()


def shared_names(derived: Iterable[str], official: Iterable[str], limit: int = SHARED_NAME_LIMIT) -> frozenset[str]:
    """The folded derived names that at least `limit` different official names contain, word for word."""
    wanted = {" ".join(_folded_words(n)) for n in derived}
    longest = max((w.count(" ") + 1 for w in wanted), default=0)
    counts = dict.fromkeys(wanted, 0)
    for words in {tuple(_folded_words(_strip_boilerplate(n))) for n in official}:
        found = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 2, min(len(words), i + longest) + 1)}
        for phrase in found & wanted:
            counts[phrase] += 1
    return frozenset(p for p, n in counts.items() if n >= limit)
