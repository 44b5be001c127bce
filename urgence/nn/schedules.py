"""Learning-rate schedules: ``schedule(step) -> learning rate``, ``step`` counting from 0.

The optimiser calls its schedule with its own step counter (one step per batch), so a
schedule over epochs is written in batches: ``decay_steps = epochs * batches_per_epoch``.
"""

from __future__ import annotations

import math
from typing import Any


class Schedule:
    """Base class; subclasses are plain, JSON-configurable functions of the step."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"name": type(self).__name__, **vars(self)}


def _check_positive(**values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ValueError(f"{key} must be > 0, got {value}")


class Constant(Schedule):
    def __init__(self, lr: float) -> None:
        _check_positive(lr=lr)
        self.lr = float(lr)

    def __call__(self, step: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """``lr * factor ** (step // every)``: multiply by ``factor`` every ``every`` steps."""

    def __init__(self, lr: float, *, every: int, factor: float = 0.5) -> None:
        _check_positive(lr=lr, every=every, factor=factor)
        self.lr = float(lr)
        self.every = int(every)
        self.factor = float(factor)

    def __call__(self, step: int) -> float:
        return self.lr * self.factor ** (step // self.every)


class CosineDecay(Schedule):
    """Linear warm-up from ``lr / warmup_steps`` to ``lr`` over ``warmup_steps``, then a cosine
    from ``lr`` down to ``lr * final_fraction`` at ``decay_steps``, flat after that."""

    def __init__(
        self, lr: float, *, decay_steps: int, warmup_steps: int = 0, final_fraction: float = 0.0
    ) -> None:
        _check_positive(lr=lr, decay_steps=decay_steps)
        if not 0 <= warmup_steps < decay_steps:
            raise ValueError(f"warmup_steps must lie in [0, decay_steps), got {warmup_steps}")
        if not 0 <= final_fraction <= 1:
            raise ValueError(f"final_fraction must lie in [0, 1], got {final_fraction}")
        self.lr = float(lr)
        self.decay_steps = int(decay_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = self.decay_steps - self.warmup_steps
        progress = min(step - self.warmup_steps, span) / span
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.lr * (self.final_fraction + (1 - self.final_fraction) * cosine)


SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls for cls in (Constant, StepDecay, CosineDecay)
}


def from_config(config: dict[str, Any]) -> Schedule:
    """Rebuild a schedule from ``get_config()``; ``ValueError`` if the name is unknown."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {sorted(SCHEDULES)}")
    lr = config.pop("lr")
    return SCHEDULES[name](lr, **config)
