"""Finding the entries a question is about: a weighted index of names, aliases and example phrasings.

Each entry contributes phrases (its name, short name, aliases, examples). A question scores an entry
by two things: how much of the question's weight the entry's vocabulary covers, and how close the
question is to the entry's single most similar phrase. Feature weights are inverse entry frequency,
so words every entry shares (thủ tục, giấy tờ, làm) cannot decide; typos are mended with rapidfuzz
against the index's vocabulary before scoring.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import OSA

from nlp.features import CONTENT_PAIRS, GAP, GENERIC_PAIRS, GENERIC_WORDS, index_features, index_words, syllables, text_features
from nlp.normalize import fold, words

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


@dataclass(frozen=True)
class Match:
    entry_id: str
    score: float
    cover: float
    phrase: float
    alias_hit: float = 0.0  # how fully the question contains one of the entry's names (0..1)


@dataclass
class QueryAnalysis:
    """The weighted features of one question, with the typos that were mended."""

    weights: dict[str, float]
    content_weight: float
    unknown_weight: float
    corrections: dict[str, str] = field(default_factory=dict)


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
        phrase_owner: list[str] = []
        phrase_feats: list[set[str]] = []
        entry_feats: dict[str, set[str]] = defaultdict(set)
        # The written forms behind each folded syllable: "vang" was only ever "vắng" here, so a
        # question that spells "vàng" (gold) with its marks is not asking about "tạm vắng".
        self._forms: dict[str, set[str]] = defaultdict(set)
        for entry in entries:
            for text in (entry.name, *entry.phrases):
                for word in index_words(text):
                    self._forms[fold(word)].add(word)
                feats = index_features(text)
                if not feats:
                    continue
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
        # For mending a typo that is itself a word ("kết hông", "kinh doan"): the known neighbours of each syllable.
        self._next: dict[str, list[str]] = defaultdict(list)
        self._prev: dict[str, list[str]] = defaultdict(list)
        for f in doc_freq:
            if f.count(" ") == 1:
                first, second = f.split(" ")
                self._next[first].append(second)
                self._prev[second].append(first)
        self._entry_postings: dict[str, list[str]] = defaultdict(list)
        for entry_id, feats in entry_feats.items():
            for f in feats:
                self._entry_postings[f].append(entry_id)
        # Aliases are indexed like phrases, so how much of each alias a question contains is summed
        # while reading the question's features, not by comparing every alias afterwards.
        self._alias_owner: list[str] = []
        self._alias_total: list[float] = []
        self._alias_postings: dict[str, list[int]] = defaultdict(list)
        # A name of several words is named only when two of its words stand together in the question: a
        # lone syllable of it ("giam" of "giám hộ", typed in "giá xăng tăng hay giảm") names nothing.
        self._alias_needs_pair: list[bool] = []
        for entry in entries:
            for alias in entry.aliases:
                heavy = [f for f in index_features(alias) if self.weight.get(f, 0.0) >= PHRASE_MIN_WEIGHT]
                if heavy:
                    for f in heavy:
                        self._alias_postings[f].append(len(self._alias_owner))
                    self._alias_owner.append(entry.id)
                    self._alias_total.append(sum(self.weight[f] for f in heavy))
                    self._alias_needs_pair.append(any(" " in f for f in heavy))
        self._phrase_owner = phrase_owner
        self._phrase_postings: dict[str, list[int]] = defaultdict(list)
        self._phrase_norm: list[float] = []
        for idx, feats in enumerate(phrase_feats):
            heavy = [f for f in feats if self.weight[f] >= PHRASE_MIN_WEIGHT]
            for f in heavy:
                self._phrase_postings[f].append(idx)
            self._phrase_norm.append(math.sqrt(sum(self.weight[f] ** 2 for f in heavy)) or 1.0)

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
        kept = text_features(muted, with_compounds=False) if muted is not None else None
        misspelt = self._other_forms(normalized)
        sylls = syllables(normalized)
        corrections: dict[str, str] = {}
        for token in set(sylls):
            if token in self.weight or token.isdigit() or token in GENERIC_WORDS or token == GAP:
                continue
            telex = _untelex(token)
            if telex != token and (telex in self.weight or telex in GENERIC_WORDS):
                corrections[token] = telex
                continue
            if len(token) < 4:
                continue
            best = process.extractOne(token, self.vocabulary, scorer=OSA.normalized_similarity, score_cutoff=0.74)
            if best is not None:
                corrections[token] = best[0]
        if corrections:
            sylls = [corrections.get(s, s) for s in sylls]
        sylls, pair_fixes = self._mend_pairs(sylls)
        corrections.update(pair_fixes)
        if corrections:
            normalized = " ".join("mat" if s == GAP else s for s in sylls)
        feats = text_features(normalized)
        mended = set(corrections.values())
        weights: dict[str, float] = {}
        unknown = 0.0
        for f in feats:
            w = self.weight.get(f)
            if w is None:
                if " " in f:
                    continue  # an unseen pair of known words says nothing new
                w = self.unknown_idf * (GENERIC_FACTOR if f in GENERIC_WORDS or f.isdigit() or len(f) < 2 else 0.6)
                unknown += w
            elif mended & set(f.split(" ")):
                w *= TYPO_FACTOR
            if misspelt and misspelt & set(f.split(" ")):
                w *= OTHER_FORM_FACTOR
            if kept is not None and f not in kept:
                w *= ASPECT_FACTOR
            weights[f] = w
        content = sum(w for f, w in weights.items() if " " not in f and f not in GENERIC_WORDS and not f.isdigit())
        return QueryAnalysis(weights, content, unknown, corrections)

    def _other_forms(self, normalized: str) -> set[str]:
        """Folded syllables the question writes, with diacritics, as a word the index never uses."""
        if normalized.isascii():
            return set()
        out = set()
        for word in words(normalized):
            if not word.isascii():
                folded = fold(word)
                forms = self._forms.get(folded)
                if forms and word not in forms and folded not in GENERIC_WORDS:
                    out.add(folded)
        return out

    def _mend_pairs(self, sylls: list[str]) -> tuple[list[str], dict[str, str]]:
        """Fix a syllable that is a word but not the one meant, when a known pair is one edit away."""
        fixes: dict[str, str] = {}
        out = list(sylls)
        for i in range(len(out) - 1):
            a, b = out[i], out[i + 1]
            if f"{a} {b}" in self.weight or a in GENERIC_WORDS or b in GENERIC_WORDS or len(a) < 2 or len(b) < 2:
                continue
            if a in self._next and self.weight.get(a, 0) >= PHRASE_MIN_WEIGHT:
                best = process.extractOne(b, self._next[a], scorer=OSA.normalized_similarity, score_cutoff=0.74)
                if best is not None:
                    fixes[b] = out[i + 1] = best[0]
                    continue
            if b in self._prev and self.weight.get(b, 0) >= PHRASE_MIN_WEIGHT:
                best = process.extractOne(a, self._prev[b], scorer=OSA.normalized_similarity, score_cutoff=0.74)
                if best is not None:
                    fixes[a] = out[i] = best[0]
        return out, fixes

    def content_weight(self, folded: str) -> float:
        """How much a text says about *which* procedure: the weight of its specific words."""
        total = 0.0
        for token in set(syllables(folded)):
            if token in GENERIC_WORDS or token.isdigit() or token == GAP:
                continue
            total += self.weight.get(token, self.unknown_idf * 0.6)
        return total

    def search(self, query: QueryAnalysis, limit: int = 5) -> list[Match]:
        weights = query.weights
        total = sum(weights.values())
        if total <= 0:
            return []
        cover: dict[str, float] = defaultdict(float)
        dots: dict[int, float] = defaultdict(float)
        alias_hits: dict[int, float] = defaultdict(float)
        paired: set[int] = set()
        for f, w in weights.items():
            if w >= COVER_MIN_WEIGHT:
                for entry_id in self._entry_postings.get(f, ()):
                    cover[entry_id] += w
            base = self.weight.get(f)
            if base is None or base < PHRASE_MIN_WEIGHT:
                continue
            for idx in self._phrase_postings.get(f, ()):
                dots[idx] += w * base
            for idx in self._alias_postings.get(f, ()):
                alias_hits[idx] += base
                if " " in f:
                    paired.add(idx)
        qnorm = math.sqrt(sum(w * w for w in weights.values() if w >= PHRASE_MIN_WEIGHT)) or 1.0
        best_alias: dict[str, float] = defaultdict(float)
        for idx, hit in alias_hits.items():
            if self._alias_needs_pair[idx] and idx not in paired:
                continue
            share = hit / self._alias_total[idx]
            owner = self._alias_owner[idx]
            if share > best_alias[owner]:
                best_alias[owner] = share
        best_phrase: dict[str, float] = defaultdict(float)
        owners, norms = self._phrase_owner, self._phrase_norm
        for idx, dot in dots.items():
            sim = dot / (qnorm * norms[idx])
            owner = owners[idx]
            if sim > best_phrase[owner]:
                best_phrase[owner] = sim
        ranked = heapq.nlargest(limit, (
            (COVER_WEIGHT * c / total + PHRASE_WEIGHT * best_phrase[e] + ALIAS_WEIGHT * best_alias.get(e, 0.0), e, c / total)
            for e, c in cover.items()
        ))
        return [Match(e, score, share, best_phrase[e], best_alias.get(e, 0.0)) for score, e, share in ranked]


