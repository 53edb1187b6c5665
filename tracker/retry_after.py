"""Retry-After (RFC 9110 §10.2.3), read in one place for every HTTP client: sources and channels.

A server may answer 429 or 503 with ``Retry-After: <delta-seconds>`` or
``Retry-After: <HTTP-date>``. The value is the server's to choose, and a hostile or broken
one sends ``nan``, ``inf``, ``-1``, ``1e20``, a date in the year 9999 or plain garbage.
What comes out of here is either ``None`` (no usable value: fall back to the caller's own
backoff) or a finite number of seconds between 0 and ``MAX_RETRY_AFTER``, so the
arithmetic that follows (``timedelta``, tenacity's waits, the dispatcher's backoff) cannot
overflow or go wrong on NaN.

- delta-seconds: ASCII digits, optionally with a fraction (``120``, ``1.5``; RFC 9110 allows
  only integers, but fractions are harmless and some servers send them). A sign, an
  exponent, ``nan``, ``inf`` and non-ASCII digits are garbage.
- HTTP-date (``Wed, 25 Nov 2026 12:00:30 GMT``, and the obsolete forms ``email.utils``
  reads): the seconds from ``now`` to that time; a date in the past means "now" (0).
- ``MAX_RETRY_AFTER`` (1 hour) caps both: a server asking for a day gets an hour, after
  which the next attempt asks again. Callers may cap lower (``http.max_backoff`` for
  sources); the dispatcher's own backoff grows to 2 hours regardless.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

#: the longest wait a Retry-After header can impose, in seconds
MAX_RETRY_AFTER = 3600.0
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value, within [0, ``MAX_RETRY_AFTER``]; None if unusable.

    ``now`` is the time an HTTP-date is measured from (timezone-aware); None means the
    current time, for callers at the I/O edge that hold no clock of their own.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)  # a 400-digit number is inf here: capped
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, with no claim about the local zone
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return min(max(0.0, (when - reference).total_seconds()), MAX_RETRY_AFTER)
