"""Finite-difference gradient checks for layers (float64).

The check projects the layer's output on a fixed random direction ``R``
(``loss = sum(forward(x) * R)``), so ``backward(R)`` must equal the central differences
``(loss(v + eps) - loss(v - eps)) / (2 eps)`` for every input value and every parameter value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from urgence.nn.layers.base import Layer, Shape


@dataclass(frozen=True)
class GradientCheck:
    """Relative errors ``|analytic - numeric| / (|analytic| + |numeric|)`` (vector norms),
    keyed ``"input"`` and by parameter name."""

    errors: dict[str, float]

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)


def _relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric) / scale)


def _numeric_gradient(loss, values: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of ``loss()`` with respect to each entry of ``values`` (in place)."""
    grad = np.empty_like(values)
    # indexed in place: reshape(-1) of an array stored in another order (a transposed,
    # channel-major input) is a copy, whose changes the loss would never see
    for index in np.ndindex(values.shape):
        original = values[index]
        values[index] = original + eps
        plus = loss()
        values[index] = original - eps
        minus = loss()
        values[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def check_layer_gradients(
    layer: Layer,
    input_shape: Shape,
    rng: np.random.Generator,
    eps: float = 1e-6,
    *,
    batch_size: int = 2,
    training: bool = True,
    x: np.ndarray | None = None,
) -> GradientCheck:
    """Compare ``layer.backward`` with float64 central differences.

    ``input_shape`` excludes the batch axis; the layer is built on it if it is not built yet.
    ``x``: an optional (batch_size, *input_shape) input (default: standard normal draws from
    ``rng``). The layer's parameters are cast to float64 for the check and restored after.
    Parameters are checked when the layer is ``trainable`` (a frozen layer leaves ``grads``
    empty), the input gradient always.
    """
    if not layer.built:
        layer.build(tuple(input_shape), rng)
    original_params = dict(layer.params)
    for key, value in original_params.items():
        layer.params[key] = value.astype(np.float64)
    try:
        if x is None:
            x = rng.standard_normal((batch_size, *input_shape))
        x = np.array(x, dtype=np.float64)
        direction = rng.standard_normal((x.shape[0], *layer.output_shape))

        def loss() -> float:
            return float(np.sum(layer.forward(x, training=training) * direction))

        loss()
        grad_input = layer.backward(direction.copy())
        analytic = {"input": grad_input}
        if layer.trainable:
            missing = set(layer.params) - set(layer.grads)
            if missing:
                raise AssertionError(f"{type(layer).__name__}: no gradient for {sorted(missing)}")
            analytic.update({key: layer.grads[key].copy() for key in layer.params})
        errors = {"input": _relative_error(grad_input, _numeric_gradient(loss, x, eps))}
        for key in layer.params if layer.trainable else ():
            numeric = _numeric_gradient(loss, layer.params[key], eps)
            errors[key] = _relative_error(analytic[key], numeric)
        return GradientCheck(errors)
    finally:
        layer.params.update(original_params)
