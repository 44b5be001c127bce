"""Large element-wise work split over the threads BLAS may use.

NumPy runs its ufunc loops and copies outside the GIL, so Python threads can share such
work; NumPy itself never does. The engine uses as many threads as the BLAS library is
allowed (``OPENBLAS_NUM_THREADS``, threadpoolctl's ``threadpool_limits``, ...): with one
BLAS thread everything runs in the calling thread, exactly as without this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Below this many values per call, handing work to another thread (~50 us) costs more
# than it saves.
MIN_VALUES = 1 << 18
# Off: on this 2-core machine, idle, the MNIST CNN epoch with 2 BLAS threads took 1.75x
# PyTorch's time with the split and 1.20x without (benchmarks/engine_vs_torch.py, 5 and 3
# pairs): the Python threads fight OpenBLAS's own for the two cores. Kept, tested, for
# machines with more cores, where it has not been measured yet.
SPLIT_WORK = False

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
    """The number of threads BLAS may use now (1 when it cannot be told), at most the CPUs."""
    global _blas_libraries
    if _blas_libraries is None:
        from threadpoolctl import ThreadpoolController

        _blas_libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    if not _blas_libraries:
        return 1
    return max(1, min(min(lib.num_threads for lib in _blas_libraries), _CPUS))


def split_count(values: int, length: int | None = None) -> int:
    """Into how many parts :func:`run_split` cuts a job of ``values`` values (over
    ``length`` items): 1 means in the calling thread."""
    count = threads() if SPLIT_WORK and values >= MIN_VALUES else 1
    return count if length is None else min(count, length)


def run_split(length: int, work: Callable[[int, int], object], values: int) -> None:
    """Call ``work(start, stop)`` over consecutive parts of ``range(length)`` that together
    cover it, in parallel when ``values`` (the size of the whole job) is large enough.
    The parts must touch disjoint memory."""
    count = split_count(values, length)
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


def outer_axis(array: np.ndarray) -> int:
    """The axis with the largest stride: slices along it are the largest blocks of memory."""
    strides = [abs(s) if n > 1 else 0 for s, n in zip(array.strides, array.shape, strict=True)]
    return int(np.argmax(strides))


def along(axis: int, start: int, stop: int) -> tuple[slice, ...]:
    """The index of ``start:stop`` along ``axis``."""
    return (slice(None),) * axis + (slice(start, stop),)
