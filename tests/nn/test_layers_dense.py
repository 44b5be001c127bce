"""Dense: values, gradients, shapes, dtypes, frozen and first-layer behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import Dense, LayerError


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize(("inputs", "units"), [(1, 1), (5, 3), (4, 7)])
def test_finite_differences(inputs, units, activation, rng):
    layer = Dense(units, activation=activation)
    assert check_layer_gradients(layer, (inputs,), rng, batch_size=3).max_error < 1e-7


def test_values_and_shapes(rng):
    layer = Dense(3)
    layer.build((4,), rng)
    assert layer.params["W"].shape == (4, 3) and layer.params["b"].shape == (3,)
    assert layer.output_shape == (3,) and layer.count_params() == 15
    layer.params["b"][...] = [1, 2, 3]
    x = rng.standard_normal((5, 4)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x @ layer.params["W"] + [1, 2, 3], rtol=1e-5)


def test_backward_is_the_batch_sum_not_a_mean(rng):
    layer = Dense(2)
    layer.build((3,), rng)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer.forward(x, training=True)
    grad = np.ones((4, 2), dtype=np.float32)
    grad_x = layer.backward(grad)
    np.testing.assert_allclose(layer.grads["W"], x.T @ grad, rtol=1e-6)
    np.testing.assert_allclose(layer.grads["b"], [4, 4])
    assert grad_x.dtype == np.float32 and layer.grads["W"].dtype == np.float32


def test_no_bias_and_glorot(rng):
    layer = Dense(50, use_bias=False, kernel_initializer="glorot")
    layer.build((30,), rng)
    assert set(layer.params) == {"W"}
    assert np.abs(layer.params["W"]).max() <= np.sqrt(6 / 80)
    assert check_layer_gradients(layer, (30,), rng).max_error < 1e-7


def test_first_layer_and_frozen(rng):
    layer = Dense(2)
    layer.build((3,), rng)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    layer.needs_input_grad = False
    layer.forward(x, training=True)
    assert layer.backward(np.ones((4, 2), dtype=np.float32)) is None
    assert set(layer.grads) == {"W", "b"}
    layer.trainable, layer.needs_input_grad = False, True
    layer.forward(x, training=True)
    assert layer.backward(np.ones((4, 2), dtype=np.float32)).shape == (4, 3)
    assert layer.grads == {}


def test_same_seed_same_weights():
    first, second = Dense(4), Dense(4)
    first.build((3,), np.random.default_rng(7))
    second.build((3,), np.random.default_rng(7))
    np.testing.assert_array_equal(first.params["W"], second.params["W"])


def test_bad_input(rng):
    with pytest.raises(LayerError):
        Dense(0)
    with pytest.raises(ValueError, match="unknown initializer"):
        Dense(3, kernel_initializer="orthogonal")
    with pytest.raises(LayerError, match="Flatten"):
        Dense(3).build((2, 4, 4), rng)
    layer = Dense(3)
    layer.build((4,), rng)
    with pytest.raises(LayerError, match=r"expected input \(N, 4\)"):
        layer.forward(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(LayerError):
        layer.forward([[0.0] * 4])
