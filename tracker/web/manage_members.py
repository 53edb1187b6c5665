"""Managers' member pages: the tenant's members (searched, paged), one member (and erasing
them, ``tracker.delivery.erasure``), the CSV export, and the CSV import (a dry run of every
row, then "Apply").

**Where imported members live.** :func:`save_members` is the one place the web writes
members: ``subscribers`` rows with ``origin`` ``web`` (``members_csv.WEB_ORIGIN``), their
email channel and their subscriptions: new ones in bulk, updated ones the way the file sync
writes a file's subscriber (``outbox.mirror_subscriber``: tokens kept, ended subscriptions
stay ended). The per-cycle file sync (``outbox.sync_subscribers``) only ever
changes or empties subscribers whose origin is ``file``, so web members survive it
unchanged; a subscriber file that names a web member is ignored with a warning, as one
naming a bot subscriber is. Assumption shared with the sign-up pages: ``web`` marks every
member created on the web (import or sign-up), which the sync leaves alone.

**Apply checks the very file.** The dry run puts the file (base64) and two digests in the
"Apply" form: the file's SHA-256, and the plan's (``ImportReport.plan_key``: what each row
would do). Apply reads the file again against the members stored now: a different file
changes nothing (400), and a different plan (someone changed members meanwhile) changes
nothing and shows the new dry run to look at again.

**Invitations** send the sign-up's own double opt-in email (``members.parse_invitations``,
``members_pages.MemberPages.join_email`` and ``send_email``): nothing is stored before the
invitee confirms, and the consent record names the manager. An address that is a member
already is reported, not mailed (the manager sees the members anyway: nothing to hide).
Each manager may send :data:`INVITES_PER_HOUR` (an in-memory limit per process, like the
sign-in's), which also bounds what any one address can be sent from here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tracker.config import Settings
from tracker.delivery.erasure import FILE_ORIGIN, erase_subscriber
from tracker.delivery.outbox import mirror_subscriber
from tracker.delivery.subscribers import Subscriber
from tracker.store.db import (
    channels_table,
    chunks,
    newest_digest_entry,
    subscribers_table,
    subscriptions_table,
)
from tracker.web import members as signups
from tracker.web import members_pages
from tracker.web.accounts import User
from tracker.web.app import Pages
from tracker.web.manage import manage_url
from tracker.web.members_csv import (
    MAX_BYTES,
    WEB_ORIGIN,
    Existing,
    ImportReport,
    members_csv,
    names_in,
    read_members_csv,
)
from tracker.web.security import SignInLimiter

log = logging.getLogger(__name__)

#: members on one page
PAGE_SIZE = 50
#: why a member from a subscriber file is not erased on the web (the member page says it too)
FILE_ERASE = ("This member comes from a subscriber file: the next cycle would re-create them. "
              "Remove them from the file first, then run `callwatch subscribers erase EMAIL "
              "--tenant TENANT`.")
#: invitation emails one manager may send in an hour
INVITES_PER_HOUR = 50


# -- reads and the one write ------------------------------------------------------------------

def _existing(connection: Connection, where: sa.ColumnElement[bool]) -> dict[int, Existing]:
    """Subscribers matching ``where``, by id, with their email and what they follow."""
    rows = connection.execute(sa.select(subscribers_table).where(where)).all()
    ids = [row.id for row in rows]
    emails: dict[int, str] = {}
    follows: dict[int, set[tuple[str, str]]] = defaultdict(set)
    for chunk in chunks(ids):
        emails.update(connection.execute(
            sa.select(channels_table.c.subscriber_id, channels_table.c.configured_address)
            .where(channels_table.c.subscriber_id.in_(chunk),
                   channels_table.c.channel == "email")).all())
        for subscriber_id, profile, mode in connection.execute(
                sa.select(subscriptions_table.c.subscriber_id, subscriptions_table.c.profile,
                          subscriptions_table.c.mode)
                .where(subscriptions_table.c.subscriber_id.in_(chunk))):
            follows[subscriber_id].add((profile, mode))
    return {row.id: Existing(name=row.name, tenant=row.tenant, origin=row.origin,
                             email=emails.get(row.id), language=row.language,
                             timezone=row.timezone, follows=frozenset(follows[row.id]))
            for row in rows}


def stored_for_import(engine: Engine, tenant: str, names: Collection[str]) -> dict[str, Existing]:
    """What an import into ``tenant`` is judged against: the tenant's members, and every
    subscriber (of any tenant) whose name the file uses; by name."""
    where = subscribers_table.c.tenant == tenant
    if names:
        where = sa.or_(where, subscribers_table.c.name.in_(sorted(names)))
    with engine.connect() as connection:
        return {member.name: member for member in _existing(connection, where).values()}


def known_profiles(settings: Settings | None, engine: Engine) -> list[str]:
    """The profiles a member may follow: the profile files' and the database's (those with
    problems too: a broken profile is `profiles check`'s news, not the import's)."""
    from tracker.rules.profiles import read_profiles
    from tracker.rules.store import RulesStore

    names = {profile.name for profile in RulesStore(engine).read_profiles()[0]}
    directory = Path(settings.profiles.directory) if settings is not None else None
    if directory is not None and directory.exists():
        names.update(profile.name for profile in read_profiles([directory])[0])
    return sorted(names)


def save_members(engine: Engine, tenant: str, members: Sequence[Subscriber],
                 now: datetime) -> tuple[int, int]:
    """Create or update web-managed members of ``tenant`` (one transaction); (new, updated).

    New members go in with one statement per table (25,000 of them one by one took minutes);
    an update goes through the file sync's own per-subscriber steps. A name held by a
    subscriber that is not this tenant's web member is left alone (the dry run refused it;
    this guards the write itself).
    """
    fresh: list[Subscriber] = []
    updated = 0
    with engine.begin() as connection:
        stored: dict[str, Any] = {}
        for chunk in chunks([m.name for m in members]):
            stored.update({row.name: row for row in connection.execute(
                sa.select(subscribers_table).where(subscribers_table.c.name.in_(chunk)))})
        for member in members:
            row = stored.get(member.name)
            if row is None:
                fresh.append(member)
            elif row.origin == WEB_ORIGIN and row.tenant == tenant:
                # quiet hours and reminders are the member's own choice, not the CRM's
                connection.execute(subscribers_table.update()
                                   .where(subscribers_table.c.id == row.id)
                                   .values(timezone=member.timezone, language=member.language,
                                           updated_at=now))
                mirror_subscriber(connection, row.id, member)
                updated += 1
        _insert_members(connection, tenant, fresh, now)
    return len(fresh), updated


def _insert_members(connection: Connection, tenant: str, members: Sequence[Subscriber],
                    now: datetime) -> None:
    """New members, their channels and subscriptions, a statement per table and chunk;
    their digests start at the newest entry, as every new subscription's do."""
    if not members:
        return
    start = connection.execute(sa.select(newest_digest_entry())).scalar_one()
    for chunk in chunks(members):
        ids: dict[str, int] = dict(connection.execute(subscribers_table.insert().returning(
            subscribers_table.c.name, subscribers_table.c.id, sort_by_parameter_order=True), [
            {"name": m.name, "tenant": tenant, "timezone": m.timezone, "language": m.language,
             "quiet_hours": m.quiet_hours, "reminders": list(m.reminders), "origin": WEB_ORIGIN,
             "created_at": now, "updated_at": now} for m in chunk]).all())
        connection.execute(channels_table.insert(), [
            {"subscriber_id": ids[m.name], "channel": channel,
             "address": m.channels.address(channel),
             "configured_address": m.channels.address(channel),
             "webhook_format": m.channels.webhook_format if channel == "webhook" else "generic",
             "active": True} for m in chunk for channel in m.channels.configured()])
        connection.execute(subscriptions_table.insert(), [
            {"subscriber_id": ids[m.name], "profile": s.profile, "mode": s.mode,
             "channels": list(s.channels) if s.channels else None,
             "token": secrets.token_urlsafe(24), "digested_through": start}
            for m in chunk for s in m.subscriptions])


@dataclass(frozen=True)
class MembersPage:
    tenant: str
    query: str
    members: Sequence[tuple[int, Existing]]
    total: int
    page: int
    pages: int


def _search(tenant: str, query: str) -> sa.ColumnElement[bool]:
    """The tenant's members whose name or email address contains ``query`` (any case); the
    address is looked up per member of the tenant (EXISTS on its channels, by index), not
    over every subscriber's channels (SQLite, 112,000 subscribers: 192 → 54 ms)."""
    where = subscribers_table.c.tenant == tenant
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        by_email = sa.exists().where(
            channels_table.c.subscriber_id == subscribers_table.c.id,
            channels_table.c.channel == "email",
            sa.func.lower(channels_table.c.configured_address).like(pattern, escape="\\"))
        where = sa.and_(where, sa.or_(
            sa.func.lower(subscribers_table.c.name).like(pattern, escape="\\"), by_email))
    return where


def members_page(engine: Engine, tenant: str, query: str, page: int,
                 size: int = PAGE_SIZE) -> MembersPage:
    """One page of ``tenant``'s members whose name or email contains ``query``, by name."""
    where = _search(tenant, query)
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(subscribers_table)
                                   .where(where)).scalar_one()
        pages = max(1, -(-total // size))
        page = min(page, pages)
        ids = list(connection.execute(sa.select(subscribers_table.c.id).where(where)
                                      .order_by(subscribers_table.c.name)
                                      .offset((page - 1) * size).limit(size)).scalars())
        found = _existing(connection, subscribers_table.c.id.in_(ids)) if ids else {}
    return MembersPage(tenant, query, [(i, found[i]) for i in ids if i in found], total, page, pages)


def all_members(engine: Engine, tenant: str) -> list[Existing]:
    with engine.connect() as connection:
        return sorted(_existing(connection, subscribers_table.c.tenant == tenant).values(),
                      key=lambda member: member.name)


def member_detail(engine: Engine, tenant: str, member_id: int) -> dict[str, Any] | None:
    """One member of ``tenant`` with its channels and subscriptions; None if not the tenant's."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(subscribers_table).where(
            subscribers_table.c.id == member_id, subscribers_table.c.tenant == tenant)).first()
        if row is None:
            return None
        channels = connection.execute(sa.select(channels_table).where(
            channels_table.c.subscriber_id == member_id).order_by(channels_table.c.channel)).all()
        subscriptions = connection.execute(sa.select(
            subscriptions_table.c.profile, subscriptions_table.c.mode,
            subscriptions_table.c.channels).where(
            subscriptions_table.c.subscriber_id == member_id)
            .order_by(subscriptions_table.c.profile)).all()
    return {"row": row, "channels": channels, "subscriptions": subscriptions}


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < len(value) < 7 and int(value) > 0 else 1


# -- the pages --------------------------------------------------------------------------------

class MemberPages:
    """The handlers; each is called by ``manage.guarded`` with the signed-in user."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        #: the sign-up's email: its link, its words, its channel
        self.mail = members_pages.MemberPages(pages)
        self.invites = SignInLimiter(attempts=INVITES_PER_HOUR, window=timedelta(hours=1))

    async def home(self, request: Request, user: User) -> Response:
        return RedirectResponse(manage_url(request.path_params["tenant"], "/members"), 303)

    async def list(self, request: Request, user: User) -> Response:
        tenant = request.path_params["tenant"]
        query = " ".join(request.query_params.get("q", "").split())[:100]
        page = await run_in_threadpool(members_page, self.pages.engine, tenant, query,
                                       _page_number(request.query_params.get("page")))
        imported = request.query_params.get("imported", "").split("-")
        counts = [int(n) for n in imported if n.isdigit() and len(n) < 9]
        offered = await run_in_threadpool(signups.offered_profiles, self.pages.engine, tenant)
        return self.pages.form_page(request, "manage_members.html", page=page, user=user,
                                    tenant=tenant, manage_url=manage_url, section="members",
                                    imported=counts if len(counts) == 3 else None,
                                    **self._invite_form(offered or [], {}, []))

    def _invite_form(self, offered: Sequence[str], values: dict[str, str],
                     chosen: Sequence[str]) -> dict[str, Any]:
        """What the invitation form (``_invite_form.html``) shows."""
        return {"offered": offered, "values": values, "chosen": chosen,
                "zones": signups.zone_choices(), "default_zone": signups.DEFAULT_ZONE,
                "modes": signups.MODES, "mode_labels": members_pages.MODE_LABELS,
                "email_enabled": self.mail.email_enabled(),
                "max_invitations": signups.MAX_INVITATIONS}

    async def invite_form(self, request: Request, user: User) -> Response:
        offered = await run_in_threadpool(signups.offered_profiles, self.pages.engine,
                                          request.path_params["tenant"])
        return self._invite_page(request, offered or [], {}, [], [], [], [], 200)

    async def invite(self, request: Request, user: User) -> Response:
        """Send the double opt-in email to each good line; report every line."""
        tenant = request.path_params["tenant"]
        form = await request.form(max_fields=100)
        if not self.pages.csrf_passes(request, form):
            return self.pages.expired_form(request, manage_url(tenant, "/members"))
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        chosen = [p for p in form.getlist("profile") if isinstance(p, str)]
        offered = await run_in_threadpool(signups.offered_profiles, self.pages.engine, tenant) or []
        now = self.pages.clock()
        asked = signups.parse_invitations(
            values.get("invitees", "")[:20_000], values, chosen, offered, tenant=tenant,
            invited_by=user.email, now=now,
            address=request.client.host if request.client else "unknown")
        problems = list(asked.problems)
        if not self.mail.email_enabled():
            problems.append("Email is not set up ([notifiers.email]): no invitation can be sent.")
        if problems:
            return self._invite_page(request, offered, values, chosen, problems, [], [], 400)
        already = await run_in_threadpool(signups.members_among, self.pages.engine, tenant,
                                          [sign_up.email for _n, _l, sign_up in asked.sign_ups])
        refused = list(asked.refused)
        invited: list[str] = []
        key = [f"invite:{user.id}"]
        for number, line, sign_up in asked.sign_ups:
            wait = self.invites.retry_after(key, now)
            if sign_up.email in already:
                refused.append((number, line, "a member of this cluster already: not invited"))
            elif wait is not None:
                refused.append((number, line, f"not sent: {INVITES_PER_HOUR} invitations an "
                                f"hour at most; try again in {-(-wait // 60)} minutes"))
            else:
                self.invites.failed(key, now)  # every invitation counts
                if await self.mail.send_email(sign_up.email, sign_up.language, *self.mail.join_email(
                        request, sign_up, None)):
                    invited.append(sign_up.email)
                else:
                    refused.append((number, line, "the email could not be sent just now: "
                                    "try again in a few minutes"))
        log.info("invitations sent tenant=%s manager=%s sent=%d refused=%d", tenant, user.id,
                 len(invited), len(refused))
        return self._invite_page(request, offered, values, chosen, [], invited, sorted(refused),
                                 200 if invited or not refused else 400)

    def _invite_page(self, request: Request, offered: Sequence[str], values: dict[str, str],
                     chosen: Sequence[str], problems: Sequence[str], invited: Sequence[str],
                     refused: Sequence[tuple[int, str, str]], status_code: int) -> Response:
        """The invitation's report, and the form again with the lines left out in it."""
        if invited or refused:
            values = {**values, "invitees": "\n".join(line for _n, line, _why in refused)}
        return self.pages.form_page(
            request, "manage_invite.html", status_code, tenant=request.path_params["tenant"],
            manage_url=manage_url, section="members", problems=problems, invited=invited,
            refused=refused, **self._invite_form(offered, values, chosen))

    async def export(self, request: Request, user: User) -> Response:
        tenant = request.path_params["tenant"]
        members = await run_in_threadpool(all_members, self.pages.engine, tenant)
        filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in tenant)
        return Response(members_csv(members), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{filename}-members.csv"'})

    async def detail(self, request: Request, user: User) -> Response:
        tenant = request.path_params["tenant"]
        found = await run_in_threadpool(member_detail, self.pages.engine, tenant,
                                        request.path_params["member_id"])
        if found is None:
            return self.pages.render(request, "error.html", 404, title="Not found",
                                     message="This cluster has no such member.",
                                     back=manage_url(tenant, "/members"))
        return self.pages.form_page(request, "manage_member.html", tenant=tenant, user=user,
                                    manage_url=manage_url, section="members", **found)

    async def erase(self, request: Request, user: User) -> Response:
        """Erase one member of the tenant (GDPR art. 17, ``tracker.delivery.erasure``) once
        the form's box is ticked; a member from a subscriber file is refused: the next cycle
        would re-create it, so the file must be edited first."""
        tenant = request.path_params["tenant"]
        form = await request.form()
        if not self.pages.csrf_passes(request, form):
            return self.pages.expired_form(request, manage_url(tenant, "/members"))
        member_id = request.path_params["member_id"]
        found = await run_in_threadpool(member_detail, self.pages.engine, tenant, member_id)
        back = manage_url(tenant, f"/members/{member_id}")
        if found is None:
            return self.pages.render(request, "error.html", 404, title="Not found",
                                     message="This cluster has no such member.",
                                     back=manage_url(tenant, "/members"))
        if found["row"].origin == FILE_ORIGIN:
            return self.pages.render(request, "error.html", 409, title="Not erased",
                                     message=FILE_ERASE, back=back)
        if form.get("confirm") != "yes":
            return self.pages.render(request, "error.html", 400, title="Not erased",
                                     message="Tick the box to confirm the erasure.", back=back)
        await run_in_threadpool(erase_subscriber, self.pages.engine, member_id)
        return self.pages.render(request, "error.html", title="Member erased", message=(
            f"{found['row'].name} and every row naming them (addresses, subscriptions, "
            "messages, consent records) are erased."), back=manage_url(tenant, "/members"))

    async def import_form(self, request: Request, user: User) -> Response:
        return self._import_page(request, None, "")

    def _import_page(self, request: Request, report: ImportReport | None, data: str,
                     status_code: int = 200, notice: str = "") -> Response:
        tenant = request.path_params["tenant"]
        return self.pages.form_page(request, "manage_import.html", status_code, tenant=tenant,
                                    manage_url=manage_url, section="import", report=report,
                                    data=data, notice=notice, max_mb=MAX_BYTES // 1024 // 1024)

    def _report(self, tenant: str, data: bytes) -> ImportReport:
        engine = self.pages.engine
        return read_members_csv(data, tenant=tenant,
                                profiles=known_profiles(self.pages.settings, engine),
                                existing=stored_for_import(engine, tenant, names_in(data)))

    def _expired(self, request: Request) -> Response:
        return self.pages.expired_form(request,
                                       manage_url(request.path_params["tenant"], "/import"))

    async def dry_run(self, request: Request, user: User) -> Response:
        """Read the uploaded file and show what applying it would do; nothing is written."""
        async with request.form(max_files=1, max_fields=10) as form:
            if not self.pages.csrf_passes(request, form):
                return self._expired(request)
            upload = form.get("file")
            data = await upload.read(MAX_BYTES + 1) if isinstance(upload, UploadFile) else b""
        if not data:
            return self._import_page(request, None, "", 400, notice="Choose a CSV file to check.")
        report = await run_in_threadpool(self._report, request.path_params["tenant"], data)
        return self._import_page(request, report, base64.b64encode(data).decode())

    async def apply(self, request: Request, user: User) -> Response:
        """Write the file's valid rows, if the file and the plan are the ones checked."""
        tenant = request.path_params["tenant"]
        # the file comes back base64 in a form field, URL-encoded: up to 4 times its size
        form = await request.form(max_fields=10, max_part_size=4 * MAX_BYTES + 4096)
        if not self.pages.csrf_passes(request, form):
            return self._expired(request)
        try:
            data = base64.b64decode(str(form.get("data") or ""), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        report = await run_in_threadpool(self._report, tenant, data)
        if not data or not hmac.compare_digest(report.digest, str(form.get("digest") or "")):
            return self._import_page(request, None, "", 400, notice=(
                "This is not the file that was checked: nothing changed. Check the file again."))
        if not hmac.compare_digest(report.plan_key, str(form.get("plan") or "")):
            return self._import_page(request, report, base64.b64encode(data).decode(), 409,
                                     notice="The members changed since this file was checked: "
                                     "nothing changed yet. Here is what applying would do now.")
        created, updated = await run_in_threadpool(save_members, self.pages.engine, tenant,
                                                   report.members, self.pages.clock())
        return RedirectResponse(manage_url(tenant, "/members", {
            "imported": f"{created}-{updated}-{report.count('invalid')}"}), 303)

