"""A dependency-free progress bar for training, written to stderr.

On a terminal the bar is redrawn in place (at most ten times a second); elsewhere (logs, CI)
only the final line of each epoch is written, so a log file gets one line per epoch.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_logs(logs: dict[str, float]) -> str:
    """``"loss 0.1234 - accuracy 0.9800"`` from ``{"loss": ..., "accuracy": ...}``."""
    return " - ".join(f"{key} {value:.4f}" for key, value in logs.items())


class ProgressBar:
    """One epoch's bar: ``update(done, logs)`` per batch, then ``close(logs)``."""

    def __init__(
        self,
        total: int | None,
        *,
        prefix: str = "",
        stream: TextIO | None = None,
        width: int = 24,
        live: bool | None = None,
    ) -> None:
        self.total = total
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.live = self.stream.isatty() if live is None else live
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def _line(self, done: int, logs: dict[str, float]) -> str:
        elapsed = time.perf_counter() - self.start
        if self.total:
            filled = min(self.width, self.width * done // self.total)
            bar = f"{done}/{self.total} [{'=' * filled}{'.' * (self.width - filled)}]"
        else:
            bar = f"{done} batches"
        details = format_logs(logs)
        return f"{self.prefix}{bar} {elapsed:.1f}s" + (f" - {details}" if details else "")

    def update(self, done: int, logs: dict[str, float]) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self.stream.write("\r" + self._line(done, logs))
            self.stream.flush()

    def close(self, done: int, logs: dict[str, float]) -> None:
        self.stream.write(("\r" if self.live else "") + self._line(done, logs) + "\n")
        self.stream.flush()
