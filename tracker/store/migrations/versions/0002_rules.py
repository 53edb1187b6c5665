"""Rules layer: database profiles, dismissals, recorded matches and per-profile match runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )

    op.create_table(
        "dismissals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("profile", "call_id", name="uq_dismissals_profile_call"),
    )
    op.create_index("ix_dismissals_profile", "dismissals", ["profile"])

    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("reasons", JSONType, nullable=False),
        sa.Column("first_matched", UTCDateTime(), nullable=False),
        sa.Column("last_matched", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("profile", "call_id", name="uq_matches_profile_call"),
    )
    op.create_index("ix_matches_profile", "matches", ["profile"])
    op.create_index("ix_matches_call_id", "matches", ["call_id"])

    op.create_table(
        "profile_runs",
        sa.Column("profile", sa.String(100), primary_key=True),
        sa.Column("last_run", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("profile_runs")
    op.drop_table("matches")
    op.drop_table("dismissals")
    op.drop_table("profiles")
