"""Finding the entries a question is about: a weighted index of names, aliases and example phrasings.

Each entry contributes phrases (its name, short name, aliases, examples). A question scores an entry
by two things: how much of the question's weight the entry's vocabulary covers, and how close the
question is to the entry's single most similar phrase. Feature weights are inverse entry frequency,
so words every entry shares (thủ tục, giấy tờ, làm) cannot decide; typos are mended with rapidfuzz
against the index's vocabulary before scoring.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from nlp.features import (
    CONTENT_PAIRS,
    GAP,
    GENERIC_PAIRS,
    GENERIC_WORDS,
    VIETNAMESE_PAIRS,
    VIETNAMESE_SYLLABLES,
    VIETNAMESE_WORD_PAIRS,
    VIETNAMESE_WRITTEN_SYLLABLES,
    index_features,
    index_words,
    syllables,
    text_features,
)
from nlp.lexical import LexicalIndex, term_number
from nlp.names import without_channel
from nlp.normalize import CLAUSE_MARKS, fold, tokens

GENERIC_FACTOR = 0.12
TYPO_FACTOR = 0.8
ASPECT_FACTOR = 0.3
OTHER_FORM_FACTOR = 0.6  # "vàng" typed with its marks only faintly matches the index's "vắng"
ALIAS_WEIGHT = 0.1  # the entry the question names outright ranks above one whose examples merely resemble it  # a tie-breaker only: full-feature closeness to the entry's nearest phrasing
COVER_MIN_WEIGHT = 0.25  # lighter features are in nearly every entry: they move every cover alike
COVER_WEIGHT = 0.4
PHRASE_WEIGHT = 0.6
# Features lighter than this (words every entry uses) are left out of phrase similarity: they would
# only add noise, and their long posting lists would cost most of the search time.
PHRASE_MIN_WEIGHT = 0.6
ACCENTED_SHARE = 0.4  # of a question's syllables with a mark, from which it counts as typed with diacritics


_TELEX_DOUBLE = {"aa": "a", "aw": "a", "ee": "e", "oo": "o", "ow": "o", "uw": "u", "dd": "d"}


def _untelex(token: str) -> str:
    """Undo Telex keystrokes left in folded text ("nhuwng" -> "nhung", "kys" -> "ky", "ddaau" -> "dau")."""
    out = token
    for pair, letter in _TELEX_DOUBLE.items():
        out = out.replace(pair, letter)
    out = out.replace("w", "")
    if len(out) > 2 and out[-1] in "sfrxj" and out[-2] in "aeiouy":
        out = out[:-1]
    return out


@dataclass(frozen=True)
class EntryText:
    """What the matcher needs to know of an entry: its id and the texts that name it."""

    id: str
    name: str
    phrases: tuple[str, ...] = ()
    equivalents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # the names citizens give it (a subset of phrases), the surest evidence
    body: tuple[str, ...] = ()  # what it says (summary, documents, conditions): read by the lexical retriever only


class Match(NamedTuple):  # a tuple: some twenty are made for every question, several times faster than a dataclass
    entry_id: str
    score: float
    cover: float
    phrase: float
    alias_hit: float = 0.0  # how fully the question contains one of the entry's names (0..1)
    # How much of the question one of the entry's names accounts for (0..1): the other side of alias_hit.
    # A long official name is only partly in any question ("khai báo vũ khí" of "Khai báo vũ khí thô sơ,
    # vũ khí thể thao..."), yet it can explain the whole question.
    name_share: float = 0.0
    wording_share: float = 0.0  # the same for any one of its phrasings, its official name included


@dataclass
class QueryAnalysis:
    """The weighted features of one question, with the typos that were mended."""

    weights: dict[str, float]
    content_weight: float
    unknown_weight: float
    corrections: dict[str, str] = field(default_factory=dict)
    # The question's syllables as written (before mending) and those of its muted form, for BM25 to
    # read the same question without cutting it into syllables again.
    syllables: list[str] = field(default_factory=list)
    muted_syllables: list[str] | None = None


class KnowledgeIndex:
    """Immutable search index over entries; build once per knowledge-base version."""

    def __init__(self, entries: list[EntryText], representative: dict[str, str] | None = None) -> None:
        """`representative`: for entries that are the same procedure at several levels, the one to
        answer with (the office's own level); they then count as one candidate, not as rivals."""
        self.entries = {e.id: e for e in entries}
        self._alias_of: dict[str, str] = dict(representative or {})
        for entry in entries:
            for other in entry.equivalents:
                self._alias_of.setdefault(other, self._alias_of.get(entry.id, entry.id))
        # Each canonical id's entries (itself and its equivalents): what one candidate's texts are.
        self._members: dict[str, tuple[str, ...]] = {}
        for entry in entries:
            canonical = self._alias_of.get(entry.id, entry.id)
            self._members[canonical] = (*self._members.get(canonical, ()), entry.id)
        # Names that two different procedures both carry ("đăng ký cư trú": temporary and permanent
        # registration), folded, for each procedure that carries one: a question naming one names neither.
        owners: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for entry in entries:
            for alias in entry.aliases:
                owners[tuple(fold(w) for w in index_words(alias))].add(self._alias_of.get(entry.id, entry.id))
        shared: dict[str, list[tuple[tuple[str, ...], frozenset[str]]]] = defaultdict(list)
        for name, ids in owners.items():
            if len(ids) > 1 and name:
                for entry_id in ids:
                    shared[entry_id].append((name, frozenset(ids)))
        self.shared_names = {entry_id: tuple(names) for entry_id, names in shared.items()}
        # Procedures that are one procedure filed in different ways (`without_channel`): for each, the others.
        # A question about foreigners' temporary residence asks about both the paper and the online one, so
        # neither is the other's rival.
        filed: dict[str, set[str]] = defaultdict(set)
        for entry in entries:
            key = without_channel(entry.name)
            if key:
                filed[key].add(self._alias_of.get(entry.id, entry.id))
        self.siblings: dict[str, frozenset[str]] = {entry_id: frozenset(ids - {entry_id})
                                                    for ids in filed.values() if len(ids) > 1 for entry_id in ids}
        phrase_owner: list[str] = []
        phrase_feats: list[set[str]] = []
        entry_feats: dict[str, set[str]] = defaultdict(set)
        # The written forms behind each folded syllable: "vang" was only ever "vắng" here, so a
        # question that spells "vàng" (gold) with its marks is not asking about "tạm vắng".
        self._forms: dict[str, set[str]] = defaultdict(set)
        for entry in entries:
            seen: set[frozenset[str]] = set()
            for text in (entry.name, *entry.phrases):
                for word in index_words(text):
                    self._forms[fold(word)].add(word)
                feats = index_features(text)
                if not feats or feats in seen:
                    continue  # the same phrasing twice ("Đăng ký lại khai tử" as name and alias) is compared once
                seen.add(feats)
                phrase_owner.append(entry.id)
                phrase_feats.append(feats)
                entry_feats[entry.id] |= feats
        total = max(len(entries), 1)
        doc_freq: dict[str, int] = defaultdict(int)
        for feats in entry_feats.values():
            for f in feats:
                doc_freq[f] += 1
        self.unknown_idf = math.log((total + 1) / 0.5)
        self.weight: dict[str, float] = {f: self._weigh(f, math.log((total + 1) / (df + 0.5))) for f, df in doc_freq.items()}
        self.vocabulary: list[str] = sorted(f for f in doc_freq if " " not in f and len(f) >= 3 and not f.isdigit())
        # The index's words of three syllables or more: underthesea's compounds of its names and phrasings.
        # A question's are looked up among them by their folded syllables (`_compounds_in`) rather than
        # found by tokenizing the question: typed without diacritics, "von dieu le" is no word to
        # underthesea, and its accented twin's compounds are the only ones the index could use anyway.
        self._compounds = frozenset(f for f in doc_freq if f.count(" ") >= 2)
        self._compound_sizes = sorted({f.count(" ") + 1 for f in self._compounds})
        # For mending a typo that is itself a word ("kết hông", "kinh doan"): the known neighbours of each syllable.
        self._next: dict[str, list[str]] = defaultdict(list)
        self._prev: dict[str, list[str]] = defaultdict(list)
        # Sorted: rapidfuzz keeps the first of equally close neighbours, and the order of a set of strings
        # changes with Python's hash seed, so unsorted lists mended "chung" to "cung" in one process and to
        # "nhung" in another.
        for f in sorted(doc_freq):
            if f.count(" ") == 1:
                first, second = f.split(" ")
                self._next[first].append(second)
                self._prev[second].append(first)
        # Postings are arrays of positions (entries in `_ids`, phrases, aliases), so that a question's
        # features are summed into whole arrays at once instead of one posting at a time.
        self._ids = [e.id for e in entries]
        position = {entry_id: i for i, entry_id in enumerate(self._ids)}
        entry_postings: dict[str, list[int]] = defaultdict(list)
        for entry_id, feats in entry_feats.items():
            for f in feats:
                entry_postings[f].append(position[entry_id])
        self._entry_postings = _arrays(entry_postings)
        # Aliases are indexed like phrases, so how much of each alias a question contains is summed
        # while reading the question's features, not by comparing every alias afterwards.
        alias_owner: list[int] = []
        alias_total: list[float] = []
        alias_postings: dict[str, list[int]] = defaultdict(list)
        # A name of several words is named only when two of its words stand together in the question: a
        # lone syllable of it ("giam" of "giám hộ", typed in "giá xăng tăng hay giảm") names nothing.
        alias_needs_pair: list[bool] = []
        for entry in entries:
            for alias in entry.aliases:
                # Sorted, as the question's features are (`analyse`): sums in one order in every process.
                heavy = sorted(f for f in index_features(alias) if self.weight.get(f, 0.0) >= PHRASE_MIN_WEIGHT)
                if heavy:
                    for f in heavy:
                        alias_postings[f].append(len(alias_owner))
                    alias_owner.append(position[entry.id])
                    alias_total.append(sum(self.weight[f] for f in heavy))
                    alias_needs_pair.append(any(" " in f for f in heavy))
        self._alias_owner = np.array(alias_owner, dtype=np.int32)
        self._alias_total = np.array(alias_total, dtype=np.float64)
        self._alias_alone = ~np.array(alias_needs_pair, dtype=bool)  # named by any of its words
        phrase_postings: dict[str, list[int]] = defaultdict(list)
        phrase_norm: list[float] = []
        for idx, feats in enumerate(phrase_feats):
            heavy = sorted(f for f in feats if self.weight[f] >= PHRASE_MIN_WEIGHT)
            for f in heavy:
                phrase_postings[f].append(idx)
            phrase_norm.append(math.sqrt(sum(self.weight[f] ** 2 for f in heavy)) or 1.0)
        self._phrase_owner = np.array([position[e] for e in phrase_owner], dtype=np.int32)
        self._phrase_norm = np.array(phrase_norm, dtype=np.float64)
        # For each feature heavy enough to name something: its phrasings' and its aliases' places in the
        # search's sums (`search`: entries, then phrasings, then aliases), one array, and how many are phrasings.
        n_ids, n_phrases = len(self._ids), len(phrase_norm)
        self._named_postings: dict[str, tuple[float, np.ndarray, int]] = {}
        for f, base in self.weight.items():
            if base >= PHRASE_MIN_WEIGHT:
                phrases, aliases = phrase_postings.get(f, []), alias_postings.get(f, [])
                places = np.array([n_ids + p for p in phrases] + [n_ids + n_phrases + a for a in aliases], dtype=np.int32)
                self._named_postings[f] = (base, places, len(phrases))
        self.lexical = LexicalIndex(self._ids, [(e.name, *e.phrases) for e in entries], [e.body for e in entries])

    @staticmethod
    def _weigh(feature: str, idf: float) -> float:
        parts = feature.split(" ")
        if feature in GENERIC_PAIRS or feature not in CONTENT_PAIRS and all(p in GENERIC_WORDS for p in parts):
            return idf * GENERIC_FACTOR
        return idf

    def canonical(self, entry_id: str) -> str:
        """The id an equivalent (same procedure, other level) is answered under."""
        return self._alias_of.get(entry_id, entry_id)

    def analyse(self, normalized: str, muted: str | None = None) -> QueryAnalysis:
        """Weigh a question's features; those found only outside `muted` (the question without its
        aspect phrases: "lệ phí", "online", "qua bưu điện") count for less, so that what is asked
        about does not outweigh which procedure it is asked about."""
        muted_sylls = syllables(muted) if muted is not None else None
        kept = text_features(muted, with_compounds=False, sylls=muted_sylls) if muted is not None else None
        written = tokens(normalized)  # cut once, for the misspelt forms, the syllables and the mending
        misspelt = self._other_forms(normalized, written)
        sylls = syllables(normalized, written)
        as_written = list(sylls)
        corrections: dict[str, str] = {}
        for token in set(sylls):
            if token in self.weight or any(ch.isdigit() for ch in token) or token in GENERIC_WORDS or token == GAP:
                continue
            telex = _untelex(token)
            if telex != token and (telex in self.weight or telex in GENERIC_WORDS):
                corrections[token] = telex
                continue
            if len(token) < 4 or token in VIETNAMESE_SYLLABLES:
                continue  # a real word the index does not use is no typo (pairs of real words: `_mend_pairs`)
            best = process.extractOne(token, self.vocabulary, scorer=OSA.normalized_similarity, score_cutoff=0.74)
            if best is not None:
                corrections[token] = best[0]
        if corrections:
            sylls = [corrections.get(s, s) for s in sylls]
        sylls, pair_fixes = self._mend_pairs(sylls, written)
        corrections.update(pair_fixes)
        if corrections:
            # Only the mended words change: punctuation, "thì" and a muted "mất" stay as written (they are
            # gaps in the syllables, and writing a gap back as a word would invent a "mất" the citizen never typed).
            normalized = " ".join(new if new != old else token for token, old, new in zip(written, as_written, sylls))
            mended_sylls = syllables(normalized)
            feats = text_features(normalized, with_compounds=False, sylls=mended_sylls) | self._compounds_in(mended_sylls)
        else:
            feats = text_features(normalized, with_compounds=False, sylls=as_written) | self._compounds_in(as_written)
        mended = set(corrections.values())
        weights: dict[str, float] = {}
        unknown = 0.0
        # Sorted: every sum over the question's features (the search's, the content's) then adds in one
        # order whatever Python's hash seed. In set order an alias was named 1.0 in one process and
        # 0.9999999999999999 in another, and the decision tipped between answering and offering choices.
        for f in sorted(feats):
            w = self.weight.get(f)
            if w is None:
                if " " in f:
                    continue  # an unseen pair of known words says nothing new
                w = self.unknown_idf * (GENERIC_FACTOR if f in GENERIC_WORDS or f.isdigit() or len(f) < 2 else 0.6)
                unknown += w
            elif mended and mended & set(f.split(" ")):
                w *= TYPO_FACTOR
            if misspelt and misspelt & set(f.split(" ")):
                w *= OTHER_FORM_FACTOR
            if kept is not None and f not in kept:
                w *= ASPECT_FACTOR
            weights[f] = w
        content = sum(w for f, w in weights.items() if " " not in f and f not in GENERIC_WORDS and not f.isdigit())
        return QueryAnalysis(weights, content, unknown, corrections, as_written, muted_sylls)

    def _compounds_in(self, sylls: list[str]) -> set[str]:
        """The index's compounds (three syllables or more) the question's syllables contain, within a clause."""
        found = set()
        for size in self._compound_sizes:
            for i in range(len(sylls) - size + 1):
                window = sylls[i:i + size]
                if GAP not in window and (joined := " ".join(window)) in self._compounds:
                    found.add(joined)
        return found

    def _other_forms(self, normalized: str, written: list[str]) -> set[str]:
        """Folded syllables the question writes, with diacritics, as a word the index never uses; `written`:
        its `tokens` (its words, and clause marks that no index word is)."""
        if normalized.isascii():
            return set()
        out = set()
        for word in written:
            if not word.isascii() and word not in CLAUSE_MARKS:
                folded = fold(word)
                forms = self._forms.get(folded)
                if forms and word not in forms and folded not in GENERIC_WORDS:
                    out.add(folded)
        return out

    def _mend_pairs(self, sylls: list[str], written: list[str]) -> tuple[list[str], dict[str, str]]:
        """Fix a syllable that is a word but not the one meant, when a known pair is one edit away;
        `written`: the same syllables with their diacritics."""
        fixes: dict[str, str] = {}
        out = list(sylls)
        letters = [w for w in written if w.isalpha()]
        # Typed with diacritics: most syllables carry a mark. A few marks in folded text ("nghỉ đc 12
        # tháng r thì rut dc k ạ") leave its unmarked syllables as open to mending as before.
        accented = sum(not w.isascii() for w in letters) >= ACCENTED_SHARE * len(letters) > 0

        def paired(i: int, j: int) -> bool:
            """Whether the syllables as written at i and j (j = i + 1) are a known pair: in an entry's
            name or phrasing, or anywhere in its text ("giáo dục", "trường trung học" are in records'
            bodies, and were "mended" to "gia dục", "trong rung học")."""
            if i < 0 or j >= len(sylls):
                return False
            return f"{sylls[i]} {sylls[j]}" in self.weight or self.lexical.knows(f"{sylls[i]}_{sylls[j]}")

        def a_word(i: int, j: int, folded_too: bool) -> bool:
            """Whether the syllables at i and j make a Vietnamese word. Two neighbours that do are no typo,
            however few entries use that word (with the 53 starter entries "an ninh" became "an tỉnh",
            "thất nghiệp" "thai nghiệp"). Folded, the word list has a pair for nearly any two syllables
            ("doan can"): text typed without diacritics is read folded only where `folded_too`."""
            if i < 0 or j >= len(sylls):
                return False
            if not (written[i].isascii() and written[j].isascii()):
                return f"{written[i]} {written[j]}" in VIETNAMESE_WORD_PAIRS
            return folded_too and f"{sylls[i]} {sylls[j]}" in VIETNAMESE_PAIRS

        def protected(i: int, j: int) -> bool:
            """A word is not mended to fit one neighbour when it makes a pair with the other."""
            return paired(i, j) or a_word(i, j, folded_too=False)

        def chosen(i: int) -> bool:
            """Whether the syllable at i, in a question typed with diacritics, is a Vietnamese word as
            written: never mended."""
            return accented and written[i] in VIETNAMESE_WRITTEN_SYLLABLES

        # Context is read as written, never as mended, and a syllable that makes a known pair with its
        # other neighbour is no typo: mending "thời hạn sang tên xe" pair by pair changed "sang" to fit
        # "hạn" ("hạn bằng") and then "tên" to fit the new "bằng" ("bằng tiền").
        for i in range(len(out) - 1):
            a, b = sylls[i], sylls[i + 1]
            if paired(i, i + 1) or a_word(i, i + 1, folded_too=True) or a in GENERIC_WORDS or b in GENERIC_WORDS or len(a) < 2 or len(b) < 2:
                continue
            if any(ch.isdigit() for ch in a + b):  # a number or a code is never a typo for another one
                continue
            if a in self._next and self.weight.get(a, 0) >= PHRASE_MIN_WEIGHT and not protected(i + 1, i + 2) and not chosen(i + 1):
                best = process.extractOne(b, self._next[a], scorer=OSA.normalized_similarity, score_cutoff=0.74)
                if best is not None:
                    fixes[b] = out[i + 1] = best[0]
                    continue
            if b in self._prev and self.weight.get(b, 0) >= PHRASE_MIN_WEIGHT and not protected(i - 1, i) and out[i] == a and not chosen(i):
                best = process.extractOne(a, self._prev[b], scorer=OSA.normalized_similarity, score_cutoff=0.74)
                if best is not None:
                    fixes[a] = out[i] = best[0]
        return out, fixes

    def content_weight(self, sylls: Sequence[str]) -> float:
        """How much a text says about *which* procedure: the weight of its specific words; `sylls`: its
        `syllables`, which the question's analysis has already cut."""
        total = 0.0
        for token in sorted(set(sylls)):  # sorted: the same sum in every process (see `analyse`)
            if token in GENERIC_WORDS or token.isdigit() or token == GAP:
                continue
            total += self.weight.get(token, self.unknown_idf * 0.6)
        return total

    def unexplained(self, query: QueryAnalysis, entry_ids: Sequence[str]) -> list[tuple[float, float]]:
        """What of the question each entry's whole text (names, examples, summary, documents, conditions,
        and those of its equivalents: the same procedure at other levels) never mentions: the share of the
        question's weight, and its heaviest such word or pair in units of the rarest word's weight. A
        look-alike leaves the question's most specific words unexplained ("cấp lại C/O" against "cấp lại
        thẻ căn cước"); the procedure asked about rarely does. An unknown entry explains nothing."""
        heavy = [(f, w) for f, w in query.weights.items() if w >= COVER_MIN_WEIGHT]
        numbers = [term_number(f.replace(" ", "_")) for f, _ in heavy]
        total = sum(w for _, w in heavy)
        groups = [self._members.get(entry_id, ()) for entry_id in entry_ids]
        found = iter(self.lexical.mentions([members for members in groups if members], numbers))
        out = []
        for members in groups:
            if not members:
                out.append((1.0, 0.0))
                continue
            missing = [w for (_, w), seen in zip(heavy, next(found)) if not seen]
            out.append((sum(missing) / total, max(missing) / self.unknown_idf) if total and missing else (0.0, 0.0))
        return out

    def search(self, query: QueryAnalysis, limit: int = 5) -> list[Match]:
        weights = query.weights
        total = sum(weights.values())
        if total <= 0:
            return []
        naming: list[np.ndarray] = []  # each feature's phrasings and aliases ...
        amounts: list[float] = []  # ... adding w x base to closeness, base to the name hit
        lengths: list[int] = []
        asked_by: list[float] = []  # ... and w to the wording and the name share
        covering: list[np.ndarray] = []  # each feature's entries, adding w to the cover
        cover_amounts: list[float] = []
        pairing: list[np.ndarray] = []
        asked = 0.0  # the question's weight in features that could name something
        for f, w in weights.items():
            if w >= COVER_MIN_WEIGHT and (entries := self._entry_postings.get(f)) is not None:
                covering.append(entries)
                cover_amounts.append(w)
            naming_f = self._named_postings.get(f)
            if naming_f is None:
                continue
            base, places, phrases = naming_f
            asked += w
            naming.append(places)
            amounts += (w * base, base)
            lengths += (phrases, len(places) - phrases)
            asked_by.append(w)
            if " " in f and len(places) > phrases:
                pairing.append(places[phrases:])
        n_ids, n_phrases = len(self._ids), len(self._phrase_norm)
        size = n_ids + n_phrases + len(self._alias_total)
        # Every sum (cover per entry, closeness per phrasing, hit per alias) is one block of one np.bincount,
        # and the wording and name share one block each of a second: each block's sums are those of adding the
        # features one after the other, but the numpy overhead (most of the search) is paid twice, not once a
        # block and a feature.
        named_count = sum(lengths)
        places = np.concatenate(naming + covering) if naming or covering else np.zeros(0, dtype=np.int32)
        sums = np.bincount(places, weights=np.repeat(amounts + cover_amounts, lengths + [len(e) for e in covering]), minlength=size)
        shares = np.bincount(places[:named_count], weights=np.repeat(asked_by, [len(p) for p in naming]), minlength=size)
        cover, dots, alias_hits = sums[:n_ids], sums[n_ids:n_ids + n_phrases], sums[n_ids + n_phrases:]
        wording, naming_asked = shares[n_ids:n_ids + n_phrases], shares[n_ids + n_phrases:]
        named_by = self._alias_alone.copy()  # aliases this question can name: by any word, or by a pair it has
        if pairing:
            named_by[np.concatenate(pairing) - (n_ids + n_phrases)] = True
        # Nonzero is read from a boolean mask: numpy finds it several times faster than in floats.
        found = np.flatnonzero(cover != 0)
        if not len(found):
            return []
        qnorm = math.sqrt(sum(w * w for w in weights.values() if w >= PHRASE_MIN_WEIGHT)) or 1.0
        # The best of each entry's aliases and phrasings, four maxima (name hit, name share, closeness,
        # wording) found by one np.maximum.at over four blocks of one array.
        named = np.flatnonzero((alias_hits != 0) & named_by)
        touched = np.flatnonzero(dots != 0)
        alias_owner, phrase_owner = self._alias_owner[named], self._phrase_owner[touched]
        owners = [alias_owner, phrase_owner + 2 * n_ids]
        values = [alias_hits[named] / self._alias_total[named], dots[touched] / (qnorm * self._phrase_norm[touched])]
        if asked > 0:
            owners += (alias_owner + n_ids, phrase_owner + 3 * n_ids)
            values += (naming_asked[named] / asked, wording[touched] / asked)
        best = np.zeros(4 * n_ids)
        np.maximum.at(best, np.concatenate(owners), np.concatenate(values))
        best_alias, best_share, best_phrase, best_wording = (best[i * n_ids:(i + 1) * n_ids] for i in range(4))
        share = cover[found] / total
        scores = COVER_WEIGHT * cover[found] / total + PHRASE_WEIGHT * best_phrase[found] + ALIAS_WEIGHT * best_alias[found]
        if len(found) > limit:  # the best `limit` and every entry tied with the last of them
            keep = np.flatnonzero(scores >= np.partition(scores, len(scores) - limit)[len(scores) - limit])
        else:
            keep = np.arange(len(found))
        # Read as Python numbers at once (element by element, numpy scalars cost more than the ranking).
        at = found[keep].tolist()
        ranked = sorted(zip(scores[keep].tolist(), [self._ids[i] for i in at], share[keep].tolist(), at), reverse=True)[:limit]
        at = [position for *_, position in ranked]
        return [Match(entry_id, score, cover_share, phrase, alias, name_share, wording)
                for (score, entry_id, cover_share, _), phrase, alias, name_share, wording
                in zip(ranked, best_phrase[at].tolist(), best_alias[at].tolist(), best_share[at].tolist(), best_wording[at].tolist())]


def _arrays(postings: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """Posting lists as arrays of positions."""
    return {f: np.array(positions, dtype=np.int32) for f, positions in postings.items()}
