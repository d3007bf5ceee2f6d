"""The faster ways of reading a question (issue 11) give exactly what the plain ways gave: BM25 scores as
bm25s computes them, the kind classifier's n-gram columns, what an entry's text mentions, the matcher's sums, button data."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest

from handlers.buttons import (
    SEPARATOR,
    AspectButton,
    AttachButton,
    BroadcastButton,
    ButtonData,
    FeedbackButton,
    GroupButton,
    GroupListButton,
    ImportButton,
    SubscribeButton,
    _write,
)
from nlp import aspects, kinds, retrieval
from nlp.aspects import Aspect, strip_aspect_phrases
from nlp.features import syllables
from nlp.lexical import _TERM_IDS, K1, B, LexicalIndex, _Corpus, _document, _Numbers, _Scores, terms
from nlp.matcher import COVER_MIN_WEIGHT, PHRASE_MIN_WEIGHT
from nlp.normalize import CLAUSE_MARKS, fold, normalize, tokens, words
from nlp.retrieval import Candidate

BLIND = Path(__file__).resolve().parent.parent / "quality" / "blind_questions.jsonl"


@pytest.fixture(scope="module")
def questions() -> list[str]:
    return [normalize(json.loads(line)["q"]) for line in BLIND.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_bm25_scores_are_bm25s_scores_to_the_bit(index, questions):
    lexical: LexicalIndex = index.lexical
    entries = [index.entries[entry_id] for entry_id in lexical.ids]
    docs = [_document((e.name, *e.phrases)) for e in entries]
    size = len(_TERM_IDS)
    model = bm25s.BM25(k1=K1, b=B)
    model.index(_Corpus(docs, _Numbers(size)), create_empty_token=False, show_progress=False)
    ours = _Scores(model)
    for question in questions:
        wanted = sorted({n for n in map(_TERM_IDS.get, terms(syllables(question))) if n is not None and n < size})
        if wanted:
            expected = model.get_scores(wanted)
            assert expected.dtype == ours.scores(wanted).dtype
            assert np.array_equal(ours.scores(wanted), expected)


def _plain_kind_logits(model: kinds.KindModel, text: str) -> np.ndarray:
    """Scikit-learn's tf-idf (sublinear tf, l2 per block) of each block alone, then the linear model."""
    logits = model.intercept.copy()
    for analyzer, space in zip(kinds._ANALYZERS, model.fitted.spaces):
        counts = Counter(gram for gram in analyzer(text) if gram in space.vocabulary)
        if counts:
            at = np.array([space.vocabulary[gram] for gram in counts], dtype=np.intp)
            weights = np.array([1.0 + math.log(c) for c in counts.values()]) * space.idf[at]
            weights /= np.sqrt(weights @ weights)
            logits += weights @ space.coef[at]
    return logits


def test_kind_model_columns_and_logits_are_the_plain_ones(questions):
    model = kinds.model()
    start = 0
    for analyzer, space, columns_of in zip(kinds._ANALYZERS, model.fitted.spaces, model.columns):
        for question in questions:
            text = kinds.model_text(question)
            assert columns_of(text) == [start + space.vocabulary[gram] for gram in analyzer(text) if gram in space.vocabulary]
        start += len(space.vocabulary)
    for question in questions:
        text = kinds.model_text(question)
        # Both blocks are summed in one product: the same sums in another order, a few units of the last place apart.
        assert np.allclose(model.logits(text), _plain_kind_logits(model, text), rtol=0, atol=1e-12)


def test_sublinear_tf_table_is_one_plus_log():
    counts = np.arange(1, 200)
    assert kinds._sublinear(counts).tolist() == [1.0 + math.log(c) for c in range(1, 200)]


def test_entry_mentions_are_its_texts_terms(index, questions):
    lexical: LexicalIndex = index.lexical
    entry_ids = list(index.entries)[:20]
    known = {}
    for entry_id in entry_ids:
        entry = index.entries[entry_id]
        known[entry_id] = set(_document((entry.name, *entry.phrases, *entry.body)))
    groups = [[entry_id] for entry_id in entry_ids] + [entry_ids[:2], entry_ids[5:8], []]
    for question in questions[:30]:
        numbers = [_TERM_IDS.get(t) for t in terms(syllables(fold(question)))] + [None]
        expected = [[n is not None and any(n in known[e] for e in group) for n in numbers] for group in groups]
        assert lexical.mentions(groups, numbers) == expected


def test_a_term_only_a_newer_index_knows_is_mentioned_by_no_entry_of_an_older_one():
    """Terms are numbered once per process: after a knowledge-base change, the index still answering
    (built before) must not read a new term's number as one of its own entries' terms."""
    older = LexicalIndex(["a", "b"], [["cấp hộ chiếu"], ["khai sinh"]], [["tờ khai"], ["giấy chứng sinh"]])
    newer = LexicalIndex(["a", "b", "c"], [["cấp hộ chiếu"], ["khai sinh"], ["xyzzy quux"]], [[], [], ["plugh"]])
    new_numbers = [_TERM_IDS[t] for t in ("xyzzy", "quux", "plugh")]
    old_numbers = [_TERM_IDS[t] for t in ("ho_chieu", "chung_sinh")]
    assert newer.mentions([["c"]], new_numbers) == [[True, True, True]]
    assert older.mentions([["a"], ["b"], ["a", "b"]], new_numbers + old_numbers) == [
        [False, False, False, True, False], [False, False, False, False, True], [False, False, False, True, True]]


def test_matcher_sums_are_feature_by_feature_sums(index, questions):
    for question in questions:
        query = index.analyse(question)
        cover = np.zeros(len(index._ids))
        for feature, weight in query.weights.items():
            postings = index._entry_postings.get(feature)
            if weight >= COVER_MIN_WEIGHT and postings is not None:
                cover[postings] += weight
        total = sum(query.weights.values())
        for match in index.search(query, limit=10):
            assert match.cover == cover[index._ids.index(match.entry_id)] / total


def test_matcher_maxima_are_phrasing_by_phrasing_and_alias_by_alias(index, questions):
    """Closeness to the nearest phrasing, the alias named and the shares of the question they take, summed
    feature by feature and maximised one phrasing and one alias at a time, are what the search reports."""
    for question in questions:
        query = index.analyse(question, muted=strip_aspect_phrases(fold(question)))
        heavy = [(f, w, index.weight[f]) for f, w in query.weights.items() if index.weight.get(f, 0.0) >= PHRASE_MIN_WEIGHT]
        dots, wording = np.zeros(len(index._phrase_norm)), np.zeros(len(index._phrase_norm))
        hits, named_share = np.zeros(len(index._alias_total)), np.zeros(len(index._alias_total))
        named_by = index._alias_alone.copy()
        n_ids, n_phrases = len(index._ids), len(index._phrase_norm)
        for f, w, base in heavy:
            _, places, n = index._named_postings[f]
            phrases, aliases = places[:n] - n_ids, places[n:] - n_ids - n_phrases
            dots[phrases] += w * base
            wording[phrases] += w
            hits[aliases] += base
            named_share[aliases] += w
            if " " in f:
                named_by[aliases] = True
        asked = sum(w for _, w, _ in heavy)
        qnorm = math.sqrt(sum(w * w for w in query.weights.values() if w >= PHRASE_MIN_WEIGHT)) or 1.0
        best: dict[int, list[float]] = {}
        for p in np.flatnonzero(dots):
            row = best.setdefault(int(index._phrase_owner[p]), [0.0] * 4)
            row[0] = max(row[0], dots[p] / (qnorm * index._phrase_norm[p]))
            row[3] = max(row[3], wording[p] / asked)
        for a in np.flatnonzero(hits):
            if named_by[a]:
                row = best.setdefault(int(index._alias_owner[a]), [0.0] * 4)
                row[1] = max(row[1], hits[a] / index._alias_total[a])
                row[2] = max(row[2], named_share[a] / asked)
        for match in index.search(query, limit=20):
            expected = best.get(index._ids.index(match.entry_id), [0.0] * 4)
            assert [match.phrase, match.alias_hit, match.name_share, match.wording_share] == expected, question


def _plain_fusion(index, query, limit: int = 8) -> list[Candidate]:
    """The two retrievers' lists fused as `retrieve` did it first: a record per entry, every entry made a Candidate."""
    mend = query.corrections
    sylls = [mend.get(s, s) for s in query.syllables]
    kept = [mend.get(s, s) for s in query.muted_syllables] if query.muted_syllables is not None else None
    matches = retrieval._collapse(index, index.search(query, limit=retrieval.DEPTH))
    lexical = retrieval._collapse_scores(index, index.lexical.search(sylls, kept, limit=retrieval.DEPTH * 2), retrieval.DEPTH)
    found: dict[str, dict] = {}
    for rank, m in enumerate(matches):
        found[m.entry_id] = {"score": m.score, "cover": m.cover, "phrase": m.phrase, "alias_hit": m.alias_hit,
                             "name_share": m.name_share, "wording_share": m.wording_share, "matcher_rank": rank}
    for rank, (entry_id, raw) in enumerate(lexical):
        found.setdefault(entry_id, {}).update(lexical=raw / lexical[0][1], lexical_raw=raw, lexical_rank=rank)

    def fuse(fields: dict) -> float:
        total = retrieval.MATCHER_SHARE * fields.get("score", 0.0) + (1 - retrieval.MATCHER_SHARE) * fields.get("lexical", 0.0)
        for key in ("matcher_rank", "lexical_rank"):
            if fields.get(key) is not None:
                total += retrieval.RANK_SHARE / (retrieval.RRF_K + fields[key] + 1)
        return total

    ranked = sorted((-fuse(fields), fields.get("matcher_rank", retrieval.DEPTH), entry_id) for entry_id, fields in found.items())
    return [Candidate(entry_id, -fused, **found[entry_id]) for fused, _, entry_id in ranked[:limit]]


def test_fused_candidates_are_the_plain_fusion(index, questions):
    for question in questions:
        found = retrieval.retrieve(index, question, muted=strip_aspect_phrases(fold(question)))
        assert found.candidates == _plain_fusion(index, found.query)


def _plain_pack(button: ButtonData) -> str:
    """Button data as `pack` wrote it before it cached each class's fields."""
    fields = dataclasses.fields(button)
    values = [_write(getattr(button, f.name)) for f in fields]
    while values and fields[len(values) - 1].default is not dataclasses.MISSING and \
            getattr(button, fields[len(values) - 1].name) == fields[len(values) - 1].default:
        values.pop()
    return SEPARATOR.join([button.prefix, *values])


@pytest.mark.parametrize("button", [
    *(AspectButton("1.001193", aspect) for aspect in Aspect), FeedbackButton("2.000986", "up"), FeedbackButton("x", "down"),
    GroupListButton(), GroupListButton(3), GroupButton("ho-tich"), GroupButton("ho-tich", 2), AttachButton(7, "1.001193"),
    SubscribeButton("areas"), SubscribeButton("a", "ha-noi"), SubscribeButton("t", ""), BroadcastButton("at", "area:ha-noi"),
    ImportButton("yes"),
])
def test_button_data_packs_as_the_plain_way(button):
    assert button.pack() == _plain_pack(button)


def test_follow_up_weight_reads_the_syllables_of_the_muted_question(index, questions):
    for question in questions:
        muted = strip_aspect_phrases(fold(question))
        assert index.analyse(question, muted=muted).muted_syllables == syllables(muted)


def test_known_terms_are_those_of_some_entry_text(index):
    lexical: LexicalIndex = index.lexical
    every = set()
    for entry in index.entries.values():
        every.update(_document((entry.name, *entry.phrases, *entry.body)))
    for term, number in list(_TERM_IDS.items())[:5000]:
        assert lexical.knows(term) == (number in every)
    assert not lexical.knows("no_such_term")


@pytest.mark.parametrize("extra", ["tp.hcm… c/o, 85/2019/tt-btc; km/h!", "doanh nghiệp/tổ chức - hết niên hạn/hư hỏng?"])
def test_words_are_the_tokens_without_clause_marks(questions, extra):
    """The matcher reads a question's misspelt forms from its tokens instead of cutting its words again."""
    for text in [*questions, normalize(extra)]:
        assert words(text) == [t for t in tokens(text) if t not in CLAUSE_MARKS]


# ------------------------------------------------------------------ the classifiers on every measured question

SHARED_EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"  # ../shared/eval of the project
MEASURED = [BLIND, *(SHARED_EVAL / name for name in ("dev.jsonl", "real_starter.jsonl", "real_full.jsonl"))]


@pytest.fixture(scope="module")
def measured_questions() -> list[str]:
    """The normalised questions of every measurement set there is here, and of the training files."""
    paths = [path for path in MEASURED if path.exists()] + sorted(aspects.TRAINING_DIR.glob("*.jsonl"))
    out = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and (question := json.loads(line).get("q")):
                out.append(normalize(question))
    return out


def _plain_aspect_probabilities(model, folded: str) -> np.ndarray:
    """Each space's tf-idf of the analyzer's grams alone (sublinear tf, l2-normalised), as the model was fitted."""
    z = model.intercept.copy()
    for space in model.spaces:
        counts = Counter(gram for gram in space.analyzer(folded) if gram in space.index)
        if counts:
            rows = np.array([space.index[gram] for gram in counts], dtype=np.int64)
            tf = 1.0 + np.log(np.array(list(counts.values()), dtype=np.float64))
            norm = math.sqrt(float(np.sum((tf * space.idf[rows]) ** 2)))
            z += (tf / norm) @ space.weights[rows]
    z = np.exp(z - z.max())
    return z / z.sum()


def test_aspect_columns_are_those_of_the_analyzers(measured_questions):
    """As many of each column as the analyzer has grams of it (in any order: they are counted)."""
    model = aspects._get_model()
    start = 0
    for space, columns_of in zip(model.spaces, model.columns):
        for question in measured_questions[::7]:
            for text in (folded := fold(question), *aspects._clauses(folded)):
                plain = [start + space.index[gram] for gram in space.analyzer(text) if gram in space.index]
                assert Counter(columns_of(aspects._words(text))) == Counter(plain), text
        start += len(space.index)


@pytest.mark.parametrize("text", ["", "a", "a b", "ab c", "a bc d", "x" * 30, "le phi   bao nhieu", "tôi muốn hỏi ạ"])
def test_aspect_character_columns_of_short_and_unknown_words(text):
    model = aspects._get_model()
    folded, start = fold(normalize(text)), 0
    for space, columns_of in zip(model.spaces, model.columns):
        plain = [start + space.index[gram] for gram in space.analyzer(folded) if gram in space.index]
        assert Counter(columns_of(aspects._words(folded))) == Counter(plain)
        start += len(space.index)


def test_aspect_and_kind_probabilities_are_the_plain_ones(measured_questions):
    """On every question measured and every clause of it read alone, to 1e-12 (the spaces are summed in one
    product: the same sums in another order)."""
    aspect_model, kind_model = aspects._get_model(), kinds.model()
    for question in measured_questions:
        folded = fold(question)
        for text in (folded, *aspects._clauses(folded)):
            assert np.allclose(aspect_model.probabilities(text), _plain_aspect_probabilities(aspect_model, text), rtol=0, atol=1e-12)
        logits = _plain_kind_logits(kind_model, kinds.model_text(question))
        plain = np.exp(logits - logits.max())
        plain /= plain.sum()
        assert np.allclose(list(kind_model.probabilities(kinds.model_text(question)).values()), plain, rtol=0, atol=1e-12)
