"""The XOR demo: the default seed solves XOR in 300 epochs; the JSON reports the outputs."""

from __future__ import annotations

import json

import numpy as np

from urgence.app.cli import main
from urgence.demos.xor import TARGETS, TOLERANCE, outputs_of, solved, train


def test_default_seed_solves_xor_in_300_epochs():
    model = train(10.0, 300, seed=0)
    outputs = outputs_of(model)
    assert outputs.shape == (4,) and outputs.dtype == np.float32
    assert np.all(np.abs(outputs - TARGETS[:, 0]) < TOLERANCE)
    assert model.history["loss"][-1] < model.history["loss"][0] / 10


def test_solved_checks_every_output():
    assert solved(np.array([0.05, 0.95, 0.92, 0.08]))
    assert not solved(np.array([0.05, 0.95, 0.85, 0.08]))


def test_cli_json(capsys, tmp_path):
    assert main(["demo", "xor", "--json", "--quiet", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["demo"] == "xor" and result["model"] == "tuned" and result["epochs"] == 300
    assert result["solved"] is True and len(result["outputs"]) == 4
    assert result["seeds_tried"] == 100 and 0.5 <= result["solved_fraction"] <= 1.0
    assert (tmp_path / "demo_xor_tuned.png").is_file()
