"""What the public pages read: a tenant's profiles, its calls (filtered, paged) and one call.

**Tenants.** callwatch has no tenant table: a tenant is a cluster, named by the ``tenant``
of its subscribers (``subscribers.tenant``, from the subscriber files). A tenant exists
when at least one subscriber names it; its profiles are the profiles its subscribers
follow; its calls are the calls ever recorded as matching one of those profiles
(``matches``), less the pairs a profile's owner dismissed, so the web shows what the
cluster's members are alerted about and nothing else. An unknown tenant, and a call that is
not one of the tenant's, are both "not found": the page reveals nothing about other
clusters.

**Filters** (pure: :meth:`CallFilters.parse` takes the query string): status (default
open and forthcoming, as `calls list`), programme, a deadline window (the next cut-off
within N days), a smallest budget, source, eligible country and words to look for.
Statuses are the ones calls have at ``now``, and a call seen at several sources is listed
once (``tracker.dedupe``), as `calls list` does, and in its order (soonest next deadline
first, ``tracker.exports.rows.soonest_next_first``), so the page and the command agree.

**In the database.** A tenant's calls are tens of thousands at 50,000 stored calls, so
filtering, counting, ordering and cutting the page are SQL over the columns
``tracker.store.listing`` keeps beside each record; only the page's calls are parsed.
Duplicates are grouped by ``tracker.dedupe``'s rule on the filtered calls that share a key
with another source (``calls.shared``, a few), and the copies it folds into an earlier one
are left out of the count and the page.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracker.dedupe import group_keyed
from tracker.errors import NotFoundError
from tracker.models import CallRecord, CallStatus, Change
from tracker.store.calls import Store, StoredCall
from tracker.store.db import (
    call_keys_table,
    call_listing_table,
    call_search_table,
    calls_table,
    chunks,
    dismissals_table,
    matches_table,
    subscribers_table,
    subscriptions_table,
)
from tracker.store.listing import country_key, listing_order, next_deadline_sql, status_at_sql

#: calls on one page
PAGE_SIZE = 25
#: the deadline windows the filter offers, in days
WINDOWS = (7, 30, 90, 365)
#: the smallest topic budgets the filter offers, in EUR
BUDGETS = (100_000, 500_000, 1_000_000, 5_000_000, 10_000_000)
#: the status filter's choices; "current" is open and forthcoming, the default
STATUSES = ("current", "open", "forthcoming", "closed", "all")


class BadFilter(ValueError):
    """A query string value the calls page does not offer (answered with 400)."""


def _text(query: Mapping[str, str], name: str, limit: int = 100) -> str:
    """A free-text field with its runs of white space made one space, at most ``limit`` long."""
    return " ".join((query.get(name) or "").split())[:limit]


def _choice(query: Mapping[str, str], name: str, choices: Sequence[int],
            unit: str) -> int | None:
    value = query.get(name) or ""
    if value and (not value.isdigit() or int(value) not in choices):
        raise BadFilter(f"{name} must be one of {', '.join(map(str, choices))}{unit}, "
                        f"not {value!r}")
    return int(value) if value else None


@dataclass(frozen=True)
class CallFilters:
    """The calls page's filters and page number, as the query string gives them."""

    status: str = "current"
    programme: str = ""
    within_days: int | None = None
    page: int = 1
    budget_eur: int | None = None
    source: str = ""
    country: str = ""
    search: str = ""

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> CallFilters:
        """Read ``status``, ``programme``, ``within``, ``budget``, ``source``, ``country``,
        ``q`` and ``page``; BadFilter names the bad one.

        Empty values mean "any" (a form submits every field, chosen or not).
        """
        status = query.get("status") or "current"
        if status not in STATUSES:
            raise BadFilter(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        within = _choice(query, "within", WINDOWS, " days")
        budget = _choice(query, "budget", BUDGETS, " EUR")
        page = query.get("page") or "1"
        if not page.isdigit() or int(page) < 1 or len(page) > 6:
            raise BadFilter(f"page must be a number from 1, not {page!r}")
        country = _text(query, "country").upper()
        if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
            raise BadFilter(f"country must be a two-letter code such as PT or DE, not {country!r}")
        return cls(status=status, programme=_text(query, "programme"), within_days=within,
                   page=int(page), budget_eur=budget, source=_text(query, "source"),
                   country=country_key(country) if country else "",
                   search=_text(query, "q", 200))

    def statuses(self) -> set[CallStatus] | None:
        """The statuses wanted (None: all)."""
        if self.status == "all":
            return None
        if self.status == "current":
            return {CallStatus.OPEN, CallStatus.FORTHCOMING}
        return {CallStatus(self.status)}

    def query(self, page: int | None = None) -> dict[str, str]:
        """These filters as query parameters (defaults left out), at ``page`` if given."""
        params = {"status": self.status if self.status != "current" else "",
                  "programme": self.programme,
                  "within": str(self.within_days) if self.within_days else "",
                  "budget": str(self.budget_eur) if self.budget_eur else "",
                  "source": self.source, "country": self.country, "q": self.search,
                  "page": str(page or self.page) if (page or self.page) > 1 else ""}
        return {key: value for key, value in params.items() if value}

    def conditions(self, now: datetime) -> list[sa.ColumnElement[bool]]:
        """These filters as SQL on ``calls`` at ``now`` (the page number aside).

        A budget or a country the call does not state passes, as in a profile's filters
        (``tracker.rules.matcher``: unknown is not a mismatch).
        """
        c = call_listing_table.c
        where: list[sa.ColumnElement[bool]] = []
        wanted = self.statuses()
        if wanted is not None:
            where.append(status_at_sql(now).in_(sorted(s.value for s in wanted)))
            if CallStatus.CLOSED not in wanted:  # implied (every cut-off passed is closed),
                # and a plain column the planner can narrow by first
                where.append(sa.or_(c.final_deadline.is_(None), c.final_deadline >= now))
        if self.within_days is not None:  # a next cut-off ahead means a last one ahead
            shown = next_deadline_sql(now)
            where += [c.final_deadline >= now, shown >= now,
                      shown <= now + timedelta(days=self.within_days)]
        if self.programme:
            where.append(sa.func.lower(c.programme) == self.programme.lower())
        if self.budget_eur is not None:
            where.append(sa.or_(c.budget_eur.is_(None), c.budget_eur >= self.budget_eur))
        if self.source:
            where.append(c.source == self.source)
        if self.country:
            where.append(sa.or_(c.places == "", c.places.contains(f",{self.country},")))
        if self.search:
            where.append(c.call_id.in_(sa.select(call_search_table.c.call_id).where(
                call_search_table.c.text.contains(self.search.casefold(), autoescape=True))))
        return where


@dataclass(frozen=True)
class CallsPage:
    """One page of a tenant's calls: each entry is one call, with its other sources' copies."""

    tenant: str
    filters: CallFilters
    entries: Sequence[tuple[StoredCall, ...]]
    total: int
    page: int
    pages: int
    programmes: Sequence[str] = field(default_factory=tuple)
    sources: Sequence[str] = field(default_factory=tuple)


# -- the shell: reads -----------------------------------------------------------------------

def tenant_profiles(connection: Connection, tenant: str) -> list[str] | None:
    """The profiles ``tenant``'s subscribers follow, sorted; None when no subscriber names it."""
    known = connection.execute(sa.select(subscribers_table.c.id)
                               .where(subscribers_table.c.tenant == tenant).limit(1)).first()
    if known is None:
        return None
    return list(connection.execute(
        sa.select(subscriptions_table.c.profile).distinct()
        .join(subscribers_table, subscribers_table.c.id == subscriptions_table.c.subscriber_id)
        .where(subscribers_table.c.tenant == tenant)
        .order_by(subscriptions_table.c.profile)).scalars())


def _tenant_call_ids(profiles: Sequence[str]) -> sa.Select[tuple[str]]:
    """The ids of the calls matched for ``profiles`` and not dismissed for that profile."""
    dismissed = sa.exists().where(dismissals_table.c.profile == matches_table.c.profile,
                                  dismissals_table.c.call_id == matches_table.c.call_id)
    return (sa.select(matches_table.c.call_id)
            .where(matches_table.c.profile.in_(profiles), ~dismissed))


def _stored(row: sa.Row[tuple[object, ...]]) -> StoredCall:
    return StoredCall(record=CallRecord.model_validate(row.record), first_seen=row.first_seen,
                      last_seen=row.last_seen, last_changed=row.last_changed,
                      still_listed=row.still_listed)


def _profiles_or_404(connection: Connection, tenant: str) -> list[str]:
    profiles = tenant_profiles(connection, tenant)
    if profiles is None:
        raise NotFoundError(f"no tenant {tenant!r}")
    return profiles


def _one_pass(ids: sa.Select[tuple[str]], conditions: Sequence[sa.ColumnElement[bool]],
              now: datetime, offset: int, size: int) -> sa.CompoundSelect[Any]:
    """One statement over the tenant's filtered calls (a CTE read more than once, which
    PostgreSQL computes once): those another source lists too (``copy``), and those at
    positions ``offset`` + 1 … ``offset`` + ``size`` + the number of copies in `calls
    list`'s order (``page``), each with its position and the filtered total.

    The page is cut wide by the copies' count because the copies that fold into an earlier
    call (known only after ``tracker.dedupe`` groups them) leave the list and move the
    page's window; :func:`_fold` then cuts it exactly.
    """
    c = call_listing_table.c
    ranked = (sa.select(c.call_id, c.source, c.shared, c.final_deadline,
                        sa.func.row_number().over(
                            order_by=listing_order(next_deadline_sql(now))).label("position"),
                        sa.func.count().over().label("total"))
              .where(c.call_id.in_(ids), *conditions).cte("ranked"))
    r = ranked.c
    copies = sa.select(sa.func.count()).select_from(ranked).where(r.shared).scalar_subquery()
    columns = (r.call_id, r.source, r.final_deadline, r.position, r.total)
    return sa.union_all(
        sa.select(sa.literal("copy").label("kind"), *columns).where(r.shared),
        sa.select(sa.literal("page"), *columns).where(
            r.position > offset, r.position <= offset + size + copies))


def _groups(connection: Connection, copies: Sequence[Any]) -> dict[str, list[str]]:
    """``copies`` grouped by ``tracker.dedupe``'s rule in the store's order: each group of
    more than one by its first id (the one listed)."""
    in_store_order = sorted(copies, key=lambda row: (
        row.final_deadline is None, row.final_deadline or datetime.min.replace(tzinfo=UTC),
        row.call_id))  # listing.store_order
    keys: dict[str, list[str]] = {row.call_id: [] for row in in_store_order}
    for chunk in chunks(list(keys)):
        for call_id, key in connection.execute(
                sa.select(call_keys_table.c.call_id, call_keys_table.c.key)
                .where(call_keys_table.c.call_id.in_(chunk))):
            keys[call_id].append(key)
    groups = group_keyed([(row.source, keys[row.call_id]) for row in in_store_order])
    return {in_store_order[group[0]].call_id: [in_store_order[i].call_id for i in group]
            for group in groups if len(group) > 1}


def _fold(rows: Sequence[Any], folded: set[int], offset: int, size: int) -> list[str]:
    """The ids at places ``offset`` + 1 … ``offset`` + ``size`` of the list once the calls
    at positions ``folded`` leave it, from ``rows`` (ids with their positions before)."""
    page = []
    before = sorted(folded)
    for row in sorted(rows, key=lambda row: row.position):
        if row.position in folded:
            continue
        place = row.position - bisect.bisect_left(before, row.position)
        if offset < place <= offset + size:
            page.append(row.call_id)
    return page


def calls_page(engine: Engine, tenant: str, filters: CallFilters, now: datetime,
               size: int = PAGE_SIZE) -> CallsPage:
    """The page of ``tenant``'s calls that ``filters`` ask for (a page past the end shows
    the last one); NotFoundError for an unknown tenant."""
    with engine.connect() as connection:
        profiles = _profiles_or_404(connection, tenant)
        ids = _tenant_call_ids(profiles)
        conditions = filters.conditions(now)
        page = filters.page
        rows = connection.execute(_one_pass(ids, conditions, now, (page - 1) * size, size)).all()
        copies = [row for row in rows if row.kind == "copy"]
        groups = _groups(connection, copies)
        folded_ids = {call_id for group in groups.values() for call_id in group[1:]}
        folded = {row.position for row in copies if row.call_id in folded_ids}
        counted = [row.total for row in rows]
        if counted:
            total = counted[0] - len(folded)
        else:  # nothing on this page and no copies: none at all, or a page past the end
            c = call_listing_table.c
            total = connection.execute(sa.select(sa.func.count()).where(
                c.call_id.in_(ids), *conditions)).scalar_one()
        pages = max(1, -(-total // size))
        if page > pages:
            page = pages
            rows = connection.execute(_one_pass(ids, conditions, now, (page - 1) * size,
                                                size)).all()
        listed = _fold([row for row in rows if row.kind == "page"], folded, (page - 1) * size,
                       size)
        shown = {call_id: groups.get(call_id, [call_id]) for call_id in listed}
        wanted = [call_id for group in shown.values() for call_id in group]
        stored = {row.id: _stored(row).as_of(now) for row in connection.execute(
            sa.select(calls_table).where(calls_table.c.id.in_(wanted)))} if wanted else {}
        choices = connection.execute(sa.select(call_listing_table.c.programme,
                                               call_listing_table.c.source).distinct()
                                     .where(call_listing_table.c.call_id.in_(ids))).all()
    return CallsPage(
        tenant=tenant, filters=filters, total=total, page=page, pages=pages,
        entries=[tuple(stored[call_id] for call_id in group) for group in shown.values()],
        programmes=sorted({row.programme for row in choices if row.programme}),
        sources=sorted({row.source for row in choices}))


@dataclass(frozen=True)
class CallPage:
    """One of a tenant's calls: the call, why it matched each profile, and its history."""

    tenant: str
    call: StoredCall
    reasons: Mapping[str, Sequence[str]]
    history: Sequence[Change]


def call_page(engine: Engine, tenant: str, call_id: str, now: datetime) -> CallPage:
    """``call_id`` as ``tenant`` sees it; NotFoundError for an unknown tenant or a call that
    none of its profiles matched (the same answer: the URL tells nothing)."""
    with engine.connect() as connection:
        profiles = _profiles_or_404(connection, tenant)
        row = connection.execute(sa.select(calls_table).where(
            calls_table.c.id == call_id, calls_table.c.id.in_(_tenant_call_ids(profiles)))).first()
        if row is None:
            raise NotFoundError(f"no call {call_id!r} for tenant {tenant!r}")
        reasons = {profile: tuple(why or ()) for profile, why in connection.execute(
            sa.select(matches_table.c.profile, matches_table.c.reasons)
            .where(matches_table.c.call_id == call_id, matches_table.c.profile.in_(profiles))
            .order_by(matches_table.c.profile))}
    return CallPage(tenant=tenant, call=_stored(row).as_of(now), reasons=reasons,
                    history=Store(engine).history(call_id))
