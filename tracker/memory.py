"""Giving memory back to the system after a job, so the daemon at rest holds what it uses.

A scrape builds many short-lived objects (pages, parsed trees, records, rows), some of them
in reference cycles (a parsed HTML tree's parents and children) that only a full garbage
collection frees, and glibc's allocator keeps freed pages in the process unless asked to
return them. ``malloc_trim(0)`` returns what is free at the top of the heap and in every
arena. Measured with bench/bench_daemon_rest.py (issue 15): trimming alone returned under
1 MiB, a full collection before it 4 MiB. Linux with glibc only; elsewhere no trim.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None (not Linux, musl, or no C library found)."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # musl has no malloc_trim
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory(*, collect: bool = False) -> bool:
    """Return the allocator's free pages to the system, after a full garbage collection
    when ``collect`` (it costs 85 ms, 1.2 s with the web app's preview index in the process:
    after a scrape, not after every minute's dispatch). True if there was an allocator to
    ask (glibc), whether or not it found pages to return."""
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
