"""Alembic environment: callwatch always passes an open connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import tracker.store.db  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `callwatch db upgrade`")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
