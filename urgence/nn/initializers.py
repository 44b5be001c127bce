"""Weight initialisers: every draw goes through the seeded generator passed to ``build``.

``fan_in`` / ``fan_out`` are the number of inputs / outputs feeding one unit: for a dense
kernel ``(D_in, units)`` they are ``D_in`` and ``units``; for a convolution kernel
``(out_channels, in_channels, kh, kw)`` they are ``in_channels * kh * kw`` and
``out_channels * kh * kw``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Shape = tuple[int, ...]
Initializer = Callable[[Shape, int, int, np.random.Generator], np.ndarray]


def _uniform(shape: Shape, limit: float, rng: np.random.Generator) -> np.ndarray:
    """float32 samples of U(-limit, limit)."""
    samples = rng.random(shape, dtype=np.float32)
    samples *= 2.0 * limit
    samples -= limit
    return samples


def he_normal(shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """N(0, 2 / fan_in), float32: keeps the activation variance through ReLU layers."""
    samples = rng.standard_normal(shape, dtype=np.float32)
    samples *= np.float32(np.sqrt(2.0 / fan_in))
    return samples


def he_uniform(shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """U(-sqrt(6 / fan_in), sqrt(6 / fan_in)), float32."""
    return _uniform(shape, float(np.sqrt(6.0 / fan_in)), rng)


def glorot_uniform(shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """U(-sqrt(6 / (fan_in + fan_out)), +...), float32: for tanh / sigmoid / softmax layers."""
    return _uniform(shape, float(np.sqrt(6.0 / (fan_in + fan_out))), rng)


def zeros(shape: Shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """All zeros, float32 (biases)."""
    return np.zeros(shape, dtype=np.float32)


INITIALIZERS: dict[str, Initializer] = {
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot": glorot_uniform,
    "glorot_uniform": glorot_uniform,
    "zeros": zeros,
}


def get_initializer(name: str) -> Initializer:
    """The initialiser called ``name``; ``ValueError`` listing the valid names otherwise."""
    try:
        return INITIALIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}"
        ) from None
