"""Fitted text classifiers kept as plain arrays in a file, so that the bot reads them at start without
scikit-learn (about 70 MB of memory and a second of start-up that answering never needed).

A file holds the labels, the intercept and, for each feature space, its vocabulary (in column order),
idf and coefficients, plus a fingerprint of the training files and settings it was fitted from. A file
whose fingerprint no longer matches (a training file was edited) is not used: the model is fitted
afresh at start, with a warning to write the file again (`python -m quality.train_classifiers`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent / "models"


@dataclass(frozen=True)
class Space:
    """One feature space: column of each feature, idf, and coefficients (features x labels)."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray


@dataclass(frozen=True)
class Fitted:
    labels: tuple[str, ...]
    intercept: np.ndarray
    spaces: tuple[Space, ...]
    fingerprint: str


def fingerprint(files: Iterable[Path], settings: str) -> str:
    """What a model was fitted from: the training files' bytes and the fitting settings."""
    digest = hashlib.sha256(settings.encode())
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def save(path: Path, fitted: Fitted) -> None:
    arrays: dict[str, np.ndarray] = {
        "labels": np.array(fitted.labels), "intercept": fitted.intercept, "fingerprint": np.array(fitted.fingerprint),
    }
    for number, space in enumerate(fitted.spaces):
        terms = sorted(space.vocabulary, key=space.vocabulary.__getitem__)
        arrays[f"terms_{number}"] = np.array(terms)
        arrays[f"idf_{number}"] = space.idf
        arrays[f"coef_{number}"] = space.coef
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:  # np.savez would add ".npz" to a name without it
        np.savez_compressed(out, **arrays)


def load(path: Path, expected_fingerprint: str) -> Fitted | None:
    """The model in `path`, or None when there is none or it was fitted from other training data."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        if str(data["fingerprint"]) != expected_fingerprint:
            return None
        spaces = []
        number = 0
        while f"terms_{number}" in data:
            terms = data[f"terms_{number}"].tolist()
            spaces.append(Space({term: column for column, term in enumerate(terms)}, data[f"idf_{number}"],
                                np.ascontiguousarray(data[f"coef_{number}"])))
            number += 1
        return Fitted(tuple(data["labels"].tolist()), data["intercept"], tuple(spaces), expected_fingerprint)
