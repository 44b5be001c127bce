"""Dropout: scaling, inference identity, determinism with the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import Dropout, LayerError


def built(rate, shape, seed):
    layer = Dropout(rate)
    layer.build(shape, np.random.default_rng(seed))
    return layer


def test_training_drops_and_rescales():
    layer = built(0.25, (100, 100), 0)
    x = np.ones((2, 100, 100), dtype=np.float32)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
    assert abs((out == 0).mean() - 0.25) < 0.01
    assert abs(out.mean() - 1) < 0.02
    grad = layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(grad, out)


def test_inference_is_identity():
    layer = built(0.5, (4,), 0)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    assert layer.forward(x, training=False) is x
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), 1)
    assert (
        check_layer_gradients(
            built(0.5, (4,), 0), (4,), np.random.default_rng(0), training=False
        ).max_error
        < 1e-7
    )


def test_same_seed_same_masks_different_seed_different_masks():
    x = np.ones((3, 50), dtype=np.float32)
    first, second, other = built(0.5, (50,), 11), built(0.5, (50,), 11), built(0.5, (50,), 12)
    for _ in range(2):
        a, b = first.forward(x, training=True), second.forward(x, training=True)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.forward(x, training=True), other.forward(x, training=True))


@pytest.mark.parametrize("rate", [-0.1, 1.0, "half"])
def test_bad_rate(rate):
    with pytest.raises(LayerError):
        Dropout(rate)
