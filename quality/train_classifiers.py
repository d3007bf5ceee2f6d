"""Fit the question-kind and aspect classifiers and write the files the bot reads at start.

    python -m quality.train_classifiers

Run it after editing anything in `nlp/training/` (a test fails until the files match the training data).
Then fit the decision model again (`python -m quality.train_decision`): it reads the kind scores.
"""

from __future__ import annotations

from nlp import aspects, kinds


def main() -> None:
    kinds.write_model()
    aspects.write_model()
    for path in (kinds.MODEL_FILE, aspects.MODEL_FILE):
        print(f"{path.relative_to(path.parents[2])}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
