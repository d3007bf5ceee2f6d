"""One list of candidate entries from two different retrievers, for the decision to choose from.

The matcher (nlp/matcher.py) scores how much of the question an entry's names and example phrasings
cover; BM25 (nlp/lexical.py) also reads the entries' summaries, documents and conditions. Each finds what
the other misses: the matcher mends typos and knows which words name a procedure, BM25 finds a record
by a paper it asks for or by the words of its official text. Their scores and ranks are fused, and an
entry only one of them found is kept.

Measured when this was built (share of questions whose expected entry is among the first 1 / 3 / 5
candidates, equivalents collapsed; real_full.jsonl with the national catalogue imported):

    questions                                   matcher          BM25             fused
    ../shared/eval/dev.jsonl (200)              .895 .935 .935   .885 .930 .935   .910 .935 .935
    ../shared/eval/real_starter.jsonl (20)      .900 .950 .950   1.00 1.00 1.00   .950 1.00 1.00
    ../shared/eval/real_full.jsonl (66)         .682 .833 .864   .697 .894 .894   .773 .879 .924
    nlp/training/questions_starter.jsonl (576)  .905 .958 .976   .785 .894 .931   .887 .955 .969
      (starter-labelled, catalogue imported)

At 1 / at 3, averaged over these sets and nlp/training/aspects.jsonl (starter KB and catalogue), fusing
by reciprocal rank alone gave .879 / .952, by the weighted sum alone .890 / .946, by the mix below
.891 / .954. BM25 over underthesea's word tokens instead of syllables and pairs: .56 at 1 on real_full.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from nlp.matcher import KnowledgeIndex, Match, QueryAnalysis

DEPTH = 20  # how far down each retriever's list is read before fusing
# The fused score: a weighted sum of the two scores (the matcher's 0..1, BM25's over the best of the
# question), plus half the reciprocal-rank fusion of the two lists (constant RRF_K), so an entry both
# retrievers put near the top goes first. Chosen by measurement (above); the differences between the
# ways of fusing were a few questions.
MATCHER_SHARE = 0.6
RANK_SHARE = 0.5
RRF_K = 10


class Candidate(NamedTuple):
    """One entry (canonical: equivalents collapsed) with what each retriever made of it (a tuple: made for
    every question, several times faster than a dataclass)."""

    entry_id: str
    fused: float  # the fusion score the candidates are sorted by
    score: float = 0.0  # matcher: overall score, share of the question covered, nearest phrasing, name contained
    cover: float = 0.0
    phrase: float = 0.0
    alias_hit: float = 0.0
    name_share: float = 0.0
    wording_share: float = 0.0
    matcher_rank: int | None = None  # 0-based place in the matcher's list; None when it did not find the entry
    lexical: float = 0.0  # BM25 score over the best of this question (0..1)
    lexical_raw: float = 0.0
    lexical_rank: int | None = None

    def match(self) -> Match:
        """The matcher's view of this candidate, for code that still reads matches."""
        return Match(self.entry_id, self.score, self.cover, self.phrase, self.alias_hit, self.name_share, self.wording_share)


@dataclass(frozen=True)
class Retrieval:
    """The fused candidates, best first, and the analysed question (content weight, typos mended)."""

    candidates: list[Candidate]
    query: QueryAnalysis


def retrieve(index: KnowledgeIndex, normalized: str, muted: str | None, limit: int = 8) -> Retrieval:
    """Candidates for a normalised question; `muted`: the question without its aspect phrases (folded)."""
    query = index.analyse(normalized, muted=muted)
    matches = _collapse(index, index.search(query, limit=DEPTH))
    # BM25 reads the question with the matcher's typo mends; its aspect phrases ("lệ phí", "qua bưu điện")
    # count for less, as in the matcher, or the entries that talk about fees and the post would win.
    mend = query.corrections
    sylls = [mend.get(s, s) for s in query.syllables]
    kept = [mend.get(s, s) for s in query.muted_syllables] if query.muted_syllables is not None else None
    lexical = _collapse_scores(index, index.lexical.search(sylls, kept, limit=DEPTH * 2), DEPTH)
    best_lexical = lexical[0][1] if lexical else 0.0

    # Each entry's fused score, worked out from the two lists as they are (no record made per entry):
    # only the first `limit` of some forty become Candidates.
    in_matcher = {m.entry_id: (rank, m) for rank, m in enumerate(matches)}
    in_lexical = {entry_id: (rank, raw, raw / best_lexical) for rank, (entry_id, raw) in enumerate(lexical)}
    ranked = []
    for entry_id, (rank, m) in in_matcher.items():
        place, _, share = in_lexical.get(entry_id, (None, 0.0, 0.0))
        ranked.append((-_fuse(m.score, share, rank, place), rank, entry_id))
    for entry_id, (place, _, share) in in_lexical.items():
        if entry_id not in in_matcher:
            ranked.append((-_fuse(0.0, share, None, place), DEPTH, entry_id))
    ranked.sort()
    candidates = []
    for fused, _, entry_id in ranked[:limit]:
        rank, m = in_matcher.get(entry_id, (None, None))
        place, raw, share = in_lexical.get(entry_id, (None, 0.0, 0.0))
        matcher_fields = (m.score, m.cover, m.phrase, m.alias_hit, m.name_share, m.wording_share) if m else (0.0,) * 6
        candidates.append(Candidate(entry_id, -fused, *matcher_fields, rank, share, raw, place))
    return Retrieval(candidates, query)


def _fuse(score: float, lexical: float, matcher_rank: int | None, lexical_rank: int | None) -> float:
    """Weighted sum of the two scores plus half their reciprocal-rank fusion."""
    total = MATCHER_SHARE * score + (1 - MATCHER_SHARE) * lexical
    for rank in (matcher_rank, lexical_rank):
        if rank is not None:
            total += RANK_SHARE / (RRF_K + rank + 1)
    return total


def _collapse(index: KnowledgeIndex, matches: list[Match]) -> list[Match]:
    """Matches with equivalents (one procedure at several levels) counted once, under the canonical id."""
    seen: set[str] = set()
    out: list[Match] = []
    for m in matches:
        canonical = index.canonical(m.entry_id)
        if canonical not in seen:
            seen.add(canonical)
            out.append(m if canonical == m.entry_id else m._replace(entry_id=canonical))
    return out


def _collapse_scores(index: KnowledgeIndex, scored: list[tuple[str, float]], limit: int) -> list[tuple[str, float]]:
    """The first `limit` of `scored` with equivalents counted once, under the canonical id."""
    seen: set[str] = set()
    out: list[tuple[str, float]] = []
    for entry_id, score in scored:
        canonical = index.canonical(entry_id)
        if canonical not in seen:
            seen.add(canonical)
            out.append((canonical, score))
            if len(out) == limit:
                break
    return out
