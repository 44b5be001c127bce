import json

import numpy as np
import pytest

from urgence.audio.features import FeatureConfig
from urgence.corpus.vocabulary import KEYWORDS, LABELS
from urgence.kws import model as model_module
from urgence.kws.model import DEFAULT_THRESHOLD, KeywordModel, default_model_path
from urgence.nn import ModelFileError, Sequential
from urgence.nn.layers import Dense, Flatten, Softmax


def save_tiny_model(path, *, n_outputs=None, metadata=None):
    n_outputs = len(LABELS) if n_outputs is None else n_outputs
    net = Sequential([Flatten(), Dense(n_outputs), Softmax()], input_shape=(1, 40, 98), seed=0)
    if metadata is None:
        metadata = {
            "labels": list(LABELS),
            "feature_config": FeatureConfig().to_dict(),
            "thresholds": {"gaz": 0.8},
        }
    net.save(path, metadata=metadata)
    return path


def test_load_gives_labels_config_thresholds_and_posteriors(tmp_path):
    model = KeywordModel.load(save_tiny_model(tmp_path / "kws"))
    assert model.labels == LABELS
    assert model.feature_config == FeatureConfig()
    assert model.thresholds["gaz"] == 0.8
    assert model.thresholds["vol"] == DEFAULT_THRESHOLD
    assert set(model.thresholds) == set(KEYWORDS) == set(model.keywords)
    windows = np.random.default_rng(0).standard_normal((300, 40, 98)).astype(np.float32)
    p = model.predict_proba(windows)  # several batches of PREDICT_BATCH
    assert p.shape == (300, len(LABELS)) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    # BLAS blocking depends on the batch size: equal up to float32 rounding
    np.testing.assert_allclose(p[:5], model.predict_proba(windows[:5]), rtol=1e-4, atol=1e-6)


def test_suffix_and_env_var_select_the_file(tmp_path, monkeypatch):
    save_tiny_model(tmp_path / "other")
    assert KeywordModel.load(tmp_path / "other.json").labels == LABELS
    monkeypatch.setenv("URGENCE_MODEL", str(tmp_path / "other"))
    assert default_model_path() == tmp_path / "other"
    assert KeywordModel.load().source == str(tmp_path / "other")


def test_default_path_is_the_shipped_model(monkeypatch):
    monkeypatch.delenv("URGENCE_MODEL", raising=False)
    path = default_model_path()
    assert path.name == "kws" and path.parent.name == "models"
    assert (path.parents[1] / "urgence" / "__init__.py").is_file()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="no keyword model"):
        KeywordModel.load(tmp_path / "nothing")


def test_garbage_file_is_a_model_file_error(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "bad.json").write_text("{ nope")
    with pytest.raises(ModelFileError):
        KeywordModel.load(tmp_path / "bad")


@pytest.mark.parametrize(
    "metadata, message",
    [
        ({"feature_config": FeatureConfig().to_dict()}, "lacks"),
        ({"labels": list(LABELS), "feature_config": {"n_mels": 40, "n_frames": 50}}, "feature"),
        ({"labels": ["a", "b"], "feature_config": FeatureConfig().to_dict()}, "no keyword"),
        (
            {
                "labels": list(LABELS),
                "feature_config": FeatureConfig().to_dict(),
                "thresholds": {"gaz": 1.5},
            },
            "threshold",
        ),
    ],
    ids=["no labels", "feature mismatch", "no keyword", "bad threshold"],
)
def test_not_a_keyword_model(tmp_path, metadata, message):
    save_tiny_model(tmp_path / "m", metadata=metadata)
    with pytest.raises(ModelFileError, match=message):
        KeywordModel.load(tmp_path / "m")


def test_outputs_must_match_labels(tmp_path):
    save_tiny_model(tmp_path / "m", n_outputs=5)
    with pytest.raises(ModelFileError, match="outputs"):
        KeywordModel.load(tmp_path / "m")


def test_input_shape_must_match_features(tmp_path):
    net = Sequential([Flatten(), Dense(len(LABELS)), Softmax()], input_shape=(1, 40, 50), seed=0)
    net.save(
        tmp_path / "m",
        metadata={"labels": list(LABELS), "feature_config": FeatureConfig().to_dict()},
    )
    with pytest.raises(ModelFileError, match="does not accept"):
        KeywordModel.load(tmp_path / "m")


def test_bad_window_shape_is_a_value_error(tmp_path):
    model = KeywordModel.load(save_tiny_model(tmp_path / "kws"))
    with pytest.raises(ValueError, match="windows of shape"):
        model.predict_proba(np.zeros((2, 40, 97), np.float32))


def test_batches_bound_memory(tmp_path, monkeypatch):
    model = KeywordModel.load(save_tiny_model(tmp_path / "kws"))
    sizes = []
    real = model.inference_network.predict_proba
    model.inference_network.predict_proba = lambda x: sizes.append(len(x)) or real(x)
    monkeypatch.setattr(model_module, "PREDICT_BATCH", 4)
    model.predict_proba(np.zeros((10, 40, 98), np.float32))
    assert sizes == [4, 4, 2]


def test_inference_runs_the_folded_network_with_the_trained_ones_posteriors(tmp_path):
    from urgence.nn.layers import BatchNormalization, Conv2D, ReLU

    layers = [Conv2D(4, 3, use_bias=False), BatchNormalization(), ReLU()]
    net = Sequential([*layers, Flatten(), Dense(len(LABELS)), Softmax()], input_shape=(1, 40, 98))
    norm = net.layers[1]
    norm.moving_mean[...], norm.moving_var[...] = [0.5, -1, 2, 0], [2, 0.5, 1, 3]
    net.save(
        tmp_path / "kws",
        metadata={"labels": list(LABELS), "feature_config": FeatureConfig().to_dict()},
    )
    model = KeywordModel.load(tmp_path / "kws")
    assert len(model.inference_network.layers) < len(model.network.layers)
    windows = np.random.default_rng(0).normal(-5, 3, (6, 40, 98)).astype(np.float32)
    trained = model.network.predict_proba(windows[:, None])
    np.testing.assert_allclose(model.predict_proba(windows), trained, atol=1e-6)


def test_metadata_survives_json_round_trip(tmp_path):
    save_tiny_model(tmp_path / "kws")
    saved = json.loads((tmp_path / "kws.json").read_text())["metadata"]
    assert saved["thresholds"] == {"gaz": 0.8}


def test_store_tuning_writes_thresholds_and_detector_settings(tmp_path):
    from urgence.kws.detector import DetectorConfig, StreamingDetector
    from urgence.kws.model import store_tuning

    path = save_tiny_model(tmp_path / "kws")
    weights = KeywordModel.load(path).network.get_weights()
    store_tuning(path, thresholds={"vol": 0.77}, detector=DetectorConfig(min_windows=4))
    model = KeywordModel.load(path)
    assert model.thresholds["vol"] == 0.77 and model.thresholds["gaz"] == DEFAULT_THRESHOLD
    assert model.detector_config == DetectorConfig(min_windows=4)
    assert StreamingDetector(model).config.min_windows == 4
    for key, value in model.network.get_weights().items():
        np.testing.assert_array_equal(value, weights[key])
    with pytest.raises(ModelFileError, match="threshold"):
        store_tuning(path, thresholds={"_unknown_": 0.5}, detector=DetectorConfig())
    assert KeywordModel.load(path).thresholds["vol"] == 0.77  # refused: file unchanged


def test_bad_detector_settings_are_a_model_file_error(tmp_path):
    metadata = {
        "labels": list(LABELS),
        "feature_config": FeatureConfig().to_dict(),
        "detector": {"min_windows": 0},
    }
    save_tiny_model(tmp_path / "m", metadata=metadata)
    with pytest.raises(ModelFileError, match="detector"):
        KeywordModel.load(tmp_path / "m")
