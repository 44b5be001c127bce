"""Initialisers: scale, dtype, determinism through the given generator."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.initializers import INITIALIZERS, get_initializer


def test_he_normal_scale(rng):
    w = get_initializer("he")((200, 300), 200, 300, rng)
    assert w.dtype == np.float32
    assert abs(w.std() - np.sqrt(2 / 200)) < 0.005
    assert abs(w.mean()) < 0.005


@pytest.mark.parametrize(
    ("name", "limit"), [("he_uniform", np.sqrt(6 / 100)), ("glorot", np.sqrt(6 / 150))]
)
def test_uniform_limits(name, limit, rng):
    w = get_initializer(name)((100, 50), 100, 50, rng)
    assert w.dtype == np.float32
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.95 * limit
    assert abs(w.std() - limit / np.sqrt(3)) < 0.01 * limit * 3


def test_zeros_and_determinism():
    assert not get_initializer("zeros")((3,), 1, 1, np.random.default_rng(0)).any()
    for name, init in INITIALIZERS.items():
        a = init((4, 5), 4, 5, np.random.default_rng(3))
        b = init((4, 5), 4, 5, np.random.default_rng(3))
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown initializer"):
        get_initializer("lecun")
