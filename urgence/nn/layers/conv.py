"""2-D convolutions over channels-first data: ``Conv2D`` and ``DepthwiseConv2D``.

Both are cross-correlations (no kernel flip), like every deep-learning framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.nn.initializers import get_initializer, zeros
from urgence.nn.layers._parallel import matmul, matmul_transposed, run_split
from urgence.nn.layers._scratch import Scratch
from urgence.nn.layers._windows import (
    PhaseLayout,
    WindowGeometry,
    as_pair,
    check_padding,
    direct_strided_loops,
    is_batch_last,
    windowed_output_shape,
)
from urgence.nn.layers._winograd import Winograd3x3
from urgence.nn.layers.activation import ActivatedLayer
from urgence.nn.layers.base import LayerError, Shape


class _WindowedConv(ActivatedLayer):
    """What Conv2D and DepthwiseConv2D share: geometry, bias, configuration."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = 1,
        padding: str = "valid",
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "he",
        **kwargs: Any,
    ) -> None:
        super().__init__(activation=activation, **kwargs)
        owner = type(self).__name__
        self.kernel_size = as_pair(kernel_size, "kernel_size", owner)
        self.strides = as_pair(strides, "strides", owner)
        self.padding = check_padding(padding, owner)
        get_initializer(kernel_initializer)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self._geometry: WindowGeometry | None = None

    def _out_channels(self, in_channels: int) -> int:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        c, out_h, out_w = windowed_output_shape(
            input_shape, self.kernel_size, self.strides, self.padding, type(self).__name__
        )
        return (self._out_channels(c), out_h, out_w)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        c, h, w = self.input_shape
        self._geometry = WindowGeometry(
            (h, w), self.kernel_size, self.strides, self.padding, type(self).__name__
        )
        kernel_shape = self._kernel_shape(c)
        out_channels, in_per_group, kh, kw = kernel_shape
        init = get_initializer(self.kernel_initializer)
        self.params["W"] = init(kernel_shape, in_per_group * kh * kw, out_channels * kh * kw, rng)
        if self.use_bias:
            self.params["b"] = zeros((out_channels,), 0, 0, rng)

    def _kernel_shape(self, in_channels: int) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def _add_bias(self, z: np.ndarray) -> None:
        if self.use_bias:
            z += self.params["b"][:, None, None]

    def _bias_grad(self, grad_out: np.ndarray) -> None:
        if self.use_bias:
            self.grads["b"] = grad_out.sum(axis=(0, 2, 3))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
        }


# Winograd pays on enough input channels: its GEMMs' inner dimension is C. Layer forward +
# backward on one thread, CPU ms, im2col / Winograd: 8 channels (13x13, 64 filters, batch
# 128) 8.4 / 10.5; 16 channels (40x98, 32 filters, batch 32) 72 / 61; 32 channels (13x13,
# 64 filters, batch 128) 24.3 / 17.2.
WINOGRAD_MIN_CHANNELS = 16


class Conv2D(_WindowedConv):
    """y = activation(conv(x, W) + b).

    x: (N, C, H, W) float; W: (filters, C, kh, kw) float32; b: (filters,) float32;
    y: (N, filters, H_out, W_out), dtype of x.

    Implementation: im2col, then one GEMM for the whole batch, the bias riding in it as
    a last kernel column times a row of ones. When the input is batch-last (C, H, W, N)
    memory (another convolution's or a pooling's output) or has one channel with stride 1
    (an image CNN's first layer), the columns are (C*kh*kw, H_out*W_out*N): im2col and
    col2im move runs of at least N contiguous values, and the output, (filters, H_out,
    W_out, N) memory, is handed on as an (N, filters, ...) view. Other inputs give
    channel-major columns (C*kh*kw, N*H_out*W_out) and output (see ``_use_batch_last``).
    Backward: one GEMM for the kernel (and bias) gradient, one for the column gradient,
    col2im as one add per kernel offset. The columns are reused from batch to batch. A
    1x1 stride-1 kernel needs no im2col: one GEMM on the input itself.

    A 3x3 stride-1 kernel over at least ``WINOGRAD_MIN_CHANNELS`` (16) input channels runs
    Winograd's F(4x4, 3x3) instead (``_winograd``: 2.25x fewer multiplications, slightly
    less accurate in float32), output batch-last.
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, int], **kwargs: Any) -> None:
        super().__init__(kernel_size, **kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise LayerError(f"Conv2D: filters must be a positive integer, got {filters!r}")
        self.filters = filters
        self._cols: np.ndarray | None = None
        self._batch_last = False
        self._scratch = Scratch()
        self._winograd: Winograd3x3 | None = None

    def _out_channels(self, in_channels: int) -> int:
        return self.filters

    def _kernel_shape(self, in_channels: int) -> tuple[int, int, int, int]:
        return (self.filters, in_channels, *self.kernel_size)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        winograd = (
            self.kernel_size == (3, 3)
            and self.strides == (1, 1)
            and self.input_shape[0] >= WINOGRAD_MIN_CHANNELS
        )
        self._winograd = Winograd3x3(self._geometry) if winograd else None

    def _is_pointwise(self) -> bool:
        """A 1x1, stride-1 kernel: the input already is its own column matrix."""
        return self.kernel_size == (1, 1) and self.strides == (1, 1)

    def _pre_activation(self, x: np.ndarray, training: bool) -> np.ndarray:
        n, c = x.shape[:2]
        geometry = self._geometry
        oh, ow = geometry.out_h, geometry.out_w
        if self._winograd is not None:
            return self._winograd.forward(x, self.params["W"], self.params.get("b"))
        kernel = self.params["W"].reshape(self.filters, -1)
        if self._is_pointwise():
            self._cols = x.reshape(n, c, oh * ow)
            # tensordot: one GEMM. np.matmul of a 2-D kernel broadcast over a stack of
            # examples falls off BLAS in NumPy 2.x (measured 60x slower here).
            z = np.tensordot(kernel, self._cols, axes=([1], [1]))  # (filters, N, P)
            z = z.reshape(self.filters, n, oh, ow).transpose(1, 0, 2, 3)
            self._add_bias(z)
            return z
        # Columns (C*kh*kw [+ 1], positions): with a bias, a last row of ones multiplies a
        # last kernel column holding the bias, so that the GEMMs also add the bias and sum
        # its gradient instead of two more passes over the output.
        self._batch_last = self._use_batch_last(x)
        if self.use_bias:
            kernel = np.concatenate([kernel, self.params["b"][:, None].astype(kernel.dtype)], 1)
        if self._batch_last:
            self._cols = self._batch_last_columns(x)  # positions (H_out, W_out, N)
            z = matmul(kernel, self._cols).reshape(self.filters, oh, ow, n).transpose(3, 0, 1, 2)
        else:
            self._cols = self._channel_major_columns(x)  # positions (N, H_out, W_out)
            z = (kernel @ self._cols).reshape(self.filters, n, oh, ow).transpose(1, 0, 2, 3)
        return z

    def _use_batch_last(self, x: np.ndarray) -> bool:
        """Whether to work (and hand the output on) in the batch-last layout.

        Yes when the input already is batch-last. Also for a single-channel input with
        stride 1: the first layer of an image CNN, followed by pooling or 3x3 convolutions,
        which read batch-last memory fastest. Otherwise channel-major (C, N, H, W): a
        strided first layer such as the DS-CNN's feeds depthwise convolutions, which work
        example by example and would pay for a transposing copy of a batch-last input.
        """
        return is_batch_last(x) or (x.shape[1] == 1 and self.strides == (1, 1))

    def _batch_last_columns(self, x: np.ndarray) -> np.ndarray:
        """im2col into (C*kh*kw, H_out*W_out*N): one copy of a (C, H_out, W_out, N) block
        per kernel offset, runs of at least N contiguous values."""
        geometry = self._geometry
        n, c = x.shape[:2]
        kh, kw = self.kernel_size
        padded = geometry.pad_batch_last(x)  # (C, used_h, used_w, N)
        all_cols = self._columns_array(geometry.out_h * geometry.out_w * n, x.dtype)
        cols = all_cols[: c * kh * kw].reshape(c, kh, kw, geometry.out_h, geometry.out_w, n)
        sh = self.strides[0]

        def gather_rows(start: int, stop: int) -> None:  # output rows start:stop
            for i, j, (rows, columns) in geometry.offsets():
                part = slice(rows.start + start * sh, rows.start + (stop - 1) * sh + 1, sh)
                cols[:, i, j, start:stop] = padded[:, part, columns]

        run_split(geometry.out_h, gather_rows, cols.size)
        return all_cols

    def _channel_major_columns(self, x: np.ndarray) -> np.ndarray:
        """im2col into (C*kh*kw, N*H_out*W_out), one strided copy per kernel offset."""
        geometry = self._geometry
        n, c = x.shape[:2]
        kh, kw = self.kernel_size
        padded = geometry.pad(x).transpose(1, 0, 2, 3)
        all_cols = self._columns_array(n * geometry.out_h * geometry.out_w, x.dtype)
        cols = all_cols[: c * kh * kw].reshape(c, kh, kw, n, geometry.out_h, geometry.out_w)
        for i, j, window in geometry.offsets():
            cols[:, i, j] = padded[(slice(None), slice(None), *window)]
        return all_cols

    def _columns_array(self, positions: int, dtype: np.dtype) -> np.ndarray:
        """The reused (C*kh*kw [+ 1], positions) columns; the optional last row holds ones."""
        taps = self.input_shape[0] * self.kernel_size[0] * self.kernel_size[1]
        cols = self._scratch.get("cols", (taps + int(self.use_bias), positions), dtype)
        if self.use_bias:
            cols[taps] = 1
        return cols

    def _pre_activation_backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if self._winograd is not None:
            return self._winograd_backward(grad_out)
        if self._is_pointwise():
            return self._pointwise_backward(grad_out)
        # One copy of the gradient in the columns' order (none if it already is):
        # (filters, H_out*W_out*N) batch-last, or (filters, N*H_out*W_out).
        order = (1, 2, 3, 0) if self._batch_last else (1, 0, 2, 3)
        grad2 = np.ascontiguousarray(grad_out.transpose(order)).reshape(self.filters, -1)
        if self.trainable:
            kernel_grad = _product_with_transpose(grad2, self._cols)  # bias last, if any
            taps = kernel_grad.shape[1] - int(self.use_bias)
            self.grads["W"] = kernel_grad[:, :taps].reshape(self.params["W"].shape)
            if self.use_bias:
                self.grads["b"] = kernel_grad[:, taps].copy()
        else:
            self.grads.clear()
        if not self.needs_input_grad:
            return None
        kernel = self.params["W"].reshape(self.filters, -1)
        if self._batch_last:
            grad_cols = self._scratch.get(
                "grad_cols", (kernel.shape[1], grad2.shape[1]), grad2.dtype
            )
            return self._batch_last_col2im(matmul(kernel.T, grad2, out=grad_cols))
        return self._channel_major_col2im(kernel, grad2)

    def _winograd_backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        grad_kernel, grad_bias, grad_x = self._winograd.backward(
            grad_out, kernel_grad=self.trainable, input_grad=self.needs_input_grad
        )
        self.grads.clear()
        if self.trainable:
            self.grads["W"] = grad_kernel
            if self.use_bias:
                self.grads["b"] = grad_bias
        return grad_x

    def _batch_last_col2im(self, grad_cols: np.ndarray) -> np.ndarray:
        """Column gradient (C*kh*kw, H_out*W_out*N) -> input gradient, a batch-last view:
        one add of a (C, H_out, W_out, N) block per kernel offset."""
        geometry = self._geometry
        c, n = self.input_shape[0], grad_cols.shape[1] // (geometry.out_h * geometry.out_w)
        kh, kw = self.kernel_size
        grad_cols = grad_cols.reshape(c, kh, kw, geometry.out_h, geometry.out_w, n)
        grad_padded = np.zeros((c, geometry.used_h, geometry.used_w, n), dtype=grad_cols.dtype)

        def scatter_channels(start: int, stop: int) -> None:
            channels = slice(start, stop)
            with direct_strided_loops():
                for i, j, window in geometry.offsets():
                    grad_padded[(channels, *window)] += grad_cols[channels, i, j]

        run_split(c, scatter_channels, grad_cols.size)
        return geometry.unpad_batch_last(grad_padded).transpose(3, 0, 1, 2)

    def _channel_major_col2im(self, kernel: np.ndarray, grad2: np.ndarray) -> np.ndarray:
        """grad2 (filters, N*H_out*W_out) -> input gradient, a channel-major view."""
        geometry = self._geometry
        c = self.input_shape[0]
        kh, kw = self.kernel_size
        n = grad2.shape[1] // (geometry.out_h * geometry.out_w)
        grad_t = grad2.reshape(self.filters, n, geometry.out_h, geometry.out_w)
        if self.strides == (1, 1):
            # col2im in the flat layout: one contiguous add per kernel offset.
            length = geometry.wide_length
            grad_cols = kernel.T @ geometry.widen(grad_t).reshape(self.filters, -1)
            grad_cols = grad_cols.reshape(c, kh, kw, n, length)
            grad_flat = np.zeros(
                (c, n, geometry.used_h * geometry.used_w + kw - 1), dtype=grad_cols.dtype
            )
            for i, j, start in geometry.flat_starts():
                grad_flat[:, :, start : start + length] += grad_cols[:, i, j]
            return geometry.unpad_flat(grad_flat).transpose(1, 0, 2, 3)
        grad_cols = kernel.T @ grad2
        grad_cols = grad_cols.reshape(c, kh, kw, n, geometry.out_h, geometry.out_w)
        grad_padded = np.zeros((c, n, geometry.used_h, geometry.used_w), dtype=grad_cols.dtype)
        for i, j, window in geometry.offsets():
            grad_padded[(slice(None), slice(None), *window)] += grad_cols[:, i, j]
        return geometry.unpad(grad_padded).transpose(1, 0, 2, 3)

    def _pointwise_backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        n = grad_out.shape[0]
        kernel = self.params["W"].reshape(self.filters, -1)
        grad3 = grad_out.reshape(n, self.filters, -1)
        if self.trainable:
            # tensordot reshapes both sides to 2-D (free for the usual memory orders) and
            # runs one GEMM; a batched np.matmul over non-contiguous per-example slices
            # falls off BLAS in NumPy 2.x.
            grad_kernel = np.tensordot(grad3, self._cols, axes=([0, 2], [0, 2]))
            self.grads["W"] = grad_kernel.reshape(self.params["W"].shape)
            self._bias_grad(grad_out)
        else:
            self.grads.clear()
        if not self.needs_input_grad:
            return None
        grad_in = np.tensordot(kernel, grad3, axes=([0], [1]))  # (C, N, P), one GEMM
        return grad_in.reshape(self.input_shape[0], n, *self.input_shape[1:]).transpose(1, 0, 2, 3)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters}


# A GEMM whose output is tiny (few filters times few kernel taps, e.g. a first layer's
# 32 x 9) but whose sums run over a whole batch of positions is slow in OpenBLAS, which
# repacks both long operands: cut into chunks of this many positions, batched, it measured
# twice as fast. Larger outputs are left to one GEMM.
_CHUNK, _SMALL_OUTPUT = 2048, 32 * 32


def _product_with_transpose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, P) @ b (K, P).T -> (M, K), for long P."""
    (m, length), k = a.shape, b.shape[0]
    chunks = length // _CHUNK
    if m * k > _SMALL_OUTPUT or chunks < 4:
        # The transposed product, (K, P) @ (P, M), measured up to 12 % faster than
        # (M, P) @ (P, K) in OpenBLAS for these shapes (64 x 289 over 15,488 positions).
        return matmul_transposed(b, a).T
    whole = chunks * _CHUNK
    a_chunks = a[:, :whole].reshape(m, chunks, _CHUNK).transpose(1, 0, 2)
    b_chunks = b[:, :whole].reshape(k, chunks, _CHUNK).transpose(1, 2, 0)
    product = np.matmul(a_chunks, b_chunks).sum(axis=0)
    if whole < length:
        product += a[:, whole:] @ b[:, whole:].T
    return product


# A depthwise convolution works on a few channels at a time, their wide output (chunk, M,
# N * block) about this size, so that the runs it reads and writes stay in cache. Forward +
# backward of the DS-CNN's four depthwise layers (batch 64, 1 thread), ms: 1 channel at a
# time 55, 128 KB 55, 256 KB 46.5, 512 KB 45, 1 MB 45.5 (the forward slower, the backward
# faster).
_DEPTHWISE_CHUNK_BYTES = 512 * 1024


class DepthwiseConv2D(_WindowedConv):
    """Each input channel convolved with its own ``depth_multiplier`` kernels.

    x: (N, C, H, W) float; W: (C * depth_multiplier, 1, kh, kw) float32 (output channel
    ``c * depth_multiplier + m`` reads input channel ``c``, like a grouped convolution with
    ``groups = C``); b: (C * depth_multiplier,) float32; y: (N, C * depth_multiplier,
    H_out, W_out), dtype of x, a view of channel-major (C * depth_multiplier, N, H_out,
    W_out) memory, the order the 1x1 Conv2D after it in a DS-CNN reads without a copy.

    Implementation: the input is copied once into the polyphase flat layout
    (``_windows.PhaseLayout``), where every kernel offset, whatever the stride, reads one
    contiguous run per channel covering the whole batch. The output is the sum of the
    kh * kw runs times their per-channel weights: the runs copied as columns, one batched
    matmul of per-channel (M, kh*kw) @ (kh*kw, run) products, a few channels at a time so
    that the work arrays stay in cache. Backward, one stride phase at a time: the input
    gradient is the output gradient correlated with the flipped kernel, the same kind of
    sum of runs (of the output gradient, zero-padded); the kernel gradient is the dot
    product of those runs with the phase's input (see ``_COLUMNS_MIN_TAPS``).
    """

    def __init__(
        self, kernel_size: int | tuple[int, int], depth_multiplier: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(kernel_size, **kwargs)
        if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
            raise LayerError(
                "DepthwiseConv2D: depth_multiplier must be a positive integer, "
                f"got {depth_multiplier!r}"
            )
        self.depth_multiplier = depth_multiplier
        self._scratch = Scratch()
        # The last forward's input in the polyphase flat layout, for backward.
        self._layout: PhaseLayout | None = None
        self._packed: np.ndarray | None = None
        self._input: np.ndarray | None = None  # instead, after an inference-mode forward
        # The work arrays last seen by name: constant parts (zeros, ones) written once.
        self._seen: dict[str, np.ndarray] = {}

    def _out_channels(self, in_channels: int) -> int:
        return in_channels * self.depth_multiplier

    def _kernel_shape(self, in_channels: int) -> tuple[int, int, int, int]:
        return (in_channels * self.depth_multiplier, 1, *self.kernel_size)

    def _kernel_taps(self) -> np.ndarray:
        """W as (C, M, kh*kw): per input channel, one row of kernel taps per output channel."""
        return self.params["W"].reshape(self.input_shape[0], self.depth_multiplier, -1)

    def _is_new(self, name: str, work: np.ndarray) -> bool:
        """Whether ``work`` is not the array last seen under ``name`` (the scratch just
        allocated it): its constant parts, which calls never overwrite, need writing."""
        new = self._seen.get(name) is not work
        self._seen[name] = work
        return new

    def _chunk_size(self, values_per_channel: int, itemsize: int) -> int:
        """How many input channels to process at once (see ``_DEPTHWISE_CHUNK_BYTES``)."""
        per_channel = self.depth_multiplier * values_per_channel * itemsize
        return max(1, min(self.input_shape[0], _DEPTHWISE_CHUNK_BYTES // per_channel))

    def _pre_activation(self, x: np.ndarray, training: bool) -> np.ndarray:
        geometry = self._geometry
        n, c = x.shape[:2]
        m = self.depth_multiplier
        if self._layout is None or self._layout.batch != n:
            self._layout = PhaseLayout(geometry, n)
        layout = self._layout
        step = self._chunk_size(layout.length, x.dtype.itemsize)
        if training:
            # The whole packed input, kept for backward.
            packed = self._scratch.get("packed", (c, layout.size), x.dtype)
            self._packed, self._input = packed, None
        else:
            # Only the input itself is kept (backward packs it if ever called): a chunk's
            # worth of packed input, reused, instead of a copy of a possibly large batch.
            packed = self._scratch.get("packed_chunk", (step, layout.size), x.dtype)
            self._packed, self._input = None, x
        # Only new arrays need their zeros: packing writes the cells of x alone.
        zero_fill = self._is_new("packed" if training else "packed_chunk", packed)
        # Columns phase by phase (``layout.runs``); the bias rides in the product, a last
        # kernel tap times a row of ones.
        taps = self._kernel_taps()
        if layout.tap_order != sorted(layout.tap_order):
            taps = taps[:, :, layout.tap_order]
        if self.use_bias:
            bias = self.params["b"].reshape(c, m, 1).astype(taps.dtype, copy=False)
            taps = np.concatenate([taps, bias], axis=2)
        z = np.empty((c * m, n, geometry.out_h, geometry.out_w), dtype=x.dtype)
        z_by_channel = z.reshape(c, m, *z.shape[1:])
        length = layout.output_length
        wide_work = self._scratch.get("wide", (step, m, layout.length), x.dtype)
        columns_work = self._scratch.get("columns", (step, taps.shape[2], length), x.dtype)
        if self.use_bias and self._is_new("columns", columns_work):
            columns_work[:, -1] = 1
        for first in range(0, c, step):
            chunk = slice(first, min(first + step, c))
            size = chunk.stop - chunk.start
            columns = columns_work[:size]
            # Packed chunk by chunk: the runs are still in cache when copied into columns.
            rows = chunk if training else slice(0, size)
            layout.pack(x[:, chunk], packed[rows], zero_fill=zero_fill)
            row = 0
            for runs in layout.runs(packed, rows, length):
                count = runs.shape[1] * runs.shape[2]
                np.copyto(columns[:, row : row + count].reshape(runs.shape), runs)
                row += count
            wide = wide_work[:size]
            np.matmul(taps[chunk], columns, out=wide[:, :, :length])
            z_by_channel[chunk] = layout.crop(wide)
        return z.transpose(1, 0, 2, 3)

    def _pre_activation_backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        layout, packed = self._layout, self._packed
        if packed is None:  # the forward ran in inference mode
            packed = np.zeros((self.input_shape[0], layout.size), dtype=self._input.dtype)
            layout.pack(self._input, packed, zero_fill=False)
        n = grad_out.shape[0]
        c, h, w = self.input_shape
        m = self.depth_multiplier
        dtype = grad_out.dtype
        trainable, needs_input_grad = self.trainable, self.needs_input_grad
        kernel = self._kernel_taps()
        grad_by_channel = grad_out.transpose(1, 0, 2, 3).reshape(c, m, n, *grad_out.shape[2:])
        self.grads.clear()
        if trainable:
            grad_kernel = np.empty(kernel.shape, dtype=dtype)
            grad_bias = np.empty((c, m), dtype=dtype)
        if needs_input_grad:
            allocate = np.empty if layout.covers_input else np.zeros
            grad_x = allocate((c, n, h, w), dtype=dtype)  # channel-major, like the forward
        length, reach, starts = layout.length, layout.reach, layout.starts
        step = self._chunk_size(reach + length, dtype.itemsize)
        wide_work = self._scratch.get("grad_wide", (step, m, reach + length), dtype)
        if self._is_new("grad_wide", wide_work):
            wide_work[...] = 0  # garbage cells and margin: ``widen`` writes only the others
        if needs_input_grad:
            phases = len(layout.phases)
            phases_work = self._scratch.get("grad_phases", (step, phases, length), dtype)
            product_work = self._scratch.get("grad_product", (step, length), dtype)
        most_taps = m * max(len(taps) for taps, _ in layout.phase_taps)
        if most_taps >= _COLUMNS_MIN_TAPS:
            columns_work = self._scratch.get("grad_columns", (step, most_taps, length), dtype)
        for first in range(0, c, step):
            chunk = slice(first, min(first + step, c))
            size = chunk.stop - chunk.start
            wide = wide_work[:size]
            layout.widen(grad_by_channel[chunk], wide)
            grad_wide = wide[:, :, reach:]  # zeros in the garbage cells
            if trainable and self.use_bias:
                grad_bias[chunk] = grad_wide.sum(axis=2)
            for phase, (taps, _) in enumerate(layout.phase_taps):
                grad_phase = phases_work[:size, phase] if needs_input_grad else None
                if m * len(taps) >= _COLUMNS_MIN_TAPS:
                    # The gradient's runs as columns, shared by both products: kernel
                    # gradient = columns @ the phase's input, input gradient = the
                    # kernel taps @ columns (the correlation with the flipped kernel).
                    columns = columns_work[:size, : m * len(taps)]
                    by_output = columns.reshape(size, m, len(taps), length)
                    for j in range(m):
                        view = layout.gradient_runs(wide_work, size, phase, j)
                        np.copyto(by_output[:, j].reshape(view.shape), view)
                    if trainable:
                        phase_input = packed[chunk, phase * length : (phase + 1) * length, None]
                        product = np.matmul(columns, phase_input).reshape(size, m, len(taps))
                        grad_kernel[chunk][:, :, taps] = product
                    if needs_input_grad:
                        weights = kernel[chunk][:, :, taps].reshape(size, 1, -1)
                        np.matmul(weights, columns, out=grad_phase[:, None])
                    continue
                # A few taps (a stride-2 phase reads 4, 2 or 1): dot products and
                # multiply-adds of runs, no copies.
                if trainable:
                    for k in taps:
                        run = packed[chunk, starts[k] : starts[k] + length, None]
                        grad_kernel[chunk, :, k] = np.matmul(grad_wide, run)[:, :, 0]
                if needs_input_grad:
                    terms = []
                    for k in taps:
                        start = reach - layout.taps[k][1]
                        terms += [
                            (wide[:, j, start : start + length], kernel[chunk, j, k, None])
                            for j in range(m)
                        ]
                    _sum_of_products(terms, grad_phase, product_work[:size])
            if needs_input_grad:
                layout.unpack(phases_work[:size], grad_x[chunk])
        if trainable:
            self.grads["W"] = grad_kernel.reshape(self.params["W"].shape)
            if self.use_bias:
                self.grads["b"] = grad_bias.reshape(-1)
        return grad_x.transpose(1, 0, 2, 3) if needs_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}


# Backward: a stride phase read by at least this many kernel taps (times the depth
# multiplier) gets its output-gradient runs copied into columns, which serve both the kernel
# and the input gradient products; fewer, the runs are used in place. DS-CNN, batch 64, 1
# thread, backward ms: stride 1 (9 taps) 5.8 -> 4.8 with columns; stride 2 (phases of 4, 2,
# 2, 1 taps) 7.7-7.8 in place, 8.2-8.7 with columns for the 4-tap phase, 11 for all.
_COLUMNS_MIN_TAPS = 5


def _sum_of_products(
    terms: list[tuple[np.ndarray, np.ndarray]], out: np.ndarray, work: np.ndarray
) -> None:
    """out = the sum of ``run * weight`` over ``terms`` (each broadcasting to out's shape);
    ``work``, out's shape, holds each product before it is added."""
    (run, weight), *rest = terms
    np.multiply(run, weight, out=out)
    for run, weight in rest:
        np.multiply(run, weight, out=work)
        out += work
