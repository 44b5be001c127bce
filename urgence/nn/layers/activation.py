"""Activations as layers, and the composition that gives other layers an ``activation=``.

``Dense(10, activation="relu")`` is a Dense layer followed by a :class:`ReLU` layer held
inside it (:class:`ActivatedLayer`): one implementation of each activation, no copies.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from urgence.nn import activations
from urgence.nn.layers._parallel import along, outer_axis, run_split, split_count
from urgence.nn.layers.base import Layer, LayerError, Shape


class ActivationLayer(Layer):
    """A parameter-free elementwise (or, for softmax, per-row) function."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """x: (N, ...) float -> same shape and dtype."""
        self._check_input(x)
        return self._apply(x, owned=False)

    def _apply(self, x: np.ndarray, *, owned: bool) -> np.ndarray:
        """Compute the activation and cache what backward needs; ``owned``: x may be overwritten."""
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        if self._out is None:
            raise LayerError(f"{type(self).__name__}: backward() before forward()")
        return self._input_grad(grad_out, self._out)

    def _input_grad(self, grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Linear(ActivationLayer):
    """Identity: f(x) = x."""

    def _apply(self, x: np.ndarray, *, owned: bool) -> np.ndarray:
        self._out = x
        return x

    def _input_grad(self, grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        return grad_out


# The ReLU - max-pooling hand-off. A max-pooling window passes its gradient to one cell,
# whose value is the window's max; that cell's ReLU mask is 1 unless the max is 0. So a
# max-pooling layer reading a ReLU's output can apply the ReLU's mask on its own output, 4x
# smaller for 2x2 windows, and the ReLU can then skip its full-size mask (on the MNIST CNN's
# first layer, 2.8 M values, the mask was the costliest element-wise step of a batch).
# One slot each, holding weak references: the hand-off happens only between a ReLU and the
# layer that reads its output right after it, as in a Sequential model.
_latest_relu_output: weakref.ref | None = None
_masked_gradient: tuple[weakref.ref, weakref.ref] | None = None


def is_latest_relu_output(x: np.ndarray) -> bool:
    """True when x is the very array the most recent ReLU forward pass returned."""
    return _latest_relu_output is not None and _latest_relu_output() is x


def hand_gradient_to_relu(grad: np.ndarray, relu_output: np.ndarray) -> None:
    """Declare ``grad`` (the gradient on ``relu_output``) already zero wherever the ReLU's
    output is 0: the ReLU that produced ``relu_output`` then passes it on unchanged."""
    global _masked_gradient
    _masked_gradient = (weakref.ref(grad), weakref.ref(relu_output))


def _is_masked_for(grad: np.ndarray, relu_output: np.ndarray) -> bool:
    global _masked_gradient
    if _masked_gradient is None:
        return False
    masked = _masked_gradient[0]() is grad and _masked_gradient[1]() is relu_output
    _masked_gradient = None
    return masked


class ReLU(ActivationLayer):
    """f(x) = max(x, 0); the gradient at 0 is taken as 0.

    A MaxPool2D reading this layer's output may apply the gradient mask for it (see
    :func:`hand_gradient_to_relu`); backward then returns that gradient as it is.
    """

    def _apply(self, x: np.ndarray, *, owned: bool) -> np.ndarray:
        global _latest_relu_output
        if not owned:
            self._out = activations.relu(x)
        else:
            axis = outer_axis(x)

            def clip(start: int, stop: int) -> None:
                part = x[along(axis, start, stop)]
                np.maximum(part, 0, out=part)

            run_split(x.shape[axis], clip, x.size)
            self._out = x
        _latest_relu_output = weakref.ref(self._out)
        return self._out

    def _input_grad(self, grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        if _is_masked_for(grad_out, out):
            return grad_out
        # Multiplying by a float mask: by a bool array goes through a cast and measured
        # 1.6x slower on a 2.8 M-value activation.
        if split_count(out.size) == 1:
            mask = (out > 0).astype(grad_out.dtype)
            return np.multiply(grad_out, mask, out=mask)
        grad_in = np.empty_like(out, dtype=grad_out.dtype)  # out's memory order
        axis = outer_axis(out)

        def mask_part(start: int, stop: int) -> None:
            part = along(axis, start, stop)
            mask = (out[part] > 0).astype(grad_out.dtype)
            np.multiply(grad_out[part], mask, out=grad_in[part])

        run_split(out.shape[axis], mask_part, out.size)
        return grad_in


class Sigmoid(ActivationLayer):
    """f(x) = 1 / (1 + exp(-x)), computed without overflow."""

    def _apply(self, x: np.ndarray, *, owned: bool) -> np.ndarray:
        self._out = activations.sigmoid(x)
        return self._out

    def _input_grad(self, grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        return grad_out * out * (1 - out)


class Tanh(ActivationLayer):
    def _apply(self, x: np.ndarray, *, owned: bool) -> np.ndarray:
        self._out = activations.tanh(x)
        return self._out

    def _input_grad(self, grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        return grad_out * (1 - out * out)


class Softmax(ActivationLayer):
    """Softmax along ``axis`` (1: the classes of (N, K), the channels of (N, C, H, W)).

    For training a classifier, prefer the loss's fused softmax + cross-entropy; this layer's
    backward is the general Jacobian-vector product.
    """

    def __init__(self, axis: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, int) or axis == 0:
            raise LayerError(f"Softmax: axis must be a non-batch integer axis, got {axis!r}")
        self.axis = axis

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        rank = len(input_shape)  # the batch axis is axis 0, so valid axes are 1..rank
        if not (1 <= self.axis <= rank or -rank <= self.axis <= -1):
            raise LayerError(f"Softmax: axis {self.axis} out of range for input {input_shape}")
        super().build(input_shape, rng)

    def _apply(self, x: np.ndarray, *, owned: bool) -> np.ndarray:
        self._out = activations.softmax(x, axis=self.axis)
        return self._out

    def _input_grad(self, grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
        return out * (grad_out - (grad_out * out).sum(axis=self.axis, keepdims=True))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


ACTIVATIONS: dict[str, type[ActivationLayer]] = {
    "linear": Linear,
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
}


def make_activation(name: str | None) -> ActivationLayer | None:
    """The activation layer called ``name`` (None or "linear": no activation)."""
    if name is None or name == "linear":
        return None
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise LayerError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)} or None"
        ) from None


class ActivatedLayer(Layer):
    """A layer computing ``activation(pre_activation(x))``.

    Subclasses implement ``_pre_activation(x, training)`` (returning a fresh array, which the
    activation may then overwrite) and ``_pre_activation_backward(grad) -> grad_in | None``.
    """

    def __init__(self, activation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activation
        self._activation = make_activation(activation)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        if self._activation is not None:
            self._activation.build(self.output_shape, rng)

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        z = self._pre_activation(x, training)
        if self._activation is None:
            return z
        return self._activation._apply(z, owned=True)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if self._activation is not None:
            grad_out = self._activation.backward(grad_out)
        return self._pre_activation_backward(grad_out)

    def _pre_activation(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def _pre_activation_backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}
