"""Listings in SQL: what the web's calls page filters and orders on, beside each record.

The calls page read every call its tenant's profiles matched and judged status, deadline
window and duplicates on the parsed records: about 8 s a page at 50,000 calls. This adds
what ``tracker.store.listing`` needs to do that in the database, filled from the stored
records: a narrow row per call (``call_listing``: source, programme, stated status,
opening date, first and final cut-off, budget, eligible countries, and whether another
source holds one of its identity keys), its search text (``call_search``), every cut-off
(``call_deadlines``), every identity key (``call_keys``); and an index on
``subscribers.tenant``, which each public page reads its tenant by.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tracker.models import CallRecord
from tracker.store.db import UTCDateTime, calls_table, chunks

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

def upgrade() -> None:
    from tracker.store.listing import write_listing

    op.create_table(
        "call_listing",
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("programme", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("opening_date", UTCDateTime(), nullable=True),
        sa.Column("first_deadline", UTCDateTime(), nullable=True),
        sa.Column("final_deadline", UTCDateTime(), nullable=True),
        sa.Column("budget_eur", sa.BigInteger(), nullable=True),
        sa.Column("places", sa.String(2000), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "call_search",
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_table(
        "call_deadlines",
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("at", UTCDateTime(), primary_key=True),
    )
    op.create_table(
        "call_keys",
        sa.Column("call_id", sa.String(400), sa.ForeignKey("calls.id"), primary_key=True),
        sa.Column("key", sa.String(1000), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
    )
    op.create_index("ix_call_keys_key", "call_keys", ["key", "source"])
    op.create_index("ix_subscribers_tenant", "subscribers", ["tenant"])
    bind = op.get_bind()
    ids = list(bind.execute(sa.select(calls_table.c.id).order_by(calls_table.c.id)).scalars())
    for chunk in chunks(ids):
        write_listing(bind, [CallRecord.model_validate(row.record) for row in bind.execute(
            sa.select(calls_table.c.record).where(calls_table.c.id.in_(chunk)))])


def downgrade() -> None:
    op.drop_index("ix_subscribers_tenant", table_name="subscribers")
    for table in ("call_keys", "call_deadlines", "call_search", "call_listing"):
        op.drop_table(table)
