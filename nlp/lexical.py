"""A second, different retriever: BM25 (bm25s) over the entries' names and what they say.

The matcher (nlp/matcher.py) compares a question with how entries are *named*; this one also reads what
an entry *says*: its summary, the documents it asks for and its conditions (not its steps: see
knowledge/catalog.py), so a question that names a paper ("bản chà số khung", "tờ khai CT01") finds the
procedure that asks for it.

Terms are folded syllables and every pair of neighbouring syllables ("dang_ky", "ky_thuong"): the pair
is the two-syllable compound without a tokenizer's mistakes on text typed without diacritics.
Measured on the project's question sets, this beat underthesea's word tokens and dictionary compounds
(`nlp/retrieval.py` has the figures). Words every question uses (GENERIC_WORDS) are not terms.

Names and body are two BM25 indexes whose scores are added, the body's at half weight: a word in an
entry's name says more than the same word somewhere in its documents.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import bm25s
import numpy as np

from nlp.features import GAP, GENERIC_WORDS, syllables
from nlp.normalize import normalize

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG otherwise

BODY_WEIGHT = 0.5
ASPECT_FACTOR = 0.3  # as the matcher's: what is asked about must not outweigh which procedure
K1 = 1.5
B = 0.75

# Every term ever read gets a number, and every text its terms' numbers, once per process: rebuilding
# the index after a knowledge-base change re-reads only the texts that changed. Numbers are never
# reused, so an index keeps its meaning while a newer one is built beside it.
_TERM_IDS: dict[str, int] = {}
_TEXT_IDS: dict[str, array] = {}  # 4 bytes a term: the texts of 2,700 entries hold about 1.6 million


def terms(sylls: Sequence[str]) -> list[str]:
    """BM25 terms of folded syllables: the specific ones, and neighbouring pairs not both generic."""
    out = [s for s in sylls if s != GAP and s not in GENERIC_WORDS]
    out += [f"{a}_{b}" for a, b in pairwise(sylls) if GAP not in (a, b) and not (a in GENERIC_WORDS and b in GENERIC_WORDS)]
    return out


def text_term_ids(raw: str) -> array:
    """The numbers of an entry's text's terms, remembered."""
    found = _TEXT_IDS.get(raw)
    if found is None:
        ids = _TERM_IDS
        found = _TEXT_IDS[raw] = array("I", [ids.setdefault(t, len(ids)) for t in terms(syllables(normalize(raw)))])
    return found


def _document(texts: Iterable[str]) -> array:
    """One entry's field as term numbers: its texts' numbers one after the other."""
    out = array("I")
    for text in texts:
        out.extend(text_term_ids(text))
    return out


def term_number(term: str) -> int | None:
    """The number of a BM25 term ("dang_ky", "ky"), or None when no text ever had it."""
    return _TERM_IDS.get(term)


class _Numbers:
    """The vocabulary as bm25s reads it: only its values, the term numbers 0..n-1 (no dict of them all)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def values(self) -> range:
        return range(self.size)


@dataclass
class _Corpus:
    """Documents as lists of term numbers, in the form bm25s takes them ("ids" and "vocab")."""

    ids: list[array]
    vocab: _Numbers


class _Scores:
    """The BM25 scores bm25s computed at indexing (one posting list of documents and scores per term),
    read without bm25s: its `get_scores` adds one term at a time and checks its input on every call,
    which cost more than the adding for a question's few terms."""

    def __init__(self, model: bm25s.BM25) -> None:
        if model.nonoccurrence_array is not None:  # BM25L and BM25+ only; this index is Lucene's BM25
            raise ValueError(f"BM25 variant {model.method!r} gives scores to absent terms: not supported")
        self.data = model.scores["data"]
        self.indices = model.scores["indices"]
        self.indptr = model.scores["indptr"]
        self.size = model.scores["num_docs"]

    def scores(self, wanted: list[int]) -> np.ndarray:
        """Every document's score for the term numbers `wanted`, exactly as bm25s's `get_scores`: the
        same float32 additions in the same order (np.add.at adds its items one after the other)."""
        scores = np.zeros(self.size, dtype=self.data.dtype)
        spans = [(self.indptr[t], self.indptr[t + 1]) for t in wanted]
        np.add.at(scores, np.concatenate([self.indices[a:b] for a, b in spans]),
                  np.concatenate([self.data[a:b] for a, b in spans]))
        return scores


class LexicalIndex:
    """BM25 over entries' names (name, aliases, examples) and bodies (summary, documents, conditions)."""

    def __init__(self, ids: Sequence[str], names: Sequence[Iterable[str]], bodies: Sequence[Iterable[str]]) -> None:
        """`names[i]` and `bodies[i]`: the texts of entry `ids[i]`."""
        self.ids = list(ids)
        name_docs = [_document(texts) for texts in names]
        body_docs = [_document(texts) for texts in bodies]
        self._size = len(_TERM_IDS)  # terms numbered later (by a newer index) are unknown to this one
        # A field with no text at all (entries given without a body) is left out: BM25 cannot average nothing.
        self._fields = [(self._bm25(docs), weight) for docs, weight in ((name_docs, 1.0), (body_docs, BODY_WEIGHT))
                        if any(docs)]
        # Each entry's distinct terms, sorted (about 2 MB for the national catalogue): what a question's
        # terms an entry's whole text mentions is then a search in one array, not a set built per question.
        self._entry_terms = {entry_id: np.unique(np.concatenate([np.asarray(name, dtype=np.int64), np.asarray(body, dtype=np.int64)]))
                             for entry_id, name, body in zip(self.ids, name_docs, body_docs)}
        # Every term some entry's text has, one byte per term number (looked up several times a question, a
        # byte is read faster than an array searched): a pair of words written there is a pair, not a typo (`knows`).
        known = np.zeros(self._size, dtype=np.uint8)
        for entry_terms in self._entry_terms.values():
            known[entry_terms] = 1
        self._known = known.tobytes()

    def _bm25(self, docs: list[array]) -> _Scores:
        model = bm25s.BM25(k1=K1, b=B)
        model.index(_Corpus(docs, _Numbers(self._size)), create_empty_token=False, show_progress=False)
        return _Scores(model)

    def knows(self, term: str) -> bool:
        """Whether some entry's text has this term ("giao_duc": a pair of words)."""
        number = _TERM_IDS.get(term)
        return number is not None and number < self._size and self._known[number] == 1

    def mentions(self, groups: Sequence[Sequence[str]], numbers: Sequence[int | None]) -> list[list[bool]]:
        """For each group of entries (one candidate and its equivalents), whether some entry's texts (names,
        examples, body) have each term number (None: a term no text has). The question's numbers are made
        an array once for all the groups, not once per entry."""
        wanted = np.array([-1 if n is None else n for n in numbers], dtype=np.int64)
        out = []
        for group in groups:
            found = np.zeros(len(wanted), dtype=bool)
            for entry_id in group:
                known = self._entry_terms[entry_id]
                if len(known):
                    found |= known[np.minimum(np.searchsorted(known, wanted), len(known) - 1)] == wanted
            out.append(found.tolist())
        return out

    def scores(self, sylls: Sequence[str], muted: Sequence[str] | None = None) -> np.ndarray:
        """The BM25 score of every entry (in `ids` order) for a question's folded syllables; terms found
        only outside `muted` (the question without its aspect phrases) count for ASPECT_FACTOR."""
        numbers = {i for i in map(_TERM_IDS.get, terms(sylls)) if i is not None and i < self._size}
        total = np.zeros(len(self.ids), dtype=np.float32)
        if not numbers:
            return total
        groups = [(sorted(numbers), 1.0)]
        if muted is not None:
            kept = numbers.intersection(map(_TERM_IDS.get, terms(muted)))
            groups = [(sorted(kept), 1.0), (sorted(numbers - kept), ASPECT_FACTOR)]
        for wanted, factor in groups:
            if wanted:
                for field, weight in self._fields:
                    total += factor * weight * field.scores(wanted)
        return total

    def search(self, sylls: Sequence[str], muted: Sequence[str] | None = None, limit: int = 20) -> list[tuple[str, float]]:
        """The best entries with their scores, best first; entries sharing no term are left out."""
        scores = self.scores(sylls, muted)
        limit = min(limit, len(scores))
        if limit <= 0:
            return []
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return [(self.ids[i], score) for i, score in zip(top.tolist(), scores[top].tolist())]  # Python numbers: faster to read
