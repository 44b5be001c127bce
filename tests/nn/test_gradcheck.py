"""The gradient checker itself: it passes correct layers and catches a wrong gradient."""

from __future__ import annotations

import numpy as np

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import Dense, ReLU


def test_correct_layer_passes_and_params_are_restored(rng):
    layer = Dense(3)
    layer.build((4,), rng)
    before = layer.params["W"].copy()
    result = check_layer_gradients(layer, (4,), rng)
    assert set(result.errors) == {"input", "W", "b"}
    assert result.max_error < 1e-7
    assert layer.params["W"].dtype == np.float32
    np.testing.assert_array_equal(layer.params["W"], before)


def test_wrong_gradient_is_caught(rng):
    class HalfGradientReLU(ReLU):
        def _input_grad(self, grad_out, out):
            return 0.5 * super()._input_grad(grad_out, out)

    result = check_layer_gradients(HalfGradientReLU(), (5,), rng)
    assert result.errors["input"] > 0.1


def test_frozen_layer_checks_only_the_input(rng):
    result = check_layer_gradients(Dense(2, trainable=False), (3,), rng)
    assert set(result.errors) == {"input"}
    assert result.max_error < 1e-7
