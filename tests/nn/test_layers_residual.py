"""BCResBlock (BC-ResNet's broadcasted residual block) against a naive-loop oracle, gradient
checks, its frozen behaviour, and a model built of it saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn import Sequential
from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import BCResBlock, LayerError, layer_from_config, layer_to_config
from urgence.nn.serialization import load_model, save_model

EPSILON = 1e-3  # BatchNormalization's default, used by the block's norms

# (input (C, F, T), block options)
BLOCKS = [
    ((3, 4, 6), {"filters": 3}),
    ((3, 4, 7), {"filters": 3, "dilation": 2, "subbands": 2}),
    ((2, 6, 5), {"filters": 4, "subbands": 3}),
    ((3, 8, 6), {"filters": 4, "freq_stride": 2, "subbands": 2}),
    ((3, 5, 6), {"filters": 3, "freq_stride": 2, "dilation": 3}),
    ((2, 4, 3), {"filters": 2, "dilation": 4}),  # the side taps see padding only
]


def _batch_norm(values: np.ndarray, gamma: float, beta: float) -> np.ndarray:
    """Training-mode normalisation of one group of values (biased variance)."""
    return (values - values.mean()) / np.sqrt(values.var() + EPSILON) * gamma + beta


def block_oracle(block: BCResBlock, x: np.ndarray) -> np.ndarray:
    """The block's training-mode forward pass, cell by cell, in float64."""
    p = {key: value.astype(np.float64) for key, value in block.params.items()}
    n, channels, freq, time = x.shape
    c, out_freq, _ = block.output_shape
    s, d, bands = block.freq_stride, block.dilation, block.subbands
    h = x.astype(np.float64)
    if block.transition:
        pre = np.zeros((n, c, freq, time))
        for b in range(n):
            for o in range(c):
                for i in range(channels):
                    pre[b, o] += p["in_W"][o, i] * h[b, i]
        for o in range(c):
            pre[:, o] = _batch_norm(pre[:, o], p["norm_in.gamma"][o], p["norm_in.beta"][o])
        h = np.maximum(pre, 0)
    f2 = np.zeros((n, c, out_freq, time))
    for b in range(n):
        for o in range(c):
            for f in range(out_freq):
                for k in range(3):
                    row = s * f + k - 1  # one row of zero padding on each side
                    if 0 <= row < freq:
                        f2[b, o, f] += p["freq_W"][o, k] * h[b, o, row]
    rows = out_freq // bands
    for o in range(c):
        for band in range(bands):
            part = slice(band * rows, (band + 1) * rows)
            j = o * bands + band
            f2[:, o, part] = _batch_norm(
                f2[:, o, part], p["norm_sub.gamma"][j], p["norm_sub.beta"][j]
            )
    average = f2.mean(axis=2)
    temporal = np.zeros((n, c, time))
    for b in range(n):
        for o in range(c):
            for t in range(time):
                for k in range(3):
                    source = t + (k - 1) * d
                    if 0 <= source < time:
                        temporal[b, o, t] += p["time_W"][o, k] * average[b, o, source]
    for o in range(c):
        temporal[:, o] = _batch_norm(
            temporal[:, o], p["norm_time.gamma"][o], p["norm_time.beta"][o]
        )
    swished = temporal / (1 + np.exp(-temporal))
    f1 = np.zeros((n, c, time))
    for b in range(n):
        for o in range(c):
            for i in range(c):
                f1[b, o] += p["point_W"][o, i] * swished[b, i]
    out = f2 + f1[:, :, None, :]
    if not block.transition:
        out += x
    return np.maximum(out, 0)


def _randomise_norms(block: BCResBlock, rng: np.random.Generator) -> None:
    """gamma and beta away from 1 and 0, so that a mix-up of groups shows."""
    for key, value in block.params.items():
        if key.endswith(".gamma"):
            value[...] = rng.uniform(0.5, 1.5, value.shape)
        elif key.endswith(".beta"):
            value[...] = rng.uniform(-0.5, 0.5, value.shape)


@pytest.mark.parametrize(("shape", "options"), BLOCKS)
def test_forward_matches_the_loop_oracle(shape, options, rng):
    block = BCResBlock(**options)
    block.build(shape, rng)
    _randomise_norms(block, rng)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    out = block.forward(x, training=True)
    assert out.dtype == np.float32
    assert out.shape == (3, *block.output_shape)
    np.testing.assert_allclose(out, block_oracle(block, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("shape", "options"), BLOCKS)
@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_finite_differences(shape, options, training, rng):
    block = BCResBlock(**options)
    block.build(shape, rng)
    _randomise_norms(block, rng)
    result = check_layer_gradients(block, shape, rng, batch_size=3, training=training)
    assert set(result.errors) == {"input", *block.params}
    assert result.max_error < 1e-6, result.errors


def test_transition_blocks_are_the_ones_that_change_channels_or_stride(rng):
    kinds = {}
    for name, (filters, stride) in {"same": (3, 1), "wider": (5, 1), "strided": (3, 2)}.items():
        block = BCResBlock(filters, freq_stride=stride)
        block.build((3, 6, 4), rng)
        kinds[name] = (block.transition, "in_W" in block.params, block.output_shape)
    assert kinds == {
        "same": (False, False, (3, 6, 4)),
        "wider": (True, True, (5, 6, 4)),
        "strided": (True, True, (3, 3, 4)),
    }


def test_frozen_block_uses_moving_statistics_and_keeps_them(rng):
    block = BCResBlock(4, freq_stride=2, subbands=2)
    block.build((3, 8, 6), rng)
    x = rng.standard_normal((5, 3, 8, 6)).astype(np.float32)
    block.forward(x, training=True)  # moves the statistics away from their start
    saved = {key: value.copy() for key, value in block.state().items()}
    inference = block.forward(x, training=False)
    block.trainable = False
    frozen = block.forward(x, training=True)
    block.backward(np.ones_like(frozen))
    np.testing.assert_allclose(frozen, inference, rtol=1e-6)
    assert block.grads == {}
    for key, value in block.state().items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)


def test_config_round_trip_and_bad_options(rng):
    block = BCResBlock(6, freq_stride=2, dilation=4, subbands=5, name="b1")
    copy = layer_from_config(layer_to_config(block))
    assert copy.get_config() == block.get_config()
    for options in (
        {"filters": 0},
        {"filters": 4, "freq_stride": 3},
        {"filters": 4, "dilation": 0},
    ):
        with pytest.raises(LayerError):
            BCResBlock(**options)
    with pytest.raises(LayerError, match="subbands"):
        BCResBlock(4, subbands=3).build((4, 8, 5), rng)
    with pytest.raises(LayerError, match="expected input"):
        block = BCResBlock(4)
        block.build((4, 6, 5), rng)
        block.forward(np.zeros((2, 4, 6, 6), np.float32))


def test_a_model_of_blocks_trains_saves_and_loads(tmp_path, rng):
    from urgence.nn.layers import Dense, GlobalAveragePooling2D, Softmax

    model = Sequential(
        [
            BCResBlock(4, subbands=2),
            BCResBlock(6, freq_stride=2, dilation=2),
            GlobalAveragePooling2D(),
            Dense(3),
            Softmax(),
        ],
        input_shape=(2, 8, 10),
        seed=3,
    )
    model.compile()
    x = rng.standard_normal((12, 2, 8, 10)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    first = model.train_on_batch(x, y)["loss"]
    for _ in range(30):
        last = model.train_on_batch(x, y)["loss"]
    assert last < first  # the optimiser reaches every parameter through the block
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))


@pytest.mark.parametrize("training", [True, False])
def test_results_do_not_depend_on_the_inputs_memory_order(training, rng):
    """The block computes on (C, F, N, T) storage: an input stored that way (a block's
    output), channel-major (a convolution's) or plain (N, C, F, T) gives the same output and
    gradient, and the output is stored (C, F, N, T), so a chain of blocks copies nothing."""
    block = BCResBlock(4, freq_stride=2, dilation=2, subbands=2)
    block.build((3, 8, 6), np.random.default_rng(1))
    x = rng.standard_normal((5, 3, 8, 6)).astype(np.float32)
    grad = rng.standard_normal((5, 4, 4, 6)).astype(np.float32)
    orders = {
        "plain": x,
        "block": np.ascontiguousarray(x.transpose(1, 2, 0, 3)).transpose(2, 0, 1, 3),
        "channel-major": np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3),
    }
    results = {}
    for order, stored in orders.items():
        out = block.forward(stored, training=training)
        assert out.transpose(1, 2, 0, 3).flags.c_contiguous
        results[order] = (out.copy(), block.backward(grad).copy())
    for order in ("block", "channel-major"):
        for got, expected in zip(results[order], results["plain"], strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
