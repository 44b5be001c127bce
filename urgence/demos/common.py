"""What every demo shares: its run configuration, its error type, its progress messages."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


class DemoError(ValueError):
    """An option that does not fit the demo (unknown model, epochs < 1, ...)."""


@dataclass(frozen=True)
class DemoConfig:
    """Options of one demo run, already validated by ``urgence demo``.

    model: one of the demo's ``MODELS``; epochs: training epochs (None: not a training demo);
    seed: seeds every ``numpy.random.Generator`` of the run; out: folder for the PNG figures;
    limit: train and test on at most this many images (quick runs, tests); data: a data file
    or folder instead of the installed default; verbose: progress on stderr.
    """

    model: str
    epochs: int | None
    seed: int = 0
    out: Path = Path("docs/figures")
    limit: int | None = None
    data: Path | None = None
    verbose: bool = True


def progress(config: DemoConfig, message: str) -> None:
    """Report progress on stderr (stdout is kept for the result)."""
    if config.verbose:
        print(message, file=sys.stderr, flush=True)
