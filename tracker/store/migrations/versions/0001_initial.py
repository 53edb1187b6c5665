"""Initial schema: calls, their change history and the source-run log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(400), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("native_id", sa.String(300), nullable=False),
        sa.Column("programme", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("call_identifier", sa.String(200), nullable=True),
        sa.Column("topic_identifier", sa.String(200), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("final_deadline", UTCDateTime(), nullable=True),
        sa.Column("record", JSONType, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("last_changed", UTCDateTime(), nullable=False),
        sa.Column("still_listed", sa.Boolean(), nullable=False),
        sa.Column("missing_runs", sa.Integer(), nullable=False),
    )
    op.create_index("ix_calls_source", "calls", ["source"])
    op.create_index("ix_calls_programme", "calls", ["programme"])
    op.create_index("ix_calls_call_identifier", "calls", ["call_identifier"])
    op.create_index("ix_calls_topic_identifier", "calls", ["topic_identifier"])
    op.create_index("ix_calls_status_final_deadline", "calls", ["status", "final_deadline"])

    op.create_table(
        "source_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("items_seen", sa.Integer(), nullable=False),
        sa.Column("new", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("notes", sa.String(), nullable=True),
    )
    op.create_index("ix_source_runs_source", "source_runs", ["source"])

    op.create_table(
        "call_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("source_runs.id"), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("field", sa.String(60), nullable=True),
        sa.Column("old", JSONType, nullable=True),
        sa.Column("new", JSONType, nullable=True),
    )
    op.create_index("ix_call_changes_call_id", "call_changes", ["call_id"])
    op.create_index("ix_call_changes_run_id", "call_changes", ["run_id"])
    op.create_index("ix_call_changes_at", "call_changes", ["at"])


def downgrade() -> None:
    op.drop_table("call_changes")
    op.drop_table("source_runs")
    op.drop_table("calls")
