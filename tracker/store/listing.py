"""What listings filter and order calls by, kept in SQL-readable form beside each record.

A tenant's calls page at 50,000 stored calls cannot parse every record to judge its status
at ``now``, its next deadline, its budget or whether another source lists it too (about
8 s a page on SQLite, BENCHMARKS.md). So each write of a call also stores, from the record:

- ``call_listing``, a narrow row per call: source, programme, stated status, opening date,
  first and final cut-off, budget, ``places`` (the eligible countries as ``,DE,GR,``) and
  ``shared`` (one of its identity keys is another source's too);
- ``call_search``: what `calls list --search` looks in, casefolded;
- ``call_deadlines``: every cut-off, for "the next deadline at now" when ``now`` falls
  between the first and the last;
- ``call_keys``: the call's identity keys (``tracker.dedupe.identity_keys``).

Then :func:`status_at_sql` and :func:`next_deadline_sql` say in SQL what
``tracker.status.status_at`` and ``CallRecord.next_deadline`` say in Python, and a page is
filtered, counted, ordered and cut by the database. Deduplication stays the one pure rule
of ``tracker.dedupe``, run on the few calls whose ``shared`` is set: a call none of whose
keys another source holds is always alone in its group (two records of one source never
merge), so leaving it out of the grouping changes no group.

``listing_row`` is pure; ``write_listing`` and ``refresh_shared`` are the store's I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tracker.dedupe import identity_keys
from tracker.models import CallRecord, CallStatus
from tracker.store.db import (
    call_deadlines_table,
    call_keys_table,
    call_listing_table,
    call_search_table,
    chunks,
)

#: country codes read as one (``EL`` is Greece's code in NUTS, ``GR`` in ISO 3166), as the
#: matcher's places do (``tracker.rules.matcher``)
PLACE_ALIASES = {"EL": "GR", "UK": "GB"}


def country_key(code: str) -> str:
    """The country a place code names (``ES24`` → ``ES``, ``EL`` → ``GR``)."""
    country = code.strip().upper()[:2]
    return PLACE_ALIASES.get(country, country)


def search_text(record: CallRecord) -> str:
    """What a text search looks in: title, summary, id and keywords, casefolded."""
    return " ".join((record.title, record.summary, record.id, *record.keywords)).casefold()


def listing_row(record: CallRecord) -> dict[str, Any]:
    """``record``'s ``call_listing`` row (pure; ``shared`` is the store's to judge)."""
    countries = sorted({country_key(code) for code in (*record.countries, *record.regions)
                        if code.strip()})
    return {
        "call_id": record.id, "source": record.source, "programme": record.programme,
        "status": record.status.value, "opening_date": record.opening_date,
        "first_deadline": record.deadlines[0] if record.deadlines else None,
        "final_deadline": record.deadlines[-1] if record.deadlines else None,
        "budget_eur": record.budget_eur,
        "places": f",{','.join(countries)}," if countries else "",
    }


def write_listing(connection: Connection, records: Sequence[CallRecord]) -> None:
    """Store what listings read of ``records`` (new or rewritten): their listing rows,
    search text, cut-offs and identity keys, then ``shared`` for every call holding a key
    they had or have."""
    if not records:
        return
    ids = [record.id for record in records]
    touched: set[str] = set()
    for chunk in chunks(ids):
        touched.update(connection.execute(sa.select(call_keys_table.c.key)
                                          .where(call_keys_table.c.call_id.in_(chunk))).scalars())
        for table in (call_keys_table, call_deadlines_table, call_listing_table, call_search_table):
            connection.execute(table.delete().where(table.c.call_id.in_(chunk)))
    keys: list[dict[str, Any]] = [{"call_id": r.id, "key": key, "source": r.source}
                                  for r in records for key in sorted(identity_keys(r))]
    deadlines: list[dict[str, Any]] = [{"call_id": r.id, "at": at}
                                       for r in records for at in r.deadlines]
    listing = [listing_row(r) for r in records]
    search = [{"call_id": r.id, "text": search_text(r)} for r in records]
    for table, rows in ((call_listing_table, listing), (call_search_table, search),
                        (call_keys_table, keys), (call_deadlines_table, deadlines)):
        for part in chunks(rows):
            connection.execute(table.insert(), list(part))
    refresh_shared(connection, touched | {row["key"] for row in keys})


def refresh_shared(connection: Connection, keys: Iterable[str]) -> None:
    """Set ``call_listing.shared`` for the calls holding any of ``keys``: true when one of their
    keys is held by calls of two sources.

    Plain lookups by key and by call (both indexed), then one update per answer: a
    correlated ``EXISTS`` update was planned against the statistics of tables this very
    transaction was filling, and took minutes for 50,000 new calls.
    """
    k = call_keys_table.c
    holders: set[str] = set()
    for chunk in chunks(sorted(keys)):
        holders.update(connection.execute(sa.select(k.call_id).where(k.key.in_(chunk))).scalars())
    for some in chunks(sorted(holders)):
        held = connection.execute(sa.select(k.call_id, k.key).where(k.call_id.in_(some))).all()
        multi: set[str] = set()
        for part in chunks(sorted({key for _, key in held})):
            multi.update(connection.execute(
                sa.select(k.key).where(k.key.in_(part)).group_by(k.key)
                .having(sa.func.count(sa.distinct(k.source)) > 1)).scalars())
        shared = {call_id for call_id, key in held if key in multi}
        listing = call_listing_table.c
        for value, ids in ((True, sorted(shared)), (False, sorted(set(some) - shared))):
            if ids:
                connection.execute(call_listing_table.update()
                                   .where(listing.call_id.in_(ids)).values(shared=value))


# -- the rules of tracker.status and CallRecord.next_deadline, in SQL ----------------------

def status_at_sql(now: datetime) -> sa.ColumnElement[str]:
    """The status a call has at ``now`` (``tracker.status.status_at``), from its columns:
    every cut-off passed is closed; an opening date ahead is forthcoming; an opening date
    passed is open, unless the source says closed and no cut-off is known; else as stored."""
    c = call_listing_table.c
    closed, opened = CallStatus.CLOSED.value, CallStatus.OPEN.value
    return sa.case(
        (sa.and_(c.final_deadline.is_not(None), c.final_deadline < now), sa.literal(closed)),
        (sa.and_(c.opening_date.is_not(None), c.opening_date > now),
         sa.literal(CallStatus.FORTHCOMING.value)),
        (c.opening_date.is_not(None),
         sa.case((sa.and_(c.status == closed, c.final_deadline.is_(None)), sa.literal(closed)),
                 else_=sa.literal(opened))),
        else_=c.status)


def next_deadline_sql(now: datetime) -> sa.ColumnElement[datetime]:
    """The deadline a listing shows at ``now`` (``CallRecord.next_deadline``): the first
    cut-off at or after ``now``, else the last. Only a call with cut-offs on both sides of
    ``now`` needs its ``call_deadlines`` read."""
    c, d = call_listing_table.c, call_deadlines_table.c
    between = (sa.select(sa.func.min(d.at)).where(d.call_id == c.call_id, d.at >= now)
               .scalar_subquery())
    return sa.case((c.first_deadline >= now, c.first_deadline),
                   (c.final_deadline < now, c.final_deadline),
                   else_=between)


def store_order() -> list[sa.ColumnElement[Any]]:
    """The store's listing order (``Store.list_calls``): final deadline, none last, then id."""
    c = call_listing_table.c
    return [c.final_deadline.is_(None), c.final_deadline, c.call_id]


def listing_order(shown: sa.ColumnElement[datetime]) -> list[sa.ColumnElement[Any]]:
    """`calls list`'s order in SQL: by the deadline shown (none last), then the store's
    order, which breaks ties as the stable sort of
    ``tracker.exports.rows.soonest_next_first`` over the store's listing does."""
    return [shown.is_(None), shown, *store_order()]
