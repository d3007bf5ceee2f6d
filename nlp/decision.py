"""Whether the best candidate is the answer: fitted models instead of hand-set thresholds.

The models read what the two retrievers and the question-kind classifier say about a question (scores,
gaps, how much of the question the best entry explains, cues of a law question...) and give the
probability that the best candidate is the entry the citizen asks about: the mean of a logistic
regression and of gradient-boosted trees (`BoostedTrees`). The linear model carries over best to
questions unlike the training ones; the trees read combinations of features a weighted sum cannot; their
mean did better than either alone out of fold and on questions never fitted on. Both are fitted with
cross-validation on the project's own labelled questions by `python -m quality.train_decision`, which
writes them and the thresholds to `nlp/models/decision.json`; nothing is fitted at run time, and
scikit-learn is not loaded to use them. The thresholds are chosen for precision: a wrong answer costs
more than offering choices. The same file holds the fitted order of the runners-up offered as choices
(`ChoiceOrder`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).resolve().parent / "models" / "decision.json"
# The feature saying the question names its best entry: contains most of one of its names or is very close
# to one of its phrasings (the earlier rule also wanted a lead over the runner-up; a question that names
# "mất hộ chiếu" names it even when "cấp hộ chiếu" scores close behind, and the model reads the gap itself).
NAMED = "named"


@dataclass(frozen=True)
class ChoiceOrder:
    """A fitted linear score that orders the runners-up offered as choices (the best candidate stays first).

    Fused retrieval scores put a look-alike second as often as the entry asked about; the entry that
    explains more of the question ("khai báo vũ khí" against "khai thuế") is more often the one meant.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]

    def score(self, values: Mapping[str, float]) -> float:
        return sum(coef * (values[name] - mean) / scale
                   for name, mean, scale, coef in zip(self.features, self.mean, self.scale, self.coef))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef)}

    @classmethod
    def from_dict(cls, raw: dict) -> ChoiceOrder:
        return cls(tuple(raw["features"]), tuple(raw["mean"]), tuple(raw["scale"]), tuple(raw["coef"]))


@dataclass(frozen=True, eq=False)
class BoostedTrees:
    """Gradient-boosted regression trees for a binary outcome, as scikit-learn's HistGradientBoostingClassifier
    fitted them (`quality.train_decision.export_trees`): every tree's nodes in one flat table, so that all
    trees are walked together, one level at a time. A node goes left when its feature is at most its
    threshold; a leaf adds its value to the log-odds."""

    baseline: float
    roots: np.ndarray  # the first node of each tree
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray  # node numbers in the flat table
    right: np.ndarray
    value: np.ndarray
    leaf: np.ndarray
    depth: int  # the deepest leaf's depth: this many steps reach every leaf

    def __post_init__(self) -> None:
        # A leaf is its own child, so that every tree can take `depth` steps whatever its own depth.
        itself = np.arange(len(self.leaf))
        object.__setattr__(self, "_left", np.where(self.leaf, itself, self.left))
        object.__setattr__(self, "_right", np.where(self.leaf, itself, self.right))

    def log_odds(self, x: np.ndarray) -> float:
        # Every node's way is settled at once for this question (a few whole-table operations), then each
        # step of the walk is one look-up: walking node by node cost six small operations a step.
        child = np.where(x.take(self.feature) > self.threshold, self._right, self._left)
        node = self.roots
        for _ in range(self.depth):
            node = child.take(node)
        return float(self.baseline + self.value.take(node).sum())

    def __eq__(self, other: object) -> bool:  # arrays compare element by element; two models are equal as a whole
        return isinstance(other, BoostedTrees) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # equal models, unhashable arrays

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "roots": self.roots.tolist(), "feature": self.feature.tolist(),
                "threshold": self.threshold.tolist(), "left": self.left.tolist(), "right": self.right.tolist(),
                "value": self.value.tolist(), "leaf": self.leaf.astype(int).tolist(), "depth": self.depth}

    @classmethod
    def from_dict(cls, raw: dict) -> BoostedTrees:
        return cls(float(raw["baseline"]), np.array(raw["roots"], dtype=np.intp), np.array(raw["feature"], dtype=np.intp),
                   np.array(raw["threshold"], dtype=float), np.array(raw["left"], dtype=np.intp),
                   np.array(raw["right"], dtype=np.intp), np.array(raw["value"], dtype=float),
                   np.array(raw["leaf"], dtype=bool), int(raw["depth"]))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@dataclass(frozen=True)
class DecisionModel:
    """A fitted logistic regression over named features, standardised as at fitting, averaged with
    gradient-boosted trees over the same features (raw) when the file has them."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    answer_at: float  # answer when the probability is at least this ...
    choices_at: float  # ... offer the best candidates as choices from this; below it, say we don't know
    answer_named_at: float  # the answer threshold for a question that names its entry outright (feature NAMED)
    about: dict = field(default_factory=dict, compare=False)  # what it was fitted on and how well it did
    choice_order: ChoiceOrder | None = None  # how runners-up are ordered; None keeps the retrievers' order
    trees: BoostedTrees | None = None
    choices_named_at: float | None = None  # the choices threshold for a question that names its entry (None: choices_at)

    def probability(self, values: Mapping[str, float]) -> float:
        """P(the best candidate is right); a feature the model was not fitted with is an error."""
        z = self.intercept
        for name, mean, scale, coef in zip(self.features, self.mean, self.scale, self.coef):
            z += coef * (values[name] - mean) / scale
        if self.trees is None:
            return _sigmoid(z)
        x = np.array([values[name] for name in self.features], dtype=float)
        return (_sigmoid(z) + _sigmoid(self.trees.log_odds(x))) / 2

    def answers(self, values: Mapping[str, float], probability: float) -> bool:
        """Whether a question with these features and this probability is answered."""
        return probability >= (self.answer_named_at if values[NAMED] > 0 else self.answer_at)

    def offers_choices(self, values: Mapping[str, float], probability: float) -> bool:
        """Whether a question this model does not answer is offered its best candidates as choices."""
        named = values[NAMED] > 0 and self.choices_named_at is not None
        return probability >= (self.choices_named_at if named else self.choices_at)

    def to_json(self) -> str:
        readable = json.dumps({
            "features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
            "coef": list(self.coef), "intercept": self.intercept, "answer_at": self.answer_at,
            "choices_at": self.choices_at, "answer_named_at": self.answer_named_at,
            "choices_named_at": self.choices_named_at, "about": self.about,
            "choice_order": self.choice_order.to_dict() if self.choice_order else None,
        }, ensure_ascii=False, indent=1)
        if self.trees is None:
            return readable
        # Thousands of tree nodes one number a line would bury the readable part: they go on one line, last.
        return readable[:-2] + ',\n "trees": ' + json.dumps(self.trees.to_dict(), separators=(",", ":")) + "\n}"

    @classmethod
    def from_json(cls, text: str) -> DecisionModel:
        raw = json.loads(text)
        return cls(tuple(raw["features"]), tuple(raw["mean"]), tuple(raw["scale"]), tuple(raw["coef"]),
                   float(raw["intercept"]), float(raw["answer_at"]), float(raw["choices_at"]), float(raw["answer_named_at"]),
                   raw.get("about", {}), ChoiceOrder.from_dict(raw["choice_order"]) if raw.get("choice_order") else None,
                   BoostedTrees.from_dict(raw["trees"]) if raw.get("trees") else None,
                   float(raw["choices_named_at"]) if raw.get("choices_named_at") is not None else None)


@lru_cache(maxsize=1)
def decision_model(path: Path = MODEL_PATH) -> DecisionModel:
    """The committed model (read once per process)."""
    return DecisionModel.from_json(path.read_text(encoding="utf-8"))
