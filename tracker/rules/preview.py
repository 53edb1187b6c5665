"""A profile's live preview: which stored calls a profile being written matches, and why.

Pure: :func:`preview_profile` takes the profile's YAML text, the calls (indexed once in
:class:`PreviewCalls`) and ``now``, and returns a :class:`Preview`. The text is validated
by ``parse_profile_text``, the function ``callwatch profiles check`` runs on every file,
so the preview, the save and the check agree on what is valid; the calls are matched by
the indexed matcher of ``tracker.rules.matcher`` (the cycle's engine), so the reasons are
the alerts' reasons.

The index is built once per set of calls (50,000 calls take seconds to tokenize; a query
then takes milliseconds): the web app keeps one and rebuilds it when the stored calls
change (``tracker.web.manage_profiles``). Only the first ``limit`` matches, by deadline,
are listed; all are counted, and so are the ones first seen in the last ``window``
(90 days): about how many alerts the profile would have sent.

Also here, :func:`query_help`: the query language's help, read from the docstring of
``tracker.rules.query`` and the profile model, so the editor's help cannot drift from
what the parser does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from itertools import islice

from tracker.rules import matcher as matcher_module
from tracker.rules import query as query_module
from tracker.rules.matcher import CallIndex, Match, _Ranges, indices
from tracker.rules.profiles import Profile, ProfileProblem, parse_profile_text
from tracker.store.calls import StoredCall

LISTED = 20
WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class PreviewCalls:
    """Stored calls, as of ``built_at``, indexed for matching once for many previews."""

    index: CallIndex
    #: when each call (by its position in the index) was first seen, as sorted ranges
    first_seen: _Ranges
    built_at: datetime

    @classmethod
    def of(cls, calls: Sequence[StoredCall], now: datetime) -> PreviewCalls:
        """Index ``calls`` with the status each has at ``now``."""
        index = CallIndex([c.as_of(now).record for c in calls], now)
        seen = {c.id: c.first_seen for c in calls}
        return cls(index, _Ranges([int(seen[c.id].timestamp()) for c in index.calls]), now)

    def __len__(self) -> int:
        return self.index.size

    def seen_since(self, since: datetime) -> int:
        """The calls first seen at ``since`` or later, as a bitset."""
        return self.first_seen.between(int(since.timestamp()), None)


@dataclass(frozen=True)
class Preview:
    """What a profile text would match: the first ``listed`` matches (soonest deadline
    first) with their reasons, how many match in all and how many of those were first seen
    in the last ``window``; or, when the text is not a valid profile, every problem."""

    profile: Profile | None
    problems: tuple[ProfileProblem, ...]
    listed: tuple[Match, ...] = ()
    total: int = 0
    recent: int = 0
    searched: int = 0
    window_days: int = WINDOW.days
    #: when the calls searched were read
    as_of: datetime | None = None


def preview_profile(text: str, calls: PreviewCalls, now: datetime, *,
                    dismissed: Collection[str] = (), limit: int = LISTED,
                    window: timedelta = WINDOW, origin: str = "the form") -> Preview:
    """The preview of the profile written as YAML ``text`` against ``calls``.

    ``dismissed``: ids of calls dismissed for this profile (they never match it).
    """
    profile, problems = parse_profile_text(text, origin)
    if profile is None:
        return Preview(None, tuple(problems), searched=len(calls), window_days=window.days)
    index = calls.index
    matching = _matching(index, profile, dismissed)
    if matching is None:  # a min_score above 1: only scoring every candidate tells
        found = index.match(profile, dismissed)
        matching = reduce(int.__or__, (1 << index.position[m.call_id] for m in found), 0)
    # describe only the calls listed: the first ``limit`` in index order, soonest deadline first
    listed = reduce(int.__or__, (1 << i for i in islice(indices(matching), limit)), 0)
    matches = index.match(profile, dismissed, within=listed) if listed else []
    return Preview(profile, (), tuple(matches), matching.bit_count(),
                   (matching & calls.seen_since(now - window)).bit_count(), len(calls),
                   window.days, calls.built_at)


def _matching(index: CallIndex, profile: Profile, dismissed: Collection[str]) -> int | None:
    """The calls ``profile`` matches, as a bitset, without scoring each one; None when only
    the scores can tell (``min_score`` above 1).

    A candidate scores the weights of the positive terms it contains (title 3, keywords 2,
    summary 1), or 1 when the query has none: with ``min_score`` at most 1 it matches when
    any positive term is in it, which is one OR of the terms' bitsets.
    """
    candidates = index.candidates(profile, dismissed)
    query = profile.parsed_query
    terms = query.positive_terms if query is not None else ()
    if profile.min_score <= 0 or (not terms and profile.min_score <= 1):
        return candidates
    if profile.min_score > 1:
        return None
    return candidates & reduce(int.__or__, (index.term(t) for t in terms), 0)


# -- the help ------------------------------------------------------------------------------

@dataclass(frozen=True)
class HelpText:
    """A paragraph of help as (is code, text) pieces: ``code`` in the docstring is code."""

    pieces: tuple[tuple[bool, str], ...]


def _pieces(text: str) -> HelpText:
    parts = re.split(r"``(.+?)``", " ".join(text.replace("**", "").split()))
    return HelpText(tuple((i % 2 == 1, part) for i, part in enumerate(parts) if part))


def _bullets(doc: str, after: str) -> tuple[HelpText, ...]:
    """The ``- `` bullets of the first list after the line holding ``after`` in ``doc``."""
    start = doc.index(after)
    block = doc[doc.index("\n- ", start) + 1:]
    block = block.split("\n\n", 1)[0]
    return tuple(_pieces(point) for point in re.split(r"^- ", block, flags=re.M) if point.strip())


def query_help() -> tuple[HelpText, ...]:
    """The semantics of the query language, one bullet a point, from ``tracker.rules.query``."""
    return _bullets(query_module.__doc__ or "", "Semantics")


def filter_help() -> tuple[HelpText, ...]:
    """When a call matches a profile (every filter), from ``tracker.rules.matcher``."""
    return _bullets(matcher_module.__doc__ or "", "A call matches a profile when")


def grammar() -> str:
    """The grammar the parser descends, from its docstring."""
    doc = query_module._Parser.__doc__ or ""  # the parser documents the grammar it descends
    return doc.split(":", 1)[1].strip().rstrip(".") if ":" in doc else doc


def field_help() -> tuple[tuple[str, str], ...]:
    """Each profile field and what its model says of it."""
    return tuple((name, info.description or "") for name, info in Profile.model_fields.items())
