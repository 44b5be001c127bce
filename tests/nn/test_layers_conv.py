"""Conv2D and DepthwiseConv2D against naive Python-loop oracles, and gradient checks."""

from __future__ import annotations

import numpy as np
import pytest

from urgence.nn.gradcheck import check_layer_gradients
from urgence.nn.layers import Conv2D, DepthwiseConv2D, LayerError, MaxPool2D
from urgence.nn.layers._windows import direct_strided_loops, is_batch_last

from .conftest import batch_last, pad_for_oracle

GEOMETRIES = [
    # (input (C, H, W), kernel, strides, padding)
    ((2, 7, 6), (3, 3), (1, 1), "valid"),
    ((2, 7, 6), (3, 3), (2, 2), "same"),
    ((1, 8, 5), (2, 2), (2, 1), "valid"),
    ((2, 6, 7), (4, 2), (1, 2), "same"),
    ((1, 12, 6), (10, 4), (1, 1), "valid"),
    ((1, 11, 5), (10, 4), (2, 2), "same"),
    ((3, 4, 5), (1, 1), (1, 1), "valid"),
    ((3, 4, 5), (1, 1), (2, 1), "same"),
]


def conv_oracle(x, kernel, bias, strides, padding, groups_of):
    """Forward and (input, kernel, bias) gradients by loops over every output cell.

    ``groups_of(f)``: the input channels output channel ``f`` reads, matched in order with
    ``kernel[f, k]``.
    """
    (sh, sw), (f_out, _, kh, kw) = strides, kernel.shape
    padded, oh, ow, (top, left) = pad_for_oracle(x, (kh, kw), strides, padding, 0.0)
    n = x.shape[0]
    out = np.zeros((n, f_out, oh, ow))
    grad_out = np.random.default_rng(5).standard_normal(out.shape)
    grad_padded = np.zeros(padded.shape)
    grad_kernel = np.zeros(kernel.shape)
    for b in range(n):
        for f in range(f_out):
            for i in range(oh):
                for j in range(ow):
                    for k, c in enumerate(groups_of(f)):
                        window = padded[b, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                        out[b, f, i, j] += np.sum(window * kernel[f, k])
                        grad_padded[b, c, i * sh : i * sh + kh, j * sw : j * sw + kw] += (
                            grad_out[b, f, i, j] * kernel[f, k]
                        )
                        grad_kernel[f, k] += grad_out[b, f, i, j] * window
                    out[b, f, i, j] += bias[f]
    h, w = x.shape[2:]
    grad_x = grad_padded[:, :, top : top + h, left : left + w]
    if padding == "valid":
        grad_x = np.pad(
            grad_x, ((0, 0), (0, 0), (0, h - grad_x.shape[2]), (0, w - grad_x.shape[3]))
        )
    return out, grad_out, grad_x, grad_kernel, grad_out.sum(axis=(0, 2, 3))


def run_layer(layer, x, grad_out, rng):
    layer.build(x.shape[1:], rng)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    out = layer.forward(x, training=True)
    grad_x = layer.backward(grad_out)
    return out, grad_x


@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), GEOMETRIES)
def test_conv2d_matches_loops(shape, kernel, strides, padding, rng):
    x = rng.standard_normal((2, *shape))
    layer = Conv2D(3, kernel, strides=strides, padding=padding)
    layer.build(shape, rng)
    layer.params["b"][...] = rng.standard_normal(3)
    weights = layer.params["W"].astype(np.float64)
    out, grad_out, grad_x, grad_w, grad_b = conv_oracle(
        x, weights, layer.params["b"], strides, padding, lambda f: range(shape[0])
    )
    np.testing.assert_allclose(layer.forward(x, training=True), out, atol=1e-10)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)
    assert layer.output_shape == out.shape[1:]


def depthwise_oracle(x, layer, multiplier):
    weights = layer.params["W"].astype(np.float64)
    return conv_oracle(
        x, weights, layer.params["b"], layer.strides, layer.padding, lambda f: [f // multiplier]
    )


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), GEOMETRIES)
def test_depthwise_matches_loops(shape, kernel, strides, padding, multiplier, rng):
    x = rng.standard_normal((2, *shape))
    layer = DepthwiseConv2D(kernel, strides=strides, padding=padding, depth_multiplier=multiplier)
    layer.build(shape, rng)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    assert layer.params["W"].shape == (shape[0] * multiplier, 1, *kernel)
    out, grad_out, grad_x, grad_w, grad_b = depthwise_oracle(x, layer, multiplier)
    np.testing.assert_allclose(layer.forward(x, training=True), out, atol=1e-10)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)


@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), GEOMETRIES[:4])
@pytest.mark.parametrize("cls", [Conv2D, DepthwiseConv2D])
def test_finite_differences(cls, shape, kernel, strides, padding, rng):
    first = (2,) if cls is Conv2D else ()
    layer = cls(*first, kernel, strides=strides, padding=padding, activation="relu")
    assert check_layer_gradients(layer, shape, rng).max_error < 1e-7


@pytest.mark.parametrize("cls", [Conv2D, DepthwiseConv2D])
def test_float32_in_float32_out_and_first_layer_skips_input_grad(cls, rng):
    first = (4,) if cls is Conv2D else ()
    layer = cls(*first, 3, padding="same", activation="relu")
    layer.build((2, 6, 5), rng)
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32)
    out = layer.forward(x, training=True)
    assert out.dtype == np.float32 and out.shape == (3, *layer.output_shape)
    grad = layer.backward(np.ones_like(out))
    assert grad.dtype == np.float32 and grad.shape == x.shape
    assert all(g.dtype == np.float32 for g in layer.grads.values())
    layer.needs_input_grad = False
    layer.forward(x, training=True)
    assert layer.backward(np.ones_like(out)) is None
    assert set(layer.grads) == {"W", "b"}


def test_keyword_model_shape(rng):
    layer = Conv2D(8, (10, 4), strides=(2, 2), padding="same")
    layer.build((1, 40, 98), rng)
    assert layer.output_shape == (8, 20, 49)
    assert layer.params["W"].shape == (8, 1, 10, 4)


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("cls", [Conv2D, DepthwiseConv2D])
def test_frozen_layer_computes_no_parameter_gradient(cls, strides, rng):
    first = (2,) if cls is Conv2D else ()
    layer = cls(*first, 3, strides=strides, padding="same", trainable=False)
    layer.build((2, 5, 6), rng)
    x = rng.standard_normal((2, 2, 5, 6))
    out = layer.forward(x, training=True)
    grad = rng.standard_normal(out.shape)
    grad_x = layer.backward(grad)
    assert layer.grads == {}
    layer.trainable = True
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward(grad), grad_x, atol=1e-12)
    assert set(layer.grads) == {"W", "b"}


def test_bad_input_raises_layer_error(rng):
    with pytest.raises(LayerError):
        Conv2D(0, 3)
    for kernel_size in [(3, 0), 3.0, (3, 3, 3), "3"]:
        with pytest.raises(LayerError, match="kernel_size"):
            Conv2D(2, kernel_size)
    with pytest.raises(LayerError):
        Conv2D(2, 3, padding="full")
    with pytest.raises(LayerError, match="does not fit"):
        Conv2D(2, 5).build((1, 4, 4), rng)
    with pytest.raises(LayerError, match=r"\(N, C, H, W\)"):
        DepthwiseConv2D(3).build((4,), rng)
    layer = Conv2D(2, 3)
    with pytest.raises(LayerError, match="build"):
        layer.forward(np.zeros((1, 1, 5, 5), dtype=np.float32))
    layer.build((1, 5, 5), rng)
    with pytest.raises(LayerError, match="expected input"):
        layer.forward(np.zeros((1, 2, 5, 5), dtype=np.float32))
    for dtype in (np.int64, np.float16):
        with pytest.raises(LayerError, match="float32"):
            layer.forward(np.zeros((1, 1, 5, 5), dtype=dtype))


def test_conv_then_pool_chain_matches_contiguous_copies(rng):
    """Conv2D hands on transposed views; the next layers must give the same results."""
    conv, pool = Conv2D(4, 3, activation="relu"), MaxPool2D()
    conv.build((2, 9, 8), rng)
    pool.build(conv.output_shape, rng)
    x = rng.standard_normal((3, 2, 9, 8))
    hidden = conv.forward(x, training=True)
    out = pool.forward(hidden, training=True)
    grad_out = rng.standard_normal(out.shape)
    grad_x = conv.backward(pool.backward(grad_out))
    copy = MaxPool2D()
    copy.build(conv.output_shape, rng)
    np.testing.assert_array_equal(copy.forward(np.ascontiguousarray(hidden), training=True), out)
    grad_hidden = copy.backward(grad_out)
    conv.forward(x, training=True)
    np.testing.assert_allclose(conv.backward(np.ascontiguousarray(grad_hidden)), grad_x, atol=1e-12)


@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), GEOMETRIES)
def test_conv2d_on_batch_last_input_matches_loops(shape, kernel, strides, padding, rng):
    """A batch-last input (another convolution's or a pooling's output) takes the
    batch-last path; its output and input gradient are batch-last views too."""
    x = rng.standard_normal((3, *shape))
    layer = Conv2D(3, kernel, strides=strides, padding=padding)
    layer.build(shape, rng)
    layer.params["b"][...] = rng.standard_normal(3)
    out, grad_out, grad_x, grad_w, grad_b = conv_oracle(
        x, layer.params["W"].astype(np.float64), layer.params["b"], strides, padding,
        lambda f: range(shape[0]),
    )  # fmt: skip
    y = layer.forward(batch_last(x), training=True)
    np.testing.assert_allclose(y, out, atol=1e-10)
    grad = layer.backward(batch_last(grad_out))
    np.testing.assert_allclose(grad, grad_x, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)
    if kernel != (1, 1):
        assert is_batch_last(y) and is_batch_last(grad)


@pytest.mark.parametrize(
    ("shape", "kernel", "strides", "padding"),
    [((1, 7, 6), (3, 3), (1, 1), "same"), ((1, 9, 7), (4, 2), (1, 1), "valid")],
)
def test_single_channel_stride_1_works_batch_last(shape, kernel, strides, padding, rng):
    layer = Conv2D(2, kernel, strides=strides, padding=padding, activation="relu")
    layer.build(shape, rng)
    assert is_batch_last(layer.forward(rng.standard_normal((3, *shape)), training=True))
    assert check_layer_gradients(layer, shape, rng, batch_size=3).max_error < 1e-7


def test_strided_single_channel_layer_stays_channel_major(rng):
    """The DS-CNN's first layer feeds depthwise convolutions, which want examples outer."""
    layer = Conv2D(4, (10, 4), strides=2, padding="same")
    layer.build((1, 40, 98), rng)
    out = layer.forward(rng.standard_normal((3, 1, 40, 98)).astype(np.float32))
    assert out.transpose(1, 0, 2, 3).flags.c_contiguous


@pytest.mark.parametrize("kernel", [(3, 3), (1, 1)])
def test_reused_work_arrays_never_leak_into_results(kernel, rng):
    """Work arrays are reused from one call to the next (and reallocated when the batch size
    or dtype changes): results handed out earlier must not change."""
    layer = Conv2D(4, kernel, padding="same", activation="relu")
    layer.build((2, 6, 5), rng)
    calls = []
    for n, dtype in [(3, np.float32), (3, np.float32), (2, np.float32), (3, np.float64)]:
        x = batch_last(rng.standard_normal((n, 2, 6, 5)).astype(dtype))
        out = layer.forward(x, training=True)
        grad = layer.backward(rng.standard_normal(out.shape).astype(dtype))
        calls.append((x, out, grad, out.copy(), grad.copy()))
    for x, out, grad, out_then, grad_then in calls:
        np.testing.assert_array_equal(out, out_then)
        np.testing.assert_array_equal(grad, grad_then)
        assert out.dtype == x.dtype and grad.dtype == x.dtype


@pytest.mark.parametrize("length", [4 * 2048, 5 * 2048 + 77, 100])
def test_chunked_kernel_gradient_product(length, rng):
    """The first layer's kernel gradient is summed chunk by chunk over long position axes."""
    from urgence.nn.layers.conv import _product_with_transpose

    a, b = rng.standard_normal((8, length)), rng.standard_normal((9, length))
    np.testing.assert_allclose(_product_with_transpose(a, b), a @ b.T, rtol=1e-12, atol=1e-10)


def test_direct_strided_loops_restore_numpy_buffer_size():
    before = np.getbufsize()
    with pytest.raises(ZeroDivisionError), direct_strided_loops():
        assert np.getbufsize() < before
        1 / 0  # noqa: B018
    assert np.getbufsize() == before


# Depthwise geometries beyond GEOMETRIES: strides 2 and 3 on odd and even sizes, a kernel
# smaller than its stride (phases no window reads), "valid" remainders no window reads.
DEPTHWISE_STRIDED = [
    ((3, 9, 11), (3, 3), (2, 2), "same"),
    ((3, 10, 8), (3, 3), (2, 2), "same"),
    ((3, 9, 11), (3, 3), (2, 2), "valid"),
    ((3, 10, 8), (3, 3), (2, 2), "valid"),
    ((2, 11, 10), (3, 3), (3, 3), "same"),
    ((2, 12, 9), (3, 3), (3, 3), "valid"),
    ((2, 10, 13), (3, 3), (3, 3), "valid"),
    ((2, 9, 10), (5, 4), (3, 2), "same"),
    ((2, 9, 10), (5, 4), (2, 3), "valid"),
    ((2, 8, 7), (2, 2), (3, 3), "same"),
    ((2, 8, 7), (2, 1), (3, 2), "valid"),
    ((2, 7, 9), (1, 1), (2, 2), "same"),
    ((2, 5, 6), (3, 3), (1, 2), "same"),
]


@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), DEPTHWISE_STRIDED)
def test_depthwise_strided_matches_loops(shape, kernel, strides, padding, multiplier, rng):
    x = rng.standard_normal((3, *shape))
    layer = DepthwiseConv2D(kernel, strides=strides, padding=padding, depth_multiplier=multiplier)
    layer.build(shape, rng)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    out, grad_out, grad_x, grad_w, grad_b = depthwise_oracle(x, layer, multiplier)
    np.testing.assert_allclose(layer.forward(x, training=True), out, atol=1e-10)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)
    assert layer.output_shape == out.shape[1:]


@pytest.mark.parametrize(("shape", "kernel", "strides", "padding"), DEPTHWISE_STRIDED[::3])
def test_depthwise_strided_finite_differences(shape, kernel, strides, padding, rng):
    layer = DepthwiseConv2D(kernel, strides=strides, padding=padding, activation="relu")
    assert check_layer_gradients(layer, shape, rng).max_error < 1e-7


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("layout", ["contiguous", "channel-major", "batch-last"])
def test_depthwise_any_input_memory_order(layout, strides, rng):
    """The input may be any view (the DS-CNN hands on channel-major (C, N, H, W) memory);
    the output and the input gradient are channel-major views."""
    x = rng.standard_normal((4, 3, 9, 8))
    layer = DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)
    layer.build(x.shape[1:], rng)
    layer.params["b"] = np.zeros(3)  # the oracle adds a bias
    out, grad_out, grad_x, grad_w, _ = depthwise_oracle(x, layer, 1)
    del layer.params["b"]
    viewed = {
        "contiguous": lambda a: np.ascontiguousarray(a),
        "channel-major": lambda a: np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(
            1, 0, 2, 3
        ),
        "batch-last": batch_last,
    }[layout]
    y = layer.forward(viewed(x), training=True)
    np.testing.assert_allclose(y, out, atol=1e-10)
    grad = layer.backward(viewed(grad_out))
    np.testing.assert_allclose(grad, grad_x, atol=1e-10)
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    assert set(layer.grads) == {"W"}
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous
    assert grad.transpose(1, 0, 2, 3).flags.c_contiguous


@pytest.mark.parametrize("strides", [1, 2])
def test_depthwise_float32_error_is_bounded(strides, rng):
    """float32 in and out, within float32 rounding of the float64 loops, on a DS-CNN block's
    geometry (3x3 "same", 80 channels in the real model)."""
    x = rng.standard_normal((2, 8, 20, 49))
    layer = DepthwiseConv2D(3, strides=strides, padding="same")
    layer.build(x.shape[1:], rng)
    layer.params["b"][...] = rng.standard_normal(8).astype(np.float32)
    out, grad_out, grad_x, grad_w, grad_b = depthwise_oracle(x, layer, 1)
    y = layer.forward(x.astype(np.float32), training=True)
    grad = layer.backward(grad_out.astype(np.float32))
    assert y.dtype == grad.dtype == layer.grads["W"].dtype == np.float32
    # Relative to the size of the values: sums of 9 products, or of ~1000 for the kernel.
    np.testing.assert_allclose(y, out, rtol=0, atol=2e-6 * np.abs(out).max())
    np.testing.assert_allclose(grad, grad_x, rtol=0, atol=2e-6 * np.abs(grad_x).max())
    np.testing.assert_allclose(layer.grads["W"], grad_w, rtol=0, atol=1e-5 * np.abs(grad_w).max())
    np.testing.assert_allclose(layer.grads["b"], grad_b, rtol=0, atol=1e-5 * np.abs(grad_b).max())


@pytest.mark.parametrize("strides", [1, 2, 3])
def test_depthwise_first_layer_and_frozen_layer(strides, rng):
    """needs_input_grad False (a first layer) returns None and still computes the kernel
    gradient; a frozen layer computes the input gradient only."""
    x = rng.standard_normal((3, 2, 10, 9))
    layer = DepthwiseConv2D((3, 2), strides=strides, padding="valid", depth_multiplier=2)
    layer.build(x.shape[1:], rng)
    out, grad_out, grad_x, grad_w, grad_b = depthwise_oracle(x, layer, 2)
    layer.needs_input_grad = False
    layer.forward(x, training=True)
    assert layer.backward(grad_out) is None
    np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
    np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)
    layer.needs_input_grad, layer.trainable = True, False
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-10)
    assert layer.grads == {}


@pytest.mark.parametrize("strides", [1, 2])
def test_depthwise_reused_work_arrays_never_leak_into_results(strides, rng):
    """The padded input and the widened gradient live in work arrays kept from call to call
    (their zero borders are written only when an array is new): every call must match the
    loops, across batch-size and dtype changes, and results handed out earlier must not
    change."""
    layer = DepthwiseConv2D(3, strides=strides, padding="same")
    layer.build((3, 7, 8), rng)
    layer.params["b"][...] = rng.standard_normal(3)
    calls = []
    for n, dtype in [(2, np.float64), (2, np.float64), (3, np.float64), (2, np.float32)] * 2:
        x = rng.standard_normal((n, 3, 7, 8)) + 5  # nonzero everywhere, borders included
        out, grad_out, grad_x, grad_w, _ = depthwise_oracle(x, layer, 1)
        y = layer.forward(x.astype(dtype), training=True)
        grad = layer.backward(grad_out.astype(dtype))
        atol = 1e-10 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(y, out, atol=atol)
        np.testing.assert_allclose(grad, grad_x, atol=atol)
        np.testing.assert_allclose(layer.grads["W"], grad_w, atol=atol * 100)
        assert y.dtype == grad.dtype == dtype
        calls.append((y, grad, y.copy(), grad.copy()))
    for y, grad, y_then, grad_then in calls:
        np.testing.assert_array_equal(y, y_then)
        np.testing.assert_array_equal(grad, grad_then)


@pytest.mark.parametrize("chunk_bytes", [1, 5000, 12000, 1 << 30])
@pytest.mark.parametrize("strides", [1, 2])
def test_depthwise_channel_chunks_and_inference_mode(chunk_bytes, strides, rng, monkeypatch):
    """Channels are processed a few at a time (one, several with a last partial chunk,
    all): every split gives the loops' results, in training and inference mode; after an
    inference-mode forward (no packed input kept) backward still works."""
    from urgence.nn.layers import conv

    monkeypatch.setattr(conv, "_DEPTHWISE_CHUNK_BYTES", chunk_bytes)
    x = rng.standard_normal((3, 7, 9, 8))
    layer = DepthwiseConv2D(3, strides=strides, padding="same", depth_multiplier=2)
    layer.build(x.shape[1:], rng)
    layer.params["b"][...] = rng.standard_normal(14)
    out, grad_out, grad_x, grad_w, grad_b = depthwise_oracle(x, layer, 2)
    for training in (True, False, False, True):
        np.testing.assert_allclose(layer.forward(x, training=training), out, atol=1e-10)
        np.testing.assert_allclose(layer.backward(grad_out), grad_x, atol=1e-10)
        np.testing.assert_allclose(layer.grads["W"], grad_w, atol=1e-10)
        np.testing.assert_allclose(layer.grads["b"], grad_b, atol=1e-10)
