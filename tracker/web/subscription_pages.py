"""The email footer's pages, as the aiohttp health server served them: ``/unsubscribe/<token>``
and ``/manage/<token>``.

A straight port to Starlette, so that `callwatch run` serves them from the web app now that
the aiohttp server is gone; the same templates (``tracker/service/templates``), the same
answers and headers. The web app's own preferences and one-click unsubscribe pages replace
this module (and its templates, whose inline styles need their own
``style-src 'unsafe-inline'``: the security middleware keeps a policy a route sets).

GET never unsubscribes: mail scanners and link previews fetch every link. An unknown
token gets the same plain 404 as a wrong feed token.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import jinja2
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from tracker.delivery import unsubscribe

log = logging.getLogger(__name__)

#: the pages hold a secret in their URL and have no script: nothing loads from elsewhere,
#: the forms post only back here, no other site may frame them or see the URL as referrer
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
MODES = {"instant": "instant alerts", "daily": "daily digest", "weekly": "weekly digest"}
NOT_FOUND = "not found\n"


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("tracker.service", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, auto_reload=False)


def _page(name: str, **values: Any) -> Response:
    return HTMLResponse(_templates().get_template(name).render(**values), headers=PAGE_HEADERS)


def _not_found() -> Response:
    return PlainTextResponse(NOT_FOUND, status_code=404, headers=PAGE_HEADERS)


def subscription_routes(engine: Engine, clock: Callable[[], datetime]) -> list[BaseRoute]:
    """``/unsubscribe/{token}`` (GET: a confirm button; POST: ends that subscription, the
    RFC 8058 one-click target) and ``/manage/{token}``, thin over
    ``tracker.delivery.unsubscribe``, whose docstring fixes the URL shapes."""

    def answer(view: unsubscribe.SubscriptionView | None, token: str) -> Response:
        if view is None:
            return _not_found()
        return _page("unsubscribe.html", view=view, mode=MODES.get(view.mode, view.mode),
                     manage_path=f"../manage/{quote(token, safe='')}")

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]
        return answer(await run_in_threadpool(unsubscribe.find_subscription, engine, token), token)

    async def unsubscribe_now(request: Request) -> Response:
        token = request.path_params["token"]
        view = await run_in_threadpool(unsubscribe.unsubscribe, engine, token, clock())
        if view is not None:
            log.info("unsubscribed from a link subscriber=%s profile=%s", view.subscriber,
                     view.profile)
        return answer(view, token)

    async def manage_page(request: Request) -> Response:
        views = await run_in_threadpool(unsubscribe.manage_view, engine,
                                        request.path_params["token"])
        if views is None:
            return _not_found()
        rows = [(view, MODES.get(view.mode, view.mode),
                 f"../unsubscribe/{quote(view.token, safe='')}") for view in views]
        return _page("manage.html", subscriptions=rows)

    return [
        Route(unsubscribe.UNSUBSCRIBE_PATH, unsubscribe_page, methods=["GET"]),
        Route(unsubscribe.UNSUBSCRIBE_PATH, unsubscribe_now, methods=["POST"]),
        Route(unsubscribe.MANAGE_PATH, manage_page, methods=["GET"]),
    ]
