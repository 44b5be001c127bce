"""Pooling over channels-first data: max, average, global average."""

from __future__ import annotations

from typing import Any

import numpy as np

from urgence.nn.layers._windows import (
    WindowGeometry,
    as_pair,
    check_padding,
    windowed_output_shape,
)
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


def _first_max(values: np.ndarray, axis: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over consecutive groups of ``size`` along ``axis`` (whose length is a multiple of
    ``size``), and which member of each group won: the first maximal one, uint8."""

    def member(k: int) -> np.ndarray:
        index = [slice(None)] * values.ndim
        index[axis] = slice(k, None, size)
        return values[tuple(index)]

    best = member(0)
    winner = np.zeros(best.shape, dtype=np.uint8)
    for k in range(1, size):
        candidate = member(k)
        better = candidate > best  # strict: a tie keeps the earlier member
        best = np.maximum(best, candidate)
        if size == 2:
            winner = better.view(np.uint8)
        else:
            np.copyto(winner, k, where=better)
    return best, winner


def _route(grad: np.ndarray, winner: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Inverse of :func:`_first_max`: each group's gradient goes to its winning member."""
    if not winner.flags.c_contiguous and winner.swapaxes(0, 1).flags.c_contiguous:
        # The pooled input was channel-major (a convolution's transposed view): work in
        # that order, so that the new array and the winners are traversed alike.
        routed = _route(grad.swapaxes(0, 1), winner.swapaxes(0, 1), axis, size)
        return routed.swapaxes(0, 1)
    shape = list(grad.shape)
    shape.insert(axis + 1, size)
    routed = np.empty(shape, dtype=grad.dtype)
    index = [slice(None)] * len(shape)
    for k in range(size):
        index[axis + 1] = k
        np.multiply(grad, winner == k, out=routed[tuple(index)])
    shape[axis : axis + 2] = [shape[axis] * size]
    return routed.reshape(shape)


class MaxPool2D(_Pool2D):
    """y[n, c, i, j] = max of the window; x: (N, C, H, W) float -> (N, C, H_out, W_out).

    Backward routes each output gradient to the first maximal cell of its window (row-major).
    When windows do not overlap (strides == pool_size, the usual case) the max is taken along
    W then along H, remembering which member won as a small uint8 array: no argmax index
    arrays, no 6-D reductions. Otherwise a loop over window offsets compares each cell with
    the output. "same" padding pads with -inf.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cache: tuple[np.ndarray, ...] = ()

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self._check_input(x)
        padded = self._geometry.pad(x, fill=-np.inf)
        (ph, pw) = self.pool_size
        if self.strides == self.pool_size:
            column_max, column_winner = _first_max(padded, 3, pw)
            out, row_winner = _first_max(column_max, 2, ph)
            self._cache = (column_winner, row_winner)
            return out
        out = None
        for _, _, window in self._geometry.offsets():
            cells = padded[(slice(None), slice(None), *window)]
            out = cells.copy() if out is None else np.maximum(out, cells, out=out)
        self._cache = (padded, out)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        if not self.needs_input_grad:
            return None
        (ph, pw) = self.pool_size
        if self.strides == self.pool_size:
            column_winner, row_winner = self._cache
            grad_rows = _route(grad_out, row_winner, 2, ph)
            return self._geometry.unpad(_route(grad_rows, column_winner, 3, pw))
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
