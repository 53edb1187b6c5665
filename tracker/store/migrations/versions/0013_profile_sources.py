"""Profiles edited on the web: who owns a database profile, and where a mirrored one comes from.

``tenant``: the cluster whose managers may edit a profile made on the web (None: admins
only). ``source``: None for a profile made in the database (the web editor, the bot), else
the YAML file it was imported from (``tracker.rules.sources``: the file wins, and the web
shows it read-only). ``updated_by``: the account that saved it last on the web.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("tenant", sa.String(100), nullable=True))
        batch.add_column(sa.Column("source", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("updated_by", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("updated_by")
        batch.drop_column("source")
        batch.drop_column("tenant")
