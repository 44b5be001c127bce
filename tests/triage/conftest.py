"""Fixtures for the triage tests: a seeded generator and a model file that hears a keyword."""

import numpy as np
import pytest

from urgence.audio.features import FeatureConfig
from urgence.corpus.vocabulary import LABELS, SILENCE
from urgence.nn import Sequential
from urgence.nn.layers import Dense, Flatten, Softmax


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def save_constant_model(path, posteriors: dict[str, float]):
    """A real ``urgence.nn`` model file whose network ignores its input and always gives
    ``posteriors`` (the rest to ``_silence_``): every call with audio holds that keyword."""
    p = np.full(len(LABELS), 1e-6)
    for label, value in posteriors.items():
        p[LABELS.index(label)] = value
    p[LABELS.index(SILENCE)] += max(0.0, 1.0 - p.sum())
    net = Sequential([Flatten(), Dense(len(LABELS)), Softmax()], input_shape=(1, 40, 98), seed=0)
    weights = net.get_weights()
    weights["1.W"][...] = 0.0
    weights["1.b"][...] = np.log(p / p.sum())
    net.set_weights(weights)
    net.save(path, metadata={"labels": list(LABELS), "feature_config": FeatureConfig().to_dict()})
    return path


@pytest.fixture
def constant_model():
    """``save_constant_model`` as a fixture (conftest modules are not imported by name)."""
    return save_constant_model


@pytest.fixture
def incendie_model_path(tmp_path):
    return save_constant_model(tmp_path / "incendie", {"incendie": 0.9})
