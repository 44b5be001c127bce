"""Optimisers: steps against hand-computed values, weight decay, state save/restore."""

from __future__ import annotations

import math

import numpy as np
import pytest

from urgence.nn import optimizers
from urgence.nn.schedules import StepDecay


def run_steps(optimizer, start, gradients):
    """Apply ``gradients`` (a list of dicts) to float32 copies of ``start``; return params."""
    params = {key: np.array(value, dtype=np.float32) for key, value in start.items()}
    for grads in gradients:
        optimizer.step(params, {k: np.array(v, dtype=np.float32) for k, v in grads.items()})
    return params


def test_sgd_momentum_follows_the_seed_formula_over_three_steps():
    # omega_{k+1} = 0.5 omega_k + 0.1 grad_k ; x_{k+1} = x_k - omega_{k+1}, by hand:
    # omega_1 = [0.1, 0.2]    x_1 = [0.9, -2.2]
    # omega_2 = [0.1, 0.0]    x_2 = [0.8, -2.2]
    # omega_3 = [-0.05, 0.0]  x_3 = [0.85, -2.2]
    sgd = optimizers.SGD(0.1, momentum=0.5)
    grads = [{"0.b": [1.0, 2.0]}, {"0.b": [0.5, -1.0]}, {"0.b": [-1.0, 0.0]}]
    params = run_steps(sgd, {"0.b": [1.0, -2.0]}, grads)
    np.testing.assert_allclose(params["0.b"], [0.85, -2.2], rtol=1e-6)
    np.testing.assert_allclose(sgd.state["velocity"]["0.b"], [-0.05, 0.0], atol=1e-7)
    assert sgd.iterations == 3
    assert params["0.b"].dtype == np.float32


def test_plain_sgd_keeps_no_state():
    sgd = optimizers.SGD(0.5)
    params = run_steps(sgd, {"1.W": [[2.0]]}, [{"1.W": [[1.0]]}])
    np.testing.assert_allclose(params["1.W"], [[1.5]])
    assert sgd.state == {"velocity": {}}


def test_adam_first_two_steps_match_the_textbook_formula():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    g1, g2 = np.array([0.5, -2.0]), np.array([1.0, 1.0])
    adam = optimizers.Adam(lr, beta1=b1, beta2=b2, eps=eps)
    after_one = run_steps(adam, {"0.b": [1.0, 1.0]}, [{"0.b": g1}])["0.b"]
    # step 1: m_hat = g, v_hat = g**2, so the move is lr * sign(g)
    np.testing.assert_allclose(after_one, [0.9, 1.1], rtol=1e-6)
    adam = optimizers.Adam(lr, beta1=b1, beta2=b2, eps=eps)
    after_two = run_steps(adam, {"0.b": [1.0, 1.0]}, [{"0.b": g1}, {"0.b": g2}])["0.b"]
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    expected = np.array([0.9, 1.1]) - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(after_two, expected, rtol=1e-6)


def test_sgd_weight_decay_is_l2_on_weights_only():
    sgd = optimizers.SGD(0.5, weight_decay=0.1)
    params = run_steps(
        sgd,
        {"0.W": [[1.0, -2.0]], "0.b": [3.0]},
        [{"0.W": [[0.0, 0.0]], "0.b": [0.0]}],
    )
    np.testing.assert_allclose(params["0.W"], [[0.95, -1.9]], rtol=1e-6)  # W -= lr * wd * W
    np.testing.assert_allclose(params["0.b"], [3.0])


def test_adam_weight_decay_is_decoupled():
    adam = optimizers.Adam(0.1, weight_decay=0.5)
    params = run_steps(
        adam,
        {"0.W": [[1.0, -2.0]], "0.b": [3.0]},
        [{"0.W": [[0.0, 0.0]], "0.b": [0.0]}],
    )
    # zero gradient: the Adam move is zero and only the decay (x *= 1 - lr * wd) acts
    np.testing.assert_allclose(params["0.W"], [[0.95, -1.9]], rtol=1e-6)
    np.testing.assert_allclose(params["0.b"], [3.0])


def test_the_schedule_sets_each_step_learning_rate():
    sgd = optimizers.SGD(StepDecay(1.0, every=1, factor=0.5))
    params = run_steps(sgd, {"0.b": [0.0]}, [{"0.b": [1.0]}] * 3)
    np.testing.assert_allclose(params["0.b"], [-1.75])
    assert sgd.lr == pytest.approx(0.125)


def test_state_dict_round_trip_resumes_identically(rng):
    start = {"0.W": rng.standard_normal((3, 2)), "0.b": rng.standard_normal(2)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(4)]
    reference = optimizers.Adam(0.01)
    expected = run_steps(reference, start, grads)
    first = optimizers.Adam(0.01)
    halfway = run_steps(first, start, grads[:2])
    resumed = optimizers.Adam(0.01)
    resumed.load_state_dict({k: v.copy() for k, v in first.state_dict().items()})
    assert resumed.iterations == 2
    final = run_steps(resumed, halfway, grads[2:])
    for key in start:
        np.testing.assert_array_equal(final[key], expected[key])


def test_load_state_dict_rejects_unknown_slots():
    with pytest.raises(ValueError, match="unexpected optimizer state"):
        optimizers.SGD(0.1, momentum=0.9).load_state_dict(
            {"iterations": np.array(1), "m/0.W": np.zeros(2)}
        )


def test_config_round_trip_and_bad_settings():
    adam = optimizers.Adam(StepDecay(0.01, every=5), weight_decay=0.1, beta1=0.8)
    rebuilt = optimizers.from_config(adam.get_config())
    assert rebuilt.get_config() == adam.get_config()
    assert math.isclose(rebuilt.schedule(5), 0.005)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.get("rmsprop")
    with pytest.raises(ValueError, match="does not match"):
        optimizers.SGD(0.1).step({"0.W": np.zeros(2, np.float32)}, {"0.W": np.zeros(3, np.float32)})


def test_moving_average_follows_a_loop_of_the_debiased_formula(rng):
    start = {"0.W": rng.normal(size=(3, 2)), "0.b": rng.normal(size=2)}
    gradients = [{k: rng.normal(size=v.shape) for k, v in start.items()} for _ in range(30)]
    adam = optimizers.Adam(0.05, ema_momentum=0.9)
    params = {key: np.array(value, dtype=np.float32) for key, value in start.items()}
    expected: dict[str, np.ndarray] = {}
    for t, grads in enumerate(gradients, start=1):
        adam.step(params, {k: np.array(v, dtype=np.float32) for k, v in grads.items()})
        decay = min(0.9, (1 + t) / (10 + t))
        for key, value in params.items():
            if key not in expected:
                expected[key] = value.astype(np.float64)
            else:
                expected[key] = decay * expected[key] + (1 - decay) * value
    averaged = adam.averaged()
    for key, value in expected.items():
        np.testing.assert_allclose(averaged[key], value, rtol=1e-5, atol=1e-6)
        assert averaged[key].dtype == np.float32
        # the average lags the last weights: it is not a copy of them
        assert not np.allclose(averaged[key], params[key], atol=1e-3)
    # the copies returned are the caller's
    averaged["0.b"][:] = 0
    assert np.abs(adam.averaged()["0.b"]).sum() > 0


def test_moving_average_leaves_the_steps_unchanged_and_resumes(rng):
    start = {"1.W": rng.normal(size=(2, 2))}
    gradients = [{"1.W": rng.normal(size=(2, 2))} for _ in range(6)]
    plain = run_steps(optimizers.SGD(0.1, momentum=0.5), start, gradients)
    averaging = optimizers.SGD(0.1, momentum=0.5, ema_momentum=0.99)
    with_average = run_steps(averaging, start, gradients)
    np.testing.assert_array_equal(with_average["1.W"], plain["1.W"])
    # state and config round trip: a restored optimiser averages on as the first one
    twin = optimizers.from_config(averaging.get_config())
    twin.load_state_dict(averaging.state_dict())
    assert twin.ema_momentum == 0.99
    np.testing.assert_array_equal(twin.averaged()["1.W"], averaging.averaged()["1.W"])
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.Adam(0.1, ema_momentum=1.0)
    with pytest.raises(ValueError, match="no moving average"):
        optimizers.Adam(0.1).averaged()
