"""The gradient-descent demo against closed-form trajectories of f(x) = (x - 0.75)^2."""

from __future__ import annotations

import json

import numpy as np

from urgence.app.cli import main
from urgence.demos.gradient_descent import MAX_STEPS, TOLERANCE, descend, gradient


def test_plain_descent_follows_the_closed_form():
    # x_k - 0.75 = (1 - 2t)^k (x_0 - 0.75)
    descent = descend(0.1)
    k = np.arange(len(descent.xs))
    np.testing.assert_allclose(descent.xs, 0.75 + (0.1 - 0.75) * 0.8**k, rtol=1e-5)
    assert descent.converged
    assert abs(gradient(np.array(descent.xs[-1]))) <= TOLERANCE
    assert abs(gradient(np.array(descent.xs[-2]))) > TOLERANCE
    assert descent.steps == 12


def test_momentum_follows_the_seed_formula_and_is_faster():
    descent = descend(0.1, momentum=0.5)
    x, omega = 0.1, 0.0
    for expected in descent.xs[1:]:
        omega = 0.5 * omega + 0.1 * 2 * (x - 0.75)
        x -= omega
        assert abs(expected - x) < 1e-5
    assert descent.converged and descent.steps < descend(0.1).steps


def test_learning_rate_one_never_converges_without_momentum():
    descent = descend(1.0)
    assert not descent.converged and descent.steps == MAX_STEPS
    np.testing.assert_allclose(descent.xs[:4], [0.1, 1.4, 0.1, 1.4], atol=1e-5)
    assert descend(1.0, momentum=0.5).converged


def test_cli_json_and_figures(capsys, tmp_path):
    assert main(["demo", "gradient-descent", "--json", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["demo"] == "gradient-descent"
    assert set(result["cases"]) == {"learning_rate", "momentum", "no_convergence"}
    assert [case["converged"] for case in result["cases"]["no_convergence"]] == [False, True]
    for path in result["figures"]:
        assert (tmp_path / path.rsplit("/", 1)[-1]).stat().st_size > 10_000
