"""BatchNormalization: training vs inference, moving statistics, gradients, state."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import BatchNormalization, LayerError, normalization


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_finite_differences(shape, training, rng):
    layer = BatchNormalization()
    layer.build(shape, rng)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, shape[0])
    layer.params["beta"][...] = rng.standard_normal(shape[0])
    layer.moving_mean[...] = rng.standard_normal(shape[0])
    result = check_layer_gradients(layer, shape, rng, batch_size=4, training=training)
    assert result.max_error < 1e-7


def test_training_normalises_per_channel(rng):
    layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
    layer.build((3, 4, 5), rng)
    x = (rng.standard_normal((8, 3, 4, 5)) * [[[2.0]], [[3.0]], [[0.5]]] + 5).astype(np.float32)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    variance = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), variance / (variance + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(layer.moving_mean, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_var, 0.9 + 0.1 * variance, rtol=1e-5)


def test_inference_uses_moving_statistics_and_does_not_update_them(rng):
    layer = BatchNormalization(epsilon=1e-3)
    layer.build((2,), rng)
    layer.moving_mean[...] = [1.0, -1.0]
    layer.moving_var[...] = [4.0, 0.25]
    layer.params["gamma"][...] = [2.0, 1.0]
    layer.params["beta"][...] = [0.5, 0.0]
    x = np.array([[3.0, 0.0]], dtype=np.float32)
    out = layer.forward(x, training=False)
    np.testing.assert_allclose(out, [[2 * 2 / np.sqrt(4.001) + 0.5, 1 / np.sqrt(0.251)]], rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean, [1.0, -1.0])
    # A single example in training mode is normalised by its own statistics instead.
    assert not np.allclose(layer.forward(x, training=True), out)


def test_frozen_layer_uses_moving_statistics_even_in_training(rng):
    layer = BatchNormalization(trainable=False)
    layer.build((3,), rng)
    x = rng.standard_normal((5, 3)).astype(np.float32) + 3
    np.testing.assert_allclose(layer.forward(x, training=True), x / np.sqrt(1.001), rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean, 0)
    layer.backward(np.ones_like(x))
    assert layer.grads == {}


def test_state_holds_moving_statistics_but_params_do_not(rng):
    layer = BatchNormalization()
    layer.build((2, 3, 3), rng)
    assert set(layer.params) == {"gamma", "beta"}
    assert set(layer.state()) == {"gamma", "beta", "moving_mean", "moving_var"}
    other = BatchNormalization()
    other.build((2, 3, 3), rng)
    other.load_state({"moving_mean": np.array([1.0, 2.0], dtype=np.float32)})
    np.testing.assert_array_equal(other.moving_mean, [1.0, 2.0])
    np.testing.assert_array_equal(other.state()["moving_mean"], [1.0, 2.0])


def test_bad_arguments(rng):
    with pytest.raises(LayerError):
        BatchNormalization(momentum=1.0)
    with pytest.raises(LayerError):
        BatchNormalization(epsilon=0)
    with pytest.raises(LayerError):
        BatchNormalization().build((2, 3), rng)


@pytest.mark.parametrize("axes", [(3,), (2, 3), (1,)])
def test_mean_normalization_gradients(axes, rng):
    from urgence.nn.layers import MeanNormalization

    layer = MeanNormalization(axes)
    layer.build((2, 3, 5), rng)
    result = check_layer_gradients(layer, (2, 3, 5), rng, batch_size=3)
    assert result.max_error < 1e-7


def test_mean_normalization_removes_a_fixed_band_level(rng):
    from urgence.nn.layers import MeanNormalization, layer_from_config, layer_to_config

    layer = MeanNormalization((3,))
    layer.build((1, 4, 6), rng)
    x = rng.standard_normal((2, 1, 4, 6)).astype(np.float32)
    tilt = np.arange(4, dtype=np.float32)[None, None, :, None] * 3.0  # a per-band offset
    np.testing.assert_allclose(layer.forward(x + tilt), layer.forward(x), atol=1e-5)
    assert layer.forward(x).dtype == np.float32
    np.testing.assert_allclose(layer.forward(x).mean(axis=3), 0.0, atol=1e-6)
    rebuilt = layer_from_config(layer_to_config(layer))
    assert rebuilt.axes == (3,)
    with pytest.raises(LayerError):
        MeanNormalization(())


def test_cepstral_lifter_gradients(rng):
    from urgence.nn.layers import CepstralLifter

    layer = CepstralLifter(3)
    layer.build((2, 6, 4), rng)
    result = check_layer_gradients(layer, (2, 6, 4), rng, batch_size=3)
    assert result.max_error < 1e-7


def test_cepstral_lifter_keeps_the_first_coefficients_of_scipys_dct(rng):
    import scipy.fft

    from urgence.nn.layers import CepstralLifter, layer_from_config, layer_to_config

    x = rng.standard_normal((2, 1, 40, 9)).astype(np.float32)
    layer = CepstralLifter(13)
    layer.build((1, 40, 9), rng)
    coefficients = scipy.fft.dct(x.astype(np.float64), type=2, norm="ortho", axis=2)
    coefficients[:, :, 13:] = 0.0
    expected = scipy.fft.idct(coefficients, type=2, norm="ortho", axis=2)
    out = layer.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # a ripple of high quefrency across the bands (as resolved harmonics make) goes, a
    # smooth envelope stays
    envelope_coefficients, ripple_coefficients = np.zeros(40), np.zeros(40)
    envelope_coefficients[:4] = [3.0, -1.0, 0.5, 0.2]
    ripple_coefficients[30] = 2.0
    envelope, ripple = (
        np.broadcast_to(
            scipy.fft.idct(c, type=2, norm="ortho")[None, None, :, None], (1, 1, 40, 9)
        ).astype(np.float32)
        for c in (envelope_coefficients, ripple_coefficients)
    )
    np.testing.assert_allclose(layer.forward(envelope + ripple), envelope, atol=1e-5)
    whole = CepstralLifter(40)
    whole.build((1, 40, 9), rng)
    np.testing.assert_allclose(whole.forward(x), x, atol=1e-5)
    assert layer_from_config(layer_to_config(layer)).keep == 13
    with pytest.raises(LayerError):
        CepstralLifter(0)
    with pytest.raises(LayerError):
        CepstralLifter(41).build((1, 40, 9), rng)


def _channel_major(values: np.ndarray) -> np.ndarray:
    """The same (N, C, H, W) values stored as (C, N, H, W), as convolutions hand them on."""
    return np.ascontiguousarray(values.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.mark.parametrize("block_values", [7, 1 << 17])  # several channels per block, or one
def test_channel_major_inputs_finite_differences(block_values, rng, monkeypatch):
    monkeypatch.setattr(normalization, "_BLOCK_VALUES", block_values)
    layer = BatchNormalization()
    layer.build((3, 2, 4), rng)
    layer.params["gamma"][...] = rng.uniform(0.5, 2, 3)
    layer.params["beta"][...] = rng.standard_normal(3)
    x = _channel_major(rng.standard_normal((4, 3, 2, 4)))
    result = check_layer_gradients(layer, (3, 2, 4), rng, x=x)
    assert layer._cache[2] == "rows"  # the channel-row path was the one checked
    assert result.max_error < 1e-7


@pytest.mark.parametrize("block_values", [50, 1 << 17])
def test_channel_major_path_matches_the_general_one(block_values, rng, monkeypatch):
    monkeypatch.setattr(normalization, "_BLOCK_VALUES", block_values)
    x = (rng.standard_normal((6, 5, 4, 7)) * rng.uniform(0.5, 3, (1, 5, 1, 1)) + 2).astype(
        np.float32
    )
    grad = rng.standard_normal(x.shape).astype(np.float32)
    layers = []
    for values in (x, _channel_major(x)):
        layer = BatchNormalization(momentum=0.8)
        layer.build(x.shape[1:], np.random.default_rng(0))
        layer.params["gamma"][...] = np.linspace(0.5, 2, 5)
        layer.params["beta"][...] = np.linspace(-1, 1, 5)
        out = layer.forward(values, training=True)
        layers.append((layer, out, layer.backward(_channel_major(grad))))
    (general, out_general, grad_general), (rows, out_rows, grad_rows) = layers
    assert general._cache[2] is True and rows._cache[2] == "rows"
    assert out_rows.transpose(1, 0, 2, 3).flags.c_contiguous  # the input's memory order
    np.testing.assert_allclose(out_rows, out_general, atol=1e-5)
    np.testing.assert_allclose(grad_rows, grad_general, atol=1e-5)
    for key in ("gamma", "beta"):
        np.testing.assert_allclose(rows.grads[key], general.grads[key], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rows.moving_mean, general.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(rows.moving_var, general.moving_var, rtol=1e-5)


@pytest.mark.parametrize("with_mean", [False, True])
def test_floor_normalization_gradients(with_mean, rng):
    from urgence.nn.layers import FloorNormalization

    layer = FloorNormalization(0.25, with_mean=with_mean)
    layer.build((2, 3, 9), rng)
    result = check_layer_gradients(layer, (2, 3, 9), rng, batch_size=3)
    assert result.max_error < 1e-7


def test_floor_normalization_against_a_loop_and_a_steady_background(rng):
    from urgence.nn.layers import FloorNormalization, layer_from_config, layer_to_config

    layer = FloorNormalization(0.1)
    layer.build((1, 4, 98), rng)
    x = rng.standard_normal((2, 1, 4, 98)).astype(np.float32)
    out = layer.forward(x)
    assert out.shape == (2, 2, 4, 98) and out.dtype == np.float32
    for n in range(2):
        for band in range(4):
            row = x[n, 0, band]
            floor = np.sort(row)[round(0.1 * 97)]  # the 10th quietest of 98 frames
            np.testing.assert_allclose(out[n, 1, band], row - floor, atol=1e-6)
            np.testing.assert_allclose(out[n, 0, band], row - row.mean(), atol=1e-6)
    # a steady per-band level (a background noise floor, a channel gain) changes nothing
    level = rng.uniform(-5, 5, size=(1, 1, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(layer.forward(x + level), out, atol=1e-5)
    alone = FloorNormalization(0.0, with_mean=False)
    alone.build((1, 4, 98), rng)
    np.testing.assert_allclose(alone.forward(x).min(axis=3), 0.0, atol=1e-6)
    rebuilt = layer_from_config(layer_to_config(layer))
    assert (rebuilt.quantile, rebuilt.with_mean) == (0.1, True)
    with pytest.raises(LayerError):
        FloorNormalization(1.5)
