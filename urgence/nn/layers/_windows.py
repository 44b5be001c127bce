"""Geometry shared by convolution and pooling: window sizes, strides, padding, slices.

Padding follows Keras: ``"valid"`` uses only whole windows (``out = (H - k) // s + 1``);
``"same"`` gives ``out = ceil(H / s)`` and pads ``max((out - 1) * s + k - H, 0)`` cells, the
odd one at the bottom / right.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from urgence.nn.layers.base import LayerError

Pair = tuple[int, int]
PADDINGS = ("valid", "same")


def as_pair(value: int | tuple[int, int] | list[int], what: str, owner: str) -> Pair:
    """``3 -> (3, 3)``, ``(10, 4) -> (10, 4)``; LayerError unless positive integers."""
    pair = (value, value) if isinstance(value, int) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, int) and v >= 1 for v in pair)
    ):
        raise LayerError(f"{owner}: {what} must be a positive int or a pair of them, got {value!r}")
    return (pair[0], pair[1])


def check_padding(padding: str, owner: str) -> str:
    if padding not in PADDINGS:
        raise LayerError(f"{owner}: padding must be one of {PADDINGS}, got {padding!r}")
    return padding


def output_size(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, padding before, padding after) along one spatial axis."""
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2, total - total // 2
    return (size - kernel) // stride + 1, 0, 0


class WindowGeometry:
    """Output size, padding and per-offset slices for a (kh, kw) window over (H, W)."""

    def __init__(self, hw: Pair, kernel: Pair, strides: Pair, padding: str, owner: str) -> None:
        (h, w), (kh, kw), (sh, sw) = hw, kernel, strides
        self.out_h, top, bottom = output_size(h, kh, sh, padding)
        self.out_w, left, right = output_size(w, kw, sw, padding)
        if self.out_h < 1 or self.out_w < 1:
            raise LayerError(
                f"{owner}: a {kh}x{kw} window does not fit a {h}x{w} input with {padding!r} padding"
            )
        self.kernel, self.strides = kernel, strides
        self.pads = ((top, bottom), (left, right))
        self.padded = any(self.pads[0]) or any(self.pads[1])
        self.hw = (h, w)
        # The padded input is also cropped to the cells some window reads ("valid" drops
        # the bottom / right remainder), so gradients scatter into exactly that area.
        self.used_h = (self.out_h - 1) * sh + kh
        self.used_w = (self.out_w - 1) * sw + kw

    def pad(self, x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, used_h, used_w), padded with ``fill``, same dtype."""
        if not self.padded:
            return x[:, :, : self.used_h, : self.used_w]
        return self._padded(x, (2, 3), fill)

    def unpad(self, grad_padded: np.ndarray) -> np.ndarray:
        """Gradient on the padded/cropped input (N, C, used_h, used_w) -> on x (N, C, H, W)."""
        return self._unpadded(grad_padded, (2, 3))

    def _padded(self, x: np.ndarray, axes: Pair, fill: float) -> np.ndarray:
        """x, its H and W at ``axes`` -> a new array, (used_h, used_w) there, the rest of x's
        shape kept: x's cells at the padding offset, ``fill`` around them."""
        (top, _), (left, _) = self.pads
        h = min(x.shape[axes[0]], self.used_h - top)
        w = min(x.shape[axes[1]], self.used_w - left)
        out = np.full(_resized(x.shape, axes, (self.used_h, self.used_w)), fill, dtype=x.dtype)
        out[_spatial(axes, slice(top, top + h), slice(left, left + w))] = x[
            _spatial(axes, slice(h), slice(w))
        ]
        return out

    def _unpadded(self, grad_padded: np.ndarray, axes: Pair) -> np.ndarray:
        """The inverse of :meth:`_padded` for gradients: (used_h, used_w) at ``axes`` -> (H, W),
        zeros for the cells no window read."""
        (top, _), (left, _) = self.pads
        h, w = self.hw
        if not self.padded and (self.used_h, self.used_w) == (h, w):
            return grad_padded
        out = np.zeros(_resized(grad_padded.shape, axes, (h, w)), dtype=grad_padded.dtype)
        hh = min(h, self.used_h - top)
        ww = min(w, self.used_w - left)
        out[_spatial(axes, slice(hh), slice(ww))] = grad_padded[
            _spatial(axes, slice(top, top + hh), slice(left, left + ww))
        ]
        return out

    def offsets(self) -> Iterator[tuple[int, int, tuple[slice, slice]]]:
        """(i, j, (rows, cols)): the padded-input cells that kernel offset (i, j) reads."""
        (kh, kw), (sh, sw) = self.kernel, self.strides
        for i in range(kh):
            rows = slice(i, i + (self.out_h - 1) * sh + 1, sh)
            for j in range(kw):
                yield i, j, (rows, slice(j, j + (self.out_w - 1) * sw + 1, sw))

    # -- the batch-last layout (C, H, W, N) ---------------------------------------------
    # With the examples innermost, every window slice x[:, rows, cols, :] is made of runs of
    # at least N contiguous values (out_w * N with stride 1), so im2col, col2im and pooling
    # run NumPy's inner loops over long contiguous runs instead of rows of a few values.
    # Layers hand such arrays on as (N, C, H, W) views (``x.transpose(3, 0, 1, 2)``).

    def pad_batch_last(self, x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """x: (N, C, H, W) -> (C, used_h, used_w, N) batch-last, padded with ``fill``.

        A view when x already is batch-last in memory and needs no padding; otherwise one
        copy into a new batch-last array."""
        batch_last = x.transpose(1, 2, 3, 0)
        if not self.padded:
            cropped = batch_last[:, : self.used_h, : self.used_w]
            return cropped if is_batch_last(x) else np.ascontiguousarray(cropped)
        return self._padded(batch_last, (1, 2), fill)

    def unpad_batch_last(self, grad_padded: np.ndarray) -> np.ndarray:
        """(C, used_h, used_w, N) gradient on the padded/cropped input -> (C, H, W, N)."""
        return self._unpadded(grad_padded, (1, 2))

    # -- the "flat" layout, for stride-1 windows ------------------------------------------
    # Each padded image (used_h, used_w) is stored as one row of used_h * used_w (+ kw - 1
    # spare) values. Kernel offset (i, j) then reads the contiguous run starting at
    # i * used_w + j, of length out_h * used_w: a "wide" output whose rows carry kw - 1
    # extra (garbage) columns, cropped at the end. Long contiguous runs instead of short
    # rows of out_w values make NumPy's inner loops efficient.

    @property
    def wide_length(self) -> int:
        return self.out_h * self.used_w

    def pad_flat(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, used_h * used_w + kw - 1), zero padded, same dtype."""
        n, c, h, w = x.shape
        size = self.used_h * self.used_w
        flat = np.zeros((n, c, size + self.kernel[1] - 1), dtype=x.dtype)
        image = flat[:, :, :size].reshape(n, c, self.used_h, self.used_w)
        (top, _), (left, _) = self.pads
        h, w = min(h, self.used_h - top), min(w, self.used_w - left)
        image[:, :, top : top + h, left : left + w] = x[:, :, :h, :w]
        return flat

    def flat_starts(self) -> Iterator[tuple[int, int, int]]:
        """(i, j, start of the run that kernel offset (i, j) reads in the flat layout)."""
        kh, kw = self.kernel
        for i in range(kh):
            for j in range(kw):
                yield i, j, i * self.used_w + j

    def crop_wide(self, wide: np.ndarray) -> np.ndarray:
        """(N, C, out_h * used_w) wide output -> (N, C, out_h, out_w) (a view)."""
        n, c = wide.shape[:2]
        return wide.reshape(n, c, self.out_h, self.used_w)[:, :, :, : self.out_w]

    def widen(self, grad: np.ndarray) -> np.ndarray:
        """(N, C, out_h, out_w) -> (N, C, out_h * used_w), zeros in the garbage columns."""
        n, c = grad.shape[:2]
        if self.used_w == self.out_w:
            return grad.reshape(n, c, -1)
        wide = np.zeros((n, c, self.out_h, self.used_w), dtype=grad.dtype)
        wide[:, :, :, : self.out_w] = grad
        return wide.reshape(n, c, -1)

    def unpad_flat(self, grad_flat: np.ndarray) -> np.ndarray:
        """Gradient on the flat layout (N, C, used_h * used_w + kw - 1) -> on x (N, C, H, W)."""
        n, c = grad_flat.shape[:2]
        size = self.used_h * self.used_w
        images = grad_flat[:, :, :size].reshape(n, c, self.used_h, self.used_w)
        # Contiguous, so that the layers below see a plain memory order.
        return np.ascontiguousarray(self.unpad(images))


class PhaseLayout:
    """Windows of any stride as stride-1 contiguous runs: the polyphase flat layout.

    The padded input (used_h, used_w) is split into its stride phases: phase (a, b) holds the
    cells (a + r * sh, b + q * sw), a (block_h, block_w) image, zero beyond the padded input.
    Kernel offset (i, j) then reads phase (i % sh, j % sw) shifted by (i // sh, j // sw): a
    stride-1 window of that phase. Per channel the phases are stored one after the other,
    each holding the batch's images back to back (``length`` = N * block_h * block_w values),
    plus ``reach`` spare zeros at the end: ``packed`` (C, size).

    Kernel offset (i, j) reads the contiguous run ``packed[:, start : start + length]``
    (``starts``). Summed over the offsets, these runs give a "wide" output, per channel
    (N, block_h, block_w), whose (out_h, out_w) top-left corner is the window output
    (``crop``); the other cells are garbage, read across image borders. With stride 1 there
    is one phase, a block is the padded image and the layout is ``pad_flat``'s with the
    examples back to back. Only phases some kernel offset reads are stored.

    Whole-batch runs make each NumPy call long (a batch's worth of one channel), and
    channel-major memory (C, ...) matches how the DS-CNN's convolutions hand on their output.
    """

    def __init__(self, geometry: WindowGeometry, batch: int) -> None:
        (kh, kw), (sh, sw) = geometry.kernel, geometry.strides
        self.geometry, self.batch = geometry, batch
        phases_w = min(sw, kw)
        self.phases = [(a, b) for a in range(min(sh, kh)) for b in range(phases_w)]
        self.block_h, self.block_w = -(-geometry.used_h // sh), -(-geometry.used_w // sw)
        self.length = batch * self.block_h * self.block_w
        # The wide output up to the last example's last window output: its bottom garbage
        # rows need not be computed.
        out_h, out_w = geometry.out_h, geometry.out_w
        self.output_length = self.length - (self.block_h - out_h + 1) * self.block_w + out_w
        # Per kernel offset, in (i, j) order: (its phase, the shift of its run in the phase).
        self.taps = [
            ((i % sh) * phases_w + j % sw, (i // sh) * self.block_w + j // sw)
            for i in range(kh)
            for j in range(kw)
        ]
        self.reach = max(shift for _, shift in self.taps)
        self.size = len(self.phases) * self.length + self.reach
        # Per stored phase (a, b): the kernel offsets reading it (flat indices i * kw + j, in
        # (i, j) order) and the (rows, cols) grid of their run shifts (i // sh, j // sw).
        self.phase_taps = []
        for a, b in self.phases:
            rows, cols = range(a, kh, sh), range(b, kw, sw)
            self.phase_taps.append(
                ([i * kw + j for i in rows for j in cols], (len(rows), len(cols)))
            )
        # The kernel offsets phase by phase, the order of ``runs``.
        self.tap_order = [k for taps, _ in self.phase_taps for k in taps]
        # Whether some window reads every cell of x (else the others get a zero gradient).
        (top, _), (left, _) = geometry.pads
        self.covers_input = (
            kh >= sh
            and kw >= sw
            and geometry.used_h - top >= geometry.hw[0]
            and geometry.used_w - left >= geometry.hw[1]
        )

    @property
    def starts(self) -> list[int]:
        """Where the run of each kernel offset starts in ``packed``, in (i, j) order."""
        return [phase * self.length + shift for phase, shift in self.taps]

    def runs(self, packed: np.ndarray, channels: slice, length: int) -> Iterator[np.ndarray]:
        """Per stored phase, a view (channels, rows, cols, length) of ``packed`` (C, size), a
        C-contiguous array: the first ``length`` values of the runs of the phase's kernel
        offsets (``phase_taps``), which differ by whole rows and columns of its blocks."""
        assert packed.flags.c_contiguous
        item, row = packed.itemsize, packed.strides[0]
        first, stop, _ = channels.indices(packed.shape[0])
        for index, (_, (rows, cols)) in enumerate(self.phase_taps):
            # np.ndarray on the buffer: as_strided costs several microseconds a call.
            yield np.ndarray(
                (stop - first, rows, cols, length),
                packed.dtype,
                packed,
                first * row + index * self.length * item,
                (row, self.block_w * item, item, item),
            )

    def gradient_runs(self, wide: np.ndarray, count: int, phase: int, m: int) -> np.ndarray:
        """A view (count, rows, cols, length) of the first ``count`` channels of the widened
        gradient ``wide`` (C, M, reach + length), a C-contiguous array, for output channel m:
        the runs whose sum, weighted by the kernel offsets of ``phase`` (``phase_taps``), is
        the gradient on that phase; run [r, q] starts r rows and q columns before ``reach``."""
        assert wide.flags.c_contiguous
        item = wide.itemsize
        _, (rows, cols) = self.phase_taps[phase]
        return np.ndarray(
            (count, rows, cols, self.length),
            wide.dtype,
            wide,
            m * wide.strides[1] + self.reach * item,
            (wide.strides[0], -self.block_w * item, -item, item),
        )

    def _phase_cells(self, a: int, b: int) -> tuple[slice, slice, slice, slice]:
        """(rows, cols) of phase (a, b)'s block holding cells of x, then those x (rows, cols)."""
        geometry = self.geometry
        (top, _), (left, _) = geometry.pads
        (sh, sw), (h, w) = geometry.strides, geometry.hw
        # Only the cells some window reads: "valid" drops x's bottom / right remainder.
        h, w = min(h, geometry.used_h - top), min(w, geometry.used_w - left)
        r0, q0 = -((a - top) // sh), -((b - left) // sw)
        r1, q1 = max(r0, -((a - top - h) // sh)), max(q0, -((b - left - w) // sw))
        y0, x0 = a + r0 * sh - top, b + q0 * sw - left
        return (
            slice(r0, r1),
            slice(q0, q1),
            slice(y0, y0 + (r1 - r0) * sh, sh),
            slice(x0, x0 + (q1 - q0) * sw, sw),
        )

    def _images(self, runs: np.ndarray) -> np.ndarray:
        """(..., length) -> (..., N, block_h, block_w), a view."""
        return runs.reshape(*runs.shape[:-1], self.batch, self.block_h, self.block_w)

    def pack(self, x: np.ndarray, packed: np.ndarray, *, zero_fill: bool = True) -> None:
        """x: (N, C, H, W) -> ``packed`` (C, size). The cells around x are zeroed unless
        ``zero_fill`` is False: ``packed`` already holds this layout's zeros, as an earlier
        ``pack`` left them."""
        phases = len(self.phases)
        blocks = self._images(packed[:, : phases * self.length].reshape(-1, phases, self.length))
        x_by_channel = x.transpose(1, 0, 2, 3)
        if zero_fill:
            packed[:, phases * self.length :] = 0
        for index, (a, b) in enumerate(self.phases):
            rows, cols, x_rows, x_cols = self._phase_cells(a, b)
            block = blocks[:, index]
            if zero_fill:
                block[:, :, : rows.start] = 0
                block[:, :, rows.stop :] = 0
                # Whole columns, so that (N, block_h) is one strided run for NumPy.
                block[:, :, :, : cols.start] = 0
                block[:, :, :, cols.stop :] = 0
            block[:, :, rows, cols] = x_by_channel[:, :, x_rows, x_cols]

    def crop(self, wide: np.ndarray) -> np.ndarray:
        """Wide output (..., length), of which the first ``output_length`` values are used ->
        the window output (..., N, out_h, out_w), a view."""
        return self._images(wide)[..., : self.geometry.out_h, : self.geometry.out_w]

    def widen(self, grad: np.ndarray, wide: np.ndarray) -> None:
        """grad (..., N, out_h, out_w) -> ``wide`` (..., reach + length): the gradient of the
        wide output from ``reach`` on. Only the gradient's cells are written: the others must
        already hold zeros (a zero-filled array, or one an earlier ``widen`` wrote)."""
        oh, ow = self.geometry.out_h, self.geometry.out_w
        self._images(wide[..., self.reach :])[..., :oh, :ow] = grad

    def unpack(self, grad_packed: np.ndarray, grad_x_by_channel: np.ndarray) -> None:
        """Gradient on the phases (C, phases, length) -> on x, written into the cells of
        ``grad_x_by_channel`` (C, N, H, W) that some window reads; the others (none when
        ``covers_input``) are left as they are."""
        blocks = self._images(grad_packed)
        for index, (a, b) in enumerate(self.phases):
            rows, cols, x_rows, x_cols = self._phase_cells(a, b)
            grad_x_by_channel[:, :, x_rows, x_cols] = blocks[:, index, :, rows, cols]


# NumPy (2.4 here) runs a ufunc on non-contiguous operands through its buffers whenever
# their contiguous runs are shorter than the buffer size (8192 values): an add into the
# (C, H_out, W_out * N) window slices of a batch-last array, runs of W_out * N = 1408
# values, measured 2.6x slower than with a buffer smaller than the runs, which NumPy then
# skips. Neutral on contiguous operands and on the short runs measured (32, 128 values).
_DIRECT_LOOP_BUFFER = 1024


@contextmanager
def direct_strided_loops() -> Iterator[None]:
    """Within: ufuncs on window slices of long contiguous runs work in place, unbuffered."""
    previous = np.setbufsize(_DIRECT_LOOP_BUFFER)
    try:
        yield
    finally:
        np.setbufsize(previous)


def _resized(shape: tuple[int, ...], axes: Pair, sizes: Pair) -> tuple[int, ...]:
    """``shape`` with ``sizes`` at ``axes``."""
    resized = list(shape)
    resized[axes[0]], resized[axes[1]] = sizes
    return tuple(resized)


def _spatial(axes: Pair, rows: slice, cols: slice) -> tuple[slice, ...]:
    """The index taking ``rows`` and ``cols`` along the two ``axes`` (in increasing order)."""
    index = [slice(None)] * (axes[1] + 1)
    index[axes[0]], index[axes[1]] = rows, cols
    return tuple(index)


def is_batch_last(x: np.ndarray) -> bool:
    """True when the (N, C, H, W) array x is a view of batch-last (C, H, W, N) memory."""
    return x.transpose(1, 2, 3, 0).flags.c_contiguous


def windowed_output_shape(
    input_shape: tuple[int, ...], kernel: Pair, strides: Pair, padding: str, owner: str
) -> tuple[int, int, int]:
    """(C, H_out, W_out) of a window (convolution or pooling) over (C, H, W) inputs;
    LayerError for inputs of another rank or a window that does not fit."""
    if len(input_shape) != 3:
        raise LayerError(f"{owner}: expects (N, C, H, W) inputs, got (N, {input_shape})")
    c, h, w = input_shape
    geometry = WindowGeometry((h, w), kernel, strides, padding, owner)
    return c, geometry.out_h, geometry.out_w
