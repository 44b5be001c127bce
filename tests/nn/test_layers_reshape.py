"""Flatten."""

from __future__ import annotations

import numpy as np

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import Flatten


def test_flatten_round_trip(rng):
    layer = Flatten()
    layer.build((2, 3, 4), rng)
    assert layer.output_shape == (24,)
    x = rng.standard_normal((5, 2, 3, 4)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[1], x[1].ravel())
    np.testing.assert_array_equal(layer.backward(out), x)
    assert check_layer_gradients(Flatten(), (2, 2, 3), rng).max_error < 1e-7
