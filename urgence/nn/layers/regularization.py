"""Dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.nn.layers.base import Layer, LayerError, Shape


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale the
    rest by ``1 / (1 - rate)``; at inference, the identity. x: (N, ...) float -> same.

    The masks come from the generator given to ``build`` (the model passes one seeded from its
    own seed), so two models built with the same seed drop the same units.
    """

    def __init__(self, rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(rate, int | float) or not 0.0 <= rate < 1.0:
            raise LayerError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self._rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        self._rng = rng

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        keep = self._rng.random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep * np.asarray(1.0 / (1.0 - self.rate), dtype=x.dtype)
        return x * self._mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        return grad_out if self._mask is None else grad_out * self._mask

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}
