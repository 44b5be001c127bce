"""The MNIST demo on a small subset, through the CLI: fields, learning, figures."""

from __future__ import annotations

import json

import pytest

from urgence.app.cli import main
from urgence.demos.data import DataUnavailableError, default_mnist_path


@pytest.fixture(scope="module")
def mnist_installed() -> None:
    try:
        default_mnist_path()
    except DataUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("model, epochs, floor", [
    ("softmax", 3, 0.5), ("mlp", 2, 0.5), ("cnn", 1, 0.3), ("seed", 20, 0.5),
])
def test_models_learn_on_a_subset(capsys, tmp_path, mnist_installed, model, epochs, floor):
    argv = ["demo", "mnist", "--model", model, "--epochs", str(epochs), "--limit", "600",
            "--json", "--quiet", "--out", str(tmp_path)]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == model and result["epochs"] == epochs
    assert result["train_images"] == 600 and result["test_images"] == 600
    assert result["test_accuracy"] > floor  # chance is 0.1
    assert 0.0 <= result["train_accuracy"] <= 1.0
    assert len(result["history"]["val_accuracy"]) == epochs
    for name in ("curves", "grid"):
        assert (tmp_path / f"demo_mnist_{model}_{name}.png").stat().st_size > 10_000


def test_seeded_runs_repeat(capsys, tmp_path, mnist_installed):
    argv = ["demo", "mnist", "--model", "softmax", "--epochs", "1", "--limit", "300",
            "--seed", "7", "--json", "--quiet", "--out", str(tmp_path)]
    results = []
    for _ in range(2):
        assert main(argv) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["history"] == results[1]["history"]
