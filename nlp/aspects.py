"""What a question asks about a procedure: its fee, its papers, how long, where, online, by post...

The decision is a linear model: multinomial logistic regression over three TF-IDF feature spaces of the folded
question (word 1-3-grams; character 3-4-grams, robust to typos; the first and last words, where a heading or a
question names what it asks). It is fitted, in about a second, on the labelled questions in `nlp/training/`: the
project's own `aspects.jsonl` and the train split of any `questions_*.jsonl`. Lines marked `"split": "check"` are
never trained on: they measure the model on questions it has not seen. `python -m quality.train_classifiers` writes
the fitted model to `nlp/models/aspects.npz`, which the bot reads at start without scikit-learn (`nlp/weights.py`).
A question is then scored by a few dictionary look-ups and one small matrix product (well under a millisecond).

How questions are labelled, hence what the model learns: "how do I ..." asks for the whole procedure (overview,
then its steps); a deadline the citizen must meet ("bao lâu phải đi khai tử") and a wait before a right ("nghỉ việc
bao lâu thì được rút BHXH") are conditions; only the office's processing time is a duration.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from itertools import accumulate, pairwise
from pathlib import Path

import numpy as np

from nlp import weights
from nlp.labelled import labelled_lines

log = logging.getLogger(__name__)


class Aspect(StrEnum):
    OVERVIEW = "overview"
    DOCUMENTS = "documents"
    FEE = "fee"
    DURATION = "duration"
    PLACE = "place"
    ONLINE = "online"
    POSTAL = "postal"
    STEPS = "steps"
    CONDITIONS = "conditions"
    LEGAL = "legal"


TRAINING_DIR = Path(__file__).resolve().parent / "training"
# The project's aspect-labelled questions, and the questions labelled for the rest of the understanding.
TRAINING_FILES = ("aspects.jsonl", "questions_*.jsonl")
_ASPECTS = list(Aspect)
_VALUES = {a.value for a in Aspect}

# A question labelled with several aspects is learnt once per aspect, the later ones weighing less: the model
# learns which one to answer first and that the others are asked too.
_LATER_LABEL_WEIGHT = 0.5
# Beside the most probable aspect, the answer also gives the runner-up when it is this probable ("Thời hạn sang
# tên xe?": the duration and the deadline) ...
SECOND_LIKELY = 0.35
# ... and an aspect that one clause of the question, read alone, asks this surely ("nộp ở đâu và cần giấy gì":
# place, then documents). The whole question alone is too sure of its first aspect to tell that a second is asked.
CLAUSE_SURE = 0.75
_MAX_ASPECTS = 3

# Chosen on the check splits of nlp/training/ (the measurement sets were only watched, for falls).
_REGULARISATION = 10.0  # logistic regression's C
_TOLERANCE = 1e-3  # converged enough: tighter changes a handful of answers either way on the check splits, six times slower
_CHAR_SIZES = (3, 4)
_MIN_DF = 2  # a word or character group seen in one question only says nothing general
_SOLVER = "saga"  # a fraction of the memory of lbfgs (which keeps ten copies of the coefficients), as fast
_HEAD_WORDS, _END_WORDS = 4, 7
_WORD = re.compile(r"\w+")


def _words(folded: str) -> list[str]:
    return _WORD.findall(folded.lower())


def _word_grams(folded: str) -> list[str]:
    """Word 1-3-grams: "le phi", "o dau", "bao lau thi co"."""
    return _word_grams_of(_words(folded))


def _word_grams_of(words: list[str]) -> list[str]:
    grams = list(words)
    for n in (2, 3):
        grams.extend(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    return grams


def _char_grams(folded: str) -> list[str]:
    """Character 3-4-grams across word boundaries: robust to typos and run-together words ("bnhieu", "ld")."""
    text = f" {' '.join(_words(folded))} "
    return [text[i:i + n] for n in _CHAR_SIZES for i in range(len(text) - n + 1)]


def _edge_grams(folded: str) -> list[str]:
    """Word 1-2-grams of the first and last few words, marked: headings name the aspect first ("Thời gian cấp ...?"),
    questions last ("... thì cần giấy gì"), however long the procedure's name or the story in between."""
    return _edge_grams_of(_words(folded))


def _edge_grams_of(words: list[str]) -> list[str]:
    head, end = words[:_HEAD_WORDS], words[-_END_WORDS:]
    grams = [f"^{w}" for w in head] + [f"^{a} {b}" for a, b in pairwise(head)]
    return grams + [f"{w}$" for w in end] + [f"{a} {b}$" for a, b in pairwise(end)]


# Each feature space with its weight: the words say most, the characters and the edges refine.
_SPACES: tuple[tuple[Callable[[str], list[str]], float], ...] = ((_word_grams, 1.5), (_char_grams, 1.0), (_edge_grams, 1.0))


@dataclass(frozen=True)
class _Space:
    """One TF-IDF feature space (sublinear tf, l2-normalised, then weighted) with the model's coefficients folded in:
    `analyzer` cuts a text's grams (fitting reads them), `_Model` finds their columns faster."""

    analyzer: Callable[[str], list[str]]
    index: dict[str, int]
    idf: np.ndarray  # (features,)
    weights: np.ndarray  # (features, aspects): space weight x idf x the model's coefficients


class _GramColumns:
    """The columns of the grams an analyzer makes of a text's words, in the order it makes them."""

    def __init__(self, grams_of: Callable[[list[str]], list[str]], index: dict[str, int]) -> None:
        self.grams_of = grams_of
        self.index = index

    def __call__(self, words: list[str]) -> list[int]:
        get = self.index.get
        return [column for gram in self.grams_of(words) if (column := get(gram)) is not None]


class _CharColumns:
    """The columns of `_char_grams`, made mostly of lists worked out at start.

    The text is its words between single spaces, so a character n-gram (n <= 4) either lies within one word
    padded with its two spaces, or spans the one space between two words. The first kind, for every word the
    model knows (nearly every word of a question), is listed once at start; only the second kind, a few a
    text, is cut and looked up per question. They come word by word, not in the analyzer's order: a text's
    counts are the same."""

    def __init__(self, index: dict[str, int], known_words: Iterable[str]) -> None:
        if max(_CHAR_SIZES) > 4:  # " a b " (5 characters) would span three words
            raise ValueError("character n-grams longer than 4 are not split by word")
        self.index = index
        # Where the n-grams around a space start, before it: inside them, not at an end (" a b": one before).
        self.around = [(before, n) for n in _CHAR_SIZES for before in range(n - 2, 0, -1)]
        self.by_word = {word: self._within(word) for word in known_words}

    def _within(self, word: str) -> list[int]:
        """Columns of the n-grams of one word padded with its spaces."""
        padded, get = f" {word} ", self.index.get
        return [column for n in _CHAR_SIZES for i in range(len(padded) - n + 1) if (column := get(padded[i:i + n])) is not None]

    def __call__(self, words: list[str]) -> list[int]:
        columns: list[int] = []
        for word in words:
            found = self.by_word.get(word)
            columns += found if found is not None else self._within(word)
        text, get = f" {' '.join(words)} ", self.index.get
        spaces = accumulate(len(word) + 1 for word in words[:-1])  # where the space after each word but the last is
        columns += [column for space in spaces for before, n in self.around
                    if (column := get(text[space - before:space - before + n])) is not None]
        return columns


def _column_finders(spaces: tuple[_Space, ...]) -> tuple[Callable[[list[str]], list[int]], ...]:
    """For each space, what finds a text's columns from its words, numbered across all spaces (the second
    space's first column follows the first space's last)."""
    words = next((space.index for space in spaces if space.analyzer is _word_grams), {})
    known_words = [term for term in words if " " not in term]
    finders = {_word_grams: lambda index: _GramColumns(_word_grams_of, index),
               _edge_grams: lambda index: _GramColumns(_edge_grams_of, index),
               _char_grams: lambda index: _CharColumns(index, known_words)}
    out, start = [], 0
    for space in spaces:
        out.append(finders[space.analyzer]({gram: start + column for gram, column in space.index.items()}))
        start += len(space.index)
    return tuple(out)


@dataclass(frozen=True)
class _Model:
    spaces: tuple[_Space, ...]
    intercept: np.ndarray  # (aspects,)
    # The spaces side by side, so that a text is scored with one look-up and one product rather than one a space.
    columns: tuple[Callable[[list[str]], list[int]], ...] = field(init=False, repr=False, compare=False)
    # A row a column: its space, its idf, its weights; one row read a column (far apart in memory, each a cache miss).
    table: np.ndarray = field(init=False, repr=False, compare=False)  # (columns, 2 + aspects)

    def __post_init__(self) -> None:
        rows = [np.column_stack([np.full(len(space.index), number, dtype=np.float64), space.idf, space.weights])
                for number, space in enumerate(self.spaces)]
        object.__setattr__(self, "columns", _column_finders(self.spaces))
        object.__setattr__(self, "table", np.vstack(rows) if rows else np.zeros((0, 2 + len(self.intercept))))

    def probabilities(self, folded: str) -> np.ndarray:
        """Each space's tf-idf (sublinear tf), l2-normalised within the space, times the weights, plus the intercept."""
        words = _words(folded)
        columns: list[int] = []
        for columns_of in self.columns:
            columns += columns_of(words)
        z = self.intercept
        if columns:
            counts = Counter(columns)
            rows = np.fromiter(counts, dtype=np.intp, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            found = self.table[rows]
            space, tf_idf = found[:, 0].astype(np.intp), tf * found[:, 1]
            norms = np.sqrt(np.bincount(space, weights=tf_idf * tf_idf, minlength=len(self.spaces)))
            z = z + (tf / norms[space]) @ found[:, 2:]
        z = np.exp(z - z.max())
        return z / z.sum()


def training_examples(split: str = "train") -> Iterator[tuple[str, list[Aspect]]]:
    """(question, aspects asked, the one to answer first first) of one split of the labelled files."""
    for item in labelled_lines(_training_paths()):
        labels = item.get("aspect")
        if item.get("split", "train") != split or not item.get("q") or not labels:
            continue
        aspects = [Aspect(a) for a in (labels if isinstance(labels, list) else [labels]) if a in _VALUES]
        if aspects:
            yield item["q"], list(dict.fromkeys(aspects))


MODEL_FILE = weights.MODELS_DIR / "aspects.npz"
SETTINGS = (f"C={_REGULARISATION};tol={_TOLERANCE};chars={_CHAR_SIZES};min_df={_MIN_DF};{_SOLVER};edges={_HEAD_WORDS},{_END_WORDS};"
            f"spaces={[(a.__name__, w) for a, w in _SPACES]};later={_LATER_LABEL_WEIGHT}")


def _training_paths() -> list[Path]:
    return [p for pattern in TRAINING_FILES for p in sorted(TRAINING_DIR.glob(pattern))]


def training_fingerprint() -> str:
    return weights.fingerprint(_training_paths(), SETTINGS)


def _from_weights(fitted: weights.Fitted) -> _Model:
    spaces = tuple(_Space(analyzer, space.vocabulary, space.idf, space.coef) for (analyzer, _), space in zip(_SPACES, fitted.spaces))
    return _Model(spaces, fitted.intercept)


def _to_weights(model: _Model, fingerprint: str) -> weights.Fitted:
    spaces = tuple(weights.Space(space.index, space.idf, space.weights) for space in model.spaces)
    return weights.Fitted(tuple(a.value for a in _ASPECTS), model.intercept, spaces, fingerprint)


def write_model(path: Path | None = None) -> None:
    """Fit on the train split and write the model file the bot reads at start."""
    weights.save(path or MODEL_FILE, _to_weights(_train(), training_fingerprint()))


def _load_or_train() -> _Model:
    stored = weights.load(MODEL_FILE, training_fingerprint())
    if stored is not None and stored.labels == tuple(a.value for a in _ASPECTS):
        return _from_weights(stored)
    log.warning("%s is missing or older than nlp/training: fitting the aspect model now "
                "(write it with python -m quality.train_classifiers)", MODEL_FILE.name)
    return _train()


def _train() -> _Model:
    """Fit the model on the train split (imports scikit-learn): the same files give the same model."""
    from scipy.sparse import diags, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from nlp.normalize import fold, normalize

    # A question and its unaccented twin fold to one text: learn it once, with their weights added.
    weighed: dict[tuple[str, int], float] = {}
    for question, aspects in training_examples("train"):
        folded = fold(normalize(question))
        for rank, aspect in enumerate(aspects):
            key = (folded, _ASPECTS.index(aspect))
            weighed[key] = weighed.get(key, 0.0) + (1.0 if rank == 0 else _LATER_LABEL_WEIGHT)
    targets = [target for _, target in weighed]
    if len(set(targets)) < 2:
        raise ValueError(f"no aspect-labelled questions in {TRAINING_DIR}")
    texts = [text for text, _ in weighed]
    vectorizers = [TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, norm=None, min_df=_MIN_DF) for analyzer, _ in _SPACES]
    parts = []
    for vectorizer, (_, weight) in zip(vectorizers, _SPACES):
        part = vectorizer.fit_transform(texts).tocsr()
        norms = np.sqrt(np.asarray(part.multiply(part).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        parts.append(diags(weight / norms) @ part)
    model = LogisticRegression(C=_REGULARISATION, tol=_TOLERANCE, max_iter=1000, solver=_SOLVER, random_state=0)
    with threadpool_limits(1):  # several BLAS threads on so small a problem are ten times slower, not faster
        model.fit(hstack(parts).tocsr(), targets, sample_weight=list(weighed.values()))
    # An aspect nobody labelled gets no chance, rather than shifting the others' columns.
    coef = np.zeros((len(_ASPECTS), model.coef_.shape[1]))
    intercept = np.full(len(_ASPECTS), -1e3)
    coef[model.classes_] = model.coef_
    intercept[model.classes_] = model.intercept_
    spaces, start = [], 0
    for vectorizer, (analyzer, weight) in zip(vectorizers, _SPACES):
        size = len(vectorizer.vocabulary_)
        idf = vectorizer.idf_.astype(np.float64)
        weights = weight * idf[:, None] * coef[:, start:start + size].T
        spaces.append(_Space(analyzer, dict(vectorizer.vocabulary_), idf, np.ascontiguousarray(weights)))
        start += size
    return _Model(tuple(spaces), intercept)


def _untrained() -> _Model:
    """Without training data every question asks for the whole procedure: answers stay right, only less focused."""
    intercept = np.full(len(_ASPECTS), -1e3)
    intercept[_ASPECTS.index(Aspect.OVERVIEW)] = 0.0
    return _Model((), intercept)


_lock = threading.Lock()
_model: _Model | None = None


def _get_model() -> _Model:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                try:
                    _model = _load_or_train()
                except (OSError, ValueError) as error:
                    log.error("aspect model not trained, every question gets the overview: %s", error)
                    _model = _untrained()
    return _model


def prepare() -> None:
    """Read (or fit) the model now, at start-up, rather than on the first question."""
    _get_model()


@lru_cache(maxsize=4096)
def _probabilities(folded: str) -> tuple[float, ...]:
    return tuple(float(p) for p in _get_model().probabilities(folded))


def forget_scores() -> None:
    """Drop the remembered scores of earlier questions (a benchmark times every question from scratch)."""
    _probabilities.cache_clear()


def aspect_scores(folded: str) -> dict[Aspect, float]:
    """How likely each aspect is the one asked first (they sum to 1), most likely first."""
    return dict(sorted(zip(_ASPECTS, _probabilities(folded)), key=lambda pair: -pair[1]))


# Not "còn", "rồi": folded they are also "con" (a child) and the "rồi" of a story ("đã nộp rồi").
_CLAUSE_BREAK = re.compile(r"[,;:?!.]+|\b(?:va|voi lai|hay la|them nua la|ngoai ra)\b")


def _clauses(folded: str) -> list[str]:
    """The clauses of a question, each of which may ask something of its own."""
    return [c for c in _CLAUSE_BREAK.split(folded) if len(_words(c)) >= 2]


def detect_aspects(folded: str) -> list[Aspect]:
    """Aspects asked, most important first; empty when the question asks about the procedure as a whole.

    The first is the whole question's most probable aspect (a clause alone may be a story: "tôi đã nộp lệ phí
    rồi, ..."), unless that is the overview and something specific is asked too; the others come from the
    runner-up and from what single clauses surely ask."""
    scores = aspect_scores(folded)
    first, second = list(scores)[:2]
    also = [second] if scores[second] >= SECOND_LIKELY and second != Aspect.OVERVIEW else []
    clauses = _clauses(folded)
    if len(clauses) > 1:
        for clause in clauses:
            aspect, p = next(iter(aspect_scores(clause).items()))
            if p >= CLAUSE_SURE and aspect not in (first, Aspect.OVERVIEW, *also):
                also.append(aspect)
    also = also[:_MAX_ASPECTS - 1]
    if first == Aspect.OVERVIEW:
        # Something specific asked besides ("hồ sơ đăng ký như thế nào") is what the citizen wants to read
        # first; the overview follows it.
        return [*also, Aspect.OVERVIEW] if also else []
    return [first, *also]


# Muting, not deciding: phrases that say WHAT is asked ("lệ phí", "ở đâu", "online") count for less when the
# matcher decides WHICH procedure is asked about (nlp/matcher.py). Folded text.
_ASPECT_PHRASES = re.compile(r"\b(?:" + "|".join([  # noqa: FLY002 (one phrase a string, grouped by aspect)
    # fee
    r"le phi", r"phi", r"bao nhieu tien", r"(?:het|mat|ton) (?:bao nhieu|tien)", r"chi phi", r"mien phi", r"gia (?:bao nhieu|ca|tien)",
    r"nop phi", r"tra phi", r"ton kem", r"giam phi",
    # duration
    r"(?:mat |het )?bao lau", r"(?:mat )?may ngay", r"bao nhieu ngay", r"may hom", r"may thang", r"(?:thoi gian|thoi han)(?: giai quyet| xu ly)?",
    r"bao gio", r"khi nao", r"trong ngay", r"ngay lam viec", r"lau khong", r"nhanh khong",
    # documents
    r"giay to", r"ho so gom", r"thanh phan ho so", r"can (?:nhung )?gi", r"(?:mang|nop|chuan bi)(?: theo)?(?: nhung)? gi", r"chuan bi",
    r"ban goc", r"ban photo", r"nop ho so", r"gom (?:nhung )?gi", r"nhung gi",
    # place
    r"o dau", r"(?:di|ra|den|len|toi|nop|lam) dau", r"cho nao", r"noi nao", r"co quan nao", r"nop tai", r"lam tai", r"tai dau",
    r"dia chi", r"bao cho ai",
    # online, postal
    r"online", r"truc tuyen", r"qua mang", r"tren mang", r"dich vu cong", r"cong dich vu cong", r"toan trinh", r"ung dung", r"app",
    r"buu dien", r"buu chinh", r"gui ve nha", r"tai nha", r"ship", r"chuyen phat",
    # steps, conditions, legal
    r"cac buoc", r"nhung buoc", r"quy trinh", r"trinh tu", r"dieu kien", r"truong hop nao", r"bat buoc", r"co duoc khong",
    r"duoc khong", r"can cu phap ly", r"can cu", r"quy dinh (?:o|tai) (?:dau|luat|dieu|nghi dinh|thong tu)", r"(?:o|tai) dieu (?:nao|may)",
    r"luat nao", r"(?:cua|theo|trong) luat", r"nghi dinh(?: nao| so)?", r"thong tu(?: nao| so)?", r"van ban nao",
]) + r")\b")


def strip_aspect_phrases(folded: str) -> str:
    """The question without its aspect phrases: what is left names the procedure, if anything does."""
    return _ASPECT_PHRASES.sub(" ", folded)
