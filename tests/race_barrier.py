"""A barrier for processes a test starts together to force a race: each marks in one folder what it has
reached ("read", or "waiting" for a lock), and waits until every other process has read or is waiting."""

from __future__ import annotations

import sys
import time
from pathlib import Path

BARRIER_SECONDS = 180  # how long a process waits for the others to start (a loaded 2-core machine is slow)


class Barrier:
    def __init__(self, folder: str | Path, name: str, count: int) -> None:
        self.folder = Path(folder)
        self.name = name
        self.others = [f"p{i}" for i in range(count) if f"p{i}" != name]

    def arrive(self, stage: str) -> None:
        (self.folder / f"{stage}-{self.name}").touch()

    def wait_for_others(self) -> None:
        deadline = time.monotonic() + BARRIER_SECONDS
        while not all((self.folder / f"read-{o}").exists() or (self.folder / f"waiting-{o}").exists() for o in self.others):
            if time.monotonic() > deadline:
                sys.exit(f"race hook: {self.others} never reached the barrier")
            time.sleep(0.01)  # polling for a condition, not waiting a fixed time
