"""Managers' delivery pages: the tenant's outbox (sent, waiting, dead letters and why), a
"resend" for dead letters, the sources' health and the next jobs, and two charts.

**Resend** goes through the outbox's own ``resend_dead``: the dead row itself becomes
pending again (same idempotency key, same lease rules), so the message still goes out once;
only the tenant's own dead letters are taken (another tenant's id is a 404).

**Sources** are shared by every cluster: their health is the one ``SourceStatus``
(``tracker.source_status.read_statuses``), the same words `callwatch sources` prints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.delivery.outbox import DEAD, PENDING, SENDING, SENT, resend_dead
from tracker.store.db import (
    call_deadlines_table,
    calls_table,
    deliveries_table,
    dismissals_table,
    matches_table,
    subscribers_table,
)
from tracker.web import browse
from tracker.web.accounts import User
from tracker.web.app import DISPLAY_ZONE, Pages
from tracker.web.charts import Chart, per_week, stacked_bars, week_start
from tracker.web.manage import manage_url

PAGE_SIZE = 50
STATUSES = ("all", DEAD, PENDING, SENDING, SENT)
STATUS_WORDS = {"all": "Every delivery", DEAD: "Dead letters", PENDING: "Waiting",
                SENDING: "Being sent", SENT: "Sent"}
#: the deliveries chart's days, the calls chart's months, the deadlines chart's weeks
CHART_DAYS, CHART_MONTHS, CHART_WEEKS = 30, 12, 12


@dataclass(frozen=True)
class OutboxPage:
    tenant: str
    status: str
    rows: Sequence[Any]
    counts: dict[str, int]
    total: int
    page: int
    pages: int


def _tenant_deliveries(tenant: str) -> sa.ColumnElement[bool]:
    return deliveries_table.c.subscriber_id.in_(
        sa.select(subscribers_table.c.id).where(subscribers_table.c.tenant == tenant))


def outbox_page(engine: Engine, tenant: str, status: str, page: int,
                size: int = PAGE_SIZE) -> OutboxPage:
    """One page of ``tenant``'s deliveries in ``status`` ("all": any), newest first."""
    where = _tenant_deliveries(tenant)
    with engine.connect() as connection:
        counts: dict[str, int] = dict(connection.execute(
            sa.select(deliveries_table.c.status, sa.func.count()).where(where)
            .group_by(deliveries_table.c.status)).all())
        if status != "all":
            where = sa.and_(where, deliveries_table.c.status == status)
        total = counts.get(status, 0) if status != "all" else sum(counts.values())
        pages = max(1, -(-total // size))
        page = min(page, pages)
        rows = connection.execute(
            sa.select(deliveries_table.c.id, deliveries_table.c.channel, deliveries_table.c.kind,
                      deliveries_table.c.call_id, deliveries_table.c.status,
                      deliveries_table.c.attempts, deliveries_table.c.last_error,
                      deliveries_table.c.created_at, deliveries_table.c.sent_at,
                      deliveries_table.c.next_attempt_at, deliveries_table.c.subscriber_id,
                      subscribers_table.c.name.label("member"))
            .join(subscribers_table, subscribers_table.c.id == deliveries_table.c.subscriber_id)
            .where(where).order_by(deliveries_table.c.id.desc())
            .offset((page - 1) * size).limit(size)).all()
    return OutboxPage(tenant, status, rows, counts, total, page, pages)


def tenant_dead_letters(engine: Engine, tenant: str, ids: Sequence[int]) -> list[int]:
    """The ids among ``ids`` that are dead letters of ``tenant``'s members."""
    with engine.connect() as connection:
        return list(connection.execute(sa.select(deliveries_table.c.id).where(
            deliveries_table.c.id.in_(list(ids)), deliveries_table.c.status == DEAD,
            _tenant_deliveries(tenant))).scalars())


def deliveries_chart(engine: Engine, tenant: str, now: datetime) -> Chart:
    """Deliveries per day over the last ``CHART_DAYS`` (by the day they were queued,
    Brussels time), stacked by how they stand now."""
    today = now.astimezone(DISPLAY_ZONE).date()
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    index = {day: n for n, day in enumerate(days)}
    with engine.connect() as connection:
        for created, status in connection.execute(
                sa.select(deliveries_table.c.created_at, deliveries_table.c.status)
                .where(_tenant_deliveries(tenant),
                       deliveries_table.c.created_at >= now - timedelta(days=CHART_DAYS + 1))):
            slot = index.get(created.astimezone(DISPLAY_ZONE).date())
            if slot is not None:
                counts[STATUS_WORDS[status]][slot] += 1
    return stacked_bars("Deliveries per day", "deliveries",
                        [day.strftime("%d %b") for day in days], list(counts.items()))


def calls_chart(engine: Engine, tenant: str, now: datetime) -> Chart:
    """The tenant's calls per month first seen, over the last ``CHART_MONTHS``, by programme."""
    first = now.astimezone(DISPLAY_ZONE).date().replace(day=1)
    months: list[date] = []
    for _ in range(CHART_MONTHS):
        months.insert(0, first)
        first = (first - timedelta(days=1)).replace(day=1)
    index = {(m.year, m.month): n for n, m in enumerate(months)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(months))
    with engine.connect() as connection:
        profiles = browse.tenant_profiles(connection, tenant) or []
        if profiles:
            for seen, programme in connection.execute(
                    sa.select(calls_table.c.first_seen, calls_table.c.programme)
                    .where(calls_table.c.id.in_(browse._tenant_call_ids(profiles)))):
                local = seen.astimezone(DISPLAY_ZONE)
                slot = index.get((local.year, local.month))
                if slot is not None:
                    counts[programme or "No programme"][slot] += 1
    return stacked_bars("Calls per programme and month", "calls",
                        [m.strftime("%b %Y") for m in months], list(counts.items()),
                        axis="Month")


def deadlines_chart(engine: Engine, tenant: str, now: datetime) -> Chart:
    """The cut-offs ahead of the calls matched for ``tenant``'s profiles (not dismissed),
    per week (Monday to Sunday, Brussels time) over the next ``CHART_WEEKS``, by profile: a
    call two profiles match counts for each, as each profile's members see it."""
    first = week_start(now.astimezone(DISPLAY_ZONE).date())
    dated: list[tuple[str, date]] = []
    with engine.connect() as connection:
        profiles = browse.tenant_profiles(connection, tenant) or []
        if profiles:
            dismissed = sa.exists().where(
                dismissals_table.c.profile == matches_table.c.profile,
                dismissals_table.c.call_id == matches_table.c.call_id)
            dated = [(profile, at.astimezone(DISPLAY_ZONE).date()) for profile, at in
                     connection.execute(
                         sa.select(matches_table.c.profile, call_deadlines_table.c.at)
                         .join(call_deadlines_table,
                               call_deadlines_table.c.call_id == matches_table.c.call_id)
                         .where(matches_table.c.profile.in_(profiles), ~dismissed,
                                call_deadlines_table.c.at >= now,
                                call_deadlines_table.c.at
                                < now + timedelta(weeks=CHART_WEEKS + 1)))]
    mondays, series = per_week(dated, first, CHART_WEEKS)
    return stacked_bars("Deadlines per week for the profiles", "deadlines",
                        [monday.strftime("%d %b") for monday in mondays], series, axis="Week of")


class OutboxPages:
    """The handlers; each is called by ``manage.guarded`` with the signed-in user."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    async def list(self, request: Request, user: User) -> Response:
        tenant = request.path_params["tenant"]
        status = request.query_params.get("status") or "all"
        if status not in STATUSES:
            return self.pages.render(request, "error.html", 400, title="Not a filter this page offers",
                                     message=f"status must be one of {', '.join(STATUSES)}",
                                     back=manage_url(tenant, "/outbox"))
        number = request.query_params.get("page", "")
        page = await run_in_threadpool(outbox_page, self.pages.engine, tenant, status,
                                       int(number) if number.isdigit() and 0 < len(number) < 7
                                       and int(number) > 0 else 1)
        resent = request.query_params.get("resent", "")
        return self.pages.form_page(request, "manage_outbox.html", tenant=tenant, page=page,
                                    manage_url=manage_url, section="outbox",
                                    statuses=STATUS_WORDS,
                                    resent=int(resent) if resent.isdigit() and len(resent) < 7
                                    else None)

    async def resend(self, request: Request, user: User) -> Response:
        tenant = request.path_params["tenant"]
        form = await request.form()
        if not self.pages.csrf_passes(request, form):
            return self.pages.expired_form(request, manage_url(tenant, "/outbox"))
        wanted = [int(value) for value in form.getlist("delivery")
                  if isinstance(value, str) and value.isdigit() and len(value) < 19]
        ids = await run_in_threadpool(tenant_dead_letters, self.pages.engine, tenant, wanted)
        if not wanted or len(ids) != len(set(wanted)):
            return self.pages.render(request, "error.html", 404, title="Not found",
                                     message="This cluster has no such dead letter.",
                                     back=manage_url(tenant, "/outbox", {"status": DEAD}))
        count = await run_in_threadpool(resend_dead, self.pages.engine, ids, self.pages.clock())
        return RedirectResponse(manage_url(tenant, "/outbox", {"status": DEAD,
                                                               "resent": str(count)}), 303)

    async def sources(self, request: Request, user: User) -> Response:
        from tracker.source_status import configured, read_statuses
        from tracker.store.calls import Store
        from tracker.store.heartbeat import read_heartbeat, scheduler_state

        settings = self.pages.settings
        enabled = configured(settings) if settings is not None else {}
        statuses = await run_in_threadpool(read_statuses, Store(self.pages.engine), enabled)
        heartbeat = await run_in_threadpool(read_heartbeat, self.pages.engine)
        state = scheduler_state(heartbeat, self.pages.clock())
        jobs = sorted((job for job in heartbeat.jobs if job.next_run is not None),
                      key=lambda job: job.next_run or self.pages.clock()) \
            if heartbeat is not None and state == "running" else []
        return self.pages.render(request, "manage_sources.html", tenant=request.path_params["tenant"],
                                 manage_url=manage_url, section="sources", statuses=statuses,
                                 scheduler=state, jobs=jobs)

    async def charts(self, request: Request, user: User) -> Response:
        tenant, now = request.path_params["tenant"], self.pages.clock()
        calls = await run_in_threadpool(calls_chart, self.pages.engine, tenant, now)
        deadlines = await run_in_threadpool(deadlines_chart, self.pages.engine, tenant, now)
        deliveries = await run_in_threadpool(deliveries_chart, self.pages.engine, tenant, now)
        return self.pages.render(request, "manage_charts.html", tenant=tenant,
                                 manage_url=manage_url, section="charts",
                                 charts=[calls, deadlines, deliveries])
