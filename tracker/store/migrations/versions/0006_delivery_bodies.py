"""Delivery bodies: a rendered message shared by many outbox rows is stored once; the
outbox's old due index goes (the partial indexes of 0005 serve the dispatcher, and the
planner preferred the old one right after a large enqueue, then sorted every due row).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_bodies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("message", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    # no foreign key: SQLite cannot add one to an existing table without rebuilding it
    op.add_column("deliveries", sa.Column("body_id", sa.Integer(), nullable=True))
    op.drop_index("ix_deliveries_due", "deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.drop_column("deliveries", "body_id")
    op.drop_table("delivery_bodies")
