"""Progress of long commands (``hub generate``, workload generation in ``bench``, catalogue
imports): a line on standard error at most every few seconds with the count, share, rate
and time left, and a last line when done. Short runs print nothing."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts work done towards ``total`` and reports it on ``stream``."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, every_seconds: float = 2.0) -> None:
        self.label, self.total, self.done = label, total, 0
        self.stream = stream if stream is not None else sys.stderr
        self.every = every_seconds
        self.started = self.last = time.monotonic()
        self.reported = False

    def advance(self, count: int = 1) -> None:
        self.done += count
        moment = time.monotonic()
        if moment - self.last >= self.every:
            self.last = moment
            self._line(moment)

    def finish(self) -> None:
        """The closing line, when any progress was shown (a run of a few seconds shows none)."""
        if self.reported:
            self._line(time.monotonic(), final=True)

    def _line(self, moment: float, *, final: bool = False) -> None:
        elapsed = max(moment - self.started, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        if final:
            tail = f"done in {elapsed:.0f} s"
        else:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            tail = f"about {left:.0f} s left" if left != float("inf") else "rate unknown"
        print(f"[{self.label}] {self.done:,}/{self.total:,}{share}, {rate:,.0f}/s, {tail}",
              file=self.stream, flush=True)
        self.reported = True
