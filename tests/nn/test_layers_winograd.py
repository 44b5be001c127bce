"""Conv2D's Winograd F(4x4, 3x3) path: exact in float64, close to the direct sum in float32."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import Conv2D, conv
from urgence.nn.layers._windows import is_batch_last

from .conftest import batch_last, pretend_blas_threads
from .test_layers_conv import conv_oracle

CHANNELS = conv.WINOGRAD_MIN_CHANNELS

SHAPES = [
    # (input (C, H, W), padding): outputs that fill whole 4x4 tiles, partial ones, and
    # outputs smaller than one tile.
    ((CHANNELS, 10, 6), "valid"),
    ((CHANNELS, 13, 13), "valid"),
    ((CHANNELS + 1, 7, 9), "same"),
    ((CHANNELS, 3, 5), "valid"),
    ((CHANNELS, 2, 3), "same"),
]


def test_3x3_stride_1_layers_with_enough_channels_take_winograd(rng):
    chosen = []
    for channels, kernel, strides in [
        (CHANNELS, 3, 1),
        (CHANNELS - 1, 3, 1),
        (CHANNELS, 3, 2),
        (CHANNELS, (3, 2), 1),
    ]:
        layer = Conv2D(2, kernel, strides=strides)
        layer.build((channels, 8, 8), rng)
        chosen.append(layer._winograd is not None)
    assert chosen == [True, False, False, False]


@pytest.mark.parametrize("layout", ["channel_major", "batch_last"])
@pytest.mark.parametrize(("shape", "padding"), SHAPES)
def test_winograd_matches_loops(shape, padding, layout, rng):
    x = rng.standard_normal((3, *shape))
    layer = Conv2D(5, 3, padding=padding)
    layer.build(shape, rng)
    assert layer._winograd is not None
    layer.params["b"][...] = rng.standard_normal(5)
    out, grad_out, grad_x, grad_w, grad_b = conv_oracle(
        x, layer.params["W"].astype(np.float64), layer.params["b"], (1, 1), padding,
        lambda f: range(shape[0]),
    )  # fmt: skip
    if layout == "batch_last":
        x, grad_out = batch_last(x), batch_last(grad_out)
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, out, atol=1e-10)
    grad = layer.backward(grad_out)
    np.testing.assert_allclose(grad, grad_x, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)
    assert is_batch_last(y) and is_batch_last(grad)


@pytest.mark.parametrize(("shape", "padding"), SHAPES[2:4])
def test_winograd_finite_differences(shape, padding, rng):
    layer = Conv2D(2, 3, padding=padding, activation="relu")
    layer.build(shape, rng)
    assert layer._winograd is not None
    assert check_layer_gradients(layer, shape, rng).max_error < 1e-7


def test_winograd_without_bias_frozen_and_first_layer(rng):
    shape = (CHANNELS, 6, 7)
    layer = Conv2D(3, 3, use_bias=False, trainable=False)
    layer.build(shape, rng)
    x = rng.standard_normal((2, *shape))
    out, grad_out, grad_x, _, _ = conv_oracle(
        x, layer.params["W"].astype(np.float64), np.zeros(3), (1, 1), "valid",
        lambda f: range(shape[0]),
    )  # fmt: skip
    np.testing.assert_allclose(layer.forward(x, training=True), out, atol=1e-10)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-10)
    assert layer.grads == {}
    layer.trainable, layer.needs_input_grad = True, False
    layer.forward(x, training=True)
    assert layer.backward(grad_out) is None
    assert set(layer.grads) == {"W"}


def _float32_errors(layer, x, grad_out, reference):
    """Largest errors of the float32 forward, input, kernel and bias gradients against the
    float64 reference, each relative to the largest value of the reference."""
    out = layer.forward(x.astype(np.float32), training=True)
    grad = layer.backward(grad_out.astype(np.float32))
    results = (out, grad, layer.grads["W"], layer.grads["b"])
    assert all(r.dtype == np.float32 for r in results)
    return np.array(
        [
            np.abs(r - ref).max() / np.abs(ref).max()
            for r, ref in zip(results, reference, strict=True)
        ]
    )


def test_float32_winograd_stays_close_to_the_direct_sum(rng, monkeypatch):
    """The MNIST CNN's second convolution (32 -> 64 channels, 13 x 13, He initialisation,
    ReLU-like inputs): Winograd's float32 error stays within 10x im2col's and below 5e-6
    of the results' scale (float32 resolution: 6e-8). Measured: forward 1.3e-6 (im2col
    5.0e-7), input gradient 1.3e-6 (1.9e-7), kernel gradient 1.9e-6 (3.7e-7), bias 8e-8."""
    shape, filters = (32, 13, 13), 64
    x = np.maximum(rng.standard_normal((8, *shape)), 0)
    winograd = Conv2D(filters, 3)
    winograd.build(shape, rng)
    winograd.params["b"][...] = 0.1 * rng.standard_normal(filters)
    monkeypatch.setattr(conv, "WINOGRAD_MIN_CHANNELS", shape[0] + 1)
    direct = Conv2D(filters, 3)
    direct.build(shape, rng)
    assert winograd._winograd is not None and direct._winograd is None
    direct.params.update({k: v.copy() for k, v in winograd.params.items()})
    weights = winograd.params["W"].astype(np.float64)
    out, grad_out, grad_x, grad_w, grad_b = conv_oracle(
        x.astype(np.float32).astype(np.float64), weights, winograd.params["b"], (1, 1), "valid",
        lambda f: range(shape[0]),
    )  # fmt: skip
    reference = (out, grad_x, grad_w, grad_b)
    winograd_errors = _float32_errors(winograd, x, grad_out, reference)
    direct_errors = _float32_errors(direct, x, grad_out, reference)
    assert np.all(winograd_errors < 5e-6), winograd_errors
    assert np.all(winograd_errors < 10 * np.maximum(direct_errors, 1e-7)), (
        winograd_errors,
        direct_errors,
    )


def test_winograd_work_arrays_never_leak_into_results(rng):
    layer = Conv2D(4, 3, padding="same", activation="relu")
    layer.build((CHANNELS, 6, 5), rng)
    calls = []
    for n, dtype in [(3, np.float32), (3, np.float32), (2, np.float32), (3, np.float64)]:
        x = batch_last(rng.standard_normal((n, CHANNELS, 6, 5)).astype(dtype))
        out = layer.forward(x, training=True)
        grad = layer.backward(rng.standard_normal(out.shape).astype(dtype))
        calls.append((x, out, grad, out.copy(), grad.copy(), layer.grads["W"].copy()))
        assert out.dtype == dtype and grad.dtype == dtype
    for _, out, grad, out_then, grad_then, _ in calls:
        np.testing.assert_array_equal(out, out_then)
        np.testing.assert_array_equal(grad, grad_then)
    # The same input twice gives the same results: no state carried between calls.
    x = calls[0][0]
    np.testing.assert_array_equal(layer.forward(x, training=True), calls[0][3])


def test_engine_threads_split_winograd_products(monkeypatch, rng):
    """Within engine_threads the Winograd GEMMs run on the engine's threads, BLAS on one:
    the same results up to rounding."""
    from urgence.nn.layers import _parallel

    shape = (CHANNELS, 9, 10)
    layer = Conv2D(4, 3, padding="same", activation="relu")
    layer.build(shape, rng)
    x = batch_last(rng.standard_normal((3, *shape)).astype(np.float32))
    grad_out = rng.standard_normal((3, *layer.output_shape)).astype(np.float32)

    def run():
        out = layer.forward(x, training=True).copy()
        return out, layer.backward(grad_out).copy(), layer.grads["W"].copy()

    monkeypatch.setattr(_parallel, "threads", lambda: 1)
    serial = run()
    monkeypatch.undo()
    blas = pretend_blas_threads(monkeypatch, 2)
    parts = []
    run_parts = _parallel._run_parts
    monkeypatch.setattr(
        _parallel,
        "_run_parts",
        lambda length, work, count: parts.append(count) or run_parts(length, work, count),
    )
    with _parallel.engine_threads():
        split = run()
    assert 2 in parts and blas.num_threads == 2
    for a, b in zip(serial, split, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
