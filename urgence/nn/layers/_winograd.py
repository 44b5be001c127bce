"""Winograd F(4x4, 3x3): 3x3 stride-1 convolutions with 2.25x fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). The output is
cut into 4 x 4 tiles; each reads a 6 x 6 tile of the (padded) input, tiles overlapping by
2. Per tile, with the input tile ``d`` (6 x 6) and the kernel ``g`` (3 x 3)::

    y = A^T [(G g G^T) * (B^T d B)] A          (* element-wise, 36 products)

and summed over input channels, the 36 element-wise products become 36 GEMMs of
(F, C) @ (C, tiles): 36 * 16 multiplications per tile where im2col does 4 x 4 x 9 = 144.
The transforms are exact in real arithmetic; in floating point they cost some accuracy
(float32 MNIST-sized layers: about 7x the error of the direct sum, a few 1e-6 of the
outputs' scale; see tests/nn/test_layers_winograd.py).

Backward is the exact transpose of that linear map: the output gradient goes through A,
the kernel gradient is 36 GEMMs against the transformed input kept from the forward pass,
the input gradient 36 GEMMs through the transposed kernel transforms and back through B,
overlapping tiles adding up.

Layout: the examples last, (C, H, W, N) memory, so that tile gathers and scatters copy
runs of N contiguous values. Every transform is a small-matrix product along the leading
axis of a contiguous array, done by BLAS (these measured faster than NumPy element-wise
combinations, and run on BLAS's threads). Transformed arrays are ordered (column offset,
row offset, ...): index ``6 * cc + rr``.
"""

from __future__ import annotations

import numpy as np

from urgence.nn.layers._parallel import run_gemms, run_split
from urgence.nn.layers._windows import WindowGeometry

# Interpolation points 0, 1, -1, 1/2, -2 and infinity (Toom-Cook). Against the usual
# 0, +-1, +-2 (Lavin & Gray), 1/2 for 2 shrinks the float32 error ~2.4x on MNIST-shaped
# layers (Barabasz et al., "Error analysis and improving the accuracy of Winograd
# convolution for deep neural networks", 2020, found the same).
_BT = np.array(
    [
        [1, -3 / 2, -2, 3 / 2, 1, 0],
        [0, -1, 1 / 2, 5 / 2, 1, 0],
        [0, 1, -5 / 2, 1 / 2, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 1 / 2, -1, -1 / 2, 1, 0],
        [0, 1, -3 / 2, -2, 3 / 2, 1],
    ]
)
_G = np.array(
    [
        [1, 0, 0],
        [1 / 3, 1 / 3, 1 / 3],
        [-1 / 3, 1 / 3, -1 / 3],
        [-16 / 15, -8 / 15, -4 / 15],
        [1 / 15, -2 / 15, 4 / 15],
        [0, 0, 1],
    ]
)
_AT = np.array(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 1 / 2, -2, 0],
        [0, 1, 1, 1 / 4, 4, 0],
        [0, 1, -1, 1 / 8, -8, 1],
    ]
)
TILE, INPUT_TILE = 4, 6
# Column 1 of A^T is all ones: a value added to the transformed output at (1, 1) reaches
# every output of the tile once. The bias rides there (and its gradient is summed there).
_BIAS_INDEX = INPUT_TILE * 1 + 1


class Winograd3x3:
    """The F(4x4, 3x3) forward and backward of one convolution layer, with its work arrays.

    ``geometry``: the layer's stride-1 3x3 window geometry ("valid" or "same").
    """

    def __init__(self, geometry: WindowGeometry) -> None:
        self.geometry = geometry
        self.tiles_h = -(-geometry.out_h // TILE)
        self.tiles_w = -(-geometry.out_w // TILE)
        # The tiled input: enough rows and columns for whole tiles, zeros beyond the data.
        self.padded_h = TILE * self.tiles_h + 2
        self.padded_w = TILE * self.tiles_w + 2
        self._arrays: dict[str, np.ndarray] = {}
        self._transformed_input: np.ndarray | None = None
        self._kernel: np.ndarray | None = None

    def _work(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A work array reused between calls; new ones are zeroed (some rely on it). Forward
        and backward share the arrays they use only within one call (same name)."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = np.zeros(shape, dtype=dtype)
            self._arrays[name] = array
        return array

    # -- forward ----------------------------------------------------------------------

    def forward(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """x: (N, C, H, W) float, any memory order; kernel: (F, C, 3, 3); bias: (F,) or None
        -> (N, F, H_out, W_out) in x's dtype, a view of batch-last (F, H_out, W_out, N)."""
        n, c = x.shape[:2]
        dtype = x.dtype
        transformed_kernel = _transform_kernel(kernel).astype(dtype)  # (36, F, C)
        filters = transformed_kernel.shape[1]
        tiles_h, tiles_w = self.tiles_h, self.tiles_w
        positions = tiles_h * tiles_w * n
        # Row r of every input tile, examples last; the padding cells stay zero.
        (top, _), (left, _) = self.geometry.pads
        h, w = x.shape[2:]
        rows = self._work("rows", (INPUT_TILE, c, tiles_h, self.padded_w, n), dtype)
        x_batch_last = x.transpose(1, 2, 3, 0)
        reads = [_tiles_reading(r, top, h, tiles_h) for r in range(INPUT_TILE)]

        def gather_rows(start: int, stop: int) -> None:  # channels start:stop
            channels = slice(start, stop)
            for r, (tiles, cells) in enumerate(reads):
                rows[r, channels, tiles, left : left + w] = x_batch_last[channels, cells]

        run_split(c, gather_rows, rows.size)
        # B^T along the rows of every tile, then along the columns.
        rows_t = self._work("rows_t", rows.shape, dtype)
        _small_matmul(_BT, rows.reshape(INPUT_TILE, -1), rows_t.reshape(INPUT_TILE, -1))
        cols = self._work("cols", (INPUT_TILE, INPUT_TILE, c, tiles_h, tiles_w, n), dtype)
        for col in range(INPUT_TILE):
            cols[col] = rows_t[:, :, :, _every_tile(col, tiles_w)]
        transformed = self._work("transformed", (36, c, positions), dtype)
        _small_matmul(_BT, cols.reshape(INPUT_TILE, -1), transformed.reshape(INPUT_TILE, -1))
        self._transformed_input, self._kernel = transformed, transformed_kernel
        # 36 GEMMs: (F, C) @ (C, positions).
        products = self._work("products", (36, filters, positions), dtype)
        _stacked_matmul(transformed_kernel, transformed, products)
        if bias is not None:
            products[_BIAS_INDEX] += bias.astype(dtype)[:, None]
        # A^T along the columns, then along the rows.
        half = self._work("half", (TILE * INPUT_TILE * filters * positions,), dtype)
        half = half.reshape(TILE, INPUT_TILE, -1)
        _small_matmul(_AT, products.reshape(INPUT_TILE, -1), half.reshape(TILE, -1))
        tiles = self._work("out_tiles", (TILE, TILE, filters * positions), dtype)
        _small_matmul(_AT, half, tiles)
        tiles = tiles.reshape(TILE, TILE, filters, tiles_h, tiles_w, n)
        out_h, out_w = self.geometry.out_h, self.geometry.out_w
        out = np.empty((filters, out_h, out_w, n), dtype=dtype)

        def scatter_filters(start: int, stop: int) -> None:
            part = slice(start, stop)
            for rr in range(TILE):
                for cc in range(TILE):
                    target = out[part, rr::TILE, cc::TILE]
                    target[...] = tiles[cc, rr, part, : target.shape[1], : target.shape[2]]

        run_split(filters, scatter_filters, out.size)
        return out.transpose(3, 0, 1, 2)

    # -- backward ---------------------------------------------------------------------

    def backward(
        self, grad_out: np.ndarray, *, kernel_grad: bool, input_grad: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """grad_out: (N, F, H_out, W_out) -> (kernel gradient (F, C, 3, 3), bias gradient
        (F,), input gradient (N, C, H, W) as a batch-last view); None for those not asked."""
        n, filters = grad_out.shape[:2]
        dtype = grad_out.dtype
        tiles_h, tiles_w = self.tiles_h, self.tiles_w
        positions = tiles_h * tiles_w * n
        # The output gradient in tiles; the cells beyond the output stay zero.
        grad_tiles = self._work("grad_tiles", (TILE, TILE, filters, tiles_h, tiles_w, n), dtype)
        grad = grad_out.transpose(1, 2, 3, 0)

        def gather_filters(start: int, stop: int) -> None:
            part = slice(start, stop)
            for rr in range(TILE):
                for cc in range(TILE):
                    source = grad[part, rr::TILE, cc::TILE]
                    grad_tiles[cc, rr, part, : source.shape[1], : source.shape[2]] = source

        run_split(filters, gather_filters, grad_tiles.size)
        # Through A (the transpose of A^T) along the columns, then the rows.
        a = _AT.T
        half = self._work("half", (TILE * INPUT_TILE * filters * positions,), dtype)
        half = half.reshape(INPUT_TILE, TILE, -1)
        _small_matmul(a, grad_tiles.reshape(TILE, -1), half.reshape(INPUT_TILE, -1))
        grad_products = self._work("products", (36, filters, positions), dtype)
        _small_matmul(a, half, grad_products.reshape(INPUT_TILE, INPUT_TILE, -1))
        grad_kernel = grad_bias = grad_x = None
        if kernel_grad:
            transformed = self._transformed_input
            grad_transformed_kernel = np.empty((36, filters, transformed.shape[1]), dtype=dtype)
            _stacked_matmul(grad_products, transformed.transpose(0, 2, 1), grad_transformed_kernel)
            grad_kernel = _transform_kernel_grad(grad_transformed_kernel)
            grad_bias = grad_products[_BIAS_INDEX].sum(axis=1)
        if input_grad:
            grad_x = self._input_grad(grad_products, n)
        return grad_kernel, grad_bias, grad_x

    def _input_grad(self, grad_products: np.ndarray, n: int) -> np.ndarray:
        dtype = grad_products.dtype
        c = self._kernel.shape[2]
        tiles_h, tiles_w = self.tiles_h, self.tiles_w
        positions = tiles_h * tiles_w * n
        grad_transformed = self._work("grad_transformed", (36, c, positions), dtype)
        _stacked_matmul(self._kernel.transpose(0, 2, 1), grad_products, grad_transformed)
        # Through B along the columns, overlapping tiles adding up; then along the rows.
        b = _BT.T
        grad_cols = self._work("cols", (INPUT_TILE, INPUT_TILE, c, tiles_h, tiles_w, n), dtype)
        _small_matmul(
            b, grad_transformed.reshape(INPUT_TILE, -1), grad_cols.reshape(INPUT_TILE, -1)
        )
        (top, _), (left, _) = self.geometry.pads
        h, w = self.geometry.hw
        grad_rows_t = self._work("grad_rows_t", (INPUT_TILE, c, tiles_h, w, n), dtype)
        _overlap_add(grad_cols, grad_rows_t, 3, left)
        grad_rows = self._work("grad_rows", grad_rows_t.shape, dtype)
        _small_matmul(b, grad_rows_t.reshape(INPUT_TILE, -1), grad_rows.reshape(INPUT_TILE, -1))
        grad_x = np.empty((c, h, w, n), dtype=dtype)  # a new array: the caller keeps it
        _overlap_add(grad_rows, grad_x, 1, top)
        return grad_x.transpose(3, 0, 1, 2)


# OpenBLAS runs a product by a tiny matrix (6 x 6, 4 x 6) over ~100,000s of columns from
# memory: cut into blocks of this many columns, which stay in cache, it measured 2-3x faster.
# The MNIST 64-filter layer, forward + backward, ms, blocks of 4,096 / 8,192 / 16,384 /
# 65,536 columns: 1 thread 17.8 / 17.0 / 16.8 / 19.2, 2 threads 15.4 / 14.7 / 13.9 / 14.4.
# Splitting the blocks over Python threads measured no faster (OpenBLAS's spinning worker).
_COLUMN_BLOCK = 16384


def _small_matmul(matrix: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """out = matrix @ x along the leading axes: matrix (m, k), x (..., k, L), out (..., m, L),
    contiguous; in blocks of columns."""
    matrix = matrix.astype(x.dtype)
    x3 = x.reshape(-1, *x.shape[-2:])
    out3 = out.reshape(-1, *out.shape[-2:])
    blocks = [
        (item, slice(start, start + _COLUMN_BLOCK))
        for item in range(x3.shape[0])
        for start in range(0, x3.shape[2], _COLUMN_BLOCK)
    ]

    def multiply(first: int, stop: int) -> None:
        for item, block in blocks[first:stop]:
            np.matmul(matrix, x3[item, :, block], out=out3[item, :, block])

    run_gemms(len(blocks), multiply, out.size)


def _stacked_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out[k] = a[k] @ b[k] for the 36 products of a stack: one np.matmul (a BLAS call per
    product), its products split over the engine's threads within ``engine_threads``."""

    def multiply(first: int, stop: int) -> None:
        np.matmul(a[first:stop], b[first:stop], out=out[first:stop])

    run_gemms(out.shape[0], multiply, out.size)


def _tiles_reading(offset: int, start: int, length: int, tiles: int) -> tuple[slice, slice]:
    """Along one axis, the tiles whose cell ``offset`` falls on one of ``length`` data cells
    that begin at cell ``start`` of the padded input, and those data cells (every 4th)."""
    first = max(0, -((offset - start) // TILE))  # ceil((start - offset) / 4)
    last = min(tiles - 1, (start + length - 1 - offset) // TILE)
    if last < first:
        return slice(0, 0), slice(0, 0)
    cell = TILE * first + offset - start
    return slice(first, last + 1), slice(cell, cell + TILE * (last - first) + 1, TILE)


def _overlap_add(parts: np.ndarray, out: np.ndarray, axis: int, start: int) -> None:
    """Add overlapping tiles up along one axis: cell ``r`` of tile ``a`` (``parts[r]``, the
    tiles along ``axis``) lands on cell ``4 a + r - start`` of ``out`` along ``axis``, those
    out of ``out``'s range dropped. Every cell of ``out`` is written (some tile covers
    each), none is read: no zeroing pass, one add per pair of overlapping tile cells."""
    tiles, length = parts.shape[axis + 1], out.shape[axis]

    def at(array: np.ndarray, index: slice) -> np.ndarray:
        return array[(slice(None),) * axis + (index,)]

    for offset in range(TILE):
        # Tiles a whose cell ``offset`` is in range; cell offset + 4 of tile a - 1 lands on
        # the same cell as cell ``offset`` of tile a.
        low = -((offset - start) // TILE)
        high = (start + length - 1 - offset) // TILE

        def cells(first: int, last: int, offset: int = offset) -> slice:
            return slice(TILE * first + offset - start, TILE * last + offset - start + 1, TILE)

        own = (max(low, 0), min(high, tiles - 1))
        previous = (max(low, 1), min(high, tiles)) if offset + TILE < INPUT_TILE else (1, 0)
        both = (max(own[0], previous[0]), min(own[1], previous[1]))
        for (first, last), cell, shift in ((own, offset, 0), (previous, offset + TILE, 1)):
            pieces = [(first, last)]
            if both[0] <= both[1]:
                pieces = [(first, both[0] - 1), (both[1] + 1, last)]
            for piece_first, piece_last in pieces:
                if piece_first <= piece_last:
                    tile_range = slice(piece_first - shift, piece_last - shift + 1)
                    at(out, cells(piece_first, piece_last))[...] = at(parts[cell], tile_range)
        if both[0] <= both[1]:
            np.add(
                at(parts[offset], slice(both[0], both[1] + 1)),
                at(parts[offset + TILE], slice(both[0] - 1, both[1])),
                out=at(out, cells(*both)),
            )


def _every_tile(offset: int, tiles: int) -> slice:
    """Cell ``offset`` of every input tile along one axis (tiles start every 4 cells)."""
    return slice(offset, offset + TILE * (tiles - 1) + 1, TILE)


def _transform_kernel(kernel: np.ndarray) -> np.ndarray:
    """(F, C, 3, 3) -> (36, F, C) float64: G g G^T for every (filter, channel) pair,
    ordered (column offset, row offset)."""
    # Two tensordots (GEMMs): einsum measured several times slower.
    columns = np.tensordot(kernel.astype(np.float64), _G, axes=([3], [1]))  # (F, C, 3, 6 s)
    both = np.tensordot(_G, columns, axes=([1], [2]))  # (6 r, F, C, 6 s)
    return np.ascontiguousarray(both.transpose(3, 0, 1, 2)).reshape(36, *kernel.shape[:2])


def _transform_kernel_grad(grad: np.ndarray) -> np.ndarray:
    """The transpose of :func:`_transform_kernel`: (36, F, C) -> (F, C, 3, 3), same dtype."""
    g = _G.astype(grad.dtype)
    grad = grad.reshape(INPUT_TILE, INPUT_TILE, *grad.shape[1:])  # (s, r, F, C)
    rows = np.tensordot(g, grad, axes=([0], [1]))  # (3 i, 6 s, F, C)
    both = np.tensordot(rows, g, axes=([1], [0]))  # (3 i, F, C, 3 j)
    return np.ascontiguousarray(both.transpose(1, 2, 0, 3))
