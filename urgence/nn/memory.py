"""Keep freed memory in the process for the next batch (glibc only).

glibc serves each allocation above its mmap threshold (128 kB at start, raised dynamically
up to 32 MB) with a fresh ``mmap`` and gives it back on ``free``. A
training step allocates and frees the same large activation arrays every batch, so every
batch pays the kernel again for zeroed pages. Raising the threshold to its maximum and
never trimming the heap keeps those pages: a one-process training step of the shipped
DS-CNN gained 0-4% (batch 32: 74-77 -> 71-73 ms; batch 64: 156 -> 152 ms), the two-process
step nothing measurable (benchmarks/training_processes.py --default-malloc). The cost is
resident memory that stays at its peak, which a training process reaches anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit systems
_TRIM_NEVER = 2**31 - 1  # the option takes an int


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed blocks up to 32 MB in the heap instead of
    returning them to the kernel. Affects the whole process and the processes it forks.
    Returns False (and changes nothing) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER)
    )
