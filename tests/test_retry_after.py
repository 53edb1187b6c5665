"""The one Retry-After parser sources and channels share: every hostile value becomes None
or a finite wait within the cap."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from scrapers import _http
from tracker.retry_after import MAX_RETRY_AFTER, retry_after_seconds

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0),
    (" 30 ", 30.0),
    ("0", 0.0),
    ("1.5", 1.5),  # not RFC 9110 (integers only), but harmless
    ("7200", MAX_RETRY_AFTER),  # capped
    ("9" * 400, MAX_RETRY_AFTER),  # a number too large for a float is inf: capped, not inf
    ("Wed, 25 Nov 2026 12:00:30 GMT", 30.0),  # HTTP-date, measured from now
    ("Wednesday, 25-Nov-26 12:10:00 GMT", 600.0),  # the obsolete RFC 850 form
    ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),  # in the past: go now
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
    ("nan", None),
    ("NaN", None),
    ("inf", None),
    ("-inf", None),
    ("infinity", None),
    ("-1", None),
    ("+5", None),
    ("1e20", None),
    ("1e3", None),
    ("0x10", None),
    ("1,5", None),
    ("²", None),  # a digit to str.isdigit, not to float()
    ("١٢٠", None),  # Arabic-Indic digits
    ("soon", None),
    ("", None),
    (None, None),
    ("Wed, 32 Nov 2026 12:00:30 GMT", None),
    ("Wed, 25 Nov 99999 12:00:30 GMT", None),
    ("Wed, 25 Nov 2026 12:00:30 +9999", None),
])
def test_values(value: str | None, expected: float | None) -> None:
    got = retry_after_seconds(value, NOW)
    assert got == expected
    if got is not None:
        assert math.isfinite(got) and 0.0 <= got <= MAX_RETRY_AFTER


def test_the_scrapers_client_uses_the_same_parser() -> None:
    assert _http.retry_after_seconds is retry_after_seconds
