"""A digest round's shares (``digest_claims``): on PostgreSQL every worker claims ranges of
subscribers and renders their digests (issue 15).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import JSONType, UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_claims",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("round", sa.String(40), nullable=False),
        sa.Column("now", UTCDateTime(), nullable=False),
        sa.Column("upto", sa.Integer(), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("channels", JSONType, nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("enqueued", sa.Integer(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("round", "first_id", name="uq_digest_claims_share"),
    )
    op.create_index("ix_digest_claims_round", "digest_claims", ["round"])


def downgrade() -> None:
    op.drop_index("ix_digest_claims_round", "digest_claims")
    op.drop_table("digest_claims")
