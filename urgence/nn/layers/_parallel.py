"""Large element-wise work split over the threads BLAS may use.

NumPy runs its ufunc loops and copies outside the GIL, so Python threads can share such
work; NumPy itself never does. The engine uses as many threads as the BLAS library is
allowed (``OPENBLAS_NUM_THREADS``, threadpoolctl's ``threadpool_limits``, ...): with one
BLAS thread everything runs in the calling thread, exactly as without this module.
:func:`engine_threads` (an experiment) instead keeps BLAS on one thread and splits the
convolutions' GEMMs too over the engine's own threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

# Below this many values per call, handing work to another thread (~50 us) costs more
# than it saves.
MIN_VALUES = 1 << 18
# Off: on this 2-core machine, idle, the MNIST CNN epoch with 2 BLAS threads took 1.75x
# PyTorch's time with the split and 1.20x without (benchmarks/engine_vs_torch.py, 5 and 3
# pairs): the Python threads fight OpenBLAS's own for the two cores. Kept, tested, for
# machines with more cores, where it has not been measured yet.
SPLIT_WORK = False

# Set within engine_threads(): the threads the engine runs itself, BLAS then on one.
_owned_threads: int | None = None

# os.cpu_count() measured 130 us per call here: asked once.
_CPUS = os.cpu_count() or 1
_blas_libraries: list | None = None
_executor: ThreadPoolExecutor | None = None


def _forget_executor() -> None:
    # A forked child has none of its parent's threads: it starts its own executor.
    global _executor
    _executor = None


os.register_at_fork(after_in_child=_forget_executor)


def threads() -> int:
    """The number of threads BLAS may use now (1 when it cannot be told), at most the CPUs;
    within :func:`engine_threads`, the number it had on entry."""
    global _blas_libraries
    if _owned_threads is not None:
        return _owned_threads
    if _blas_libraries is None:
        from threadpoolctl import ThreadpoolController

        _blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    if not _blas_libraries:
        return 1
    return max(1, min(min(lib.num_threads for lib in _blas_libraries), _CPUS))


def split_count(values: int, length: int | None = None) -> int:
    """Into how many parts :func:`run_split` cuts a job of ``values`` values (over
    ``length`` items): 1 means in the calling thread."""
    split = SPLIT_WORK or _owned_threads is not None
    count = threads() if split and values >= MIN_VALUES else 1
    return count if length is None else min(count, length)


def run_split(length: int, work: Callable[[int, int], object], values: int) -> None:
    """Call ``work(start, stop)`` over consecutive parts of ``range(length)`` that together
    cover it, in parallel when ``values`` (the size of the whole job) is large enough.
    The parts must touch disjoint memory."""
    _run_parts(length, work, split_count(values, length))


def _run_parts(length: int, work: Callable[[int, int], object], count: int) -> None:
    if count <= 1:
        work(0, length)
        return
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=max(_CPUS - 1, 1))
    bounds = np.linspace(0, length, count + 1).round().astype(int)
    futures = [
        _executor.submit(work, int(start), int(stop))
        for start, stop in zip(bounds[1:-1], bounds[2:], strict=True)
    ]
    work(int(bounds[0]), int(bounds[1]))
    for future in futures:
        future.result()


@contextmanager
def engine_threads() -> Iterator[int]:
    """Within: BLAS runs one thread per call and the engine runs the threads BLAS was
    allowed itself, splitting element-wise work and the convolutions' GEMMs over them.

    Why: after each multi-threaded call OpenBLAS's worker threads spin for ~100 ms (on this
    machine, idle: a 2-thread GEMM then a 200 ms sleep used 106 ms of process CPU), so with
    2 BLAS threads the second core is never free for the element-wise work between GEMMs,
    and Python threads splitting that work fight the spinning thread for it. An experiment:
    not used by the engine itself yet (``benchmarks/engine_vs_torch.py --engine-threads``).
    Yields the thread count.
    """
    global _owned_threads
    count = threads()
    libraries = list(_blas_libraries or ())
    previous = [lib.num_threads for lib in libraries]
    outer = _owned_threads
    for lib in libraries:
        lib.set_num_threads(1)
    _owned_threads = count
    try:
        yield count
    finally:
        _owned_threads = outer
        for lib, limit in zip(libraries, previous, strict=True):
            lib.set_num_threads(limit)


def _gemm_parts(values: int, length: int) -> int:
    return split_count(values, length) if _owned_threads is not None else 1


def run_gemms(length: int, work: Callable[[int, int], object], values: int) -> None:
    """Call ``work(start, stop)`` over parts of ``range(length)`` (independent BLAS calls
    writing ``values`` values in all): in the calling thread, except within
    :func:`engine_threads`, where the parts run on the engine's threads."""
    _run_parts(length, work, _gemm_parts(values, length))


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays (into ``out`` if given); within :func:`engine_threads`, its
    columns split over the threads."""
    count = _gemm_parts(a.shape[0] * b.shape[1], b.shape[1])
    if count <= 1:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))

    def columns(start: int, stop: int) -> None:
        np.matmul(a, b[:, start:stop], out=out[:, start:stop])

    _run_parts(b.shape[1], columns, count)
    return out


def matmul_transposed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` for 2-D arrays with a long shared axis; within :func:`engine_threads`,
    that axis split over the threads and the partial products summed."""
    length = a.shape[1]
    count = _gemm_parts(a.shape[0] * b.shape[0] * length, length)
    if count <= 1:
        return a @ b.T
    bounds = np.linspace(0, length, count + 1).round().astype(int)
    partial = [None] * count

    def part(start: int, stop: int) -> None:
        index = int(np.searchsorted(bounds, start))
        partial[index] = a[:, start:stop] @ b[:, start:stop].T

    _run_parts(length, part, count)
    return sum(partial[1:], partial[0])


def outer_axis(array: np.ndarray) -> int:
    """The axis with the largest stride: slices along it are the largest blocks of memory."""
    strides = [abs(s) if n > 1 else 0 for s, n in zip(array.strides, array.shape, strict=True)]
    return int(np.argmax(strides))


def along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    """The index of ``start:stop`` along ``axis``."""
    return (slice(None),) * axis + (slice(start, stop),)
