import numpy as np
import pytest

from urgence.kws.architectures import bcresnet_layers, dscnn_layers
from urgence.nn import Sequential
from urgence.nn.fusion import fold_batch_norm
from urgence.nn.layers import (
    BatchNormalization,
    BCResBlock,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Flatten,
    ReLU,
    Softmax,
    Tanh,
)


def _norms(model: Sequential):
    for layer in model.layers:
        if isinstance(layer, BatchNormalization):
            yield layer
        yield from getattr(layer, "_norms", {}).values()  # a BCResBlock's own


def _trained_statistics(model: Sequential, rng: np.random.Generator) -> None:
    """Give every BatchNormalization non-trivial parameters and moving statistics."""
    for layer in _norms(model):
        _randomise(layer, rng)


def _randomise(layer: BatchNormalization, rng: np.random.Generator) -> None:
    n = layer.params["gamma"].shape[0]
    layer.params["gamma"][...] = rng.uniform(0.5, 2.0, n)
    layer.params["beta"][...] = rng.normal(0, 1, n)
    layer.moving_mean[...] = rng.normal(0, 1, n)
    layer.moving_var[...] = rng.uniform(0.2, 3.0, n)


def test_folded_dscnn_computes_the_same_posteriors(rng):
    model = Sequential(dscnn_layers(14, width=16), input_shape=(1, 40, 98), seed=3)
    _trained_statistics(model, rng)
    x = rng.standard_normal((5, 1, 40, 98)).astype(np.float32)
    folded = fold_batch_norm(model)
    kinds = [type(layer) for layer in folded.layers]
    assert BatchNormalization not in kinds and ReLU not in kinds
    assert len(folded.layers) == len(model.layers) - 2 * 9  # 9 BN + 9 ReLU folded
    np.testing.assert_allclose(folded.predict_proba(x), model.predict_proba(x), atol=2e-6)
    assert folded.predict_proba(x).dtype == np.float32


def test_folded_bcresnet_computes_the_same_posteriors_and_sees_new_states(rng):
    """Its blocks compute their norms' maps once (fix_norms); a new state replaces them."""
    model = Sequential(bcresnet_layers(14, width=8, time_stride=2), input_shape=(1, 40, 98), seed=3)
    _trained_statistics(model, rng)
    x = rng.standard_normal((2, 1, 40, 98)).astype(np.float32)
    folded = fold_batch_norm(model)
    np.testing.assert_allclose(folded.predict_proba(x), model.predict_proba(x), atol=2e-6)
    np.testing.assert_allclose(folded.predict_proba(x[:1]), model.predict_proba(x[:1]), atol=2e-6)
    blocks = [
        [layer for layer in m.layers if isinstance(layer, BCResBlock)] for m in (folded, model)
    ]
    for block in blocks[1]:  # new statistics in the model's blocks only
        for norm in block._norms.values():
            _randomise(norm, rng)
    before = folded.predict_proba(x)
    for mine, theirs in zip(*blocks, strict=True):
        mine.load_state({key: value.copy() for key, value in theirs.state().items()})
    np.testing.assert_allclose(folded.predict_proba(x), model.predict_proba(x), atol=2e-6)
    assert not np.allclose(before, folded.predict_proba(x), atol=1e-4)


@pytest.mark.parametrize(
    ("layers", "norms_left"),
    [
        # bias and no bias, a Dense layer, then a BN after the layer's own activation (not
        # foldable: it stays, and so does the ReLU after it)
        (lambda: [Conv2D(4, 3), BatchNormalization(), Tanh(), Flatten(), Dense(6)], 0),
        (lambda: [DepthwiseConv2D(3, depth_multiplier=2, use_bias=False), BatchNormalization()], 0),
        (lambda: [Flatten(), Dense(5), BatchNormalization(), ReLU(), Dense(3), Softmax()], 0),
        (lambda: [Conv2D(3, 3, activation="relu"), BatchNormalization(), ReLU(), Flatten()], 1),
    ],
)
def test_fold_against_the_unfolded_model(layers, norms_left, rng):
    model = Sequential(layers(), input_shape=(2, 7, 6), seed=1)
    _trained_statistics(model, rng)
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    folded = fold_batch_norm(model)
    assert sum(isinstance(layer, BatchNormalization) for layer in folded.layers) == norms_left
    np.testing.assert_allclose(folded.predict(x), model.predict(x), rtol=1e-5, atol=1e-5)


def test_folded_parameters_are_the_affine_map_composed(rng):
    conv = Sequential([Conv2D(3, 2, use_bias=True), BatchNormalization()], input_shape=(2, 4, 4))
    _trained_statistics(conv, rng)
    conv.layers[0].params["b"][...] = rng.normal(0, 1, 3)
    folded = fold_batch_norm(conv).layers[0]
    norm = conv.layers[1]
    scale = norm.params["gamma"] / np.sqrt(norm.moving_var.astype(np.float64) + norm.epsilon)
    want_w = conv.layers[0].params["W"] * scale[:, None, None, None]
    want_b = (conv.layers[0].params["b"] - norm.moving_mean) * scale + norm.params["beta"]
    np.testing.assert_allclose(folded.params["W"], want_w, rtol=1e-6)
    np.testing.assert_allclose(folded.params["b"], want_b, rtol=1e-6, atol=1e-6)


def test_fold_leaves_the_model_unchanged_and_copies_metadata(rng):
    model = Sequential(dscnn_layers(14, width=8), input_shape=(1, 40, 98), seed=0)
    _trained_statistics(model, rng)
    model.metadata = {"labels": ["a"]}
    before = model.get_weights()
    folded = fold_batch_norm(model)
    after = model.get_weights()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    assert folded.metadata == {"labels": ["a"]} and folded.metadata is not model.metadata
    assert not any(layer.trainable for layer in folded.layers)
