"""Delivery: subscribers, their channels and subscriptions, the outbox, digest items, cursors.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("tenant", sa.String(100), nullable=True),
        sa.Column("timezone", sa.String(60), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("quiet_hours", sa.String(20), nullable=True),
        sa.Column("reminders", JSONType, nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("muted_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "subscriber_channels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("configured_address", sa.String(500), nullable=False),
        sa.Column("webhook_format", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.UniqueConstraint("subscriber_id", "channel", name="uq_subscriber_channels_channel"),
    )
    op.create_index("ix_subscriber_channels_subscriber_id", "subscriber_channels", ["subscriber_id"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("channels", JSONType, nullable=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.UniqueConstraint("subscriber_id", "profile", name="uq_subscriptions_profile"),
    )
    op.create_index("ix_subscriptions_subscriber_id", "subscriptions", ["subscriber_id"])
    op.create_index("ix_subscriptions_profile", "subscriptions", ["profile"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(400), nullable=False, unique=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("call_id", sa.String(400), nullable=True),
        sa.Column("message", JSONType, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parts_sent", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"])
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
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("cursors", "digest_items", "deliveries", "subscriptions",
                  "subscriber_channels", "subscribers"):
        op.drop_table(table)
