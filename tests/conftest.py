"""Shared fixtures: a migrated database on SQLite, and on PostgreSQL when configured.

Set CALLWATCH_TEST_DATABASE_URL (for example postgresql://postgres@127.0.0.1:5432/test) to
run every store test on PostgreSQL too. Each test gets its own schema there, dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store import db
from tracker.store.calls import Store

PG_URL = os.environ.get("CALLWATCH_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config or environment overrides."""
    for name in list(os.environ):
        if name.startswith("CALLWATCH_") and name != "CALLWATCH_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


def postgres_url_with_schema(base: str, schema: str) -> str:
    url = sa.engine.make_url(db.normalize_url(base))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL on each backend under test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'callwatch.db'}"
        return
    assert PG_URL is not None
    schema = f"cw_test_{uuid.uuid4().hex[:12]}"
    admin = db.make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_url_with_schema(PG_URL, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A running SMTP sink on 127.0.0.1, stopped after the test."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
