"""The layer registry and (de)serialisation of layer configurations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from urgence.nn import layers
from urgence.nn.layers import LAYERS, LayerError, layer_from_config, layer_to_config

EXAMPLES = [
    layers.Dense(7, activation="relu", use_bias=False, kernel_initializer="glorot", name="d"),
    layers.Conv2D(4, (10, 4), strides=2, padding="same", activation="relu"),
    layers.DepthwiseConv2D(3, strides=(1, 2), depth_multiplier=2, padding="same"),
    layers.MaxPool2D(3, 2, padding="same"),
    layers.AvgPool2D((2, 1)),
    layers.GlobalAveragePooling2D(),
    layers.Flatten(),
    layers.Dropout(0.3),
    layers.BatchNormalization(momentum=0.99, epsilon=1e-5, trainable=False),
    layers.MeanNormalization((2, 3)),
    layers.FloorNormalization(0.2, with_mean=False),
    layers.CepstralLifter(5),
    layers.BCResBlock(4, freq_stride=2, dilation=2, subbands=2),
    layers.ReLU(),
    layers.Sigmoid(),
    layers.Tanh(),
    layers.Softmax(axis=-1),
    layers.Linear(),
]


def test_every_layer_class_is_registered_and_has_an_example():
    assert set(LAYERS) == {type(layer).__name__ for layer in EXAMPLES}
    for name, cls in LAYERS.items():
        assert cls.__name__ == name and issubclass(cls, layers.Layer)
        assert getattr(layers, name) is cls


@pytest.mark.parametrize("layer", EXAMPLES, ids=lambda layer: type(layer).__name__)
def test_config_round_trip_through_json(layer, rng):
    spec = json.loads(json.dumps(layer_to_config(layer)))
    rebuilt = layer_from_config(spec)
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == layer.get_config()
    shape = (2, 8, 8) if type(layer).__name__ not in ("Dense",) else (5,)
    rebuilt.build(shape, rng)
    layer.build(shape, rng)
    assert rebuilt.output_shape == layer.output_shape


@pytest.mark.parametrize(
    "spec",
    [
        {"config": {}},
        {"class": "Conv3D", "config": {}},
        {"class": "Dense", "config": {"units": 3, "colour": "red"}},
        {"class": "Dense", "config": []},
        "Dense",
    ],
)
def test_malformed_configs_raise_layer_error(spec):
    with pytest.raises(LayerError):
        layer_from_config(spec)


def test_unregistered_subclass_is_refused():
    class Custom(layers.ReLU):
        pass

    with pytest.raises(LayerError, match="not registered"):
        layer_to_config(Custom())


def test_state_round_trip(rng):
    source, target = layers.Conv2D(2, 3), layers.Conv2D(2, 3)
    source.build((1, 5, 5), rng)
    target.build((1, 5, 5), np.random.default_rng(99))
    target.load_state(source.state())
    np.testing.assert_array_equal(target.params["W"], source.params["W"])
    with pytest.raises(ValueError, match="expected shape"):
        target.load_state({"W": np.zeros((1, 1, 3, 3), dtype=np.float32)})
    with pytest.raises(KeyError):
        target.load_state({"gamma": np.zeros(2, dtype=np.float32)})
