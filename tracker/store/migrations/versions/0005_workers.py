"""Several workers: the shared Telegram budget, and partial indexes for claiming deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_pacing",
        sa.Column("key", sa.String(60), primary_key=True),
        sa.Column("next_at", sa.Float(), nullable=False),
    )
    pending = sa.text("status = 'pending'")
    sending = sa.text("status = 'sending'")
    op.create_index("ix_deliveries_pending", "deliveries", ["next_attempt_at", "id"],
                    postgresql_where=pending, sqlite_where=pending)
    op.create_index("ix_deliveries_leases", "deliveries", ["lease_until"],
                    postgresql_where=sending, sqlite_where=sending)


def downgrade() -> None:
    op.drop_index("ix_deliveries_leases", "deliveries")
    op.drop_index("ix_deliveries_pending", "deliveries")
    op.drop_table("telegram_pacing")
