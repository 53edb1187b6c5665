"""A pause of Python's cyclic garbage collector around one tight loop, kept out of the domain code.

Why it exists: the matcher's per-profile loop (``CallIndex.match`` for 10,000 profiles)
keeps hundreds of thousands of ``Match`` tuples alive, each holding its ``CallRecord``, so
CPython 3.11's collector walks them again at every full collection. On the benchmark
(``bench/bench_match.py``) that doubles the run, and nothing in the loop makes a reference
cycle for it to find: reference counting frees all it allocates.

Why it is safe: the collector is process-wide, and matching runs in a worker thread
(``asyncio.to_thread``) beside the event loop, so the pause is kept as short and as
predictable as possible:

- it covers the pure loop only, never reading calls or profiles (a lazy iterable may do
  I/O) nor writing the matches; the event loop's cycles wait for a few seconds at most,
  and reference counting keeps freeing everything else;
- it is switched off only when it was on, and switched on again in ``finally``, so an
  exception inside the loop cannot leave the process without a collector;
- overlapping pauses (two threads matching at once) are counted under a lock: the first
  to enter records whether the collector was on, the last to leave restores that. No
  pause ends while another is still inside its loop, and a process that runs with the
  collector off keeps it off.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator


class _Pauses:
    """The pauses in progress in this process: one collector, one count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = False

    def enter(self) -> None:
        with self.lock:
            if self.depth == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.depth += 1

    def leave(self) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.was_enabled:
                gc.enable()


_pauses = _Pauses()


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the ``with`` block (see the module docstring)."""
    _pauses.enter()
    try:
        yield
    finally:
        _pauses.leave()
