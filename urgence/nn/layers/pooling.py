"""Pooling over channels-first data: max, average, global average."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from urgence.nn.layers._parallel import run_split
from urgence.nn.layers._scratch import Scratch
from urgence.nn.layers._windows import (
    WindowGeometry,
    as_pair,
    check_padding,
    windowed_output_shape,
)
from urgence.nn.layers.activation import hand_gradient_to_relu, is_latest_relu_output
from urgence.nn.layers.base import Layer, LayerError, Shape


class _Pool2D(Layer):
    """Windowed pooling; ``strides`` defaults to ``pool_size`` (non-overlapping windows)."""

    def __init__(
        self,
        pool_size: int | tuple[int, int] = 2,
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.pool_size = as_pair(pool_size, "pool_size", owner)
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides", owner)
        self.padding = check_padding(padding, owner)
        self._geometry: WindowGeometry | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        c, out_h, out_w = windowed_output_shape(
            input_shape, self.pool_size, self.strides, self.padding, type(self).__name__
        )
        return (c, out_h, out_w)

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        _, h, w = self.input_shape
        self._geometry = WindowGeometry(
            (h, w), self.pool_size, self.strides, self.padding, type(self).__name__
        )

    def _tiles(self) -> bool:
        """True when the windows tile the (cropped) input: no overlap, no gap, no padding."""
        return self.strides == self.pool_size and not self._geometry.padded

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


def _first_max(members: np.ndarray, best: np.ndarray, winner: np.ndarray | None) -> None:
    """members: (k, ...), one block per member of every group -> ``best``: the max of each
    group; ``winner``: which member won, the first maximal one. The winner of a pair is a
    0 / 1 mask in the dtype of ``members`` (1: the second won), which routing multiplies
    by; of a larger group a uint8 index; of a single member, None."""
    size = members.shape[0]
    if size == 2:
        winner[...] = members[1] > members[0]  # strict: a tie keeps the first
        np.maximum(members[0], members[1], out=best)
        return
    best[...] = members[0]
    if size == 1:
        return
    winner[...] = 0
    for k in range(1, size):
        better = members[k] > best
        np.maximum(best, members[k], out=best)
        np.copyto(winner, k, where=better)


def _route(grad: np.ndarray, winner: np.ndarray | None, routed: np.ndarray) -> None:
    """Inverse of :func:`_first_max`: grad (...) -> routed (k, ...), each group's gradient at
    its winning member, zeros elsewhere."""
    size = routed.shape[0]
    if size == 1:
        routed[0] = grad
    elif size == 2:
        np.multiply(grad, winner, out=routed[1])
        np.subtract(grad, routed[1], out=routed[0])  # exact: g - g or g - 0
    else:
        for k in range(size):
            np.multiply(grad, winner == k, out=routed[k])


class MaxPool2D(_Pool2D):
    """y[n, c, i, j] = max of the window; x: (N, C, H, W) float -> (N, C, H_out, W_out).

    Backward routes each output gradient to the first maximal cell of its window (row-major).
    When windows do not overlap (strides == pool_size, the usual case) the input is pooled
    in the batch-last layout (C, H, W, N) that a convolution hands on (other layouts are
    copied into it): one copy gathers cell (i, j) of every window into a contiguous block,
    then the max is taken along W and then along H between whole blocks, remembering which
    member won (a 0 / 1 mask for pairs, the first maximal one on ties), channel ranges
    split over the threads BLAS may use; the output is a view of batch-last memory.
    Otherwise a loop over window offsets compares each cell with the output. "same"
    padding pads with -inf.

    Pooling a ReLU's output in tiles (a convolution with ``activation="relu"`` before it),
    backward also applies that ReLU's gradient mask, on the pooled output: windows whose
    max is 0 pass no gradient, and the ReLU skips its own mask over the larger input (4x
    for 2x2 windows; see ``activation.hand_gradient_to_relu``). The gradient through both
    layers is the same; only this layer's own gradient differs, at windows of zeros.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: tuple[np.ndarray | None, ...] = ()
        self._scratch = Scratch()

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        if self.strides == self.pool_size:
            return self._tiled_forward(x, training)
        padded = self._geometry.pad(x, fill=-np.inf)
        out = None
        for _, _, window in self._geometry.offsets():
            cells = padded[(slice(None), slice(None), *window)]
            out = cells.copy() if out is None else np.maximum(out, cells, out=out)
        self._cache = (padded, out)
        return out

    def _tiled_forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        (ph, pw), geometry = self.pool_size, self._geometry
        cells = geometry.pad_batch_last(x, fill=-np.inf)  # (C, used_h, used_w, N)
        c, n = cells.shape[0], cells.shape[3]
        blocks = (c, geometry.out_h, geometry.out_w, n)
        scratch, dtype = self._scratch, cells.dtype
        # NumPy's ufunc loops run several times slower on strided operands (even with long
        # contiguous runs) than on contiguous ones, while a strided copy does not: one copy
        # gathers window cell (i, j) of every window into the contiguous block members[i, j].
        members = scratch.get("members", (ph, pw, *blocks), dtype)
        row_max = scratch.get("row_max", (ph, *blocks), dtype)
        column_winner = _winners(scratch, "column_winner", pw, (ph, *blocks), dtype)
        row_winner = _winners(scratch, "row_winner", ph, blocks, dtype)
        out = np.empty(blocks, dtype=dtype)
        windows = cells.reshape(c, blocks[1], ph, blocks[2], pw, n)

        def pool_channels(start: int, stop: int) -> None:
            channels = slice(start, stop)
            members[:, :, channels] = windows[channels].transpose(2, 4, 0, 1, 3, 5)
            for i in range(ph):
                column_winner_i = None if column_winner is None else column_winner[i, channels]
                _first_max(members[i, :, channels], row_max[i, channels], column_winner_i)
            row_winner_part = None if row_winner is None else row_winner[channels]
            _first_max(row_max[:, channels], out[channels], row_winner_part)

        run_split(c, pool_channels, cells.size)
        # Inference needs no mask: the hand-off only when training.
        relu_output = weakref.ref(x) if training and is_latest_relu_output(x) else None
        positive = None if relu_output is None else out > 0
        self._cache = (row_winner, column_winner, positive, relu_output)
        return out.transpose(3, 0, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        if self.strides == self.pool_size:
            return self._tiled_backward(grad_out)
        padded, out = self._cache
        grad_padded = np.zeros(padded.shape, dtype=grad_out.dtype)
        unclaimed = np.ones(out.shape, dtype=bool)
        for _, _, window in self._geometry.offsets():
            index = (slice(None), slice(None), *window)
            winner = padded[index] == out
            winner &= unclaimed
            unclaimed &= ~winner
            grad_padded[index] += grad_out * winner
        return self._geometry.unpad(grad_padded)

    def _tiled_backward(self, grad_out: np.ndarray) -> np.ndarray:
        (ph, pw), geometry = self.pool_size, self._geometry
        row_winner, column_winner, positive, relu_output = self._cache
        n, c, oh, ow = grad_out.shape
        if positive is None:
            grad = np.ascontiguousarray(grad_out.transpose(1, 2, 3, 0))  # (C, H_out, W_out, N)
        else:  # the ReLU's mask, in the same pass as the copy
            grad = np.empty(positive.shape, dtype=grad_out.dtype)
            np.multiply(grad_out.transpose(1, 2, 3, 0), positive, out=grad)
        grad_rows = self._scratch.get("grad_rows", (ph, *grad.shape), grad.dtype)
        routed = self._scratch.get("routed", (ph, pw, *grad.shape), grad.dtype)
        # A new array for the result: routed is reused by the next call.
        grad_cells = np.empty((c, oh, ph, ow, pw, n), dtype=grad.dtype)

        def route_channels(start: int, stop: int) -> None:
            channels = slice(start, stop)
            _route(grad[channels], None if row_winner is None else row_winner[channels],
                   grad_rows[:, channels])  # fmt: skip
            for i in range(ph):
                winner = None if column_winner is None else column_winner[i, channels]
                _route(grad_rows[i, channels], winner, routed[i, :, channels])
            grad_cells[channels] = routed[:, :, channels].transpose(2, 3, 0, 4, 1, 5)

        run_split(c, route_channels, grad_cells.size)
        grad_cells = grad_cells.reshape(c, oh * ph, ow * pw, n)
        grad_in = geometry.unpad_batch_last(grad_cells).transpose(3, 0, 1, 2)
        relu_input = None if relu_output is None else relu_output()
        if relu_input is not None:
            hand_gradient_to_relu(grad_in, relu_input)
        return grad_in


def _winners(
    scratch: Scratch, name: str, size: int, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray | None:
    """Work array for the winners of groups of ``size`` (see :func:`_first_max`)."""
    if size == 1:
        return None
    return scratch.get(name, shape, dtype if size == 2 else np.dtype(np.uint8))


class AvgPool2D(_Pool2D):
    """y[n, c, i, j] = mean of the window; x: (N, C, H, W) float -> (N, C, H_out, W_out).

    With "same" padding the mean is over the real cells only (padding is not counted).
    """

    def build(self, input_shape: Shape, rng: np.random.Generator) -> None:
        super().build(input_shape, rng)
        geometry = self._geometry
        # Cells per window, without padding: (H_out, W_out), float64, cast on use.
        real = geometry.pad(np.ones((1, 1, *geometry.hw)))
        counts = sum(real[(0, 0, *window)] for _, _, window in geometry.offsets())
        self._counts = counts

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        geometry = self._geometry
        padded = geometry.pad(x)
        if self._tiles():
            n, c, h, w = padded.shape
            (ph, pw) = self.pool_size
            return padded.reshape(n, c, h // ph, ph, w // pw, pw).mean(axis=(3, 5))
        total = np.zeros(x.shape[:2] + (geometry.out_h, geometry.out_w), dtype=x.dtype)
        for _, _, window in geometry.offsets():
            total += padded[(slice(None), slice(None), *window)]
        total /= self._counts.astype(x.dtype)
        return total

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        geometry = self._geometry
        share = grad_out / self._counts.astype(grad_out.dtype)
        if self._tiles():
            (ph, pw) = self.pool_size
            n, c, oh, ow = share.shape
            grad_padded = np.broadcast_to(
                share[:, :, :, None, :, None], (n, c, oh, ph, ow, pw)
            ).reshape(n, c, oh * ph, ow * pw)
        else:
            grad_padded = np.zeros(
                grad_out.shape[:2] + (geometry.used_h, geometry.used_w), dtype=grad_out.dtype
            )
            for _, _, window in geometry.offsets():
                grad_padded[(slice(None), slice(None), *window)] += share
        return geometry.unpad(grad_padded)


class GlobalAveragePooling2D(Layer):
    """Mean over H and W: x: (N, C, H, W) float -> (N, C)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise LayerError(
                f"GlobalAveragePooling2D: expects (N, C, H, W) inputs, got (N, {input_shape})"
            )
        return (input_shape[0],)

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        return x.mean(axis=(2, 3))

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        _, h, w = self.input_shape
        share = grad_out / np.asarray(h * w, dtype=grad_out.dtype)
        return np.broadcast_to(share[:, :, None, None], (*share.shape, h, w)).copy()
