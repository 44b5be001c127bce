"""keep_freed_memory: glibc's allocator keeps large freed blocks, results unchanged."""

from __future__ import annotations

import ctypes.util
import sys

import numpy as np
import pytest

from urgence.nn.memory import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="glibc's mallopt",
)
def test_keep_freed_memory_is_accepted_and_large_arrays_still_work():
    assert keep_freed_memory() is True
    # arrays above the old threshold (128 kB) now come from the heap: allocate, free, reuse
    for size in (1 << 16, 1 << 22, 1 << 23):
        a = np.full(size, 2.0, dtype=np.float32)
        assert float(a.sum()) == 2.0 * size
        del a
