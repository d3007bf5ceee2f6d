"""Cleaning, teencode expansion and diacritics folding of what citizens type.

Two forms come out of here: `normalize()` keeps diacritics (for the tokenizer and for display) and
`fold()` strips them, so that "lam cccd" and "làm CCCD" meet in the index.
"""

from __future__ import annotations

import html
import re
import unicodedata

from nlp.teencode import CONTEXT_SENSITIVE, TEENCODE, mistyped_abbreviation

MAX_QUESTION_CHARS = 4096  # the whole of a Telegram message (its limit); Zalo allows 2,000


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "D"}
    for code in range(0x00C0, 0x1EFF + 1):
        char = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
        if base != char and base.isascii():
            table[code] = base
    for mark in range(0x0300, 0x036F + 1):  # stray combining marks from decomposed input
        table[mark] = ""
    return table


_FOLD = _build_fold_table()
_TAG = re.compile(r"<[^>]{0,200}>")
_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`~#>|\[\]{}]")
_WORD = re.compile(r"[^\W_]+(?:[./-][^\W_]+)*", re.UNICODE)
_TOKEN = re.compile(r"[^\W_]+(?:[./-][^\W_]+)*|[,.;:!?…]", re.UNICODE)  # words and clause punctuation
CLAUSE_MARKS = frozenset(",.;:!?…")
# Characters kept as they are (printable, not symbols): a text made only of these skips the slow
# character-by-character filter of `clean` (entries' long texts are cleaned by the thousand).
_PLAIN = frozenset(
    ch for code in (*range(0x20, 0x7F), *range(0xC0, 0x250), *range(0x1E00, 0x1F00), *range(0x2010, 0x2027))
    if (ch := chr(code)).isprintable() and unicodedata.category(ch)[0] != "S"
)
_REPEAT = re.compile(r"[^\W\d_]*?([^\W\d_])\1{2,}\b", re.UNICODE)  # "khôngggg" -> "không"


def _unrepeat(found: re.Match) -> str:
    """A letter held down ("khôngggg") typed once; abbreviations that end so ("pccc") are left alone."""
    word = found.group(0)
    return word if word in TEENCODE else word[: found.start(1) - found.start(0) + 1]


def fold(text: str) -> str:
    """Lower-case text without Vietnamese diacritics ("Đăng ký" -> "dang ky")."""
    return text.translate(_FOLD).lower()


def clean(text: str) -> str:
    """Unicode NFC, no HTML/Markdown/URLs/control characters/emoji, lower case, single spaces."""
    text = unicodedata.normalize("NFC", text[: MAX_QUESTION_CHARS * 2])
    text = html.unescape(_TAG.sub(" ", text))
    text = _URL.sub(" ", text)
    text = _MARKDOWN.sub(" ", text)
    if not _PLAIN.issuperset(text):
        text = "".join(ch if ch.isprintable() and unicodedata.category(ch)[0] != "S" else " " for ch in text)
    text = _REPEAT.sub(_unrepeat, text.lower())
    return " ".join(text.split())[:MAX_QUESTION_CHARS]


# Two words joined by a slash, dot or dash without a digit in sight ("doanh nghiệp/tổ chức", "hết niên
# hạn/hư hỏng", "tp.hcm") are two words; a code keeps its joins ("85/2019/tt-btc", "c/o", "km/h").
_JOINED_WORDS = re.compile(r"(?<=[^\W\d_][^\W\d_])[./-](?=[^\W\d_]{2})", re.UNICODE)
_JOINS = frozenset("./-")


def _split_joined(text: str, found: list[str]) -> list[str]:
    if "/" not in text and "." not in text and "-" not in text:
        return found
    out = []
    for word in found:
        if _JOINS.intersection(word) and not any(ch.isdigit() for ch in word):
            out.extend(_JOINED_WORDS.split(word))
        else:
            out.append(word)
    return out


def words(text: str) -> list[str]:
    """The word tokens of cleaned text (syllables, codes like 85/2019/tt-btc kept whole)."""
    return _split_joined(text, _WORD.findall(text))


def tokens(text: str) -> list[str]:
    """Words and clause punctuation of cleaned text, in order."""
    return _split_joined(text, _TOKEN.findall(text))


def expand_at(tokens: list[str], index: int) -> str:
    """The standard form of tokens[index], read with its neighbours ("dk" is "được" or "đăng ký")."""
    token = tokens[index]
    resolver = CONTEXT_SENSITIVE.get(token)
    if resolver is not None:
        previous = tokens[index - 1] if index > 0 else None
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        return resolver(previous, following)
    return TEENCODE.get(token, token)


def expand_teencode(tokens: list[str]) -> list[str]:
    """Replace chat abbreviations and teencode by standard words ("ko" -> "không", "cccd" -> ...)."""
    out: list[str] = []
    for i, token in enumerate(tokens):
        if token in TEENCODE or token in CONTEXT_SENSITIVE:
            out.extend(expand_at(tokens, i).split())
        elif (meant := mistyped_abbreviation(token)) is not None:
            out.extend(TEENCODE[meant].split())
        else:
            out.append(token)
    return out


def normalize(text: str) -> str:
    """Cleaned text with teencode expanded, diacritics kept where the citizen typed them."""
    return " ".join(expand_teencode(tokens(clean(text))))
