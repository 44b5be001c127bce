"""Fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.nn.initializers import get_initializer, zeros
from urgence.nn.layers.activation import ActivatedLayer
from urgence.nn.layers.base import LayerError, Shape


class Dense(ActivatedLayer):
    """y = activation(x @ W + b).

    x: (N, D) float; W: (D, units) float32; b: (units,) float32; y: (N, units), dtype of x.
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "he",
        **kwargs: Any,
    ) -> None:
        super().__init__(activation=activation, **kwargs)
        if not isinstance(units, int) or units < 1:
            raise LayerError(f"Dense: units must be a positive integer, got {units!r}")
        get_initializer(kernel_initializer)
        self.units = units
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self._x: np.ndarray | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise LayerError(
                f"Dense: expects flat inputs (N, D), got (N, {input_shape}); add a Flatten"
            )
        return (self.units,)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        (fan_in,) = self.input_shape
        init = get_initializer(self.kernel_initializer)
        self.params["W"] = init((fan_in, self.units), fan_in, self.units, rng)
        if self.use_bias:
            self.params["b"] = zeros((self.units,), fan_in, self.units, rng)

    def _pre_activation(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._x = x
        z = x @ self.params["W"]
        if self.use_bias:
            z += self.params["b"]
        return z

    def _pre_activation_backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if self.trainable:
            self.grads["W"] = self._x.T @ grad_out
            if self.use_bias:
                self.grads["b"] = grad_out.sum(axis=0)
        else:
            self.grads.clear()
        if not self.needs_input_grad:
            return None
        return grad_out @ self.params["W"].T

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }
