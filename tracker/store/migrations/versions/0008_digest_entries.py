"""Digest entries per profile: what a digest says is stored once for each profile and event,
and each subscription keeps how far its digests have read (``digested_through``), instead
of one ``digest_items`` row per subscriber and event (1.1 million rows, then 1.1 million
updates, for a round of 112,000 subscribers; BENCHMARKS.md, the scale round).

Items still waiting in ``digest_items`` are carried over: each distinct (profile, call,
event) becomes an entry, in the order the items were written, and each subscription
starts just before its oldest waiting entry (or after the newest entry when it had
none waiting). A subscriber who lacked an item that a fellow follower of the same profile
had (someone who followed later, or was muted) may see it once more; nothing waiting is
lost.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    entries = op.create_table(
        "digest_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_digest_entries_profile", "digest_entries", ["profile", "id"])
    op.add_column("subscriptions", sa.Column("digested_through", sa.Integer(), nullable=False,
                                             server_default="0"))
    bind = op.get_bind()
    items = sa.table("digest_items", sa.column("id"), sa.column("key"), sa.column("subscriber_id"),
                     sa.column("profile"), sa.column("call_id"), sa.column("change_id"),
                     sa.column("reasons", JSONType), sa.column("created_at", UTCDateTime()),
                     sa.column("digested_at", UTCDateTime()))
    subscriptions = sa.table("subscriptions", sa.column("id"), sa.column("subscriber_id"),
                             sa.column("profile"), sa.column("digested_through"))
    # the old key ends with the event's tag: digest-item|subscriber|mode|profile|call|tag
    carried: dict[str, dict[str, Any]] = {}
    oldest: dict[tuple[int, str], str] = {}
    for item in bind.execute(sa.select(items).where(items.c.digested_at.is_(None))
                             .order_by(items.c.id)):
        key = f"{item.profile}|{item.call_id}|{item.key.rsplit('|', 1)[-1]}"
        carried.setdefault(key, {"key": key, "profile": item.profile, "call_id": item.call_id,
                                 "change_id": item.change_id, "reasons": list(item.reasons),
                                 "created_at": item.created_at})
        oldest.setdefault((item.subscriber_id, item.profile), key)
    if carried:
        op.bulk_insert(entries, list(carried.values()))
    ids: dict[str, int] = {row.key: row.id for row in bind.execute(sa.select(entries.c.key, entries.c.id))}
    newest = max(ids.values(), default=0)
    bind.execute(subscriptions.update().values(digested_through=newest))
    for (subscriber_id, profile), key in oldest.items():
        bind.execute(subscriptions.update().where(
            subscriptions.c.subscriber_id == subscriber_id, subscriptions.c.profile == profile)
            .values(digested_through=ids[key] - 1))
    op.drop_table("digest_items")


def downgrade() -> None:
    op.create_table(
        "digest_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("digested_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_digest_items_pending", "digest_items", ["subscriber_id", "digested_at"])
    # what the entries still owed is not turned back into per-subscriber items: a
    # downgrade loses at most one period's digest
    op.drop_column("subscriptions", "digested_through")
    op.drop_index("ix_digest_entries_profile", "digest_entries")
    op.drop_table("digest_entries")
