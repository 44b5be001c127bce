"""Activation functions and layers: values, stability, gradients, composition."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn import activations
from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import (
    ACTIVATIONS,
    Dense,
    LayerError,
    Linear,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    make_activation,
)


@pytest.mark.parametrize("cls", [Linear, ReLU, Sigmoid, Tanh, Softmax])
@pytest.mark.parametrize("shape", [(5,), (3, 2, 4)])
def test_gradients(cls, shape, rng):
    assert check_layer_gradients(cls(), shape, rng, batch_size=3).max_error < 1e-7


def test_values(rng):
    x = np.array([[-2.0, 0.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(activations.relu(x), [[0, 0, 3]])
    np.testing.assert_allclose(activations.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(activations.tanh(x), np.tanh(x))
    e = np.exp(x)
    np.testing.assert_allclose(activations.softmax(x), e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(activations.log_softmax(x), np.log(e / e.sum()), rtol=1e-6)


def test_stable_for_huge_inputs():
    x = np.array([[-1000.0, 0.0, 1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(activations.sigmoid(x), [[0, 0.5, 1]])
        np.testing.assert_allclose(activations.softmax(x), [[0, 0, 1]])
        np.testing.assert_allclose(activations.log_softmax(x), [[-2000, -1000, 0]])


def test_softmax_over_channels(rng):
    layer = Softmax()
    layer.build((3, 2, 2), rng)
    out = layer.forward(rng.standard_normal((2, 3, 2, 2)).astype(np.float32))
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)
    with pytest.raises(LayerError):
        Softmax(axis=3).build((4,), rng)


@pytest.mark.parametrize("cls", [Linear, ReLU, Sigmoid, Tanh, Softmax])
def test_float32_stays_float32(cls, rng):
    layer = cls()
    layer.build((4,), rng)
    out = layer.forward(rng.standard_normal((2, 4)).astype(np.float32))
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32


def test_activation_argument_composes_the_layer(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    plain, activated = Dense(5), Dense(5, activation="tanh")
    plain.build((3,), np.random.default_rng(0))
    activated.build((3,), np.random.default_rng(0))
    np.testing.assert_allclose(activated.forward(x), np.tanh(plain.forward(x)), rtol=1e-6)
    assert set(ACTIVATIONS) == {"linear", "relu", "sigmoid", "tanh", "softmax"}
    assert make_activation(None) is None and make_activation("linear") is None
    with pytest.raises(LayerError, match="unknown activation"):
        Dense(3, activation="swish")


def test_relu_does_not_modify_its_input(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    kept = x.copy()
    layer = ReLU()
    layer.build((4,), rng)
    layer.forward(x)
    np.testing.assert_array_equal(x, kept)
