"""Fit the decision model (`nlp/decision.py`) on the project's own labelled questions.

    python -m quality.train_decision [--national FILE] [--out nlp/models/decision.json]

What it sees: the "train" lines of `nlp/training/questions_*.jsonl`, each read against the knowledge
base it was labelled for (the 53 starter entries, or the starter entries plus the national catalogue,
imported as `bot.py kb import` does). The "check" lines are never fitted on: their figures are printed
beside the cross-validated ones to show whether the model fits what it saw rather than questions in
general. The measurement sets (`../shared/eval`, `quality/blind_questions.jsonl`) are never read here.

How the thresholds are chosen, on out-of-fold probabilities (each the mean over SHUFFLES cuts into folds):
the answer threshold is the lowest at which at least ANSWER_PRECISION of the answers given are expected to be
right, each question's chance read from a logistic fit on the probabilities (`precise_threshold`; a wrong answer
is worse than "did you mean one of these three?"); the choices threshold is the one with the best value for a
citizen below it, where choices that contain the right entry are worth CHOICES_VALUE and choices that do not
cost a little (CHOICES_COST: they make the citizen read three wrong names). Questions that name their entry
and those that do not get thresholds of their own.

The order of the runners-up offered as choices is fitted on the same train lines (`fit_choice_order`):
a logistic model over each of the first candidates of the in-scope questions, "is this the entry asked
about?"; its cross-validated and check-split top-3 figures are written beside the decision's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config import PROJECT_DIR, SHARED_DIR
from knowledge.catalog import Catalog
from nlp.decision import NAMED, BoostedTrees
from nlp.labelled import labelled_lines

TRAINING_DIR = PROJECT_DIR / "nlp" / "training"
SAMPLE = PROJECT_DIR / "tests" / "data" / "national_sample.jsonl.gz"
NATIONAL = SHARED_DIR / "data" / "dvcqg" / "procedures_all_ministries.jsonl.gz"
OUT = PROJECT_DIR / "nlp" / "models" / "decision.json"
ANSWER_PRECISION = 0.85
# The boosted trees averaged with the logistic model (nlp.decision.BoostedTrees): small trees, a slow
# learning rate and large leaves, so that no tree learns one question.
TREES = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 30, "l2_regularization": 1.0,
         "early_stopping": False}
CHOICES_VALUE = 0.4
CHOICES_COST = 0.3
FOLDS = 5
SHUFFLES = 5  # ways of cutting the folds whose out-of-fold probabilities are averaged (`repeated_out_of_fold`)
log = logging.getLogger(__name__)


@dataclass
class Example:
    question: dict
    kb: str
    features: dict[str, float]
    right: bool  # the best candidate is an expected entry
    in_top3: bool
    in_scope: bool
    choices: list[dict[str, float]]  # what the choice order reads about each candidate
    choice_right: list[bool]  # which of those candidates are expected


def build_catalog(national: Path | None) -> Catalog:
    """The starter entries, plus a national file imported as `kb import` would (curated entries kept)."""
    from knowledge.db import session_factory
    from knowledge.dvcqg import load_catalogue
    from knowledge.editing import apply
    from knowledge.loader import open_knowledge_base

    with tempfile.TemporaryDirectory() as folder:
        engine = open_knowledge_base(f"sqlite:///{Path(folder) / 'kb.db'}")
        if national is not None:
            with session_factory(engine).begin() as session:
                apply(session, load_catalogue(national), "train_decision", f"file:{national.name}", origin="dvcqg",
                      keep_curated=True)
        catalog = Catalog.load(engine)
        engine.dispose()
        return catalog


def training_questions(directory: Path = TRAINING_DIR) -> list[dict]:
    """Every labelled question of the project's own files, with the knowledge base it was written for."""
    out = []
    for path in sorted(directory.glob("questions_*.jsonl")):
        for item in labelled_lines([path]):
            item["_from"] = path.name
            out.append(item)
    return out


def cross_fitted_kinds(questions: list[dict]) -> dict[str, dict]:
    """Kind scores for each train question from a kind classifier fitted without it.

    The kind classifier learns from these same questions; scored by itself, a train question's law
    probability would be surer than any new question's, and the decision model would trust it too much.
    """
    from nlp import kinds
    from nlp.normalize import normalize

    own = kinds.read_examples([kinds.TRAINING_DIR / kinds.OWN_FILE])
    labelled = [q for q in questions if q.get("split", "train") == "train" and q.get("kind") in kinds.QuestionKind._value2member_map_]
    out: dict[str, dict] = {}
    for fold in range(FOLDS):
        held = [q for n, q in enumerate(labelled) if n % FOLDS == fold]
        rest = [kinds.Example(kinds.model_text(normalize(q["q"])), kinds.QuestionKind(q["kind"]))
                for n, q in enumerate(labelled) if n % FOLDS != fold]
        model = kinds.train(own + rest)
        for q in held:
            scores = model.probabilities(kinds.model_text(normalize(q["q"])))
            out[q["q"]] = {kind: scores.get(kind, 0.0) for kind in kinds.QuestionKind}
    return out


def examples_for(catalog: Catalog, questions: list[dict], kb: str, fitted_kinds: dict[str, dict]) -> list[Example]:
    from nlp.kinds import kind_scores
    from nlp.understanding import CHOICE_DEPTH, choice_features, read_question

    index = catalog.index
    out = []
    for item in questions:
        known = fitted_kinds.get(item["q"])
        reading = read_question(item["q"], index, (lambda _, k=known: k) if known is not None else kind_scores)
        if reading is None:
            continue
        expect = {index.canonical(e) for e in item.get("expect", [])}
        for entry_id in list(expect):
            entry = catalog.entries.get(entry_id)
            if entry is not None:
                expect |= {index.canonical(e) for e in entry.equivalents}
        ranked = [c.entry_id for c in reading.candidates]
        right = bool(ranked) and ranked[0] in expect
        out.append(Example(item, kb, reading.features, right, bool(expect & set(ranked[:3])), bool(expect),
                           choice_features(reading), [e in expect for e in ranked[:CHOICE_DEPTH]]))
    return out


def choices_value(examples: list[Example], p: np.ndarray, answer_at: float, choices_at: float) -> float:
    """What offering choices from `choices_at` up to `answer_at` is worth to the citizens asking these questions."""
    total = 0.0
    for example, prob in zip(examples, p):
        if choices_at <= prob < answer_at:
            total += CHOICES_VALUE if example.in_scope and example.in_top3 else -CHOICES_COST
    return total


GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


def precise_threshold(right: np.ndarray, p: np.ndarray) -> float:
    """The lowest probability from which at least ANSWER_PRECISION of the answers are expected to be right.

    Expected, not counted: each question's chance of being right is read from a logistic fit of `right` on
    the log-odds of `p` over all these questions (`calibrated`). Counted, the precision above a threshold
    rests on the few dozen questions there, and one more wrong answer among them moved the threshold for
    questions that name no entry from 0.78 to 0.95 (the top of the grid); read from two fitted numbers, it
    moves a point or two."""
    expected = calibrated(right, p)
    return next((float(t) for t in GRID if (p >= t).any() and expected[p >= t].mean() >= ANSWER_PRECISION), float(GRID[-1]))


def calibrated(right: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each question's chance of being right, from a logistic fit of `right` on the log-odds of `p` (Platt)."""
    from sklearn.linear_model import LogisticRegression

    if len(set(right.tolist())) < 2:  # all right or all wrong: nothing to fit, the count is the chance
        return right.astype(float)
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    log_odds = np.log(clipped / (1 - clipped)).reshape(-1, 1)
    return LogisticRegression(C=1e6).fit(log_odds, right.astype(int)).predict_proba(log_odds)[:, 1]


def choose_thresholds(examples: list[Example], p: np.ndarray) -> tuple[float, float, float, float]:
    """(answer, answer when the question names its entry, offer choices, offer choices when it names its
    entry), from out-of-fold probabilities."""
    right = np.array([e.right for e in examples])
    named = np.array([e.features[NAMED] > 0 for e in examples])
    # Questions that name their entry (nlp.decision.NAMED) and those that don't each get the
    # threshold at which their own answers are ANSWER_PRECISION right: naming is the surest evidence,
    # which one model over both kinds of question under-weighs, and a look-alike never names its entry.
    answer_at = precise_threshold(right[~named], p[~named])
    answer_named_at = precise_threshold(right[named], p[named])
    # Choices likewise, each group below its own answer threshold: a question that names its entry is
    # answered from answer_named_at, and counting it as offered choices up to answer_at was counting choices
    # never made.
    choices_at = _best_choices_threshold([e for e, n in zip(examples, named) if not n], p[~named], answer_at)
    choices_named_at = _best_choices_threshold([e for e, n in zip(examples, named) if n], p[named], answer_named_at)
    return answer_at, answer_named_at, choices_at, choices_named_at


def _best_choices_threshold(examples: list[Example], p: np.ndarray, answer_at: float) -> float:
    """The threshold below `answer_at` from which choices are worth most (the highest of equals)."""
    return float(max(GRID[GRID <= answer_at], key=lambda t: (choices_value(examples, p, answer_at, t), t)))


def figures(examples: list[Example], p: np.ndarray, model) -> dict[str, float]:
    """The eval's figures for these questions (first turns only, so no follow-ups)."""
    said = [model.answers(e.features, q) for e, q in zip(examples, p)]
    in_scope = [(e, a) for e, a in zip(examples, said) if e.in_scope]
    oos = [(e, a) for e, a in zip(examples, said) if not e.in_scope]
    answered = [(e, a) for e, a in zip(examples, said) if a]
    return {
        "questions": len(examples),
        "top1": round(sum(e.right and a for e, a in in_scope) / max(len(in_scope), 1), 3),
        "out_of_scope_rejected": round(sum(not a for _, a in oos) / max(len(oos), 1), 3),
        "wrong_confident": round(sum(not e.right for e, _ in answered) / max(len(examples), 1), 3),
        "answer_precision": round(sum(e.right for e, _ in answered) / max(len(answered), 1), 3),
    }


def matrix(examples: list[Example], names: list[str]) -> np.ndarray:
    """The examples' features as rows, in the order of `names`."""
    return np.array([[e.features[n] for n in names] for e in examples])


@dataclass
class Fitted:
    """The two models of one fit, and the probability they give together (as `DecisionModel.probability`)."""

    scaler: object
    linear: object
    trees: object

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return (self.linear.predict_proba(self.scaler.transform(x))[:, 1] + self.trees.predict_proba(x)[:, 1]) / 2


def fit(examples: list[Example], names: list[str]) -> Fitted:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = matrix(examples, names)
    y = np.array([e.right for e in examples], dtype=int)
    scaler = StandardScaler().fit(x)
    linear = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x), y)
    trees = HistGradientBoostingClassifier(**TREES, random_state=0).fit(x, y)
    return Fitted(scaler, linear, trees)


def export_trees(model) -> BoostedTrees:
    """A fitted HistGradientBoostingClassifier (binary, numeric features) as the flat table the bot walks."""
    roots, tables = [], []
    offset = 0
    for (predictor,) in model._predictors:  # one tree per iteration for a binary outcome
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not exported")
        roots.append(offset)
        tables.append((nodes, offset))
        offset += len(nodes)
    nodes = np.concatenate([t for t, _ in tables])
    shift = np.concatenate([np.full(len(t), o) for t, o in tables])
    return BoostedTrees(
        baseline=float(np.ravel(model._baseline_prediction)[0]), roots=np.array(roots, dtype=np.intp),
        feature=nodes["feature_idx"].astype(np.intp), threshold=nodes["num_threshold"].astype(float),
        left=(nodes["left"] + shift).astype(np.intp), right=(nodes["right"] + shift).astype(np.intp),
        value=np.where(nodes["is_leaf"], nodes["value"], 0.0).astype(float), leaf=nodes["is_leaf"].astype(bool),
        depth=int(nodes["depth"].max()),
    )


def fit_choice_order(examples: list[Example]):
    """A pointwise logistic model over the candidates of in-scope questions: is this candidate expected?

    Returns the fitted order and its figures: the share of questions whose expected entry is among the
    first three, in the retrievers' order and in the fitted one (runners-up of held-out folds).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    from nlp.decision import ChoiceOrder

    usable = [e for e in examples if e.in_scope and len(e.choices) >= 3]
    names = sorted(usable[0].choices[0])
    x = np.array([[c[n] for n in names] for e in usable for c in e.choices])
    y = np.array([r for e in usable for r in e.choice_right], dtype=int)
    groups = np.array([i for i, e in enumerate(usable) for _ in e.choices])

    def top3(order_of) -> float:
        return round(float(np.mean([any(e.choice_right[n] for n in order_of(i, e)[:3]) for i, e in enumerate(usable)])), 3)

    held_out: dict[int, list[int]] = {}
    for train_rows, test_rows in GroupKFold(FOLDS).split(x, y, groups):
        scaler = StandardScaler().fit(x[train_rows])
        model = LogisticRegression(max_iter=2000).fit(scaler.transform(x[train_rows]), y[train_rows])
        scores = model.decision_function(scaler.transform(x[test_rows]))
        for group in np.unique(groups[test_rows]):
            mine = scores[groups[test_rows] == group]
            held_out[int(group)] = [0, *sorted(range(1, len(mine)), key=lambda n: -mine[n])]
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(max_iter=2000).fit(scaler.transform(x), y)
    order = ChoiceOrder(tuple(names), tuple(float(v) for v in scaler.mean_), tuple(float(v) or 1.0 for v in scaler.scale_),
                        tuple(float(v) for v in model.coef_[0]))
    figures_ = {"questions": len(usable), "top3_retrievers": top3(lambda i, e: list(range(len(e.choices)))),
                "top3_cross_validated": top3(lambda i, e: held_out[i])}
    return order, figures_


def choice_top3(examples: list[Example], order) -> dict[str, float]:
    """The share of in-scope questions with the expected entry among the first three, before and after ordering."""
    usable = [e for e in examples if e.in_scope and e.choices]

    def fitted(e: Example) -> list[int]:
        scores = [order.score(c) for c in e.choices]
        return [0, *sorted(range(1, len(scores)), key=lambda n: -scores[n])]

    def share(order_of) -> float:
        return round(float(np.mean([any(e.choice_right[n] for n in order_of(e)[:3]) for e in usable])), 3)

    return {"questions": len(usable), "top3_retrievers": share(lambda e: list(range(len(e.choices)))), "top3_fitted": share(fitted)}


def repeated_out_of_fold(train: list[Example], names: list[str], y: np.ndarray) -> np.ndarray:
    """Each train question's probability from models that never saw it, averaged over SHUFFLES ways of
    cutting the folds. The threshold for questions that name no entry rests on a few dozen answers near it:
    from one way of cutting it came out anywhere from 0.74 to 0.95 (15 cuts tried), from the mean of five
    between 0.73 and 0.79 (three sets of five)."""
    from sklearn.model_selection import StratifiedKFold

    out_of_fold = np.zeros((SHUFFLES, len(train)))
    for shuffle in range(SHUFFLES):
        for fold_train, fold_test in StratifiedKFold(FOLDS, shuffle=True, random_state=shuffle).split(np.zeros(len(train)), y):
            fitted = fit([train[i] for i in fold_train], names)
            out_of_fold[shuffle, fold_test] = fitted.probabilities(matrix([train[i] for i in fold_test], names))
    return out_of_fold.mean(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--national", type=Path, default=NATIONAL if NATIONAL.exists() else SAMPLE)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Reading a question walks sets of words, whose order Python draws anew in each process: ties fall
        # differently and the fitted model moved from run to run. The committed model must be what the
        # script makes again, so it runs with one fixed order.
        os.execve(sys.executable, [sys.executable, "-m", "quality.train_decision", *sys.argv[1:]],
                  {**os.environ, "PYTHONHASHSEED": "0"})
    logging.basicConfig(level=logging.WARNING)
    from threadpoolctl import threadpool_limits

    # One thread for BLAS and OpenMP: sums computed in parallel differ in their last bits from run to run,
    # and a tree's split between two close values can tip.
    threadpool_limits(limits=1)

    from nlp.decision import DecisionModel

    questions = training_questions()
    starter, national = build_catalog(None), build_catalog(args.national)
    # Law questions and questions of no kind name no procedure whatever the knowledge base: each is a
    # negative for both. A procedure the starter entries lack may be in the national catalogue, so
    # procedure questions are read only against the base they were labelled for.
    either = [q for q in questions if not q.get("expect") and q.get("kind") in ("law", "other", "status")]
    fitted_kinds = cross_fitted_kinds(questions)
    examples = (examples_for(starter, [q for q in questions if q.get("kb") == "starter"] + [q for q in either if q.get("kb") != "starter"],
                             "starter", fitted_kinds)
                + examples_for(national, [q for q in questions if q.get("kb") == "national"] + [q for q in either if q.get("kb") != "national"],
                               "national", fitted_kinds))
    train = [e for e in examples if e.question.get("split", "train") == "train"]
    check = [e for e in examples if e.question.get("split") == "check"]
    names = sorted(train[0].features)
    y = np.array([e.right for e in train], dtype=int)
    out_of_fold = repeated_out_of_fold(train, names, y)
    answer_at, answer_named_at, choices_at, choices_named_at = choose_thresholds(train, out_of_fold)
    fitted = fit(train, names)
    scaler, model = fitted.scaler, fitted.linear
    trees = export_trees(fitted.trees)
    decision = DecisionModel(
        tuple(names), tuple(float(v) for v in scaler.mean_), tuple(float(v) or 1.0 for v in scaler.scale_),
        tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]), answer_at, choices_at, answer_named_at,
        trees=trees, choices_named_at=choices_named_at,
    )
    # The bot walks the exported trees without scikit-learn: they must give what scikit-learn gives.
    x_train = matrix(train, names)
    mine = np.array([decision.probability(dict(zip(names, row))) for row in x_train])
    if not np.allclose(mine, fitted.probabilities(x_train), atol=1e-9):
        raise SystemExit("the exported trees do not reproduce scikit-learn's probabilities")
    p_check = np.array([decision.probability(e.features) for e in check])
    about = {
        "fitted_by": "python -m quality.train_decision",
        "national_file": args.national.name,
        "model": "mean of a logistic regression and gradient-boosted trees", "trees": TREES,
        "train": dict(Counter(f"{e.kb}/{e.question.get('kind', '?')}" for e in train)),
        "check": dict(Counter(f"{e.kb}/{e.question.get('kind', '?')}" for e in check)),
        "answer_precision_wanted": ANSWER_PRECISION,
        "choices_value": {"with_the_right_entry": CHOICES_VALUE, "without": -CHOICES_COST},
        "cross_validated": {kb: figures([e for e in train if e.kb == kb], out_of_fold[[e.kb == kb for e in train]], decision)
                            for kb in ("starter", "national")},
        "check_split": {kb: figures([e for e in check if e.kb == kb], p_check[[e.kb == kb for e in check]], decision)
                        for kb in ("starter", "national")},
    }
    choice_order, about["choice_order"] = fit_choice_order(train)
    about["choice_order"]["check_split"] = choice_top3(check, choice_order)
    decision = DecisionModel(decision.features, decision.mean, decision.scale, decision.coef, decision.intercept,
                             answer_at, choices_at, answer_named_at, about, choice_order, trees, choices_named_at)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(decision.to_json() + "\n", encoding="utf-8")
    print(json.dumps({"answer_at": answer_at, "answer_named_at": answer_named_at, "choices_at": choices_at,
                      "choices_named_at": choices_named_at, **about}, ensure_ascii=False, indent=1))
    print("coefficients:", {n: round(c, 2) for n, c in zip(names, decision.coef)})


if __name__ == "__main__":
    main()
