"""Members who sign up on a tenant's web page: their consent records (``consents``).

A member who signs up on the web becomes a subscriber with ``origin`` "web" (the column
exists since 0003 and is a plain string: nothing changes there); the file sync manages
only subscribers of origin "file", so web members are never deleted by it. This adds the
record of each member's consent (what they were shown, when, from where, and when they
confirmed from the email).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.store.db import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer(), sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("person_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("signed_up_at", UTCDateTime(), nullable=False),
        sa.Column("signed_up_from", sa.String(45), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_from", sa.String(45), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_consents_subscriber_id", "consents", ["subscriber_id"])


def downgrade() -> None:
    op.drop_index("ix_consents_subscriber_id", table_name="consents")
    op.drop_table("consents")
