"""Renaming and deleting a profile made in the database (the web editor's, ``tracker.web.
manage_profiles.ProfileChanges``), with everything that names it by its name.

Here in ``tracker.delivery``, not beside ``tracker.rules.sources``: a delete ends the
profile's subscriptions as an unsubscribe link ends one (``unsubscribe.end_subscriptions``),
and the rules layer does not import delivery. A profile a YAML file mirrors (``source`` set)
is never touched: the file wins (``tracker.rules.sources``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.delivery.erasure import FILE_ORIGIN
from tracker.delivery.unsubscribe import end_subscriptions
from tracker.rules.profiles import Profile
from tracker.store.db import (
    digest_entries_table,
    dismissals_table,
    feed_tokens_table,
    matches_table,
    opt_outs_table,
    profile_runs_table,
    profiles_table,
    subscribers_table,
    subscriptions_table,
)

log = logging.getLogger(__name__)

#: the tables that name a profile and go with it: a rename moves their rows, a delete drops
#: them (subscriptions end first, as opt-outs; opt-outs are renamed, and kept on a delete)
PROFILE_TABLES = (matches_table, dismissals_table, profile_runs_table, feed_tokens_table,
                  digest_entries_table)


@dataclass(frozen=True)
class Followers:
    """Who follows a profile: its live subscriptions, and the subscribers from files among
    them (their file names the profile: renaming or deleting it on the web would be undone,
    or broken, by the next sync)."""

    subscriptions: int
    file_subscribers: tuple[str, ...]


def profile_followers(engine: Engine, name: str) -> Followers:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(subscribers_table.c.name, subscribers_table.c.origin)
            .join(subscriptions_table, subscriptions_table.c.subscriber_id == subscribers_table.c.id)
            .where(subscriptions_table.c.profile == name)).all()
    return Followers(len(rows), tuple(sorted({r.name for r in rows if r.origin == FILE_ORIGIN})))


class ProfileGone(LookupError):
    """The database profile to rename or delete is not there (or is a file's mirror now)."""


def rename_web_profile(engine: Engine, old: str, profile: Profile, *, by: str,
                       now: datetime) -> int:
    """Rename the database profile ``old`` to ``profile.name`` (``profile``: its definition
    under the new name, validated by the caller), moving what names it: subscriptions (their
    tokens kept), opt-outs, matches, dismissals, its last run, feed token and digest
    entries. The subscriptions moved; ProfileGone when ``old`` is no database profile."""
    new = profile.name
    with engine.begin() as connection:
        if connection.execute(sa.select(profiles_table.c.id)
                              .where(profiles_table.c.name == new)).first() is not None:
            raise ValueError(f"a profile called {new!r} already exists")
        renamed = connection.execute(profiles_table.update().where(
            profiles_table.c.name == old, profiles_table.c.source.is_(None)).values(
            name=new, definition=profile.as_mapping(), updated_at=now, updated_by=by))
        if renamed.rowcount != 1:
            raise ProfileGone(old)
        for table in PROFILE_TABLES:  # rows a gone profile of the new name left
            connection.execute(table.delete().where(table.c.profile == new))
            connection.execute(table.update().where(table.c.profile == old).values(profile=new))
        connection.execute(opt_outs_table.update().where(opt_outs_table.c.profile == old)
                           .values(profile=new))
        moved = connection.execute(subscriptions_table.update()
                                   .where(subscriptions_table.c.profile == old)
                                   .values(profile=new)).rowcount
    log.info("profile renamed profile=%s to=%s by=%s", old, new, by, extra={"profile": new})
    return int(moved)


def delete_web_profile(engine: Engine, name: str, *, by: str, now: datetime) -> int:
    """Delete the database profile ``name``: its subscriptions end as an unsubscribe link
    ends one (their links keep answering), and its matches, dismissals, run, feed token and
    digest entries go. The subscriptions ended; ProfileGone when it is no database profile."""
    with engine.begin() as connection:
        deleted = connection.execute(profiles_table.delete().where(
            profiles_table.c.name == name, profiles_table.c.source.is_(None)))
        if deleted.rowcount != 1:
            raise ProfileGone(name)
        ids = connection.execute(sa.select(subscriptions_table.c.id)
                                 .where(subscriptions_table.c.profile == name)).scalars().all()
        end_subscriptions(connection, ids, now)
        for table in PROFILE_TABLES:
            connection.execute(table.delete().where(table.c.profile == name))
    log.info("profile deleted profile=%s by=%s subscriptions=%d", name, by, len(ids),
             extra={"profile": name})
    return len(ids)
