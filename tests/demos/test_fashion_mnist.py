"""The Fashion-MNIST demo on a small subset, through the CLI."""

from __future__ import annotations

import json

import pytest

from urgence.app.cli import main
from urgence.demos.data import FASHION_MNIST_DIR


@pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed"
)
@pytest.mark.parametrize("model", ["seed", "cnn"])
def test_models_learn_on_a_subset(capsys, tmp_path, model):
    argv = [
        "demo",
        "fashion-mnist",
        "--model",
        model,
        "--epochs",
        "1",
        "--limit",
        "500",
        "--json",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"demo", "model", "epochs", "seconds", "train_accuracy", "test_accuracy"} <= set(result)
    assert result["demo"] == "fashion-mnist" and result["model"] == model
    assert result["test_accuracy"] > 0.3  # chance is 0.1
    assert (tmp_path / f"demo_fashion_mnist_{model}_grid.png").is_file()


def test_training_runs_with_one_blas_thread(monkeypatch):
    from threadpoolctl import threadpool_info

    from urgence.demos import fashion_mnist
    from urgence.demos.common import DemoConfig

    seen = {}

    def record_threads(config, *args):
        seen["threads"] = [
            lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"
        ]
        return {}

    monkeypatch.setattr(fashion_mnist, "run_image_demo", record_threads)
    fashion_mnist.run(DemoConfig(model="cnn", epochs=1))
    assert seen["threads"] and all(n == 1 for n in seen["threads"])
