"""Who invited a member: ``consents.invited_by`` (issue 17, invitations).

A cluster manager may invite an address from the members page: the invitee gets the same
double opt-in email as a sign-up, and confirming stores the same consent record, with the
inviting manager's email address here (NULL: the member signed up on their own).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("invited_by", sa.String(320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("invited_by")
