"""Matching calls against profiles: a pure function from (calls, profiles, now) to ranked matches.

A call matches a profile when every one of these holds (README repeats them for users):

- it is not dismissed for the profile (feedback: a dismissed call never comes back);
- its programme is not in ``exclude_programmes`` (a programme's family counts: excluding
  "Cohesion Policy" excludes Interreg) and, when ``programmes`` is set, its programme or
  its family is listed (a call without a programme then fails);
- its status is in ``status``;
- filters on facts the call does not give pass, because unknown is not a mismatch: a
  call without an action type, deadline, budget, listed places or audience passes
  ``action_types``, ``deadline``, ``budget_eur``, ``countries`` and ``audience``.
  Otherwise: ``action_types`` match a word of the call's type (``RIA`` matches
  ``HORIZON-RIA``); ``deadline`` bounds the whole days from ``now`` to the next deadline;
  ``budget_eur`` bounds the topic budget; ``countries`` match when a code and a listed
  place contain one another (``ES`` and ``ES24``; ``EL`` and ``GR`` are the same);
  ``audience`` entries match a listed audience word for word, plurals allowed (``sme``
  matches ``SMEs``);
- the query matches (``tracker.rules.query``: exclusions always win) in the title,
  keywords and tags, or summary;
- its score reaches ``min_score``.

The score adds, for each distinct term outside any NOT that matches, the weight of the
best field it matches in: title 3, keywords and tags 2, summary 1. A profile with no such
term (no query, or only exclusions) scores 1 for every call that passes. Reasons say
which words matched where, then the programme, the next deadline, the budget and the
places and audience that matched: ``title: hydrogen; keywords: fuel cells; Horizon
Europe; next deadline in 41 days; budget EUR 4.0 M``. Matches are ordered by profile
name, then score (highest first), then next deadline (soonest first, none last), then id.

Two evaluators give the same answer. :func:`match_naive` checks every profile against
every call, one pair at a time. :func:`match_calls` tokenizes each call once, builds an
inverted index of words to bitsets of calls (Python ints), and evaluates each profile's
whole query and its categorical filters as set operations, so only the few calls that
survive are looked at one by one (deadline, budget, score, reasons). The naive one is the
test oracle and the benchmark baseline (``bench/bench_match.py``).
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from tracker.models import CallRecord
from tracker.programmes import lookup
from tracker.rules.profiles import Profile
from tracker.rules.query import (
    FIELD_WEIGHTS,
    And,
    Document,
    Node,
    Not,
    Or,
    Term,
    Word,
    tokenize,
)
from tracker.views import format_eur

_DAY = timedelta(days=1)
#: NUTS writes Greece EL where ISO 3166 writes GR; the UK is GB in ISO 3166.
_PLACE_ALIASES = {"EL": "GR", "UK": "GB"}


@dataclass(frozen=True)
class Match:
    """One call that matches one profile, with its score and why."""

    profile: str
    call_id: str
    score: int
    reasons: tuple[str, ...]
    call: CallRecord
    next_deadline: datetime | None
    #: set by RulesStore.record_matches: the first time this profile matched this call
    new: bool = False

    @property
    def explanation(self) -> str:
        """The reasons as one line, as alerts show them."""
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class PreparedCall:
    """A call with everything matching needs computed once: tokens, programme names, days."""

    call: CallRecord
    document: Document
    programmes: frozenset[str]
    next_deadline: datetime | None
    days: int | None
    action_words: tuple[str, ...]
    places: tuple[str, ...]
    audience: tuple[tuple[str, ...], ...]

    @property
    def id(self) -> str:
        return self.call.id


def _place_key(code: str) -> str:
    code = code.upper()
    return _PLACE_ALIASES.get(code[:2], code[:2]) + code[2:]


def prepare(call: CallRecord, now: datetime) -> PreparedCall:
    """Tokenize ``call`` once and work out the facts every filter looks at."""
    names: set[str] = set()
    if call.programme:
        programme = lookup(call.programme)
        names.add(programme.name if programme else call.programme)
        if programme is not None and programme.family:
            names.add(programme.family)
    deadline = call.next_deadline(now)
    return PreparedCall(
        call=call,
        document=Document.of(call.title, (*call.keywords, *call.tags), call.summary),
        programmes=frozenset(names),
        next_deadline=deadline,
        days=None if deadline is None else (deadline - now) // _DAY,
        action_words=tokenize(call.action_type or "")[0],
        places=tuple(_place_key(p) for p in (*call.countries, *call.regions)),
        audience=tuple(t for t in (tokenize(a)[0] for a in call.audience) if t),
    )


# -- the filters, one pure predicate each (shared by both evaluators) -----------------------

def _contains(haystack: Sequence[str], needle: Sequence[str], *, plurals: bool = False) -> bool:
    """Whether ``needle`` occurs as consecutive words of ``haystack``."""
    size = len(needle)
    if not size:
        return False
    for start in range(len(haystack) - size + 1):
        if all(
            word == want or (plurals and word in (want + "s", want + "es"))
            for word, want in zip(haystack[start:start + size], needle, strict=True)
        ):
            return True
    return False


def action_type_matches(wanted: str, action_words: Sequence[str]) -> bool:
    """``RIA`` matches a call of type ``HORIZON-RIA``."""
    return _contains(action_words, tokenize(wanted)[0])


def place_matches(wanted: str, place: str) -> bool:
    """A profile place and a call place match when one contains the other (ES and ES24)."""
    wanted = _place_key(wanted)
    return wanted.startswith(place) or place.startswith(wanted)


def audience_matches(wanted: str, audience: Sequence[str]) -> bool:
    """``sme`` matches ``SMEs``: the wanted words in order, plurals allowed."""
    return _contains(audience, tokenize(wanted)[0], plurals=True)


def programme_excluded(profile: Profile, call: PreparedCall) -> bool:
    return not call.programmes.isdisjoint(profile.exclude_programmes)


def passes_filters(profile: Profile, call: PreparedCall) -> bool:
    """Every filter of ``profile`` except the query and the score."""
    if programme_excluded(profile, call):
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
        place_matches(c, p) for c in profile.countries for p in call.places
    ):
        return False
    if profile.audience and call.audience and not any(
        audience_matches(a, entry) for a in profile.audience for entry in call.audience
    ):
        return False
    return _deadline_ok(profile, call) and _budget_ok(profile, call)


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


# -- score and reasons ----------------------------------------------------------------------

def _days_text(days: int) -> str:
    if days == 0:
        return "next deadline today"
    if days > 0:
        return f"next deadline in {days} day{'s' if days != 1 else ''}"
    return f"last deadline {-days} day{'s' if days != -1 else ''} ago"


def explain(profile: Profile, call: PreparedCall) -> tuple[int, tuple[str, ...]]:
    """The score of ``call`` for ``profile`` and the reasons, for a call that passed."""
    found: dict[str, list[str]] = {name: [] for name in FIELD_WEIGHTS}
    score = 0
    query = profile.parsed_query
    terms = query.positive_terms if query is not None else ()
    for term in terms:
        for text in call.document.fields:
            words = term.find(text)
            if words is not None:
                if words not in found[text.name]:
                    found[text.name].append(words)
                score += FIELD_WEIGHTS[text.name]
                break
    if not terms:
        score = 1
    reasons = [f"{name}: {', '.join(words)}" for name, words in found.items() if words]
    record = call.call
    if record.programme:
        reasons.append(record.programme)
    if call.days is not None:
        reasons.append(_days_text(call.days))
    if record.budget_eur is not None:
        reasons.append(f"budget {format_eur(record.budget_eur)}")
    if profile.countries and call.places:
        places = [p for p in (*record.countries, *record.regions)
                  if any(place_matches(c, _place_key(p)) for c in profile.countries)]
        reasons.append(f"eligible: {', '.join(places)}")
    if profile.audience and call.audience:
        wanted = [a for a in record.audience
                  if any(audience_matches(w, tokenize(a)[0]) for w in profile.audience)]
        reasons.append(f"audience: {', '.join(wanted)}")
    return score, tuple(reasons)


def _finish(profile: Profile, call: PreparedCall) -> Match | None:
    score, reasons = explain(profile, call)
    if score < profile.min_score:
        return None
    return Match(profile=profile.name, call_id=call.id, score=score, reasons=reasons,
                 call=call.call, next_deadline=call.next_deadline)


def rank(matches: Iterable[Match]) -> list[Match]:
    """Profile name, then score (highest first), next deadline (soonest, none last), call id."""
    return sorted(matches, key=lambda m: (
        m.profile, -m.score, m.next_deadline is None,
        m.next_deadline.timestamp() if m.next_deadline else 0.0, m.call_id,
    ))


def match_naive(
    calls: Iterable[CallRecord],
    profiles: Iterable[Profile],
    now: datetime,
    dismissed: Collection[tuple[str, str]] = frozenset(),
) -> list[Match]:
    """Every profile against every call, one pair at a time: the oracle and the baseline."""
    prepared = [prepare(call, now) for call in calls]
    matches: list[Match] = []
    for profile in profiles:
        query = profile.parsed_query
        for call in prepared:
            if (profile.name, call.id) in dismissed or not passes_filters(profile, call):
                continue
            if query is not None and not query.matches(call.document):
                continue
            found = _finish(profile, call)
            if found is not None:
                matches.append(found)
    return rank(matches)


# -- the set-based evaluator ----------------------------------------------------------------

_NONZERO = re.compile(rb"[^\x00]")
_BYTE_BITS = tuple(tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256))


def indices(bits: int) -> Iterator[int]:
    """The positions of the set bits of ``bits``, ascending."""
    data = bits.to_bytes((bits.bit_length() + 7) // 8, "little")
    for found in _NONZERO.finditer(data):
        base = found.start() * 8
        for bit in _BYTE_BITS[data[found.start()]]:
            yield base + bit


def _bitset(positions: Iterable[int], size: int) -> int:
    data = bytearray((size + 7) // 8)
    for position in positions:
        data[position >> 3] |= 1 << (position & 7)
    return int.from_bytes(data, "little")


class CallIndex:
    """The calls of one matching run, tokenized once and indexed as bitsets (bit i = call i).

    Word → calls containing it anywhere; statuses, programmes, action types, places and
    audiences → calls having them. Results of terms and per-value filters are cached, as
    thousands of profiles share words, countries and programmes.
    """

    def __init__(self, calls: Iterable[CallRecord], now: datetime) -> None:
        self.calls = [prepare(call, now) for call in calls]
        size = len(self.calls)
        self.size = size
        self.all = (1 << size) - 1
        self.position = {call.id: i for i, call in enumerate(self.calls)}
        postings: defaultdict[str, list[int]] = defaultdict(list)
        by_status: defaultdict[str, list[int]] = defaultdict(list)
        by_programme: defaultdict[str, list[int]] = defaultdict(list)
        by_action: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
        by_place: defaultdict[str, list[int]] = defaultdict(list)
        by_audience: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, call in enumerate(self.calls):
            document = call.document
            for word in document.title.words | document.keywords.words | document.summary.words:
                postings[word].append(i)
            by_status[call.call.status.value].append(i)
            for name in call.programmes:
                by_programme[name].append(i)
            by_action[call.action_words].append(i)
            for place in set(call.places):
                by_place[place].append(i)
            for entry in set(call.audience):
                by_audience[entry].append(i)
        self.words = {w: _bitset(p, size) for w, p in postings.items()}
        self.vocabulary = sorted(self.words)
        self.status = {s: _bitset(p, size) for s, p in by_status.items()}
        self.programme = {n: _bitset(p, size) for n, p in by_programme.items()}
        self.action = {a: _bitset(p, size) for a, p in by_action.items()}
        self.place = {c: _bitset(p, size) for c, p in by_place.items()}
        self.audience = {e: _bitset(p, size) for e, p in by_audience.items()}
        self.no_places = _bitset((i for i, c in enumerate(self.calls) if not c.places), size)
        self.no_audience = _bitset((i for i, c in enumerate(self.calls) if not c.audience), size)
        self._terms: dict[tuple[tuple[str, bool], ...], int] = {}
        self._prefixes: dict[str, int] = {}
        self._filters: dict[tuple[str, str], int] = {}

    # -- words and terms

    def _word(self, word: Word) -> int:
        if not word.prefix:
            return self.words.get(word.text, 0)
        cached = self._prefixes.get(word.text)
        if cached is None:
            start = bisect.bisect_left(self.vocabulary, word.text)
            end = bisect.bisect_left(self.vocabulary, word.text + "\U0010ffff", start)
            cached = reduce(int.__or__, (self.words[w] for w in self.vocabulary[start:end]), 0)
            self._prefixes[word.text] = cached
        return cached

    def term(self, term: Term) -> int:
        """Calls in which ``term`` matches: one word from the index, a phrase verified per call."""
        cached = self._terms.get(term.key)
        if cached is None:
            cached = reduce(int.__and__, (self._word(w) for w in term.words), self.all)
            if len(term.words) > 1 and cached:  # every word is there; are they consecutive?
                cached = _bitset((i for i in indices(cached)
                                  if term.matches(self.calls[i].document)), self.size)
            self._terms[term.key] = cached
        return cached

    def evaluate(self, node: Node) -> int:
        """The calls for which ``node`` is true, as a bitset."""
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Not):
            return self.all & ~self.evaluate(node.operand)
        if isinstance(node, And):
            result = self.all
            for operand in node.operands:
                result &= self.evaluate(operand)
                if not result:
                    break
            return result
        assert isinstance(node, Or)  # noqa: S101 - Node is a closed union
        return reduce(int.__or__, (self.evaluate(o) for o in node.operands), 0)

    # -- categorical filters

    def _cached(self, kind: str, value: str, compute: Iterable[int]) -> int:
        key = (kind, value)
        cached = self._filters.get(key)
        if cached is None:
            cached = reduce(int.__or__, compute, 0)
            self._filters[key] = cached
        return cached

    def _action_bits(self, wanted: str) -> int:
        return self._cached("action", wanted, (
            bits for words, bits in self.action.items() if action_type_matches(wanted, words)))

    def _place_bits(self, wanted: str) -> int:
        return self._cached("place", wanted, (
            bits for place, bits in self.place.items() if place_matches(wanted, place)))

    def _audience_bits(self, wanted: str) -> int:
        return self._cached("audience", wanted, (
            bits for entry, bits in self.audience.items() if audience_matches(wanted, entry)))

    def filters(self, profile: Profile) -> int:
        """The calls passing the profile's programme, status, type, place and audience filters."""
        result = reduce(int.__or__, (self.status.get(s.value, 0) for s in profile.status), 0)
        if profile.programmes:
            result &= reduce(int.__or__, (self.programme.get(p, 0) for p in profile.programmes), 0)
        for name in profile.exclude_programmes:
            result &= ~self.programme.get(name, 0)
        if profile.action_types:
            result &= self.action.get((), 0) | reduce(
                int.__or__, (self._action_bits(t) for t in profile.action_types), 0)
        if profile.countries:
            result &= self.no_places | reduce(
                int.__or__, (self._place_bits(c) for c in profile.countries), 0)
        if profile.audience:
            result &= self.no_audience | reduce(
                int.__or__, (self._audience_bits(a) for a in profile.audience), 0)
        return result

    def match(self, profile: Profile, dismissed: Collection[str] = ()) -> list[Match]:
        """The matches of one profile, unranked."""
        query = profile.parsed_query
        if query is None:
            candidates = self.all
        else:
            candidates = self.evaluate(query.root)
            for exclusion in query.exclusions:
                if not candidates:
                    break
                candidates &= ~self.evaluate(exclusion)
        if candidates:
            candidates &= self.filters(profile)
        for call_id in dismissed:
            position = self.position.get(call_id)
            if position is not None:
                candidates &= ~(1 << position)
        matches: list[Match] = []
        for i in indices(candidates):
            call = self.calls[i]
            if _deadline_ok(profile, call) and _budget_ok(profile, call):
                found = _finish(profile, call)
                if found is not None:
                    matches.append(found)
        return matches


def match_calls(
    calls: Iterable[CallRecord],
    profiles: Iterable[Profile],
    now: datetime,
    dismissed: Collection[tuple[str, str]] = frozenset(),
) -> list[Match]:
    """Ranked matches of every profile against ``calls`` (set-based; same answer as match_naive)."""
    index = CallIndex(calls, now)
    by_profile: defaultdict[str, list[str]] = defaultdict(list)
    for profile_name, call_id in dismissed:
        by_profile[profile_name].append(call_id)
    matches: list[Match] = []
    for profile in profiles:
        matches.extend(index.match(profile, by_profile.get(profile.name, ())))
    return rank(matches)
