"""Stored messages compressed with LZ4 on PostgreSQL: a digest round for 112,000 subscribers
stores some 36,000 bodies of 10-15 KB, and the server's default (pglz) spent about 0.2 ms
compressing each, against 0.08 ms for LZ4 (BENCHMARKS.md, the scale round). Only values
written from now on are affected; reading is the same. Nothing changes on SQLite, or on a
server built without LZ4.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (("delivery_bodies", "message"), ("deliveries", "message"))


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    values = bind.execute(sa.text(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    return bool(values) and "lz4" in values


def upgrade() -> None:
    if _lz4_available():
        for table, column in _COLUMNS:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION lz4')


def downgrade() -> None:
    if _lz4_available():
        for table, column in _COLUMNS:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION default')
