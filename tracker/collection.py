"""Fewer cyclic garbage collections while a scrape builds and stores its records.

A first scrape of the portal holds 10,000 records, their dumps and their rows at once, and
allocates millions of containers on the way (decoded JSON, pydantic models, bind
parameters). CPython's collector runs a young collection every 700 net allocations and,
as the survivors pile up, full ones over everything alive: 11% of the samples of a py-spy
profile of the first scrape (issue 15), for almost no garbage, since records, dicts and
rows hold no cycles that outlive a scrape. Inside :func:`fewer_collections` the young
generation is collected every ``YOUNG_THRESHOLD`` allocations instead; cycles are still
found, only in larger batches, so memory stays bounded. Nothing a scrape computes depends
on when the collector runs, so the output is the same.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: net container allocations between two young collections inside a scrape (CPython's
#: default is 700): a batch of cyclic garbage holds about a MB before it is freed
YOUNG_THRESHOLD = 10_000

_depth = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the young generation's threshold for the block, restoring it when the
    outermost such block ends: scrapes run side by side in the daemon's event loop, so the
    blocks may interleave; the thresholds are the process's, and the first block in keeps
    the values to restore."""
    global _depth, _saved
    if _depth == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), *_saved[1:])
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.set_threshold(*_saved)
