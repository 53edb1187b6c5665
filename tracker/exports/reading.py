"""What the exports read: a profile's matched calls with their reasons, and feed tokens.

The imperative shell of ``tracker.exports.formats``: the CLI and the health server both call
``profile_items`` and hand the result to the pure export functions.

A profile's calls are every call ever recorded as matching it (``matches``), less the ones
its owner dismissed, soonest final deadline first. A call whose deadline has passed stays
in the calendar, so past cut-offs do not vanish from a subscribed calendar.

Feed tokens: each profile's feed URLs carry a secret (``?token=…``), made the first time
``callwatch export token`` asks for it and kept in ``feed_tokens``. Checking never creates
one, and compares in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.config import Settings
from tracker.exports.formats import FeedItem
from tracker.models import Change, ChangeKind
from tracker.rules.service import load_profiles, select_profiles
from tracker.rules.store import RulesStore
from tracker.store.calls import StoredCall
from tracker.store.db import (
    change_from_row,
    changes_table,
    chunks,
    feed_tokens_table,
    insert_for,
    matches_table,
)


def _deadline_key(call: StoredCall) -> tuple[bool, datetime | None, str]:
    """The order of ``calls list``: soonest final deadline first, calls without one last."""
    deadlines = call.record.deadlines
    return (not deadlines, deadlines[-1] if deadlines else None, call.id)


def deadline_changes(engine: Engine, call_ids: Collection[str]) -> dict[str, int]:
    """How many times each call's deadlines moved (its ``deadline_changed`` events)."""
    ids = sorted(set(call_ids))
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for chunk in chunks(ids):
            for call_id, count in connection.execute(
                    sa.select(changes_table.c.call_id, sa.func.count())
                    .where(changes_table.c.kind == ChangeKind.DEADLINE_CHANGED.value,
                           changes_table.c.call_id.in_(chunk))
                    .group_by(changes_table.c.call_id)):
                counts[call_id] = count
    return counts


def change_history(engine: Engine, call_ids: Collection[str]
                   ) -> tuple[dict[str, int], dict[str, tuple[Change, ...]]]:
    """Each call's deadline moves (as ``deadline_changes`` counts them) and its latest
    changes: the events recorded with its newest one (one run's diff), ``new`` left out,
    what a feed entry says changed. Both from one read of the calls' events."""
    ids = sorted(set(call_ids))
    moves: dict[str, int] = {}
    latest: dict[str, list[Change]] = {}
    with engine.connect() as connection:
        for chunk in chunks(ids):
            for row in connection.execute(sa.select(changes_table)
                                          .where(changes_table.c.call_id.in_(chunk))
                                          .order_by(changes_table.c.id)):
                change = change_from_row(row)
                if change.kind is ChangeKind.DEADLINE_CHANGED:
                    moves[row.call_id] = moves.get(row.call_id, 0) + 1
                kept = latest.get(row.call_id)
                if kept is None or kept[-1].at != change.at:
                    kept = latest[row.call_id] = []
                kept.append(change)
    return moves, {call_id: tuple(c for c in changes if c.kind is not ChangeKind.NEW)
                   for call_id, changes in latest.items()}


def _reasons(engine: Engine, profile: str) -> dict[str, tuple[str, ...]]:
    with engine.connect() as connection:
        return {call_id: tuple(reasons or ()) for call_id, reasons in connection.execute(
            sa.select(matches_table.c.call_id, matches_table.c.reasons)
            .where(matches_table.c.profile == profile))}


def check_profile(settings: Settings, engine: Engine, profile: str) -> None:
    """NotFoundError unless ``profile`` is a configured profile (file or database)."""
    select_profiles(load_profiles(settings, engine), profile)


def profile_items(engine: Engine, profile: str) -> list[FeedItem]:
    """The calls matched for ``profile`` and not dismissed, with reasons and deadline moves."""
    rules = RulesStore(engine)
    dismissed = {call_id for _, call_id in rules.dismissed([profile])}
    ids = rules.matched_calls(profile) - dismissed
    calls = sorted(rules.calls(ids), key=_deadline_key)
    reasons = _reasons(engine, profile)
    moves, latest = change_history(engine, ids)
    return [FeedItem(call=c, reasons=reasons.get(c.id, ()), deadline_changes=moves.get(c.id, 0),
                     changes=latest.get(c.id, ()))
            for c in calls]


def all_items(engine: Engine, calls: Collection[StoredCall]) -> list[FeedItem]:
    """``calls`` as feed items (no reasons: no profile), with their deadline moves."""
    moves = deadline_changes(engine, [c.id for c in calls])
    return [FeedItem(call=c, deadline_changes=moves.get(c.id, 0)) for c in calls]


# -- feed tokens --------------------------------------------------------------------------

def feed_token(engine: Engine, profile: str, now: datetime, *, rotate: bool = False) -> str:
    """The secret of ``profile``'s feed URLs, created on first use; a new one with ``rotate``."""
    fresh = secrets.token_urlsafe(32)  # 43 characters, 256 bits
    with engine.begin() as connection:
        statement = insert_for(connection, feed_tokens_table).values(
            profile=profile, token=fresh, created_at=now)
        if rotate:
            statement = statement.on_conflict_do_update(
                index_elements=[feed_tokens_table.c.profile],
                set_={"token": fresh, "created_at": now})
        else:
            statement = statement.on_conflict_do_nothing(
                index_elements=[feed_tokens_table.c.profile])
        connection.execute(statement)
        token = connection.execute(sa.select(feed_tokens_table.c.token)
                                   .where(feed_tokens_table.c.profile == profile)).scalar_one()
    return str(token)


def token_is_valid(engine: Engine, profile: str, token: str | None) -> bool:
    """Whether ``token`` opens ``profile``'s feeds (never creates a token)."""
    if not token:
        return False
    with engine.connect() as connection:
        stored = connection.execute(sa.select(feed_tokens_table.c.token)
                                    .where(feed_tokens_table.c.profile == profile)).scalar()
    return stored is not None and hmac.compare_digest(str(stored).encode(), token.encode())
