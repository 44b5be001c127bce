"""Saving and loading models: round trips, and every kind of bad file raising ModelFileError."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from urgence.nn import ModelFileError, Sequential, load_model, optimizers
from urgence.nn.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    GlobalAveragePooling2D,
    ReLU,
    Softmax,
)
from urgence.nn.serialization import model_paths


def conv_model(seed: int = 0) -> Sequential:
    layers = [
        Conv2D(4, 3, padding="same", use_bias=False),
        BatchNormalization(),
        ReLU(),
        DepthwiseConv2D(3, padding="same"),
        Dropout(0.2),
        GlobalAveragePooling2D(),
        Dense(3),
        Softmax(),
    ]
    return Sequential(layers, input_shape=(1, 6, 7), seed=seed)


@pytest.fixture
def trained(rng: np.random.Generator) -> tuple[Sequential, np.ndarray, np.ndarray]:
    x = rng.standard_normal((24, 1, 6, 7)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    model = conv_model().compile("cross_entropy", optimizers.Adam(0.01))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model, x, y


def test_round_trip_gives_identical_predictions_and_keeps_metadata(trained, tmp_path):
    model, x, _ = trained
    assert not np.allclose(model.layers[1].moving_mean, 0)  # batch-norm state to carry over
    metadata = {"labels": ["gaz", "vol", "_unknown_"], "threshold": np.float32(0.5)}
    model.save(tmp_path / "kws", metadata=metadata)
    for name in ("kws", "kws.npz", "kws.json"):
        loaded = load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
        assert loaded.metadata == {"labels": ["gaz", "vol", "_unknown_"], "threshold": 0.5}
        assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    with np.load(tmp_path / "kws.npz", allow_pickle=False) as archive:
        assert {"0.W", "1.moving_mean", "1.moving_var", "6.b"} <= set(archive.files)
    description = json.loads((tmp_path / "kws.json").read_text())
    assert description["format"] == "urgence.nn.Sequential" and description["version"] == 1
    assert description["input_shape"] == [1, 6, 7]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kws.json", "kws.npz"]  # no temp files


def test_saving_with_the_optimizer_resumes_training_exactly(rng, tmp_path):
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.integers(0, 2, 16)

    def fresh() -> Sequential:
        layers = [Dense(5, activation="relu"), Dense(2), Softmax()]
        return Sequential(layers, input_shape=(3,)).compile("cross_entropy", optimizers.Adam(0.01))

    settings = {"batch_size": 4, "shuffle": False, "verbose": 0}
    uninterrupted = fresh().fit(x, y, epochs=2, **settings)
    first_half = fresh().fit(x, y, epochs=1, **settings)
    first_half.save(tmp_path / "run", include_optimizer=True)
    resumed = load_model(tmp_path / "run")
    assert resumed.optimizer.iterations == 4
    resumed.fit(x, y, epochs=1, **settings)
    for key, value in uninterrupted.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[key], value)


def test_metadata_must_be_json(trained, tmp_path):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        trained[0].save(tmp_path / "m", metadata={"bad": object()})


def rewrite_weights(stem: Path, arrays: dict[str, np.ndarray]) -> None:
    """Replace the .npz and fix the digest in the .json, so only the content is wrong."""
    import hashlib

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    npz_path, json_path = model_paths(stem)
    npz_path.write_bytes(buffer.getvalue())
    description = json.loads(json_path.read_text())
    description["weights_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    json_path.write_text(json.dumps(description))


def edit_description(stem: Path, **changes) -> None:
    json_path = model_paths(stem)[1]
    description = json.loads(json_path.read_text())
    description.update(changes)
    json_path.write_text(json.dumps(description))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS = {
    "missing weights": (lambda s: model_paths(s)[0].unlink(), "no such weights file"),
    "missing description": (lambda s: model_paths(s)[1].unlink(), "no such model description"),
    "truncated weights": (lambda s: truncate(model_paths(s)[0]), "do not match"),
    "truncated description": (lambda s: truncate(model_paths(s)[1]), "unreadable"),
    "garbage description": (lambda s: model_paths(s)[1].write_bytes(b"\xff\x00"), "unreadable"),
    "not our format": (lambda s: edit_description(s, format="keras"), "not an urgence model"),
    "newer version": (lambda s: edit_description(s, version=2), "version 2 is not supported"),
    "unknown layer": (
        lambda s: edit_description(s, layers=[{"class": "LSTM", "config": {}}]),
        "unknown layer class",
    ),
    "weights from another save": (
        lambda s: model_paths(s)[0].write_bytes(model_paths(s)[0].read_bytes() + b"x"),
        "do not match their description",
    ),
    "weights not a zip": (lambda s: rewrite_weights_raw(s, b"not a zip file"), "not a readable"),
    "missing array": (
        lambda s: rewrite_weights(s, {k: v for k, v in load_arrays(s).items() if k != "6.W"}),
        r"missing \['6.W'\]",
    ),
    "wrong shape": (
        lambda s: rewrite_weights(s, {**load_arrays(s), "6.W": np.zeros((5, 3), np.float32)}),
        "has shape",
    ),
    "pickled object array": (
        lambda s: rewrite_weights(s, {**load_arrays(s), "6.b": np.array([{}, {}, {}])}),
        "not a readable",
    ),
}


def load_arrays(stem: Path) -> dict[str, np.ndarray]:
    with np.load(model_paths(stem)[0], allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def rewrite_weights_raw(stem: Path, data: bytes) -> None:
    import hashlib

    model_paths(stem)[0].write_bytes(data)
    edit_description(stem, weights_sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_each_bad_file_raises_model_file_error(trained, tmp_path, case):
    corrupt, message = CORRUPTIONS[case]
    stem = tmp_path / "model"
    trained[0].save(stem)
    corrupt(stem)
    with pytest.raises(ModelFileError, match=message):
        load_model(stem)
