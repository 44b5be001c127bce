"""Element-wise work split over threads gives exactly the single-thread results."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from urgence.nn.layers import Conv2D, MaxPool2D, ReLU, _parallel

from .conftest import FakeBlas, batch_last, pretend_blas_threads


@pytest.fixture
def split_three_ways(monkeypatch):
    """Every job split into three parts, however small."""
    monkeypatch.setattr(_parallel, "threads", lambda: 3)
    monkeypatch.setattr(_parallel, "MIN_VALUES", 0)
    monkeypatch.setattr(_parallel, "SPLIT_WORK", True)


def test_parts_cover_the_range_once_on_several_threads(split_three_ways):
    seen, names = [], set()
    lock = threading.Lock()

    def work(start, stop):
        with lock:
            seen.extend(range(start, stop))
            names.add(threading.current_thread().name)

    _parallel.run_split(10, work, 10)
    assert sorted(seen) == list(range(10))
    assert len(names) > 1


def test_one_blas_thread_runs_in_the_caller(monkeypatch):
    monkeypatch.setattr(_parallel, "threads", lambda: 1)
    names = []
    _parallel.run_split(10, lambda a, b: names.append(threading.current_thread().name), 1 << 30)
    assert names == [threading.current_thread().name]


def run_chain(x, seed):
    """Conv2D (ReLU) -> MaxPool2D -> Conv2D -> ReLU layer: outputs and every gradient."""
    rng = np.random.default_rng(seed)
    layers = [Conv2D(4, 3, activation="relu"), MaxPool2D(2), Conv2D(3, 3, padding="same"), ReLU()]
    shape = x.shape[1:]
    for layer in layers:
        layer.build(shape, rng)
        shape = layer.output_shape
    out = x
    for layer in layers:
        out = layer.forward(out, training=True)
    grad = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(x.dtype)
    grads = [out]
    for layer in reversed(layers):
        grad = layer.backward(grad)
        grads += [grad, *layer.grads.values()]
    return grads


@pytest.mark.parametrize("layout", [batch_last, np.ascontiguousarray])
def test_split_work_gives_identical_results(layout, monkeypatch, rng):
    x = layout(rng.standard_normal((5, 3, 11, 10)).astype(np.float32))
    monkeypatch.setattr(_parallel, "threads", lambda: 1)
    serial = run_chain(x, 7)
    monkeypatch.setattr(_parallel, "threads", lambda: 3)
    monkeypatch.setattr(_parallel, "MIN_VALUES", 0)
    monkeypatch.setattr(_parallel, "SPLIT_WORK", True)
    split = run_chain(x, 7)
    for a, b in zip(serial, split, strict=True):
        np.testing.assert_array_equal(a, b)


def test_forked_child_gets_working_threads(split_three_ways):
    """A child forked after the executor started (multiprocessing's default on Linux) must
    not wait for its parent's threads, which it does not have."""
    import os

    _parallel.run_split(4, lambda a, b: None, 4)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: split work must finish, then report
        seen = []
        _parallel.run_split(6, lambda a, b: seen.extend(range(a, b)), 6)
        os.write(write, b"ok" if sorted(seen) == list(range(6)) else b"no")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok" and status == 0


@pytest.mark.parametrize("layout", [batch_last, np.ascontiguousarray])
def test_engine_threads_give_the_same_results(layout, monkeypatch, rng):
    """Within engine_threads the convolutions' GEMMs are split too: outputs and gradients
    stay the same up to rounding (a kernel gradient then sums partial products)."""
    x = layout(rng.standard_normal((5, 3, 11, 10)).astype(np.float32))
    monkeypatch.setattr(_parallel, "threads", lambda: 1)
    serial = run_chain(x, 7)
    monkeypatch.undo()
    blas = pretend_blas_threads(monkeypatch, 3)
    calls = []
    matmul = np.matmul
    monkeypatch.setattr(
        _parallel.np,
        "matmul",
        lambda *a, **k: (
            calls.append((blas.num_threads, a[1].flags.c_contiguous)) or matmul(*a, **k)
        ),
    )
    with _parallel.engine_threads() as count:
        assert count == 3 and _parallel.threads() == 3
        split = run_chain(x, 7)
    assert {threads for threads, _ in calls} == {1}  # BLAS on one thread
    assert (1, False) in calls  # a GEMM on a part of the columns: split
    assert blas.num_threads == 3 and _parallel.threads() == 3
    for a, b in zip(serial, split, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_engine_threads_restore_blas_after_an_error(monkeypatch):
    blas = FakeBlas(2)
    monkeypatch.setattr(_parallel, "_blas_libraries", [blas])
    with pytest.raises(ZeroDivisionError), _parallel.engine_threads():
        assert blas.num_threads == 1
        1 / 0  # noqa: B018
    assert blas.num_threads == 2 and _parallel._owned_threads is None


def test_split_products_match_numpy(monkeypatch, rng):
    monkeypatch.setattr(_parallel, "_blas_libraries", [FakeBlas(2)])
    monkeypatch.setattr(_parallel, "MIN_VALUES", 0)
    a, b = rng.standard_normal((3, 7)), rng.standard_normal((7, 9))
    with _parallel.engine_threads():
        np.testing.assert_allclose(_parallel.matmul(a, b), a @ b)
        np.testing.assert_allclose(_parallel.matmul_transposed(a, b.T), a @ b)
