"""Drift detection: a run that "worked" but looks wrong is suspicious, not good.

Scrapers break quietly: a site changes its markup and the same selectors now find nothing,
or find the cards but not their titles, links or deadlines. Such a run raises no error, so
it is judged here, from what it produced and what the last good run produced:

- **zero items** where the last good run had some is suspicious (a list that really empties
  is rare; a changed layout is not);
- **a sharp fall**: a complete run with fewer calls than ``FALL_SHARE`` (half) of the median
  of the source's last ``FALL_WINDOW`` (5) ok runs, that also lost at least
  ``FALL_MIN_LOST`` (5) calls against that median, is suspicious. 40 calls falling to 1 is a
  broken page far more often than 39 calls withdrawn at once, and every missing call would
  otherwise be marked ``removed_from_source``. 40 falling to 35 is an ordinary day. The
  median of several runs, not the last one, so one odd ok run neither hides a fall nor
  raises a false one; the minimum loss, so a source of 2 or 3 calls falling to 1 is judged
  an ordinary change (a fall to zero is still the rule above);
- **more than half the items lacking** a title, a link or a deadline is suspicious. Items
  the scraper had to skip (``ScrapeResult.invalid``) count as lacking, since an item is
  skipped precisely because something it needs could not be read. A source that never
  gives deadlines (a news feed) says so with ``expected_fields`` and is judged without it.

A failed run is already failed and is not judged again. ``outcome`` turns a verdict into the
run outcome to record (``RunOutcome.SUSPICIOUS``); a suspicious run is never a good run, so
the next comparison still uses the last good count and the median of ok runs, and the next
run that looks normal is an ordinary ok run again. A suspicious run stores the calls it did
read but never marks a call removed (``tracker.store.calls``). A fall that is real keeps the source
suspicious, and red after ``RED_AFTER`` runs with one alert to the admins, until its count
is back above the threshold, or until a person who checked the site accepts the new level
(``callwatch sources --accept``, ``Store.accept_level``): no automatic rule can tell a real
fall from a broken page. After ``RED_AFTER`` suspicious or failed
runs in a row a source's health is red (``source_health``), and an operator alert is due.
``source_health`` names the state `callwatch sources` shows: green (the last run was ok),
amber (the last run was partial, or a bad streak not yet red), red, or unknown (never run).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tracker.models import CallRecord, RunOutcome, ScrapeResult

#: What a call list normally gives for every item.
DEFAULT_EXPECTED: tuple[str, ...] = ("title", "url", "deadline")
#: Suspicious or failed runs in a row that turn a source's health red.
RED_AFTER = 3
#: Above this share of items lacking an expected field, a run is suspicious.
LACKING_SHARE = 0.5
#: How many of the source's latest ok runs a complete run's count is compared with.
FALL_WINDOW = 5
#: A complete run with fewer calls than this share of their median has fallen sharply...
FALL_SHARE = 0.5
#: ...when it also lost at least this many calls against it (tiny sources are left alone).
FALL_MIN_LOST = 5


@dataclass(frozen=True)
class DriftVerdict:
    """Whether a run looks wrong, and each reason in words for the run log and alerts."""

    suspicious: bool
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        return "; ".join(self.reasons)


class KeptCall(NamedTuple):
    """A call the run listed with the row stored (``ScrapeResult.unchanged``), as stored:
    what drift asks of an item (a title, a url, a deadline)."""

    native_id: str
    title: str
    url: str | None
    has_deadline: bool


def _kept_lacks(call: KeptCall, field: str) -> bool:
    if field == "title":
        return not call.title.strip()
    if field == "url":
        return not call.url
    if field == "deadline":
        return not call.has_deadline
    raise ValueError(f"unknown expected field {field!r}; use title, url or deadline")


def _lacks(record: CallRecord, field: str) -> bool:
    return _kept_lacks(KeptCall(record.native_id, record.title, record.url,
                                bool(record.deadlines)), field)


def sharp_fall(calls: int, recent_ok_calls: Sequence[int]) -> str | None:
    """Why ``calls`` is a sharp fall against the latest ok runs' counts (newest first; only
    the first ``FALL_WINDOW`` count), or None when it is not one or there is no ok run yet."""
    window = list(recent_ok_calls)[:FALL_WINDOW]
    if not window:
        return None
    median = statistics.median(window)
    if calls < FALL_SHARE * median and median - calls >= FALL_MIN_LOST:
        return (f"fell to {calls} calls from {median:g}, the median of the last "
                f"{len(window)} ok run(s)")
    return None


def assess_run(
    result: ScrapeResult,
    last_good_items: int | None,
    *,
    expected_fields: Sequence[str] = DEFAULT_EXPECTED,
    recent_ok_calls: Sequence[int] = (),
    kept: Sequence[KeptCall] = (),
) -> DriftVerdict:
    """Judge one run against the item count of the last good run (None: no good run yet) and,
    when it is complete, against the call counts of the latest ok runs (newest first).
    ``kept``: the calls the run listed unchanged (not among its records), as stored."""
    if result.outcome is RunOutcome.FAILED and result.error is not None:
        return DriftVerdict(False)
    reasons: list[str] = []
    items = len(result.records) + result.invalid + len(kept)
    if items == 0:
        if last_good_items:
            reasons.append(f"parsed zero items; the last good run had {last_good_items}")
        return DriftVerdict(bool(reasons), tuple(reasons))
    if result.outcome is RunOutcome.OK:  # only a complete run would mark calls removed
        fall = sharp_fall(len({r.native_id for r in result.records}
                              | {k.native_id for k in kept}), recent_ok_calls)
        if fall:
            reasons.append(fall)
    for field in expected_fields:
        lacking = (result.invalid + sum(1 for r in result.records if _lacks(r, field))
                   + sum(1 for k in kept if _kept_lacks(k, field)))
        if lacking / items > LACKING_SHARE:
            reasons.append(f"{lacking} of {items} items lack a {field}")
    return DriftVerdict(bool(reasons), tuple(reasons))


def outcome(result: ScrapeResult, verdict: DriftVerdict) -> RunOutcome:
    """The outcome to record: the result's own, or SUSPICIOUS when the verdict says so."""
    return RunOutcome.SUSPICIOUS if verdict.suspicious else result.outcome


def consecutive_bad(outcomes_newest_first: Iterable[RunOutcome]) -> int:
    """How many of the latest runs in a row were suspicious or failed."""
    count = 0
    for one in outcomes_newest_first:
        if one not in (RunOutcome.SUSPICIOUS, RunOutcome.FAILED):
            break
        count += 1
    return count


def last_good_count(runs_newest_first: Iterable[tuple[RunOutcome, int]]) -> int | None:
    """Items seen by the newest ok or partial run, from (outcome, items_seen) pairs."""
    for one, items in runs_newest_first:
        if one in (RunOutcome.OK, RunOutcome.PARTIAL):
            return items
    return None


@dataclass(frozen=True)
class HealthState:
    """A source's health in one word (green, amber, red, unknown) and why, in words."""

    state: str
    reason: str


def source_health(outcomes_newest_first: Sequence[RunOutcome], last_error: str | None = None,
                  red_after: int = RED_AFTER) -> HealthState:
    """The health shown for a source from its latest outcomes and the last run's error.

    A partial run is amber, not a step towards red: data still arrives (the same rule as
    ``tracker.health``); a suspicious or failed run is amber until ``red_after`` in a row.
    """
    if not outcomes_newest_first:
        return HealthState("unknown", "never run")
    cause = f": {last_error}" if last_error else ""
    bad = consecutive_bad(outcomes_newest_first)
    if bad:
        state = "red" if bad >= red_after else "amber"
        return HealthState(state, f"{bad} failed or suspicious run(s) in a row{cause}")
    if outcomes_newest_first[0] is RunOutcome.PARTIAL:
        return HealthState("amber", f"last run partial{cause}")
    return HealthState("green", "last run ok")
