"""A PostgreSQL schema of its own for one benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from tracker.store import db


@contextmanager
def scratch_schema(base_url: str, prefix: str, keep: bool = False) -> Iterator[str]:
    """Create a fresh schema ``<prefix>_<random>`` in the database at ``base_url`` and yield a
    URL whose connections work in it; drop it afterwards unless ``keep``."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = db.make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = sa.engine.make_url(db.normalize_url(base_url))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        if not keep:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
