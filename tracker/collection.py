"""The cyclic garbage collector, tuned where a process knows its heap: fewer collections
while a scrape builds and stores its records, and long-lived structures frozen out of sight.

A first scrape of the portal holds 10,000 records, their dumps and their rows at once, and
allocates millions of containers on the way (decoded JSON, pydantic models, bind
parameters). CPython's collector runs a young collection every 700 net allocations and,
as the survivors pile up, full ones over everything alive: 11% of the samples of a py-spy
profile of the first scrape (issue 15), for almost no garbage, since records, dicts and
rows hold no cycles that outlive a scrape. Inside :func:`fewer_collections` the young
generation is collected every ``YOUNG_THRESHOLD`` allocations instead; cycles are still
found, only in larger batches, so memory stays bounded. Nothing a scrape computes depends
on when the collector runs, so the output is the same.

:func:`freeze_survivors`: see its docstring (the web app's preview index).
"""

from __future__ import annotations

import contextlib
import gc
import threading
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


_freezing = threading.Lock()


def freeze_survivors() -> None:
    """Collect every cycle, then move all that is alive out of the collector's sight.

    For a process that keeps a big, long-lived structure, like the web app's preview index
    (about 466,000 tracked containers for 50,000 calls): each full collection walks all of
    it again (85 ms → 1.2 s in ``callwatch web``, the event loop stalled meanwhile), to
    find nothing, since it holds no cycles. ``gc.freeze()`` puts what is alive in the
    permanent generation, which no collection walks; reference counting still frees it
    when its last reference goes.

    Why the collection first, and the ``unfreeze``: a freeze pins whatever is alive at
    that moment, garbage cycles included, and objects frozen before (a previous index,
    were it ever cyclic) would stay pinned for good. So each call thaws the last freeze,
    collects everything once (one full collection per index build, at most every 15
    minutes, rather than one every few hundred requests) and freezes only the survivors:
    at most what is reachable now stays out of sight, until the next call. So an old
    index that a request still holds while the next one is frozen is freed by reference
    counting when the request ends (it holds no cycles), and were it cyclic, by the
    collection after the next build. Calls from several threads are serialized.
    """
    with _freezing:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
