"""Turning normalised text into the weighted features the matcher compares."""

from __future__ import annotations

import importlib.util
import sys
import unicodedata
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from underthesea import word_tokenize

from nlp.normalize import CLAUSE_MARKS, fold, normalize, tokens, words

# Folded forms collide ("sơ"/"sổ", "do"/"đỏ", "hồ"/"hộ"): a word whose folded form is also a
# procedure word ("sổ đỏ", "hộ khẩu") must not be listed here.
# Words nearly every question shares: they say *that* someone asks, not *what* about. They keep a
# small weight so that a question made only of them still finds nothing specific.
GENERIC_WORDS = frozenset(
    fold(w)
    for w in """
    thủ tục hành chính giấy tờ làm như thế nào sao bao nhiêu gì những cần phải có không được
    cho tôi em anh chị mình ạ ơi vậy thì là và với của ở đâu nào nơi muốn hỏi xin nhờ giúp
    bác cháu cô chú ông bà ad admin bot rồi đã đang sẽ mới này kia đấy nhé nha hả nhỉ chứ
    cái các một hai lại cũng luôn nữa thế gồm bước về đi đến lên xuống ra vào khi lúc nếu mà
    người ta mọi bạn nó họ còn hay hoặc tại vì nên bị bởi để trong ngoài trên dưới theo
    giờ nay hôm ngày đây nhiêu biết ai hết tốn lâu mấy tiền phí lệ lên lấy xong hiểu ok thêm
    """.split()  # noqa: SIM905 - a word list reads best as words
)


def _vietnamese_words() -> list[list[str]]:
    """The folded syllables of each word of the Vietnamese word list that ships with underthesea (Viet74K);
    empty without the list (another underthesea layout)."""
    spec = importlib.util.find_spec("underthesea")
    path = Path(spec.origin).parent / "corpus" / "data" / "Viet74K.txt" if spec and spec.origin else None
    if path is None or not path.exists():
        return []
    text = unicodedata.normalize("NFC", path.read_text(encoding="utf-8").lower())
    return [line.split() for line in text.splitlines() if line.strip()]


_VIETNAMESE_WORDS = _vietnamese_words()
# A word the index does not know but Vietnamese does ("hoạch", "ngược") is not a typo of a word it
# knows ("hoặc", "người"); without the list every unknown word may be.
VIETNAMESE_SYLLABLES = frozenset(fold(s) for word in _VIETNAMESE_WORDS for s in word if s.isalpha())
# Nor is one of two neighbours that make a Vietnamese word together ("an ninh", "thất nghiệp", "đối
# tượng") a typo, however few entries use that word (with the 53 starter entries, "ninh" was mended to
# "tỉnh", "thất" to "thai"): the pairs as written, and folded (for text typed without diacritics).
VIETNAMESE_WORD_PAIRS = frozenset(f"{a} {b}" for word in _VIETNAMESE_WORDS for a, b in pairwise(word) if a.isalpha() and b.isalpha())
VIETNAMESE_PAIRS = frozenset(fold(pair) for pair in VIETNAMESE_WORD_PAIRS)
# Syllables as written, diacritics and all ("vàng", "sang"): in a question typed with diacritics, one of
# these is the word the citizen chose, not a slip of another that only its folded letters are near
# ("biển số vàng sang trắng" was mended to "biển số bằng vàng trắng").
VIETNAMESE_WRITTEN_SYLLABLES = frozenset(s for word in _VIETNAMESE_WORDS for s in word if s.isalpha())
del _VIETNAMESE_WORDS

# Pairs of such words that together do name something: "bản sao" (folded like "bạn sao"), "làm lại".
CONTENT_PAIRS = frozenset({"ban sao", "lam lai"})
# And pairs of content-looking syllables that every question uses ("hồ sơ" folds like "hộ sổ").
GENERIC_PAIRS = frozenset({"ho so", "thu tuc", "giay to"})


@lru_cache(maxsize=4096)
def compounds(text: str) -> tuple[str, ...]:
    """Multi-syllable words found by underthesea, folded ("thường trú" -> "thuong tru")."""
    if not text:
        return ()
    return tuple(fold(t) for t in word_tokenize(text) if " " in t)


# "mất" is a procedure word in "làm mất thẻ" or "bố tôi mất", but only a verb of cost in "mất bao lâu",
# "mất phí": there it must not pull the question towards lost papers or death registration.
GAP = "_"
_COST_AFTER_MAT = frozenset(["bao", "may", "le", "phi", "tien", "nhieu", "thoi", "khoang", "tam", "het", "bn", "chi"])


def syllables(normalized: str, written: list[str] | None = None) -> list[str]:
    """Folded syllables; clause breaks (punctuation, "thì") become gaps no pair is formed across.
    `written`: the text's `tokens`, when the caller has them already."""
    if written is None:
        written = tokens(normalized)
    folded = tokens(fold(normalized))  # one fold of the whole text: much faster than one per word
    if len(folded) != len(written):  # a character that folds to nothing split a word differently
        folded = [fold(t) for t in written]
    sylls = [GAP if t in CLAUSE_MARKS or t == "thì" else f for t, f in zip(written, folded)]
    # The muted "mất" leaves a gap, so its neighbours don't form a pair they never formed.
    return [GAP if s == "mat" and i + 1 < len(sylls) and sylls[i + 1] in _COST_AFTER_MAT else s for i, s in enumerate(sylls)]


def text_features(normalized: str, with_compounds: bool = True, sylls: list[str] | None = None) -> set[str]:
    """Unigrams, bigrams and underthesea compounds of already normalised text (all folded); `sylls`: its
    `syllables`, when the caller has them already."""
    if sylls is None:
        sylls = syllables(normalized)
    feats: set[str] = {s for s in sylls if s != GAP}
    feats.update(f"{a} {b}" for a, b in pairwise(sylls) if GAP not in (a, b))
    if with_compounds:
        feats.update(c for c in compounds(normalized) if c.count(" ") >= 2)
    return feats


_INDEX_CACHE: dict[str, frozenset[str]] = {}
_WORDS_CACHE: dict[str, tuple[str, ...]] = {}


def index_words(raw: str) -> tuple[str, ...]:
    """The normalised words of an entry's text (with their diacritics), remembered like its features."""
    found = _WORDS_CACHE.get(raw)
    if found is None:
        found = _WORDS_CACHE[raw] = tuple(map(sys.intern, words(normalize(raw))))  # one copy of each word
    return found


def index_features(raw: str) -> frozenset[str]:
    """Features of an entry's name, alias or example; remembered, so that rebuilding the index after
    a change re-reads only the texts that changed (tokenising thousands of names takes seconds)."""
    feats = _INDEX_CACHE.get(raw)
    if feats is None:
        feats = _INDEX_CACHE[raw] = frozenset(map(sys.intern, text_features(normalize(raw))))
    return feats
