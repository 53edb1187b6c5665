"""The admins' list of every tenant (``/admin/tenants``): members, profiles, open calls and
the last delivery of each, linking to the tenant's manager pages.

Only an admin sees it (``manage.admin_of``; a manager gets 403): a manager sees only their
own tenant, an admin all of them (``accounts.User.sees``). A tenant is any name a
subscriber or an account names. Its profiles are those its members follow, as on the
tenant's other pages (``browse.tenant_profiles``); its open calls are the calls matched
for them and not dismissed for that profile, open now (each source's copy counted: the
calls page folds copies, this count does not).

Four grouped queries for every tenant together (700 tenants are one page), then
:func:`summarize`, pure, puts them side by side.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tracker.delivery.outbox import SENT
from tracker.store.db import (
    call_listing_table,
    deliveries_table,
    dismissals_table,
    matches_table,
    subscribers_table,
    subscriptions_table,
    users_table,
)
from tracker.web import browse
from tracker.web.accounts import User
from tracker.web.app import DISPLAY_ZONE, Pages
from tracker.web.manage import manage_url


@dataclass(frozen=True)
class TenantSummary:
    tenant: str
    members: int
    profiles: int
    open_calls: int
    last_delivery: datetime | None


def summarize(tenants: Iterable[str], members: Mapping[str, int],
              followed: Iterable[tuple[str, str]], open_calls: Iterable[tuple[str, str]],
              last_delivery: Mapping[str, datetime]) -> list[TenantSummary]:
    """One summary per tenant, by name (pure): ``followed`` is (tenant, profile) pairs,
    ``open_calls`` (profile, call id) pairs; a call two of a tenant's profiles match counts
    once for it."""
    profiles: dict[str, set[str]] = defaultdict(set)
    for tenant, profile in followed:
        profiles[tenant].add(profile)
    calls: dict[str, set[str]] = defaultdict(set)
    for profile, call_id in open_calls:
        calls[profile].add(call_id)
    return [TenantSummary(tenant=tenant, members=members.get(tenant, 0),
                          profiles=len(profiles[tenant]),
                          open_calls=len(set().union(*(calls[p] for p in profiles[tenant]))),
                          last_delivery=last_delivery.get(tenant))
            for tenant in sorted(set(tenants))]


def tenant_summaries(engine: Engine, now: datetime) -> list[TenantSummary]:
    """Every tenant's summary at ``now``."""
    s = subscribers_table.c
    open_now = browse.CallFilters.parse({"status": "open"}).conditions(now)
    dismissed = sa.exists().where(dismissals_table.c.profile == matches_table.c.profile,
                                  dismissals_table.c.call_id == matches_table.c.call_id)
    with engine.connect() as connection:
        members: dict[str, int] = dict(connection.execute(
            sa.select(s.tenant, sa.func.count()).where(s.tenant.is_not(None))
            .group_by(s.tenant)).all())
        named = set(connection.execute(sa.select(users_table.c.tenant).distinct()
                                       .where(users_table.c.tenant.is_not(None))).scalars())
        followed = [(row.tenant, row.profile) for row in connection.execute(
            sa.select(s.tenant, subscriptions_table.c.profile).distinct()
            .join(subscriptions_table, subscriptions_table.c.subscriber_id == s.id)
            .where(s.tenant.is_not(None)))]
        wanted = sorted({profile for _tenant, profile in followed})
        open_calls = [(row.profile, row.call_id) for row in connection.execute(
            sa.select(matches_table.c.profile, matches_table.c.call_id)
            .join(call_listing_table, call_listing_table.c.call_id == matches_table.c.call_id)
            .where(matches_table.c.profile.in_(wanted), ~dismissed, *open_now))] if wanted else []
        last: dict[str, datetime] = dict(connection.execute(
            sa.select(s.tenant, sa.func.max(deliveries_table.c.sent_at))
            .join(deliveries_table, deliveries_table.c.subscriber_id == s.id)
            .where(s.tenant.is_not(None), deliveries_table.c.status == SENT)
            .group_by(s.tenant)).all())
    return summarize(set(members) | named, members, followed, open_calls, last)


class TenantPages:
    """The admins' page; ``manage.admin_guarded`` calls it with the signed-in admin."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def list(self, request: Request, user: User) -> Response:
        summaries = await run_in_threadpool(tenant_summaries, self.pages.engine, self.pages.clock())
        return self.pages.render(
            request, "admin_tenants.html", summaries=summaries, manage_url=manage_url,
            when=lambda value: value.astimezone(DISPLAY_ZONE).strftime("%d %b %Y %H:%M"))
