"""Whether the best candidate is the answer: one logistic model instead of hand-set thresholds.

The model reads what the two retrievers and the question-kind classifier say about a question (scores,
gaps, how much of the question the best entry explains, cues of a law question...) and gives the
probability that the best candidate is the entry the citizen asks about. It is fitted with
cross-validation on the project's own labelled questions by `python -m quality.train_decision`, which
writes its coefficients and its two thresholds to `nlp/models/decision.json`; nothing is fitted at
run time. The thresholds are chosen for precision: a wrong answer costs more than offering choices.
The same file holds the fitted order of the runners-up offered as choices (`ChoiceOrder`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

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


@dataclass(frozen=True)
class DecisionModel:
    """A fitted logistic regression over named features, standardised as at fitting."""

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

    def probability(self, values: Mapping[str, float]) -> float:
        """P(the best candidate is right); a feature the model was not fitted with is an error."""
        z = self.intercept
        for name, mean, scale, coef in zip(self.features, self.mean, self.scale, self.coef):
            z += coef * (values[name] - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def answers(self, values: Mapping[str, float], probability: float) -> bool:
        """Whether a question with these features and this probability is answered."""
        return probability >= (self.answer_named_at if values[NAMED] > 0 else self.answer_at)

    def to_json(self) -> str:
        return json.dumps({
            "features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
            "coef": list(self.coef), "intercept": self.intercept, "answer_at": self.answer_at,
            "choices_at": self.choices_at, "answer_named_at": self.answer_named_at, "about": self.about,
            "choice_order": self.choice_order.to_dict() if self.choice_order else None,
        }, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DecisionModel:
        raw = json.loads(text)
        return cls(tuple(raw["features"]), tuple(raw["mean"]), tuple(raw["scale"]), tuple(raw["coef"]),
                   float(raw["intercept"]), float(raw["answer_at"]), float(raw["choices_at"]), float(raw["answer_named_at"]),
                   raw.get("about", {}), ChoiceOrder.from_dict(raw["choice_order"]) if raw.get("choice_order") else None)


@lru_cache(maxsize=1)
def decision_model(path: Path = MODEL_PATH) -> DecisionModel:
    """The committed model (read once per process)."""
    return DecisionModel.from_json(path.read_text(encoding="utf-8"))
