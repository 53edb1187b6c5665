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
open and forthcoming, as `calls list`), programme, and a deadline window (the next cut-off
within N days). Statuses are the ones calls have at ``now`` (``StoredCall.as_of``), and a
call seen at several sources is listed once (``tracker.exports.rows.deduplicated``), as
`calls list` does, and in its order (soonest next deadline first), so the page and the
command agree.

The database narrows by tenant, programme and stored status; the exact status at ``now``
and the deadline window are judged on the records, then the page is cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracker.errors import NotFoundError
from tracker.exports.rows import deduplicated
from tracker.models import CallRecord, CallStatus, Change
from tracker.store.calls import Store, StoredCall
from tracker.store.db import (
    calls_table,
    dismissals_table,
    matches_table,
    subscribers_table,
    subscriptions_table,
)

#: calls on one page
PAGE_SIZE = 25
#: the deadline windows the filter offers, in days
WINDOWS = (7, 30, 90, 365)
#: the status filter's choices; "current" is open and forthcoming, the default
STATUSES = ("current", "open", "forthcoming", "closed", "all")


class BadFilter(ValueError):
    """A query string value the calls page does not offer (answered with 400)."""


@dataclass(frozen=True)
class CallFilters:
    """The calls page's filters and page number, as the query string gives them."""

    status: str = "current"
    programme: str = ""
    within_days: int | None = None
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> CallFilters:
        """Read ``status``, ``programme``, ``within`` and ``page``; BadFilter names the bad one.

        Empty values mean "any" (a form submits every field, chosen or not).
        """
        status = query.get("status") or "current"
        if status not in STATUSES:
            raise BadFilter(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        within = query.get("within") or ""
        if within and (not within.isdigit() or int(within) not in WINDOWS):
            raise BadFilter(f"within must be one of {', '.join(map(str, WINDOWS))} days, "
                            f"not {within!r}")
        page = query.get("page") or "1"
        if not page.isdigit() or int(page) < 1 or len(page) > 6:
            raise BadFilter(f"page must be a number from 1, not {page!r}")
        programme = " ".join((query.get("programme") or "").split())[:100]
        return cls(status=status, programme=programme,
                   within_days=int(within) if within else None, page=int(page))

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
                  "page": str(page or self.page) if (page or self.page) > 1 else ""}
        return {key: value for key, value in params.items() if value}


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


def select_page(calls: Sequence[StoredCall], filters: CallFilters, now: datetime,
                size: int = PAGE_SIZE) -> tuple[list[tuple[StoredCall, ...]], int, int, int]:
    """Filter ``calls`` (in the store's order) at ``now``, deduplicate, order by the next
    deadline shown (as `calls list`: none last, ties in the store's order), and cut the page.

    Returns (entries on the page, total entries, the page shown, number of pages); a page
    past the end shows the last one.
    """
    wanted = filters.statuses()
    current = [call.as_of(now) for call in calls]
    if wanted is not None:
        current = [call for call in current if call.record.status in wanted]
    if filters.within_days is not None:
        until = now + timedelta(days=filters.within_days)
        current = [call for call in current
                   if (deadline := call.record.next_deadline(now)) is not None
                   and now <= deadline <= until]

    def shown_deadline(entry: tuple[StoredCall, ...]) -> tuple[bool, datetime]:
        deadline = entry[0].record.next_deadline(now)
        return deadline is None, deadline or now

    # `calls list`'s order (tracker.cli.calls.soonest_next_first, which the web may not
    # import: tracker.cli imports tracker.web); a test checks the two agree
    entries = sorted(deduplicated(current), key=shown_deadline)
    pages = max(1, -(-len(entries) // size))
    page = min(filters.page, pages)
    return entries[(page - 1) * size : page * size], len(entries), page, pages


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


def calls_page(engine: Engine, tenant: str, filters: CallFilters, now: datetime) -> CallsPage:
    """The page of ``tenant``'s calls that ``filters`` ask for; NotFoundError for an unknown tenant."""
    with engine.connect() as connection:
        profiles = _profiles_or_404(connection, tenant)
        ids = _tenant_call_ids(profiles)
        query = sa.select(calls_table).where(calls_table.c.id.in_(ids))
        wanted = filters.statuses()
        if wanted is not None:  # time moves forthcoming and open calls: read those to judge
            stored = wanted | {CallStatus.FORTHCOMING, CallStatus.OPEN}
            query = query.where(calls_table.c.status.in_(sorted(s.value for s in stored)))
        if filters.within_days is not None:  # a next cut-off ahead means a last one ahead
            query = query.where(calls_table.c.final_deadline >= now)
        if filters.programme:
            query = query.where(sa.func.lower(calls_table.c.programme) == filters.programme.lower())
        query = query.order_by(calls_table.c.final_deadline.is_(None),
                               calls_table.c.final_deadline, calls_table.c.id)
        calls = [_stored(row) for row in connection.execute(query)]
        programmes = list(connection.execute(
            sa.select(calls_table.c.programme).distinct()
            .where(calls_table.c.id.in_(ids), calls_table.c.programme.is_not(None))
            .order_by(calls_table.c.programme)).scalars())
    entries, total, page, pages = select_page(calls, filters, now)
    return CallsPage(tenant=tenant, filters=filters, entries=entries, total=total, page=page,
                     pages=pages, programmes=programmes)


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
