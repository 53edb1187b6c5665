"""The same call seen at two sources, recognised so a listing shows it once with both sources.

ECCP mirrors portal topics, aggregators repeat Interreg calls, EIT and the Cascade Funding
Hub repeat portal cascade calls. Two records are the same call when they share a key:

- an **official identifier** (``HORIZON-CL5-2026-D3-01-01``, ``SMP-COSME-2024-CLUSTER-01``,
  ``DIGITAL-2025-AI-08``…): the record's topic identifier, or its call identifier when it
  has no topic (a call identifier alone is shared by every topic of that call);
- a **portal cascade id**, the number in ``…/competitive-calls-cs/<id>`` found in the url or
  the summary (ECCP and aggregators link to it);
- a **normalized url**: scheme, ``www.``, trailing slash, fragment, tracking parameters and
  case of the host ignored.

Two records of the same source are never merged: a source lists each of its calls once, so
two of its records sharing a key (topics of one call, cascade sub-calls sharing a portal id)
are different calls. Grouping is transitive otherwise (A~B and B~C puts A, B, C together).
Pure functions: records in, groups out; the store and the CLI decide what to show.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tracker.models import CallRecord

_ID = (r"(?:HORIZON|SMP|DIGITAL|EU4H|LIFE|CEF|ERASMUS|CREA|INNOVFUND|I3|EMFAF|CERV|EDF|EURATOM|"
       r"ESF|RFCS|UCPM|JTM|EIC|ERC|MSCA)(?:-[A-Z0-9]+){2,}")
#: An official EU call or topic identifier, as a whole string.
OFFICIAL_ID = re.compile(f"^{_ID}$")
#: The same, found inside a text (a page naming the topic it mirrors).
OFFICIAL_ID_IN_TEXT = re.compile(rf"\b{_ID}\b")
CASCADE_ID = re.compile(r"competitive-calls-cs/(\d+)")
_TRACKING = re.compile(r"^(?:utm_.*|fbclid|gclid|mc_[a-z]+|_ga|ref)$", re.IGNORECASE)


def normalize_url(url: str) -> str:
    """A url reduced to what identifies the page, for comparison only."""
    parts = urlsplit(url.strip())
    host = parts.netloc.casefold().removeprefix("www.")
    if host.endswith(":80") or host.endswith(":443"):
        host = host.rsplit(":", 1)[0]
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/") or "/"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not _TRACKING.match(k)))
    return urlunsplit(("https", host, path, query, ""))


def identity_keys(record: CallRecord) -> set[str]:
    """Every key by which ``record`` may be recognised at another source."""
    keys: set[str] = set()
    own_id = record.topic_identifier or record.call_identifier
    if own_id and OFFICIAL_ID.match(own_id.strip().upper()):
        keys.add("id:" + own_id.strip().upper())
    for text in (record.url or "", record.summary):
        keys.update("cs:" + number for number in CASCADE_ID.findall(text))
    if record.url:
        keys.add("url:" + normalize_url(record.url))
    return keys


@dataclass(frozen=True)
class CallGroup:
    """Records of one call at one or more sources; the first is the one to show."""

    records: tuple[CallRecord, ...]
    keys: frozenset[str]

    @property
    def primary(self) -> CallRecord:
        return self.records[0]

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources that list this call, in the order of the input."""
        return tuple(dict.fromkeys(r.source for r in self.records))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.records)


def group_duplicates(records: Sequence[CallRecord]) -> list[CallGroup]:
    """Group ``records`` so each call appears once; groups keep the input order.

    Give records in the order a listing wants them shown (e.g. portal first, or soonest
    deadline first): each group's primary record is its earliest in the input.
    """
    keyed = [(record.source, identity_keys(record)) for record in records]
    groups = []
    for indexes in group_keyed(keyed):
        grouped = tuple(records[i] for i in indexes)
        keys = frozenset(k for i in indexes for k in keyed[i][1])
        groups.append(CallGroup(grouped, keys))
    return groups


def group_keyed(items: Sequence[tuple[str, Collection[str]]]) -> list[list[int]]:
    """The rule of :func:`group_duplicates` on (source, identity keys) pairs: the positions
    of each group, each group in input order, groups by their first position.

    A listing that keeps the keys in its database (``tracker.store.listing``) groups with
    this without parsing records.
    """
    parent = list(range(len(items)))
    members: dict[int, list[int]] = {i: [i] for i in range(len(items))}
    sources: dict[int, set[str]] = {i: {source} for i, (source, _) in enumerate(items)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with_key: dict[str, int] = {}
    for index, (_, item_keys) in enumerate(items):
        for key in sorted(item_keys):
            if key not in first_with_key:
                first_with_key[key] = index
                continue
            a, b = find(first_with_key[key]), find(index)
            if a == b or sources[a] & sources[b]:
                continue  # one source never lists one call twice: these are different calls
            keep, gone = min(a, b), max(a, b)
            parent[gone] = keep
            members[keep].extend(members.pop(gone))
            sources[keep] |= sources.pop(gone)
    return [sorted(members[root]) for root in sorted(members)]


def duplicates_of(record: CallRecord, others: Iterable[CallRecord]) -> list[CallRecord]:
    """Records of other sources that are the same call as ``record`` (directly, by one key)."""
    keys = identity_keys(record)
    return [o for o in others if o.source != record.source and identity_keys(o) & keys]
