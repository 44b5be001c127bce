"""MaxPool2D, AvgPool2D, GlobalAveragePooling2D against naive loops, and gradient checks."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import (
    AvgPool2D,
    Conv2D,
    GlobalAveragePooling2D,
    LayerError,
    MaxPool2D,
    ReLU,
)
from urgence.nn.layers._windows import is_batch_last

from .conftest import batch_last, pad_for_oracle

GEOMETRIES = [
    # (input (C, H, W), pool, strides, padding)
    ((2, 6, 4), (2, 2), None, "valid"),
    ((2, 7, 5), (2, 2), None, "valid"),
    ((1, 7, 5), (2, 2), None, "same"),
    ((2, 7, 6), (3, 3), (2, 2), "valid"),
    ((2, 7, 6), (3, 3), (2, 2), "same"),
    ((1, 9, 8), (3, 2), (1, 1), "valid"),
    ((1, 8, 9), (4, 3), (2, 3), "same"),
]


def pool_oracle(x, pool, strides, padding, reduce):
    """Forward and input gradient by loops; ``reduce`` is "max" (first max) or "mean"."""
    strides = strides or pool
    (ph, pw), (sh, sw) = pool, strides
    fill = -np.inf if reduce == "max" else np.nan
    padded, oh, ow, (top, left) = pad_for_oracle(x, pool, strides, padding, fill)
    n, c = x.shape[:2]
    out = np.zeros((n, c, oh, ow))
    grad_out = np.random.default_rng(9).standard_normal(out.shape)
    grad_padded = np.zeros(padded.shape)
    for b in range(n):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    rows, cols = slice(i * sh, i * sh + ph), slice(j * sw, j * sw + pw)
                    window = padded[b, k, rows, cols]
                    if reduce == "max":
                        out[b, k, i, j] = window.max()
                        a, d = np.unravel_index(np.argmax(window), window.shape)
                        grad_padded[b, k, i * sh + a, j * sw + d] += grad_out[b, k, i, j]
                    else:
                        real = ~np.isnan(window)
                        out[b, k, i, j] = window[real].mean()
                        grad_padded[b, k, rows, cols] += real * grad_out[b, k, i, j] / real.sum()
    h, w = x.shape[2:]
    grad_x = np.zeros(x.shape)
    used = grad_padded[:, :, top : top + h, left : left + w]
    grad_x[:, :, : used.shape[2], : used.shape[3]] = used
    return out, grad_out, grad_x


@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), GEOMETRIES)
@pytest.mark.parametrize(("cls", "reduce"), [(MaxPool2D, "max"), (AvgPool2D, "mean")])
def test_matches_loops(cls, reduce, shape, pool, strides, padding, rng):
    x = rng.standard_normal((2, *shape))
    layer = cls(pool, strides, padding=padding)
    layer.build(shape, rng)
    out, grad_out, grad_x = pool_oracle(x, pool, strides, padding, reduce)
    assert layer.output_shape == out.shape[1:]
    np.testing.assert_allclose(layer.forward(x, training=True), out, atol=1e-12)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-12)


@pytest.mark.parametrize(
    ("strides", "winners"), [(None, (slice(0, 4, 2),) * 2), (1, (slice(0, 3),) * 2)]
)
def test_max_pool_ties_send_the_gradient_to_the_first_cell_only(strides, winners, rng):
    layer = MaxPool2D(2, strides)
    layer.build((1, 4, 4), rng)
    out = layer.forward(np.zeros((1, 1, 4, 4), dtype=np.float32), training=True)
    expected = np.zeros((1, 1, 4, 4), dtype=np.float32)
    expected[(0, 0, *winners)] = 1
    np.testing.assert_array_equal(layer.backward(np.ones_like(out)), expected)


@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), GEOMETRIES)
@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_finite_differences(cls, shape, pool, strides, padding, rng):
    layer = cls(pool, strides, padding=padding)
    assert check_layer_gradients(layer, shape, rng).max_error < 1e-7


def test_global_average_pooling(rng):
    layer = GlobalAveragePooling2D()
    layer.build((3, 4, 5), rng)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    out = layer.forward(x)
    assert out.dtype == np.float32 and out.shape == (2, 3) and layer.output_shape == (3,)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3)), rtol=1e-6)
    assert check_layer_gradients(GlobalAveragePooling2D(), (3, 2, 3), rng).max_error < 1e-7


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_float32_in_float32_out(cls, rng):
    layer = cls()
    layer.build((2, 6, 6), rng)
    out = layer.forward(rng.standard_normal((3, 2, 6, 6)).astype(np.float32), training=True)
    assert out.dtype == np.float32 and out.shape == (3, 2, 3, 3)
    assert layer.backward(np.ones_like(out)).dtype == np.float32


def test_bad_arguments(rng):
    with pytest.raises(LayerError):
        MaxPool2D(0)
    with pytest.raises(LayerError):
        AvgPool2D(2, padding="causal")
    with pytest.raises(LayerError, match="does not fit"):
        MaxPool2D(3).build((1, 2, 2), rng)
    with pytest.raises(LayerError):
        GlobalAveragePooling2D().build((4,), rng)


def channel_major(x: np.ndarray) -> np.ndarray:
    """The same values as x, stored (C, N, H, W): how a Conv2D hands on its output."""
    return np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)


@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), GEOMETRIES[:3])
def test_max_pool_on_channel_major_input(shape, pool, strides, padding, rng):
    x = rng.standard_normal((3, *shape))
    layer = MaxPool2D(pool, strides, padding=padding)
    layer.build(shape, rng)
    out, grad_out, grad_x = pool_oracle(x, pool, strides, padding, "max")
    np.testing.assert_allclose(layer.forward(channel_major(x), training=True), out, atol=1e-12)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-12)
    layer.forward(channel_major(x), training=True)
    np.testing.assert_allclose(layer.backward(channel_major(grad_out)), grad_x, atol=1e-12)


TILED = [
    # (input (C, H, W), pool, padding): strides == pool, the batch-last path
    ((2, 6, 4), (2, 2), "valid"),
    ((2, 7, 5), (2, 2), "valid"),
    ((1, 7, 5), (2, 2), "same"),
    ((2, 9, 7), (3, 3), "valid"),
    ((2, 8, 7), (3, 2), "same"),
    ((2, 5, 6), (1, 2), "valid"),
    ((2, 5, 6), (2, 1), "valid"),
]


@pytest.mark.parametrize(("shape", "pool", "padding"), TILED)
@pytest.mark.parametrize("layout", ["batch_last", "contiguous"])
def test_tiled_max_pool_matches_loops(shape, pool, padding, layout, rng):
    x = rng.standard_normal((3, *shape))
    layer = MaxPool2D(pool, padding=padding)
    layer.build(shape, rng)
    out, grad_out, grad_x = pool_oracle(x, pool, None, padding, "max")
    y = layer.forward(batch_last(x) if layout == "batch_last" else x, training=True)
    np.testing.assert_array_equal(y, out)
    assert is_batch_last(y)
    grad = layer.backward(batch_last(grad_out) if layout == "batch_last" else grad_out)
    np.testing.assert_array_equal(grad, grad_x)
    assert check_layer_gradients(layer, shape, rng, batch_size=3).max_error < 1e-7


@pytest.mark.parametrize("pool", [(2, 2), (3, 3)])
def test_tiled_max_pool_ties_follow_row_major_order(pool, rng):
    """Ties go to the first maximal cell in row-major order, also when the maximum sits in
    two rows and two columns at once (as ReLU zeros often do)."""
    layer = MaxPool2D(pool)
    layer.build((1, *pool), rng)
    rows, cols = pool
    cases = []
    for first in range(rows * cols):
        window = np.zeros(pool)
        window.flat[first:] = 1.0  # the max 1 at `first` and at every later cell
        window.flat[first + 1 :] *= rng.integers(0, 2, rows * cols - first - 1)
        window.flat[first] = 1.0
        cases.append((window, first))
    x = batch_last(np.stack([w[None] for w, _ in cases]))
    layer.forward(x, training=True)
    grad = layer.backward(np.ones((len(cases), 1, 1, 1)))
    for (_, first), g in zip(cases, grad, strict=True):
        expected = np.zeros(rows * cols)
        expected[first] = 1
        np.testing.assert_array_equal(g.ravel(), expected)


def test_pool_results_survive_the_next_call(rng):
    """Work arrays are reused between calls; arrays already handed out must not change."""
    layer = MaxPool2D((1, 1))
    layer.build((2, 4, 4), rng)
    x = batch_last(rng.standard_normal((3, 2, 4, 4)))
    first = layer.backward(layer.forward(x, training=True) * 2)
    kept = first.copy()
    layer.backward(layer.forward(x, training=True) * 3)
    np.testing.assert_array_equal(first, kept)


def _relu_pool_chain(rng, relu_in_conv: bool):
    """A ReLU then a tiled max-pooling, with windows of zeros (ties at the max 0)."""
    x = rng.standard_normal((4, 2, 9, 8))
    if relu_in_conv:
        first = Conv2D(3, 3, activation="relu")
        first.build((2, 9, 8), rng)
        first.params["b"][0] = -3.0  # mostly negative: many windows of ReLU zeros
    else:
        first = ReLU()
        first.build((2, 9, 8), rng)
        x[:, 0] -= 1.5
    pool = MaxPool2D()
    pool.build(first.output_shape, rng)
    return x, first, pool


@pytest.mark.parametrize("relu_in_conv", [True, False])
def test_relu_then_max_pool_gradient_matches_the_unfused_chain(relu_in_conv, rng):
    """The pool applies the ReLU's mask and the ReLU skips it; the gradient through both
    must equal the plain chain's, where the pool routes every window's gradient (also a
    window of zeros) and the ReLU masks it."""
    x, first, pool = _relu_pool_chain(rng, relu_in_conv)
    hidden = first.forward(x, training=True)
    out = pool.forward(hidden, training=True)
    assert (out == 0).any() and (out > 0).any()
    grad_out = rng.standard_normal(out.shape)
    fused = first.backward(pool.backward(grad_out))

    plain_pool = MaxPool2D()
    plain_pool.build(first.output_shape, rng)
    first.forward(x, training=True)
    copy = np.array(hidden)  # not the ReLU's output: no hand-off
    np.testing.assert_array_equal(plain_pool.forward(copy, training=True), out)
    routed = plain_pool.backward(grad_out)
    assert (routed[copy == 0] != 0).any()  # windows of zeros got a gradient, to be masked
    plain = first.backward(np.array(routed))
    np.testing.assert_allclose(fused, plain, rtol=0, atol=1e-12)
    if not relu_in_conv:
        np.testing.assert_array_equal(plain, routed * (x > 0))


def test_relu_output_pooled_passes_no_gradient_through_windows_of_zeros(rng):
    """The pool's own gradient on a ReLU's output: windows whose max is 0 pass nothing."""
    _, relu, pool = _relu_pool_chain(rng, relu_in_conv=False)
    hidden = relu.forward(np.where(rng.random((2, 2, 9, 8)) < 0.9, -1.0, 1.0), training=True)
    out = pool.forward(hidden, training=True)
    grad = pool.backward(np.ones_like(out))
    windows = grad[:, :, :8, :8].reshape(2, 2, 4, 2, 4, 2).sum(axis=(3, 5))
    np.testing.assert_array_equal(windows, (out > 0).astype(float))


def test_relu_masks_any_other_gradient(rng):
    """The hand-off covers only the pool's own gradient array."""
    _, relu, pool = _relu_pool_chain(rng, relu_in_conv=False)
    x = rng.standard_normal((4, 2, 9, 8))
    hidden = relu.forward(x, training=True)
    pool.forward(hidden, training=True)
    pool.backward(rng.standard_normal((4, 2, 4, 4)))  # declares its gradient masked
    other = rng.standard_normal(hidden.shape)
    np.testing.assert_array_equal(relu.backward(other), other * (x > 0))


def test_no_hand_off_outside_training(rng):
    """A forward pass without training keeps the pool's plain gradient (first max cell)."""
    _, relu, pool = _relu_pool_chain(rng, relu_in_conv=False)
    hidden = relu.forward(-np.ones((1, 2, 9, 8)), training=False)
    out = pool.forward(hidden, training=False)
    grad = pool.backward(np.ones_like(out))
    assert grad[0, 0, 0, 0] == 1 and grad.sum() == out.size
