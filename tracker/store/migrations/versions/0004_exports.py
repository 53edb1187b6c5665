"""Exports and health: per-profile feed tokens and the scheduler heartbeat.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_tokens",
        sa.Column("profile", sa.String(100), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "scheduler_heartbeats",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("process", sa.String(200), nullable=False),
        sa.Column("beat_at", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime(), nullable=True),
        sa.Column("jobs", JSONType, nullable=False),
    )


def downgrade() -> None:
    for table in ("scheduler_heartbeats", "feed_tokens"):
        op.drop_table(table)
