"""The cluster managers' pages, all under ``/t/<tenant>/manage/…``, and their one guard.

**One guard.** Every route here is wrapped by :func:`guarded`, which calls
:func:`manager_of` before the handler runs: someone not signed in is sent to ``/signin``
(and back here afterwards), a signed-in manager of another tenant gets 403, an admin passes
for every tenant. The handler gets the user, so it cannot forget to ask.
``tests/test_web_manage.py`` walks every route of the app under ``/t/{tenant}/manage``,
whoever added it, and fails for one that answers a stranger or another tenant's manager.

The URLs sit under the tenant (``/t/<tenant>/manage/members``), not under ``/manage/``,
whose ``/manage/<token>`` is the members' own preferences page (a signed token, no account).

The pages themselves: ``tracker.web.manage_members`` (members, their CSV import and
export, invitations) and ``tracker.web.manage_outbox`` (deliveries, resending dead letters,
sources, charts). The admins' list of every tenant (``/admin/tenants``,
``tracker.web.manage_tenants``) has its own guard, :func:`admin_of`, on the same
:func:`signed_in`. The profile editor (``tracker.web.manage_profiles``) calls
:func:`manager_of` itself in each handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tracker.web.accounts import User
from tracker.web.app import SESSION_COOKIE, Pages

Handler = Callable[[Request, User], Awaitable[Response]]
#: where every manager page lives; ``{tenant}`` is the cluster
PREFIX = "/t/{tenant}/manage"
#: the admins' list of every tenant
ADMIN_TENANTS = "/admin/tenants"


def manage_url(tenant: str, path: str = "", query: dict[str, str] | None = None) -> str:
    """``/t/<tenant>/manage<path>``, the tenant quoted, with ``query`` when given."""
    url = f"/t/{quote(tenant, safe='')}/manage{path}"
    wanted = {key: value for key, value in (query or {}).items() if value}
    return f"{url}?{urlencode(wanted)}" if wanted else url


def signed_in(pages: Pages, request: Request, back: str | None = None) -> User | Response:
    """The signed-in user, else a redirect to sign in that comes back to ``back`` when given
    (a form's page: the URL a form posts to does not answer a GET), else to this URL."""
    user = pages.sessions.user(pages.engine, request.cookies.get(SESSION_COOKIE))
    if user is None:
        target = back or request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/signin?" + urlencode({"next": target}), status_code=303)
    return user


def manager_of(pages: Pages, request: Request, back: str | None = None) -> User | Response:
    """The signed-in user allowed to manage the URL's tenant, else the answer to give:
    a redirect to sign in (no session, see :func:`signed_in`), or 403 (a manager of another
    tenant)."""
    user = signed_in(pages, request, back)
    if isinstance(user, Response):
        return user
    if not user.sees(request.path_params["tenant"]):
        return pages.render(request, "error.html", 403, title="Not your cluster",
                            message="Your account manages another cluster.", back="/account")
    return user


def admin_of(pages: Pages, request: Request) -> User | Response:
    """The signed-in admin, else a redirect to sign in, or 403 (a manager: they see only
    their own tenant)."""
    user = signed_in(pages, request)
    if isinstance(user, Response):
        return user
    if user.role != "admin":
        return pages.render(request, "error.html", 403, title="For administrators",
                            message="Only an administrator sees every cluster.", back="/account")
    return user


def guarded(pages: Pages, handler: Handler,
            guard: Callable[[Pages, Request], User | Response] = manager_of,
            ) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind ``guard`` (:func:`manager_of`, or :func:`admin_of` for the admins'
    pages); its answers are never cached (they hold members' addresses)."""

    async def endpoint(request: Request) -> Response:
        found = await run_in_threadpool(guard, pages, request)
        response = found if isinstance(found, Response) else await handler(request, found)
        response.headers["Cache-Control"] = "no-store"
        return response

    endpoint.__name__ = getattr(handler, "__name__", "manage")
    return endpoint


def manage_routes(pages: Pages) -> list[BaseRoute]:
    """Every manager page, each behind the guard."""
    from tracker.web.manage_members import MemberPages
    from tracker.web.manage_outbox import OutboxPages
    from tracker.web.manage_tenants import TenantPages

    members, outbox, tenants = MemberPages(pages), OutboxPages(pages), TenantPages(pages)

    def route(path: str, handler: Handler, name: str, post: bool = False) -> Route:
        return Route(PREFIX + path, guarded(pages, handler), name=name,
                     methods=["POST"] if post else ["GET"])

    return [
        route("", members.home, "manage"),
        route("/members", members.list, "manage_members"),
        route("/members.csv", members.export, "manage_members_csv"),
        route("/members/{member_id:int}", members.detail, "manage_member"),
        route("/members/{member_id:int}/erase", members.erase, "manage_member_erase", post=True),
        route("/invite", members.invite_form, "manage_invite_form"),
        route("/invite", members.invite, "manage_invite", post=True),
        route("/import", members.import_form, "manage_import_form"),
        route("/import", members.dry_run, "manage_import", post=True),
        route("/import/apply", members.apply, "manage_import_apply", post=True),
        route("/outbox", outbox.list, "manage_outbox"),
        route("/outbox/resend", outbox.resend, "manage_outbox_resend", post=True),
        route("/sources", outbox.sources, "manage_sources"),
        route("/charts", outbox.charts, "manage_charts"),
        Route(ADMIN_TENANTS, guarded(pages, tenants.list, admin_of), name="admin_tenants"),
    ]
