"""Ending a subscription from a link, and the links themselves: the core the HTTP faces call.

Every email links two pages, at stable URLs under the public base URL
(``notifiers.email.public_url``), served by the health server today and by the web app
later, with the same shapes:

- ``GET /unsubscribe/{token}``: a page with one button, a form that POSTs to the same URL;
- ``POST /unsubscribe/{token}``: ends that subscription at once (RFC 8058 one-click: mail
  programs POST ``List-Unsubscribe=One-Click`` here, straight from the
  ``List-Unsubscribe`` header);
- ``GET /manage/{token}``: the subscriber's subscriptions, each with its own unsubscribe
  button.

``token`` is a subscription's ``subscriptions.token`` (24 random bytes, URL-safe). Ending
a subscription deletes its row and records an opt-out (``opt_outs``) with the same token,
so that:

- it is idempotent: a second POST (mail programs retry) finds the opt-out and answers
  "unsubscribed" again;
- it sticks: a subscriber file that still lists the profile does not bring it back on the
  channels that were ended (``without_opt_outs``, applied by the file sync);
- a token that is neither a subscription's nor an ended one's is unknown, and the faces
  answer it exactly as they answer any URL that does not exist, so a guess learns nothing
  more than "not found".

Tokens are found by an equality lookup on their unique index, not compared in Python:
a timing difference would at most tell how long a prefix of a guessed B-tree key matches
the neighbouring keys, and the tokens carry 192 bits chosen at random, so it cannot be
walked up to a real one.

Each email knows which subscription it comes from (``token_for_delivery``): an alert's or
reminder's is the subscription, on that channel, of the profile that matched the call; a
digest's is the first subscription it gathers (ending it stops that profile in the
digest; the manage page ends the others); a summary's (a cycle's instant alerts in one
message) is the first instant subscription on that channel.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracker.store.db import (
    channels_table,
    matches_table,
    opt_outs_table,
    subscribers_table,
    subscriptions_table,
)

#: the URL shapes, relative to the public base URL; kept as they are for the web app
UNSUBSCRIBE_PATH = "/unsubscribe/{token}"
MANAGE_PATH = "/manage/{token}"


@dataclass(frozen=True)
class Links:
    """The two links of one subscription."""

    manage: str
    unsubscribe: str


def links(public_url: str, token: str) -> Links | None:
    """The manage and unsubscribe URLs for ``token`` under ``public_url`` (None without one)."""
    if not public_url or not token:
        return None
    base = public_url.rstrip("/")
    return Links(manage=base + MANAGE_PATH.format(token=token),
                 unsubscribe=base + UNSUBSCRIBE_PATH.format(token=token))


FOOTER_START, FOOTER_END = "<!--callwatch:footer-->", "<!--/callwatch:footer-->"


@functools.cache
def _footer_templates(lang: str) -> tuple[jinja2.Template, jinja2.Template]:
    """templates/email/footer.html (autoescaped) and footer.txt (plain) in ``lang``
    (its catalog installed, as render.py's environments have it), compiled once each."""
    from tracker.i18n import install_jinja

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tracker.delivery", "templates/email"),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        auto_reload=False)
    install_jinja(env, lang)
    return env.get_template("footer.html"), env.get_template("footer.txt")


def with_footer(text: str, html: str, links: Links | None, lang: str = "en") -> tuple[str, str]:
    """An email's plain and HTML parts with one recipient's footer (pure).

    The HTML body carries the footer without links between its markers (message.html
    includes footer.html), put there once for every subscriber who gets the same message;
    it is replaced here with this recipient's. A body without the markers (rendered before
    there was a footer) is left as it is. The plain part, which other channels share, gets
    the footer only here. ``lang`` is the message's language (``Message.language``).
    """
    from tracker.i18n import language_or_default

    html_footer, text_footer = _footer_templates(language_or_default(lang))
    start, end = html.find(FOOTER_START), html.find(FOOTER_END)
    if 0 <= start < end:
        rendered = html_footer.render(links=links).strip()
        html = html[:start] + rendered + html[end + len(FOOTER_END):]
    return f"{text.rstrip()}\n\n{text_footer.render(links=links).strip()}\n", html


@dataclass(frozen=True)
class SubscriptionView:
    """One subscription as an unsubscribe or manage page shows it."""

    subscriber: str
    profile: str
    mode: str
    channels: tuple[str, ...]
    token: str
    #: ended from a link (an opt-out), not a live subscription
    ended: bool = False


def _channels_of(connection: Connection, subscriber_id: int) -> tuple[str, ...]:
    """Every channel the subscriber has an address on, active or not, in a stable order."""
    return tuple(sorted(connection.execute(
        sa.select(channels_table.c.channel)
        .where(channels_table.c.subscriber_id == subscriber_id)).scalars()))


def _live(connection: Connection, token: str) -> Any:
    subscriptions, subscribers = subscriptions_table, subscribers_table
    return connection.execute(
        sa.select(subscriptions.c.id, subscriptions.c.subscriber_id, subscriptions.c.profile,
                  subscriptions.c.mode, subscriptions.c.channels, subscriptions.c.token,
                  subscribers.c.name)
        .join(subscribers, subscribers.c.id == subscriptions.c.subscriber_id)
        .where(subscriptions.c.token == token)).first()


def _ended(connection: Connection, token: str) -> Any:
    return connection.execute(
        sa.select(opt_outs_table.c.subscriber_id, opt_outs_table.c.profile,
                  opt_outs_table.c.mode, opt_outs_table.c.channels, opt_outs_table.c.token,
                  subscribers_table.c.name)
        .join(subscribers_table, subscribers_table.c.id == opt_outs_table.c.subscriber_id)
        .where(opt_outs_table.c.token == token)).first()


def _view(connection: Connection, row: Any, *, ended: bool) -> SubscriptionView:
    channels = tuple(row.channels) if row.channels else _channels_of(connection, row.subscriber_id)
    return SubscriptionView(subscriber=row.name, profile=row.profile, mode=row.mode,
                            channels=channels, token=row.token, ended=ended)


def find_subscription(engine: Engine, token: str) -> SubscriptionView | None:
    """The subscription ``token`` names, live or ended from a link; None when it names none."""
    with engine.connect() as connection:
        row = _live(connection, token)
        if row is not None:
            return _view(connection, row, ended=False)
        row = _ended(connection, token)
        return _view(connection, row, ended=True) if row is not None else None


def unsubscribe(engine: Engine, token: str, now: datetime) -> SubscriptionView | None:
    """End the subscription ``token`` names, at once, and only that one; None when the
    token names none. Ending one already ended returns it again (idempotent)."""
    with engine.begin() as connection:
        row = _live(connection, token)
        if row is None:
            ended = _ended(connection, token)
            return _view(connection, ended, ended=True) if ended is not None else None
        view = _view(connection, row, ended=True)
        end_subscriptions(connection, [row.id], now)
    return view


def end_subscriptions(connection: Connection, ids: Sequence[int], now: datetime) -> None:
    """End the subscriptions ``ids`` as a link ends one: each becomes an opt-out (with the
    channels it had) and is deleted, so its links keep answering "unsubscribed" and open
    the manage page (the web preferences page ends the profiles it drops this way too)."""
    for row in connection.execute(
            sa.select(subscriptions_table.c.id, subscriptions_table.c.subscriber_id,
                      subscriptions_table.c.profile, subscriptions_table.c.mode,
                      subscriptions_table.c.channels, subscriptions_table.c.token)
            .where(subscriptions_table.c.id.in_(list(ids)))).all():
        channels = row.channels or list(_channels_of(connection, row.subscriber_id))
        connection.execute(opt_outs_table.insert().values(
            subscriber_id=row.subscriber_id, profile=row.profile, channels=list(channels),
            mode=row.mode, token=row.token, at=now))
        connection.execute(subscriptions_table.delete().where(subscriptions_table.c.id == row.id))


def manage_view(engine: Engine, token: str) -> list[SubscriptionView] | None:
    """Every live subscription of the subscriber ``token`` belongs to (an ended token still
    opens the page); None when the token names none."""
    with engine.connect() as connection:
        row = _live(connection, token) or _ended(connection, token)
        if row is None:
            return None
        subscriptions = subscriptions_table
        rows = connection.execute(
            sa.select(subscriptions.c.subscriber_id, subscriptions.c.profile,
                      subscriptions.c.mode, subscriptions.c.channels, subscriptions.c.token,
                      sa.literal(row.name).label("name"))
            .where(subscriptions.c.subscriber_id == row.subscriber_id)
            .order_by(subscriptions.c.profile, subscriptions.c.id)).all()
        return [_view(connection, found, ended=False) for found in rows]


def opted_out(connection: Connection, subscriber_id: int) -> dict[str, set[str]]:
    """Profile → the channels the subscriber ended from a link (for the file sync)."""
    ended: dict[str, set[str]] = defaultdict(set)
    for row in connection.execute(sa.select(opt_outs_table.c.profile, opt_outs_table.c.channels)
                                  .where(opt_outs_table.c.subscriber_id == subscriber_id)):
        ended[row.profile].update(row.channels)
    return dict(ended)


def token_for_delivery(connection: Connection, subscriber_id: int, channel: str, kind: str,
                       call_id: str | None, key: str) -> str | None:
    """The token of the subscription an outbox row was sent for (see the module docstring),
    or None when none is left (ended meanwhile)."""
    rows = [row for row in connection.execute(
        sa.select(subscriptions_table.c.profile, subscriptions_table.c.mode,
                  subscriptions_table.c.channels, subscriptions_table.c.token)
        .where(subscriptions_table.c.subscriber_id == subscriber_id)
        .order_by(subscriptions_table.c.id))
        if row.channels is None or channel in row.channels]
    if kind in ("alert", "summary"):  # a summary stands for a cycle's instant alerts
        rows = [row for row in rows if row.mode == "instant"]
    elif kind == "digest":
        parts = key.split("|")  # digest|subscriber|channel|mode|period
        mode = parts[3] if len(parts) > 3 else None
        rows = [row for row in rows if row.mode == mode]
    if call_id is not None and len(rows) > 1:
        matched = set(connection.execute(sa.select(matches_table.c.profile)
                                         .where(matches_table.c.call_id == call_id)).scalars())
        rows = [row for row in rows if row.profile in matched] or rows
    return str(rows[0].token) if rows else None
