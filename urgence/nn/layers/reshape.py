"""Flatten: (N, ...) -> (N, prod(...))."""

from __future__ import annotations

import math

import numpy as np

from urgence.nn.layers.base import Layer, Shape


class Flatten(Layer):
    """x: (N, C, H, W) (or any (N, ...)) float -> (N, C*H*W), row-major (C, H, W) order."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        return grad_out.reshape(grad_out.shape[0], *self.input_shape)
