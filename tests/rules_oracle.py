"""The matcher's test oracle: every profile against every call, one pair at a time.

``tracker.rules.matcher.match_calls`` answers with an inverted index over bitsets; this
module answers the same question the slow, obvious way, straight from the rules the
matcher's docstring states, so the tests (``tests/test_rules_matcher.py``) and the
benchmark (``bench/bench_match.py``, as its baseline) can check the fast one against it.
It lives with the tests, not in the product, because nothing in callwatch runs it.

It shares with the product only the per-call work and the wording: ``prepare`` (tokens,
programme names, days to the deadline), the small predicates for action types, places
and audiences, ``describe`` (the reasons) and ``rank``. Filters, query evaluation and
scoring are its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from tracker.models import CallRecord
from tracker.rules.matcher import (
    Match,
    PreparedCall,
    action_type_matches,
    audience_matches,
    describe,
    place_keys,
    place_matches,
    prepare,
    rank,
)
from tracker.rules.profiles import Profile
from tracker.rules.query import FIELD_WEIGHTS, Term


def _deadline_ok(profile: Profile, call: PreparedCall) -> bool:
    window = profile.deadline
    if window is None or call.days is None:
        return True
    if window.min_days is not None and call.days < window.min_days:
        return False
    return window.max_days is None or call.days <= window.max_days


def _budget_ok(profile: Profile, call: PreparedCall) -> bool:
    bounds, budget = profile.budget_eur, call.call.budget_eur
    if bounds is None or budget is None:
        return True
    if bounds.min is not None and budget < bounds.min:
        return False
    return bounds.max is None or budget <= bounds.max


def passes_filters(profile: Profile, call: PreparedCall) -> bool:
    """Every filter of ``profile`` except the query and the score."""
    if not call.programmes.isdisjoint(profile.exclude_programmes):
        return False
    if profile.programmes and call.programmes.isdisjoint(profile.programmes):
        return False
    if call.call.status not in profile.status:
        return False
    if profile.action_types and call.action_words and not any(
        action_type_matches(t, call.action_words) for t in profile.action_types
    ):
        return False
    if profile.countries and call.places and not any(
        place_matches(c, p) for c in place_keys(profile.countries) for p, _ in call.places
    ):
        return False
    if profile.audience and call.audience and not any(
        audience_matches(a, words) for a in profile.audience for words, _ in call.audience
    ):
        return False
    return _deadline_ok(profile, call) and _budget_ok(profile, call)


def explain(profile: Profile, call: PreparedCall, terms: Sequence[Term]) -> tuple[int, tuple[str, ...]]:
    """The score of ``call`` for ``profile`` and the reasons, for a call that passed."""
    score = 0 if terms else 1
    hits: list[tuple[str, str]] = []
    for term in terms:
        hit = call.document.best(term)
        if hit is not None:
            hits.append(hit)
            score += FIELD_WEIGHTS[hit[0]]
    return score, describe(profile, call, hits)


def match_naive(
    calls: Iterable[CallRecord],
    profiles: Iterable[Profile],
    now: datetime,
    dismissed: Collection[tuple[str, str]] = frozenset(),
) -> list[Match]:
    """Ranked matches, every profile against every call: what ``match_calls`` must return."""
    prepared = [prepare(call, now) for call in calls]
    matches: list[Match] = []
    for profile in profiles:
        query = profile.parsed_query
        terms = query.positive_terms if query is not None else ()
        for call in prepared:
            if (profile.name, call.id) in dismissed or not passes_filters(profile, call):
                continue
            if query is not None and not query.matches(call.document):
                continue
            score, reasons = explain(profile, call, terms)
            if score >= profile.min_score:
                matches.append(Match(profile.name, call.id, score, reasons, call.call,
                                     call.next_deadline))
    return rank(matches)
