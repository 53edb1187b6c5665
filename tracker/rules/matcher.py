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

:func:`match_calls` tokenizes each call once (:func:`prepare`), builds an inverted index of
words to bitsets of calls (Python ints), and evaluates each profile's whole query and
every filter as set operations (deadline and budget windows through cumulative bitsets
over the calls sorted by days and by budget), so only the calls that match are looked at
one by one, for their score and reasons. Its test oracle, every profile against every
call one pair at a time, lives with the tests (``tests/rules_oracle.py``) and is the
benchmark's baseline (``bench/bench_match.py``).
"""

from __future__ import annotations

import bisect
import functools
import operator
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from typing import Any, NamedTuple

from tracker.models import CallRecord
from tracker.money import format_eur
from tracker.programmes import lookup
from tracker.rules.gc_pause import cycle_collection_paused
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

_DAY = timedelta(days=1)
#: NUTS writes Greece EL where ISO 3166 writes GR; the UK is GB in ISO 3166.
_PLACE_ALIASES = {"EL": "GR", "UK": "GB"}


class Match(NamedTuple):
    """One call that matches one profile, with its score and why.

    A NamedTuple rather than a frozen dataclass: a run can make hundreds of thousands of
    them, and a tuple is several times cheaper to build.
    """

    profile: str
    call_id: str
    score: int
    reasons: tuple[str, ...]
    call: CallRecord
    next_deadline: datetime | None
    #: set from the recorded matches (``planning.match_changes``, ``RulesStore.flag_new``):
    #: the first time this profile matched this call
    new: bool = False

    @property
    def explanation(self) -> str:
        """The reasons as one line, as alerts show them."""
        return "; ".join(self.reasons)


#: Match(*values) without the generated __new__: a C call, for the hundreds of thousands
_new_match: Callable[[tuple[Any, ...]], Match] = functools.partial(tuple.__new__, Match)


@dataclass(frozen=True)
class PreparedCall:
    """A call with everything matching needs computed once: tokens, programme names, days."""

    id: str
    call: CallRecord
    document: Document
    programmes: frozenset[str]
    next_deadline: datetime | None
    days: int | None
    action_words: tuple[str, ...]
    #: eligible countries and regions: (comparable code, code as the call gives it)
    places: tuple[tuple[str, str], ...]
    #: target audiences: (folded words, as the call gives it)
    audience: tuple[tuple[tuple[str, ...], str], ...]
    #: the reasons that depend on the call alone: programme, next deadline, budget
    facts: tuple[str, ...]
    #: reasons that depend on the call and a profile's countries or audience, by those
    memo: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict, compare=False, repr=False)


def _place_key(code: str) -> str:
    code = code.upper()
    return _PLACE_ALIASES.get(code[:2], code[:2]) + code[2:]


@functools.lru_cache(maxsize=4096)
def place_keys(codes: tuple[str, ...]) -> tuple[str, ...]:
    """A profile's countries and regions as comparable codes (``EL`` reads ``GR``)."""
    return tuple(_place_key(c) for c in codes)


@functools.lru_cache(maxsize=4096)
def _words_of(text: str) -> tuple[str, ...]:
    return tokenize(text)[0]


def _days_text(days: int) -> str:
    if days == 0:
        return "next deadline today"
    if days > 0:
        return f"next deadline in {days} day{'s' if days != 1 else ''}"
    return f"last deadline {-days} day{'s' if days != -1 else ''} ago"


def prepare(call: CallRecord, now: datetime) -> PreparedCall:
    """Tokenize ``call`` once and work out the facts every filter looks at."""
    names: set[str] = set()
    if call.programme:
        programme = lookup(call.programme)
        names.add(programme.name if programme else call.programme)
        if programme is not None and programme.family:
            names.add(programme.family)
    deadline = call.next_deadline(now)
    days = None if deadline is None else (deadline - now) // _DAY
    facts = [call.programme] if call.programme else []
    if days is not None:
        facts.append(_days_text(days))
    if call.budget_eur is not None:
        facts.append(f"budget {format_eur(call.budget_eur)}")
    audience = ((_words_of(a), a) for a in call.audience)
    return PreparedCall(
        id=call.id,
        call=call,
        document=Document.of(call.title, (*call.keywords, *call.tags), call.summary),
        programmes=frozenset(names),
        next_deadline=deadline,
        days=days,
        action_words=_words_of(call.action_type or ""),
        places=tuple((_place_key(p), p) for p in (*call.countries, *call.regions)),
        audience=tuple((words, a) for words, a in audience if words),
        facts=tuple(facts),
    )


# -- the filters, one pure predicate each (shared by both evaluators) -----------------------

def _contains(haystack: Sequence[str], needle: Sequence[str], *, plurals: bool = False) -> bool:
    """Whether ``needle`` occurs as consecutive words of ``haystack``."""
    size = len(needle)
    if not size:
        return False
    if size == 1:
        want = needle[0]
        return want in haystack or (plurals and (want + "s" in haystack or want + "es" in haystack))
    for start in range(len(haystack) - size + 1):
        if all(
            word == want or (plurals and word in (want + "s", want + "es"))
            for word, want in zip(haystack[start:start + size], needle, strict=True)
        ):
            return True
    return False


def action_type_matches(wanted: str, action_words: Sequence[str]) -> bool:
    """``RIA`` matches a call of type ``HORIZON-RIA``."""
    return _contains(action_words, _words_of(wanted))


def place_matches(wanted: str, place: str) -> bool:
    """A profile place and a call place (both comparable codes) match when one contains the other."""
    return wanted.startswith(place) or place.startswith(wanted)


def audience_matches(wanted: str, audience: Sequence[str]) -> bool:
    """``sme`` matches ``SMEs``: the wanted words in order, plurals allowed."""
    return _contains(audience, _words_of(wanted), plurals=True)


# -- score and reasons ----------------------------------------------------------------------

_FIELDS = tuple(FIELD_WEIGHTS)


def describe(profile: Profile, call: PreparedCall, hits: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The reasons: the (field, words) ``hits`` of the terms in query order, then the facts."""
    if len(hits) == 1:
        reasons = [f"{hits[0][0]}: {hits[0][1]}"]
    elif hits:
        by_field: dict[str, list[str]] = {}
        for name, words in hits:
            listed = by_field.get(name)
            if listed is None:
                by_field[name] = [words]
            elif words not in listed:
                listed.append(words)
        reasons = [f"{name}: {', '.join(by_field[name])}" for name in _FIELDS if name in by_field]
    else:
        reasons = []
    reasons.extend(call.facts)
    if profile.countries and call.places:
        key = ("eligible", profile.countries)
        text = call.memo.get(key)
        if text is None:
            wanted = place_keys(profile.countries)
            places = [written for place, written in call.places
                      if any(place_matches(c, place) for c in wanted)]
            text = call.memo[key] = f"eligible: {', '.join(places)}"
        reasons.append(text)
    if profile.audience and call.audience:
        key = ("audience", profile.audience)
        text = call.memo.get(key)
        if text is None:
            listed_audience = [written for words, written in call.audience
                               if any(audience_matches(a, words) for a in profile.audience)]
            text = call.memo[key] = f"audience: {', '.join(listed_audience)}"
        reasons.append(text)
    return tuple(reasons)


def _deadline_order(call: PreparedCall) -> tuple[bool, float, str]:
    deadline = call.next_deadline
    return (deadline is None, deadline.timestamp() if deadline else 0.0, call.id)


_SCORE = operator.itemgetter(2)  # Match.score


def rank(matches: Iterable[Match]) -> list[Match]:
    """Profile name, then score (highest first), next deadline (soonest, none last), call id."""
    return sorted(matches, key=lambda m: (
        m.profile, -m.score, m.next_deadline is None,
        m.next_deadline.timestamp() if m.next_deadline else 0.0, m.call_id,
    ))


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


class _Ranges:
    """Calls with a known number, sorted by it, with the bitset of every sorted prefix.

    The calls whose number lies in [low, high] are then two bisections and one XOR away.
    """

    def __init__(self, values: Sequence[int | None]) -> None:
        ordered = sorted((v, i) for i, v in enumerate(values) if v is not None)
        self.values = [v for v, _ in ordered]
        self.prefix = [0]
        bits = 0
        for _, i in ordered:
            bits |= 1 << i
            self.prefix.append(bits)
        self.unknown = _bitset((i for i, v in enumerate(values) if v is None), len(values))

    def between(self, low: int | None, high: int | None) -> int:
        """Calls whose number is in [low, high] (None: unbounded), and those without one."""
        start = 0 if low is None else bisect.bisect_left(self.values, low)
        end = len(self.values) if high is None else bisect.bisect_right(self.values, high)
        inside = self.prefix[end] ^ self.prefix[start] if end > start else 0
        return inside | self.unknown


class CallIndex:
    """The calls of one matching run, tokenized once and indexed as bitsets (bit i = call i).

    Word → calls containing it anywhere; statuses, programmes, action types, places and
    audiences → calls having them; days to the next deadline and budgets → sorted ranges.
    Results of terms and filters are cached, as thousands of profiles share words,
    countries, programmes and windows.
    """

    def __init__(self, calls: Iterable[CallRecord], now: datetime) -> None:
        # in ranking order (soonest deadline, none last, then id), so that each profile's
        # matches only need a stable sort by score
        self.calls = sorted((prepare(call, now) for call in calls), key=_deadline_order)
        self.documents = [call.document for call in self.calls]
        size = len(self.calls)
        self.size = size
        self.all = (1 << size) - 1
        self.position = {call.id: i for i, call in enumerate(self.calls)}
        postings: list[defaultdict[str, list[int]]] = [defaultdict(list) for _ in _FIELDS]
        by_status: defaultdict[str, list[int]] = defaultdict(list)
        by_programme: defaultdict[str, list[int]] = defaultdict(list)
        by_action: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
        by_place: defaultdict[str, list[int]] = defaultdict(list)
        by_audience: defaultdict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, call in enumerate(self.calls):
            for table, text in zip(postings, call.document.fields, strict=True):
                for word in text.words:
                    table[word].append(i)
            by_status[call.call.status.value].append(i)
            for name in call.programmes:
                by_programme[name].append(i)
            by_action[call.action_words].append(i)
            for place in {key for key, _ in call.places}:
                by_place[place].append(i)
            for entry in {words for words, _ in call.audience}:
                by_audience[entry].append(i)
        #: per field (title, keywords, summary): word → calls with the word in that field
        self.field_words = [{w: _bitset(p, size) for w, p in table.items()} for table in postings]
        self.vocabulary = sorted(set().union(*self.field_words))
        self.status = {s: _bitset(p, size) for s, p in by_status.items()}
        self.programme = {n: _bitset(p, size) for n, p in by_programme.items()}
        self.action = {a: _bitset(p, size) for a, p in by_action.items()}
        self.place = {c: _bitset(p, size) for c, p in by_place.items()}
        self.audience = {e: _bitset(p, size) for e, p in by_audience.items()}
        self.no_places = _bitset((i for i, c in enumerate(self.calls) if not c.places), size)
        self.no_audience = _bitset((i for i, c in enumerate(self.calls) if not c.audience), size)
        self.days = _Ranges([c.days for c in self.calls])
        self.budgets = _Ranges([c.call.budget_eur for c in self.calls])
        self._terms: dict[str, tuple[int, int, int]] = {}
        self._prefixes: dict[str, tuple[int, int, int]] = {}
        self._filters: dict[tuple[object, ...], int] = {}

    # -- words and terms

    def _word(self, word: Word) -> tuple[int, int, int]:
        """Calls with ``word`` in the title, in the keywords, in the summary."""
        if not word.prefix:
            in_title, in_keywords, in_summary = self.field_words
            return (in_title.get(word.text, 0), in_keywords.get(word.text, 0),
                    in_summary.get(word.text, 0))
        cached = self._prefixes.get(word.text)
        if cached is None:
            start = bisect.bisect_left(self.vocabulary, word.text)
            end = bisect.bisect_left(self.vocabulary, word.text + "\U0010ffff", start)
            found = self.vocabulary[start:end]
            title, keywords, summary = (
                reduce(int.__or__, (table.get(w, 0) for w in found), 0) for table in self.field_words)
            cached = self._prefixes[word.text] = (title, keywords, summary)
        return cached

    def term_fields(self, term: Term) -> tuple[int, int, int]:
        """Calls in which ``term`` matches in the title, the keywords, the summary.

        A word comes from the index; for a phrase the index gives the calls with all its
        words in the field, and each of those is checked for the words being consecutive.
        """
        cached = self._terms.get(term.key)
        if cached is None:
            per_word = [self._word(w) for w in term.words]
            fields = [reduce(int.__and__, (w[f] for w in per_word)) for f in range(len(_FIELDS))]
            if len(term.words) > 1:
                fields = [
                    _bitset((i for i in indices(bits)
                             if term.find(self.calls[i].document.fields[f]) is not None), self.size)
                    if bits else 0
                    for f, bits in enumerate(fields)
                ]
            title, keywords, summary = fields
            cached = self._terms[term.key] = (title, keywords, summary)
        return cached

    def term(self, term: Term) -> int:
        """Calls in which ``term`` matches anywhere."""
        title, keywords, summary = self.term_fields(term)
        return title | keywords | summary

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

    # -- filters

    def _cached(self, key: tuple[object, ...], compute: Callable[[], int]) -> int:
        cached = self._filters.get(key)
        if cached is None:
            cached = self._filters[key] = compute()
        return cached

    def _any(self, kind: str, wanted: Sequence[str], table: Mapping[Any, int], unknown: int,
             accepts: Callable[[str, Any], bool]) -> int:
        """Calls that give no value of ``kind`` or a value one of ``wanted`` accepts."""
        result = unknown
        for value in wanted:
            cached = self._filters.get((kind, value))
            if cached is None:
                cached = self._filters[(kind, value)] = reduce(
                    int.__or__, (bits for key, bits in table.items() if accepts(value, key)), 0)
            result |= cached
        return result

    def filters(self, profile: Profile) -> int:
        """The calls passing every filter of the profile but the query and the score."""
        result = self._cached(("status", *profile.status), lambda: reduce(
            int.__or__, (self.status.get(s.value, 0) for s in profile.status), 0))
        if profile.programmes:
            result &= self._cached(("programmes", *profile.programmes), lambda: reduce(
                int.__or__, (self.programme.get(p, 0) for p in profile.programmes), 0))
        for name in profile.exclude_programmes:
            result &= ~self.programme.get(name, 0)
        if profile.action_types and result:
            result &= self._any("action", profile.action_types, self.action,
                                self.action.get((), 0), action_type_matches)
        if profile.countries and result:
            result &= self._any("place", place_keys(profile.countries), self.place,
                                self.no_places, place_matches)
        if profile.audience and result:
            result &= self._any("audience", profile.audience, self.audience, self.no_audience,
                                audience_matches)
        if profile.deadline is not None and result:
            low, high = profile.deadline.min_days, profile.deadline.max_days
            result &= self._cached(("days", low, high), lambda: self.days.between(low, high))
        if profile.budget_eur is not None and result:
            low, high = profile.budget_eur.min, profile.budget_eur.max
            result &= self._cached(("budget", low, high), lambda: self.budgets.between(low, high))
        return result

    def candidates(self, profile: Profile, dismissed: Collection[str] = ()) -> int:
        """The calls that pass the profile's query and filters and are not dismissed."""
        query = profile.parsed_query
        if query is None:
            result = self.all
        else:
            result = self.evaluate(query.root)
            for exclusion in query.exclusions:
                if not result:
                    break
                result &= ~self.evaluate(exclusion)
        if result:
            result &= self.filters(profile)
        for call_id in dismissed:
            position = self.position.get(call_id)
            if position is not None:
                result &= ~(1 << position)
        return result

    def match(self, profile: Profile, dismissed: Collection[str] = (),
              within: int | None = None) -> list[Match]:
        """The matches of one profile, unranked; only among the calls of the bitset
        ``within`` when given (the live preview describes only the calls it lists).

        Terms are looked up in the candidates they occur in (one AND per term), never in
        the others, and each (term, call) lookup is cached in the call's document.
        """
        candidates = self.candidates(profile, dismissed)
        if within is not None:
            candidates &= within
        if not candidates:
            return []
        query = profile.parsed_query
        terms = query.positive_terms if query is not None else ()
        calls, documents = self.calls, self.documents
        hits: dict[int, list[tuple[str, str]]] = {}
        for term in terms:
            found = candidates & self.term(term)
            if not found:
                continue
            key = term.key
            for i in indices(found):
                document = documents[i]
                hit = document.found.get(key) or document.best(term)
                assert hit is not None  # noqa: S101 - the index and the text agree
                listed = hits.get(i)
                if listed is None:
                    hits[i] = [hit]
                else:
                    listed.append(hit)
        base = 0 if terms else 1
        name, minimum = profile.name, profile.min_score
        matches: list[Match] = []
        for i in indices(candidates):
            listed = hits.get(i)
            score = base
            if listed is not None:
                for field_name, _ in listed:
                    score += FIELD_WEIGHTS[field_name]
            if score >= minimum:
                call = calls[i]
                matches.append(_new_match((name, call.id, score, describe(profile, call, listed or ()),
                                           call.call, call.next_deadline, False)))
        return matches


def match_calls(
    calls: Iterable[CallRecord],
    profiles: Iterable[Profile],
    now: datetime,
    dismissed: Collection[tuple[str, str]] = frozenset(),
) -> list[Match]:
    """Ranked matches of every profile against ``calls`` (the oracle in tests/rules_oracle.py agrees)."""
    index = CallIndex(calls, now)
    by_profile: defaultdict[str, list[str]] = defaultdict(list)
    for profile_name, call_id in dismissed:
        by_profile[profile_name].append(call_id)
    ordered = sorted(profiles, key=lambda p: p.name)
    matches: list[Match] = []
    with cycle_collection_paused():  # the tight loop only: see tracker.rules.gc_pause
        for profile in ordered:
            found = index.match(profile, by_profile.get(profile.name, ()))
            found.sort(key=_SCORE, reverse=True)  # stable: deadline order within a score
            matches.extend(found)
    if len({p.name for p in ordered}) < len(ordered):  # blocks of one name to interleave
        return rank(matches)
    return matches
