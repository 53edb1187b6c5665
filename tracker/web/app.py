"""The web app: one Starlette application, its routes, templates and static files.

``create_app(settings, engine, clock)`` builds it; ``tracker.web.serve`` runs it with
uvicorn (`callwatch web`). Pages are rendered on the server with Jinja2 (autoescape on
for every template) and work without JavaScript; htmx, served from the package like
every other asset (no CDN: callwatch runs offline and behind firewalls), only spares a
full page load when a filter changes.

Handlers are small: they parse the request, call the read functions of
``tracker.web.browse`` (the same stored calls, statuses and history the CLI shows) and
render a template. The database is read synchronously in Starlette's thread pool (the
handlers are plain functions), so a slow query never stalls the event loop.

Routes are gathered in :func:`routes`, with the daemon's service URLs (``/healthz``,
``/metrics``, ``/feeds/…``: ``tracker.web.service_routes``) beside them; the email footer's
``/unsubscribe/…`` and ``/manage/…`` are the member pages (``tracker.web.members_pages``).
The security middleware covers them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tracker import __version__
from tracker.config import Settings
from tracker.dates import isoformat_utc, to_utc
from tracker.delivery.render import days_left, describe_change, describe_days, format_deadline, safe_url
from tracker.delivery.wording import format_day
from tracker.errors import NotFoundError
from tracker.exports.rows import call_total_text, news_items
from tracker.models import CallStatus, Change, ChangeKind
from tracker.money import format_eur
from tracker.web import accounts, browse, language
from tracker.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HOURS,
    Csrf,
    SecurityHeaders,
    SignInLimiter,
    local_path,
)
from tracker.web.service_routes import ServiceRoutes, heartbeat_alive

HERE = Path(__file__).parent
#: the time zone of the dates on the pages: EU calls state their cut-offs in Brussels time
DISPLAY_ZONE = ZoneInfo("Europe/Brussels")

STATUS_LABELS = {CallStatus.OPEN: "Open", CallStatus.FORTHCOMING: "Forthcoming",
                 CallStatus.CLOSED: "Closed"}
STATUS_CHOICES = {"current": "Open or forthcoming", "open": "Open", "forthcoming": "Forthcoming",
                  "closed": "Closed", "all": "Any status"}


def calls_url(tenant: str, query: Mapping[str, str] | None = None) -> str:
    """``/t/<tenant>/calls``, with ``query`` when given (the tenant's name quoted)."""
    path = f"/t/{quote(tenant, safe='')}/calls"
    return f"{path}?{urlencode(query)}" if query else path


def call_url(tenant: str, call_id: str) -> str:
    """``/t/<tenant>/calls/<call id>``: a call id keeps its ``:`` (``ft_portal:HORIZON-…``)."""
    return f"{calls_url(tenant)}/{quote(call_id, safe=':@-._~')}"


def describe(change: Change) -> str:
    """A history line: the message's wording, except that the first sighting is said as such."""
    if change.kind is ChangeKind.NEW:
        return "First seen by callwatch"
    return describe_change(change, DISPLAY_ZONE)


def _environment() -> jinja2.Environment:
    """Templates from the package; every one auto-escaped, and an unknown name is an error."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    environment.globals.update(
        version=__version__, calls_url=calls_url, call_url=call_url, describe=describe,
        status_choices=STATUS_CHOICES, windows=browse.WINDOWS, budgets=browse.BUDGETS,
        safe_url=safe_url,
        eur=format_eur, call_total=call_total_text, news_items=news_items,
        iso=isoformat_utc, status_label=STATUS_LABELS.get)
    language.install(environment)  # _() and {% trans %} in each page's ``language``
    return environment


SESSION_COOKIE = "callwatch_session"
#: how a form that fails its CSRF check is answered
EXPIRED_FORM = ("This form has expired or did not come from this site: go back, reload the "
                "page and try again.")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


class Pages:
    """The page handlers, sharing the engine, the clock, the templates and the secrets."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], secret: str,
                 settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.secret = secret
        self.clock = clock
        self.templates = Jinja2Templates(env=_environment())
        self.sessions = accounts.Sessions(secret)
        self.csrf = Csrf(secret)
        self.limiter = SignInLimiter()

    def render(self, request: Request, name: str, status_code: int = 200,
               **context: Any) -> Response:
        now = self.clock()
        context.update(
            deadline=lambda value: format_deadline(value, DISPLAY_ZONE),
            days=lambda value: describe_days(days_left(value, now, DISPLAY_ZONE)),
            day=lambda value: format_day(to_utc(value).astimezone(DISPLAY_ZONE).date()),
            now=now)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)

    def home(self, request: Request) -> Response:
        return self.render(request, "home.html")

    def tenant(self, request: Request) -> Response:
        return RedirectResponse(calls_url(request.path_params["tenant"]), status_code=302)

    def calls(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        try:
            filters = browse.CallFilters.parse(request.query_params)
        except browse.BadFilter as exc:
            return self.render(request, "error.html", 400, title="Not a filter this page offers",
                               message=str(exc), back=calls_url(tenant))
        page = browse.calls_page(self.engine, tenant, filters, self.clock())
        return self.render(request, "calls.html", page=page)

    def call(self, request: Request) -> Response:
        page = browse.call_page(self.engine, request.path_params["tenant"],
                                request.path_params["call_id"], self.clock())
        return self.render(request, "call.html", page=page, call=page.call, r=page.call.record)

    # -- forms and accounts ------------------------------------------------------------

    def form_page(self, request: Request, name: str, status_code: int = 200,
                  **context: Any) -> Response:
        """A page with a form: its CSRF token in the form and, when new, in the cookie."""
        token = request.cookies.get(CSRF_COOKIE)
        fresh = token is None or not self.csrf.valid(token, token, None, "")
        if fresh:
            token = self.csrf.new_token()
        response = self.render(request, name, status_code, csrf_token=token, **context)
        if fresh:
            response.set_cookie(CSRF_COOKIE, str(token), max_age=CSRF_HOURS * 3600, path="/",
                                secure=True, httponly=True, samesite="strict")
        return _no_store(response)

    def expired_form(self, request: Request, back: str) -> Response:
        """The answer to a form whose CSRF check fails: what to do, and a way back."""
        return self.render(request, "error.html", 403, title="Form expired",
                           message=EXPIRED_FORM, back=back)

    def csrf_passes(self, request: Request, form: Mapping[str, Any]) -> bool:
        field = form.get(CSRF_FIELD)
        return self.csrf.valid(request.cookies.get(CSRF_COOKIE),
                               field if isinstance(field, str) else None,
                               request.headers.get("origin"),
                               f"{request.url.scheme}://{request.url.netloc}")

    def signin_form(self, request: Request) -> Response:
        return self.form_page(request, "signin.html", next=local_path(request.query_params.get("next")),
                              email="", problem="")

    async def signin(self, request: Request) -> Response:
        """Check the form, the rate limit, then the password; a session and a local redirect."""
        form = await request.form()
        target = local_path(str(form.get("next") or ""))
        email = str(form.get("email") or "").strip()[:320]
        if not self.csrf_passes(request, form):
            return self.expired_form(request, "/signin")
        now = self.clock()
        client = request.client.host if request.client else "unknown"
        keys = [f"address:{client}", f"email:{email.lower()}"]
        wait = self.limiter.retry_after(keys, now)
        if wait is not None:
            response = self.form_page(request, "signin.html", 429, next=target, email=email,
                                      problem="Too many failed attempts: try again in "
                                      f"{-(-wait // 60)} minutes.")
            response.headers["Retry-After"] = str(wait)
            return response
        user = await run_in_threadpool(accounts.authenticate, self.engine, email,
                                       str(form.get("password") or ""), now)
        if user is None:
            self.limiter.failed(keys, now)
            return self.form_page(request, "signin.html", 401, next=target, email=email,
                                  problem="The email or the password is wrong.")
        self.limiter.succeeded(keys[1])
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, self.sessions.cookie(user), path="/",
                            max_age=accounts.SESSION_HOURS * 3600, secure=True, httponly=True,
                            samesite="lax")
        return _no_store(response)

    def account(self, request: Request) -> Response:
        user = self.sessions.user(self.engine, request.cookies.get(SESSION_COOKIE))
        if user is None:
            return RedirectResponse("/signin?" + urlencode({"next": "/account"}), status_code=303)
        return self.form_page(request, "account.html", user=user)

    async def signout(self, request: Request) -> Response:
        form = await request.form()
        if not self.csrf_passes(request, form):
            return self.expired_form(request, "/account")
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
        return _no_store(response)

    def not_found(self, request: Request, _exc: Exception) -> Response:
        return self.render(request, "error.html", 404, title="Not found",
                           message="There is no page at this address.", back="/")


def routes(pages: Pages, *, warm_preview: bool = False) -> list[BaseRoute]:
    """Every page of the web app (the service URLs are added by :func:`create_app`);
    ``warm_preview``: see :func:`~tracker.web.manage_profiles.profile_routes`."""
    from tracker.web import members_pages  # it imports this module
    from tracker.web.manage import manage_routes  # it builds on Pages, defined here
    from tracker.web.manage_profiles import profile_routes  # it imports Pages from here
    return [
        *manage_routes(pages),
        Route("/", pages.home, name="home"),
        Route("/t/{tenant}", pages.tenant, name="tenant"),
        Route("/t/{tenant}/calls", pages.calls, name="calls"),
        Route("/t/{tenant}/calls/{call_id:path}", pages.call, name="call"),
        Route("/signin", pages.signin_form, methods=["GET"], name="signin_form"),
        Route("/signin", pages.signin, methods=["POST"], name="signin"),
        Route("/account", pages.account, name="account"),
        Route("/signout", pages.signout, methods=["POST"], name="signout"),
        *members_pages.routes(pages),
        *profile_routes(pages, warm_preview=warm_preview),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(settings: Settings, engine: Engine, clock: Callable[[], datetime],
               secret: str | None = None, *,
               scheduler_alive: Callable[[], bool] | None = None,
               warm_preview: bool = False) -> Starlette:
    """The ASGI application over ``engine``; ``clock`` gives the time pages are shown at;
    ``secret`` signs sessions and CSRF tokens (default: ``accounts.web_secret()``);
    ``scheduler_alive`` answers /healthz (default: some process's heartbeat is fresh, for
    `callwatch web`, which runs no scheduler; the daemon passes its own); ``warm_preview``
    starts indexing the calls for the profile preview in a thread now (`callwatch web`:
    tens of seconds at 50,000 calls, which the first manager would otherwise wait)."""
    pages = Pages(engine, clock, secret or accounts.web_secret(), settings)
    service = ServiceRoutes(settings, engine,
                            scheduler_alive or heartbeat_alive(engine, clock), clock)

    async def not_found(request: Request, exc: Exception) -> Response:
        return pages.not_found(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 404:
            return pages.not_found(request, exc)
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return Response(f"{status}\n", status_code=status, media_type="text/plain",
                        headers=getattr(exc, "headers", None))

    return Starlette(
        routes=[*service.routes(), *routes(pages, warm_preview=warm_preview)],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={NotFoundError: not_found, HTTPException: http_error},
    )
