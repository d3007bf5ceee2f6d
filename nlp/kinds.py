"""What kind of question a citizen asks: how to do a procedure, the law or a policy, a dossier's status, or other.

A linear model (logistic regression over word 1-3-grams and character 2-5-grams of the folded text) fitted on
the project's own labelled questions (`nlp/training/kinds.jsonl`, plus the "kind" of any
`nlp/training/questions_*.jsonl`), "train" lines only: the "check" lines stay unseen to measure overfitting.
`python -m quality.train_classifiers` fits it (deterministic, about 0.6 s of CPU for ~2,300 questions) and writes
`nlp/models/kinds.npz`, which the bot reads at start without scikit-learn (`nlp/weights.py`); nothing is downloaded
or unpickled. Scoring one question takes about 0.15 ms.

The hard border is between a procedure and the law. About a procedure (the bot answers from the entry): "có được
làm X không", "điều kiện để làm X", whether one must do X in one's situation ("sửa nhà có phải xin giấy phép xây dựng
không"), whether one can claim a benefit that a procedure pays ("có rút BHXH một lần được không"). About the law:
"X có bị phạt không", "mức hưởng X", "X được hưởng những chế độ gì", "quy định thế nào về X", whether one must pay
into a scheme or a tax ("doanh nghiệp bao nhiêu lao động thì phải đóng BHXH"), definitions, rights, duties.
A procedure question taken for a law question loses its answer, so LAW is given only from `LAW_MIN_PROBABILITY` on.
`python -m nlp.kinds [FILE.jsonl ...]` prints the cross-validated figures and the figures on labelled files.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from nlp import weights
from nlp.labelled import labelled_lines
from nlp.normalize import fold, normalize
from nlp.weights import MODELS_DIR

log = logging.getLogger(__name__)

TRAINING_DIR = Path(__file__).resolve().parent / "training"
OWN_FILE = "kinds.jsonl"
SHARED_PATTERN = "questions_*.jsonl"  # other labelled question files: their "kind" field is used when present
REGULARIZATION = 8.0  # LogisticRegression's C, chosen by 5-fold cross-validation on the train split (2, 4, 8, 16 tried)
LAW_MIN_PROBABILITY = 0.6  # below this a law-looking question is read as its next most likely kind (precision first)


class QuestionKind(StrEnum):
    PROCEDURE = "proc"
    LAW = "law"
    STATUS = "status"
    OTHER = "other"


@dataclass(frozen=True)
class Example:
    text: str  # folded normalized question, the model's input
    kind: QuestionKind


def model_text(normalized: str) -> str:
    """The model's input: normalized text without diacritics, so a question and its unaccented twin meet."""
    return fold(normalized)


def read_examples(paths: Iterable[Path], split: str | None = "train") -> list[Example]:
    """Labelled questions of `paths` with a known kind, of the given split ("train" when a line has none)."""
    examples = []
    for row in labelled_lines(paths):
        kind = row.get("kind")
        if kind not in QuestionKind._value2member_map_ or row.get("unsure"):
            continue
        if split is not None and row.get("split", "train") != split:
            continue
        examples.append(Example(model_text(normalize(row["q"])), QuestionKind(kind)))
    return examples


def training_files(directory: Path = TRAINING_DIR) -> list[Path]:
    """The project's labelled files that carry kinds, in a fixed order (training is deterministic)."""
    own = directory / OWN_FILE
    return ([own] if own.exists() else []) + sorted(directory.glob(SHARED_PATTERN))


def _vectorizers():
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Words carry the question's form ("bị phạt", "cần giấy tờ gì"); character n-grams survive typos and teencode.
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 3), token_pattern=r"(?u)\b\w+\b", sublinear_tf=True,
                            lowercase=False, dtype=np.float64)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, lowercase=False,
                            dtype=np.float64)
    return [("words", words), ("chars", chars)]


def build_pipeline(regularization: float = REGULARIZATION):
    """An unfitted scikit-learn pipeline: the two vectorizers and the logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    classifier = LogisticRegression(C=regularization, solver="newton-cg", max_iter=1000, class_weight="balanced")
    return Pipeline([("features", FeatureUnion(_vectorizers())), ("classifier", classifier)])


_TOKEN = re.compile(r"(?u)\b\w+\b")
_WHITE_SPACES = re.compile(r"\s\s+")
WORD_SIZES = (1, 3)
CHAR_SIZES = (2, 5)
SETTINGS = f"C={REGULARIZATION};words{WORD_SIZES};chars_wb{CHAR_SIZES};min_df=2;newton-cg;balanced"
MODEL_FILE = MODELS_DIR / "kinds.npz"


def word_grams(text: str) -> list[str]:
    """Word 1-3-grams, as scikit-learn's word analyzer makes them for the fitted vectorizer."""
    words = _TOKEN.findall(text)
    grams = list(words)
    for n in range(WORD_SIZES[0] + 1, min(WORD_SIZES[1], len(words)) + 1):
        grams += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    return grams


def char_grams(text: str) -> list[str]:
    """Character 2-5-grams inside each word padded with spaces, as scikit-learn's "char_wb" analyzer."""
    grams = []
    for word in _WHITE_SPACES.sub(" ", text).split():
        word = f" {word} "
        for n in range(CHAR_SIZES[0], CHAR_SIZES[1] + 1):
            grams += [word[i:i + n] for i in range(max(len(word) - n + 1, 1))]
            if len(word) <= n:  # a short word is counted once, at its full length
                break
    return grams


_ANALYZERS = (word_grams, char_grams)  # in the order of the pipeline's FeatureUnion


class _Columns:
    """The columns of a text's n-grams that the model knows, in the order the analyzer makes them."""

    def __init__(self, analyzer: Callable[[str], list[str]], vocabulary: dict[str, int]) -> None:
        self.analyzer = analyzer
        self.vocabulary = vocabulary

    def __call__(self, text: str) -> list[int]:
        return [index for gram in self.analyzer(text) if (index := self.vocabulary.get(gram)) is not None]


class _CharColumns(_Columns):
    """Character n-grams never cross a space, so a text's are its words' one after the other: those of
    each word the model knows (nearly every word of a question) are listed once, at start, instead of
    being cut and looked up again for every question."""

    def __init__(self, vocabulary: dict[str, int], known_words: Iterable[str]) -> None:
        super().__init__(char_grams, vocabulary)
        self.by_word = {word: super(_CharColumns, self).__call__(word) for word in known_words}

    def __call__(self, text: str) -> list[int]:
        columns: list[int] = []
        for word in text.split():
            found = self.by_word.get(word)
            columns += found if found is not None else super().__call__(word)
        return columns


# Sublinear tf (1 + log tf) of the counts a question has (nearly all 1), worked out once with math.log as before.
_SUBLINEAR = np.array([0.0] + [1.0 + math.log(count) for count in range(1, 64)])


def _sublinear(counts: np.ndarray) -> np.ndarray:
    if counts.max() < len(_SUBLINEAR):
        return _SUBLINEAR[counts]
    return np.array([1.0 + math.log(count) for count in counts.tolist()])


class KindModel:
    """The fitted model as plain arrays: one question is scored in a fraction of a millisecond, without scikit-learn."""

    def __init__(self, fitted: weights.Fitted) -> None:
        self.fitted = fitted
        self.kinds = [QuestionKind(label) for label in fitted.labels]
        self.intercept = fitted.intercept.astype(np.float64)
        # Both blocks side by side, their columns numbered on from one to the next, so that a text is scored
        # with one count, one look-up and one product rather than one of each a block.
        vocabularies, start = [], 0
        for space in fitted.spaces:
            vocabularies.append({term: start + column for term, column in space.vocabulary.items()})
            start += len(space.vocabulary)
        known_words = [term for term in fitted.spaces[0].vocabulary if " " not in term]
        self.columns = [_Columns(word_grams, vocabularies[0]), _CharColumns(vocabularies[1], known_words)]
        self.block_of = np.repeat(np.arange(len(fitted.spaces), dtype=np.intp), [len(v) for v in vocabularies])
        self.idf = np.concatenate([space.idf for space in fitted.spaces])
        self.coef = np.vstack([space.coef for space in fitted.spaces])

    @classmethod
    def from_pipeline(cls, pipeline, fingerprint: str = "") -> KindModel:
        """Read a fitted scikit-learn pipeline (build_pipeline) into arrays."""
        classifier = pipeline.named_steps["classifier"]
        spaces, start = [], 0
        for _, vectorizer in pipeline.named_steps["features"].transformer_list:
            size = len(vectorizer.vocabulary_)
            coef = np.ascontiguousarray(classifier.coef_[:, start:start + size].T)  # one row per feature
            spaces.append(weights.Space(dict(vectorizer.vocabulary_), vectorizer.idf_.astype(np.float64), coef))
            start += size
        return cls(weights.Fitted(tuple(classifier.classes_), classifier.intercept_.astype(np.float64), tuple(spaces), fingerprint))

    def logits(self, text: str) -> np.ndarray:
        """The classifier's decision values for a folded text (tf-idf with sublinear tf, l2 per block)."""
        columns: list[int] = []
        for columns_of in self.columns:
            columns += columns_of(text)
        total = self.intercept.copy()
        if columns:
            counts = Counter(columns)
            indices = np.fromiter(counts, dtype=np.intp, count=len(counts))
            weights_ = _sublinear(np.fromiter(counts.values(), dtype=np.intp, count=len(counts))) * self.idf[indices]
            block = self.block_of[indices]
            norms = np.sqrt(np.bincount(block, weights=weights_ * weights_, minlength=len(self.fitted.spaces)))
            total += (weights_ / norms[block]) @ self.coef[indices]
        return total

    def probabilities(self, text: str) -> dict[QuestionKind, float]:
        """Probabilities of each kind for a folded text (softmax of the multinomial model), summing to 1."""
        logits = self.logits(text)
        exp = np.exp(logits - logits.max())
        exp /= exp.sum()
        return {kind: float(p) for kind, p in zip(self.kinds, exp)}


def train(examples: list[Example], regularization: float = REGULARIZATION, fingerprint: str = "") -> KindModel:
    """Fit the model on labelled examples (imports scikit-learn)."""
    if len({e.kind for e in examples}) < 2:
        raise ValueError("training kinds needs labelled questions of at least two kinds")
    pipeline = build_pipeline(regularization)
    pipeline.fit([e.text for e in examples], [e.kind.value for e in examples])
    return KindModel.from_pipeline(pipeline, fingerprint)


def training_fingerprint() -> str:
    return weights.fingerprint(training_files(), SETTINGS)


def write_model(path: Path = MODEL_FILE) -> KindModel:
    """Fit on the train split and write the model file the bot reads at start."""
    fitted = train(read_examples(training_files()), fingerprint=training_fingerprint())
    weights.save(path, fitted.fitted)
    return fitted


_model: KindModel | None = None
_lock = threading.Lock()


def model() -> KindModel:
    """The model of `MODEL_FILE`; fitted afresh (with a warning) when the training files changed since it was written."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                expected = training_fingerprint()
                stored = weights.load(MODEL_FILE, expected)
                if stored is not None:
                    _model = KindModel(stored)
                else:
                    log.warning("%s is missing or older than nlp/training: fitting the question-kind model now "
                                "(write it with python -m quality.train_classifiers)", MODEL_FILE.name)
                    _model = train(read_examples(training_files()), fingerprint=expected)
    return _model


def kind_scores(normalized: str) -> dict[QuestionKind, float]:
    """Probability of each kind for a normalized question (diacritics kept or not: the same scores)."""
    scores = model().probabilities(model_text(normalized))
    return {kind: scores.get(kind, 0.0) for kind in QuestionKind}


def decide(scores: dict[QuestionKind, float], law_min: float = LAW_MIN_PROBABILITY) -> QuestionKind:
    """The kind to act on: the most likely, but LAW only when it is likely enough.

    A law question the classifier is not sure of is read as a procedure question: law is confused with
    procedure far more than with anything else (`python -m nlp.kinds`), so its probability goes to
    PROCEDURE. Taking the runner-up instead once gave a landlord asking whether he may deregister his
    tenants (law 0.55, procedure and status 0.22 each) the reply about following a dossier."""
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)
    if ranked[0] == QuestionKind.LAW and scores[QuestionKind.LAW] < law_min:
        rest = {kind: p for kind, p in scores.items() if kind != QuestionKind.LAW}
        rest[QuestionKind.PROCEDURE] = rest.get(QuestionKind.PROCEDURE, 0.0) + scores[QuestionKind.LAW]
        return max(rest, key=rest.__getitem__)
    return ranked[0]


def question_kind(normalized: str) -> QuestionKind:
    """What kind of question a normalized question is."""
    return decide(kind_scores(normalized))


# --------------------------------------------------------------------------- measuring (python -m nlp.kinds)

THRESHOLDS = (0.5, 0.6, 0.7, 0.8)


def confusion(truth: list[QuestionKind], predicted: list[QuestionKind]) -> dict[tuple[QuestionKind, QuestionKind], int]:
    """Counts of (true kind, predicted kind)."""
    return Counter(zip(truth, predicted))


def precision_recall(truth: list[QuestionKind], predicted: list[QuestionKind], kind: QuestionKind) -> tuple[float, float, int]:
    """Precision and recall of one kind, and how many were predicted as it."""
    hits = sum(t == p == kind for t, p in zip(truth, predicted))
    said = sum(p == kind for p in predicted)
    real = sum(t == kind for t in truth)
    return (hits / said if said else 1.0), (hits / real if real else 1.0), said


def report(name: str, truth: list[QuestionKind], scores: list[dict[QuestionKind, float]]) -> Iterator[str]:
    """Lines describing how well the kinds were found: confusion matrix, per-kind and LAW-at-threshold figures."""
    argmax = [max(s, key=s.__getitem__) for s in scores]
    decided = [decide(s) for s in scores]
    accuracy = sum(t == p for t, p in zip(truth, decided)) / len(truth)
    yield f"== {name}: {len(truth)} questions, accuracy {accuracy:.3f} (as question_kind decides)"
    kinds = [k for k in QuestionKind if k in truth or k in decided]
    matrix = confusion(truth, decided)
    yield "true \\ predicted " + " ".join(f"{k.value:>7}" for k in kinds)
    for t in kinds:
        yield f"{t.value:>17} " + " ".join(f"{matrix.get((t, p), 0):>7}" for p in kinds)
    for kind in kinds:
        p, r, n = precision_recall(truth, decided, kind)
        yield f"  {kind.value:<6} precision {p:.3f} recall {r:.3f} (predicted {n})"
    p, r, n = precision_recall(truth, argmax, QuestionKind.LAW)
    yield f"  law at argmax: precision {p:.3f} recall {r:.3f} (predicted {n})"
    for threshold in THRESHOLDS:
        at = [QuestionKind.LAW if s[QuestionKind.LAW] >= threshold else QuestionKind.PROCEDURE for s in scores]
        p, r, n = precision_recall(truth, at, QuestionKind.LAW)
        yield f"  law at p >= {threshold}: precision {p:.3f} recall {r:.3f} (predicted {n})"


def cross_validate(examples: list[Example], folds: int = 5, regularization: float = REGULARIZATION) -> Iterator[str]:
    """Stratified k-fold figures on the training examples."""
    from sklearn.model_selection import StratifiedKFold

    texts = [e.text for e in examples]
    labels = [e.kind for e in examples]
    truth: list[QuestionKind] = []
    scores: list[dict[QuestionKind, float]] = []
    for train_at, test_at in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels):
        fitted = train([examples[i] for i in train_at], regularization)
        truth += [labels[i] for i in test_at]
        scores += [fitted.probabilities(texts[i]) for i in test_at]
    yield from report(f"{folds}-fold cross-validation on the train split (C={regularization})", truth, scores)


def main(argv: list[str]) -> None:
    """Print cross-validated figures, the check split's, and those of any labelled file given."""
    examples = read_examples(training_files())
    print(f"training: {len(examples)} questions, {dict(Counter(e.kind.value for e in examples))}")
    for line in cross_validate(examples):
        print(line)
    fitted = model()
    check = read_examples(training_files(), split="check")
    for line in report("check split (unseen by training)", [e.kind for e in check], [fitted.probabilities(e.text) for e in check]):
        print(line)
    for name in argv:
        rows = read_examples([Path(name)], split=None)
        for line in report(name, [e.kind for e in rows], [fitted.probabilities(e.text) for e in rows]):
            print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
