"""Fixtures for the engine's tests: a seeded generator, and naive-loop helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """Keras "same" padding, written out independently: (output size, before, after)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def pad_for_oracle(
    x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], padding: str, fill: float
) -> tuple[np.ndarray, int, int, tuple[int, int]]:
    """x: (N, C, H, W) -> (padded x, H_out, W_out, (top, left)) for the naive oracles."""
    (_, _, h, w), (kh, kw), (sh, sw) = x.shape, kernel, strides
    if padding == "valid":
        return x.copy(), (h - kh) // sh + 1, (w - kw) // sw + 1, (0, 0)
    oh, top, bottom = same_padding(h, kh, sh)
    ow, left, right = same_padding(w, kw, sw)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    return padded, oh, ow, (top, left)


def batch_last(x: np.ndarray) -> np.ndarray:
    """The same values as x (N, C, H, W), stored (C, H, W, N): how a Conv2D hands on its
    output when it works batch-last."""
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


class FakeBlas:
    """Stands for a BLAS library of threadpoolctl: a thread count to read and set."""

    def __init__(self, count: int) -> None:
        self.num_threads = count

    def set_num_threads(self, count: int) -> None:
        self.num_threads = count


def pretend_blas_threads(monkeypatch, count: int) -> FakeBlas:
    """Make urgence.nn.layers._parallel see ``count`` CPUs and a BLAS allowed ``count``
    threads, with no minimum size for splitting work; returns the fake BLAS."""
    from urgence.nn.layers import _parallel

    blas = FakeBlas(count)
    monkeypatch.setattr(_parallel, "_blas_libraries", [blas])
    monkeypatch.setattr(_parallel, "_CPUS", count)
    monkeypatch.setattr(_parallel, "MIN_VALUES", 0)
    return blas
