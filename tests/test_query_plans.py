"""PostgreSQL plans for the queries that grow with the data (PostgreSQL only).

The dispatcher's claim runs every few seconds in every worker, against an outbox that
keeps every message ever sent; it must read its batch off an index, not scan the table.
The same holds for the change cursor, the open calls by deadline among years of closed
ones, and the digest entries a round still owes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tests.conftest import PG_URL
from tracker.delivery.dispatch import due_queries
from tracker.store.db import calls_table, changes_table, digest_entries_table

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs CALLWATCH_TEST_DATABASE_URL (PostgreSQL)")

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _plan(engine: Engine, query: sa.Select[tuple[int]]) -> str:
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        return "\n".join(row[0] for row in rows)


def _one_call(connection: Connection) -> None:
    """Call ``s:1``, which the change events and digest entries below refer to."""
    connection.execute(sa.text(
        "INSERT INTO calls (id, source, native_id, status, title, record, fingerprint,"
        " first_seen, last_seen, last_changed, still_listed, missing_runs)"
        " VALUES ('s:1', 's', '1', 'open', 't', '{}', 'f', :now, :now, :now, true, 0)"),
        {"now": NOW})


@pytest.fixture
def outbox(engine: Engine) -> Engine:
    """60,000 deliveries: 57,000 sent, 2,900 pending, 100 sending with an expired lease."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are checked on PostgreSQL")
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO subscribers (id, name, timezone, language, reminders, origin, created_at,"
            " updated_at) VALUES (1, 'sme', 'UTC', 'en', '[]', 'bot', now(), now())"))
        connection.execute(sa.text("""
            INSERT INTO deliveries (key, subscriber_id, channel, kind, message, status, attempts,
                                    parts_sent, next_attempt_at, lease_until, created_at)
            SELECT 'k' || g, 1, CASE WHEN g % 2 = 0 THEN 'email' ELSE 'telegram' END, 'alert',
                   '{}'::jsonb,
                   CASE WHEN g % 600 = 0 THEN 'sending' WHEN g % 20 = 0 THEN 'pending' ELSE 'sent' END,
                   0, 0, :now - g * interval '1 second',
                   CASE WHEN g % 600 = 0 THEN :now - interval '1 minute' END, :now
            FROM generate_series(1, 60000) AS g"""), {"now": NOW})
        connection.execute(sa.text("ANALYZE deliveries"))
    return engine


def test_due_deliveries_are_read_off_the_partial_indexes(outbox: Engine) -> None:
    expired, pending = due_queries(NOW, 200, ("email", "telegram"))
    expired_plan = _plan(outbox, expired.with_for_update(skip_locked=True))
    pending_plan = _plan(outbox, pending.with_for_update(skip_locked=True))
    assert "ix_deliveries_leases" in expired_plan, expired_plan
    assert "ix_deliveries_pending" in pending_plan, pending_plan
    assert "Seq Scan" not in expired_plan + pending_plan
    assert "Sort" not in pending_plan  # rows come in due order straight from the index


def test_changes_since_the_cursor_use_the_primary_key(engine: Engine) -> None:
    """100,000 change events, the notify cursor near the end: read only the tail."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are checked on PostgreSQL")
    with engine.begin() as connection:
        _one_call(connection)
        connection.execute(sa.text(
            "INSERT INTO call_changes (call_id, at, kind) SELECT 's:1', :now, 'details_changed'"
            " FROM generate_series(1, 100000)"), {"now": NOW})
        connection.execute(sa.text("ANALYZE call_changes"))
    query = (sa.select(changes_table).where(changes_table.c.id > 99_000)
             .order_by(changes_table.c.id))
    plan = _plan(engine, query)
    assert "call_changes_pkey" in plan and "Seq Scan" not in plan, plan


def test_open_calls_by_deadline_use_the_status_index(engine: Engine) -> None:
    """50,000 stored calls of which 49,000 closed (history piles up): `calls list` of the open
    and forthcoming ones reads them off ``ix_calls_status_final_deadline``."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are checked on PostgreSQL")
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO calls (id, source, native_id, status, title, record, fingerprint,"
            " final_deadline, first_seen, last_seen, last_changed, still_listed, missing_runs)"
            " SELECT 's:' || g, 's', g::text,"
            "  CASE WHEN g % 100 = 0 THEN 'open' WHEN g % 100 = 1 THEN 'forthcoming'"
            "       ELSE 'closed' END,"
            "  't', '{}', 'f', :now + g * interval '1 hour', :now, :now, :now, true, 0"
            " FROM generate_series(1, 50000) AS g"), {"now": NOW})
        connection.execute(sa.text("ANALYZE calls"))
    query = (sa.select(calls_table.c.id).where(calls_table.c.status.in_(["open", "forthcoming"]))
             .order_by(calls_table.c.final_deadline.is_(None), calls_table.c.final_deadline,
                       calls_table.c.id))
    plan = _plan(engine, query)
    assert "ix_calls_status_final_deadline" in plan and "Seq Scan" not in plan, plan


def test_digest_entries_after_a_position_use_the_profile_index(engine: Engine) -> None:
    """200,000 digest entries of 1,000 profiles, the round's positions near the end: the
    entries still owed are read off ``ix_digest_entries_profile (profile, id)``."""
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are checked on PostgreSQL")
    with engine.begin() as connection:
        _one_call(connection)
        connection.execute(sa.text(
            "INSERT INTO digest_entries (key, profile, call_id, reasons, created_at)"
            " SELECT 'e' || g, 'p' || (g % 1000), 's:1', '[]', :now"
            " FROM generate_series(1, 200000) AS g"), {"now": NOW})
        connection.execute(sa.text("ANALYZE digest_entries"))
    table = digest_entries_table
    query = (sa.select(table.c.id).where(table.c.profile.in_([f"p{n}" for n in range(500)]),
                                         table.c.id > 199_000, table.c.id <= 200_000)
             .order_by(table.c.id))
    plan = _plan(engine, query)
    assert "ix_digest_entries_profile" in plan or "digest_entries_pkey" in plan, plan
    assert "Seq Scan" not in plan, plan
