"""Reading the project's labelled questions (`nlp/training/*.jsonl`, one JSON object a line)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path


def labelled_lines(paths: Iterable[Path]) -> Iterator[dict]:
    """Every labelled question of the files, in order; blank lines are skipped."""
    for path in paths:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)
