"""The question-kind and aspect classifiers are read at start from files fitted by `python -m quality.train_classifiers`
(nlp/models/*.npz): they must be the models the training data gives, and reading them must not need scikit-learn."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
from conftest import PROJECT_DIR

from nlp import aspects, kinds, weights
from nlp.normalize import fold, normalize

QUESTIONS = ["lam cccd het bn tien", "bao lau phai di khai tu", "nop o dau va can giay gi", "tron dong bhxh bi phat the nao",
             "ho so cua toi den dau roi", "xin chao", ""]


def test_the_committed_files_are_fitted_from_the_training_data_as_it_is():
    hint = "nlp/training changed: run python -m quality.train_classifiers (then python -m quality.train_decision)"
    assert weights.load(kinds.MODEL_FILE, kinds.training_fingerprint()) is not None, hint
    assert weights.load(aspects.MODEL_FILE, aspects.training_fingerprint()) is not None, hint


def test_the_kind_model_read_from_its_file_is_the_fitted_one():
    stored = kinds.KindModel(weights.load(kinds.MODEL_FILE, kinds.training_fingerprint()))
    fitted = kinds.train(kinds.read_examples(kinds.training_files()))
    for question in QUESTIONS:
        text = kinds.model_text(normalize(question))
        # A fit on another BLAS (or library version) converges a hair apart; a stale file differs by far more.
        assert stored.probabilities(text) == pytest.approx(fitted.probabilities(text), abs=1e-6)


def test_the_aspect_model_read_from_its_file_is_the_fitted_one():
    stored = aspects._from_weights(weights.load(aspects.MODEL_FILE, aspects.training_fingerprint()))
    fitted = aspects._train()
    for question in QUESTIONS:
        folded = fold(normalize(question))
        assert np.allclose(stored.probabilities(folded), fitted.probabilities(folded), atol=1e-6)


def test_a_file_fitted_from_other_training_data_is_not_used(tmp_path, monkeypatch, caplog):
    """After a training file is edited, the stale file would answer with the old model: it is fitted afresh instead."""
    stale = tmp_path / "kinds.npz"
    old = weights.load(kinds.MODEL_FILE, kinds.training_fingerprint())
    # The stale model says every question is about the law.
    coef = [weights.Space(s.vocabulary, s.idf, np.zeros_like(s.coef)) for s in old.spaces]
    intercept = np.array([10.0 if label == "law" else 0.0 for label in old.labels])
    weights.save(stale, weights.Fitted(old.labels, intercept, tuple(coef), "fitted from an older kinds.jsonl"))
    monkeypatch.setattr(kinds, "MODEL_FILE", stale)
    monkeypatch.setattr(kinds, "_model", None)
    with caplog.at_level(logging.WARNING, logger="nlp.kinds"):
        fresh = kinds.model()
    assert "train_classifiers" in caplog.text
    assert kinds.decide(fresh.probabilities(kinds.model_text(normalize("làm căn cước ở đâu")))) == kinds.QuestionKind.PROCEDURE
    monkeypatch.setattr(kinds, "_model", None)


def test_answering_does_not_load_scikit_learn():
    """scikit-learn is for fitting; loading it only to answer cost about 70 MB of every bot's memory."""
    script = ("import sys, nlp; from nlp.matcher import EntryText, KnowledgeIndex; nlp.prepare(); "
              "index = KnowledgeIndex([EntryText('1', 'Đăng ký khai sinh', ('làm giấy khai sinh',))]); "
              "u = nlp.understand('lam giay khai sinh het bao nhieu tien', index); "
              "print(u.entry_id, u.aspects, 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False", done.stdout
