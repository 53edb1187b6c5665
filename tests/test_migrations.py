"""Migrations carry stored state forward: 0008 turns waiting per-subscriber digest items into
per-profile entries without losing any, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from tests.factories import make_call
from tracker.delivery.dispatch import list_deliveries
from tracker.delivery.outbox import enqueue_digests
from tracker.models import CallRecord
from tracker.store import db
from tracker.store.db import (
    call_deadlines_table,
    call_listing_table,
    call_search_table,
    digest_entries_table,
    subscriptions_table,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Brussels: daily digests are due


def _at(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.upgrade(db._alembic_config(connection), revision)


def _store_before_0014(connection: sa.Connection, records: list[CallRecord], at: datetime) -> None:
    """``records`` as the store wrote them before 0014 (no listing columns)."""
    old = sa.table("calls", *(sa.column(name) for name in (
        "id", "source", "native_id", "programme", "status", "title", "call_identifier",
        "topic_identifier", "url", "fingerprint", "first_seen", "last_seen", "last_changed",
        "still_listed", "missing_runs")), sa.column("final_deadline", db.UTCDateTime()),
        sa.column("record", db.JSONType))
    connection.execute(old.insert(), [{
        "id": r.id, "source": r.source, "native_id": r.native_id, "programme": r.programme,
        "status": r.status.value, "title": r.title, "call_identifier": r.call_identifier,
        "topic_identifier": r.topic_identifier, "url": r.url, "fingerprint": r.fingerprint(),
        "final_deadline": r.deadlines[-1] if r.deadlines else None,
        "record": r.model_dump(mode="json"), "first_seen": at, "last_seen": at,
        "last_changed": at, "still_listed": True, "missing_runs": 0} for r in records])


def test_0014_fills_the_listing_columns_from_the_stored_records(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        _at(engine, "0013")
        portal = make_call("HORIZON-CL5-2026-D3-01-01", regions=("EL30",), budget_eur=None,
                           summary="Steel and Hydrogen", deadlines=(NOW, NOW + timedelta(days=9)))
        mirror = make_call("eccp-1", source="eccp", topic_identifier=portal.topic_identifier,
                           url="https://eccp.invalid/1", deadlines=())
        alone = make_call("HORIZON-CL5-2026-D3-01-02")
        with engine.begin() as connection:
            _store_before_0014(connection, [portal, mirror, alone], NOW)
        _at(engine, "head")
        with engine.connect() as connection:
            rows = {row.call_id: row for row in connection.execute(sa.select(call_listing_table))}
            text = connection.execute(sa.select(call_search_table.c.text).where(
                call_search_table.c.call_id == portal.id)).scalar_one()
            cutoffs = connection.execute(sa.select(call_deadlines_table.c.at).where(
                call_deadlines_table.c.call_id == portal.id).order_by(call_deadlines_table.c.at))
            assert list(cutoffs.scalars()) == list(portal.deadlines)
        assert {i: r.shared for i, r in rows.items()} == {portal.id: True, mirror.id: True,
                                                         alone.id: False}
        row = rows[portal.id]
        assert (row.places, row.budget_eur, row.first_deadline, row.opening_date) == (
            ",GR,", None, NOW, portal.opening_date)
        assert "steel and hydrogen" in text and portal.id.lower() in text
    finally:
        engine.dispose()


def test_0008_carries_waiting_digest_items_over_as_entries(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        _at(engine, "0007")
        calls = [make_call(f"HORIZON-MIGRATE-{n}", title=f"Migrated call {n}") for n in range(3)]
        items = sa.table("digest_items", *(sa.column(c) for c in (
            "key", "subscriber_id", "mode", "profile", "call_id", "change_id", "reasons",
            "created_at", "digested_at")))
        with engine.begin() as connection:
            _store_before_0014(connection, calls, NOW - timedelta(hours=4))
            for n in (1, 2, 3):
                connection.execute(sa.text(
                    "INSERT INTO subscribers (id, name, timezone, language, reminders, origin, "
                    "created_at, updated_at) VALUES (:id, :name, 'Europe/Brussels', 'en', '[]', "
                    "'bot', :now, :now)"), {"id": n, "name": f"sme-{n}", "now": NOW})
                connection.execute(sa.text(
                    "INSERT INTO subscriber_channels (subscriber_id, channel, address, "
                    "configured_address, webhook_format, active) VALUES (:id, 'email', :a, :a, "
                    "'generic', true)"), {"id": n, "a": f"sme-{n}@example.invalid"})
                connection.execute(sa.text(
                    "INSERT INTO subscriptions (subscriber_id, profile, mode, token) "
                    "VALUES (:id, 'a', 'daily', :t)"), {"id": n, "t": f"t{n}"})

            def item(subscriber: int, call: int, digested: bool) -> None:
                connection.execute(items.insert().values(
                    key=f"digest-item|{subscriber}|daily|a|{calls[call].id}|match",
                    subscriber_id=subscriber, mode="daily", profile="a", call_id=calls[call].id,
                    change_id=None, reasons='["keyword"]', created_at=NOW - timedelta(hours=3),
                    digested_at=NOW - timedelta(hours=2) if digested else None))

            item(1, 0, digested=True)   # already in yesterday's digest
            item(1, 1, digested=False)  # waiting for subscriber 1 …
            item(2, 1, digested=False)  # … and for subscriber 2
            item(2, 2, digested=False)  # waiting for subscriber 2 only
        _at(engine, "head")
        with engine.connect() as connection:
            entries = [(r.key, r.profile, r.reasons) for r in connection.execute(
                sa.select(digest_entries_table).order_by(digest_entries_table.c.id))]
            positions = {r.subscriber_id: r.digested_through for r in connection.execute(
                sa.select(subscriptions_table))}
            assert "digest_items" not in sa.inspect(connection).get_table_names()
        assert entries == [(f"a|{calls[1].id}|match", "a", ["keyword"]),
                           (f"a|{calls[2].id}|match", "a", ["keyword"])]
        # each subscription starts before its oldest waiting entry; 3 had none waiting
        assert positions == {1: 0, 2: 0, 3: 2}
        assert enqueue_digests(engine, NOW, ["email"]) == 2
        texts = {row.subscriber_id: row.message["text"] for row in list_deliveries(engine)}
        assert "Migrated call 1" in texts[1] and "Migrated call 0" not in texts[1]
        assert "Migrated call 1" in texts[2] and "Migrated call 2" in texts[2]
    finally:
        engine.dispose()


def test_0009_lets_a_profile_be_followed_once_per_channel_set_and_goes_back(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        _at(engine, "0008")
        insert = sa.text("INSERT INTO subscriptions (subscriber_id, profile, mode, channels, token) "
                         "VALUES (1, 'h2', :mode, :channels, :token)")
        with engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO subscribers (id, name, timezone, language, reminders, origin, "
                "created_at, updated_at) VALUES (1, 'ana', 'Europe/Brussels', 'en', '[]', "
                "'file', :now, :now)"), {"now": NOW})
            connection.execute(insert, {"mode": "instant", "channels": '["telegram"]', "token": "t1"})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:  # before 0009
            connection.execute(insert, {"mode": "daily", "channels": '["email"]', "token": "t2"})
        _at(engine, db.head_revision())
        with engine.begin() as connection:
            connection.execute(insert, {"mode": "daily", "channels": '["email"]', "token": "t2"})
            rows = connection.execute(sa.select(subscriptions_table.c.token, subscriptions_table.c.mode,
                                                subscriptions_table.c.channels)
                                      .order_by(subscriptions_table.c.id)).all()
            assert "opt_outs" in sa.inspect(connection).get_table_names()
        assert [tuple(r) for r in rows] == [("t1", "instant", ["telegram"]), ("t2", "daily", ["email"])]
        with engine.begin() as connection:  # back to 0008: the oldest of the two stays
            command.downgrade(db._alembic_config(connection), "0008")
        with engine.connect() as connection:
            assert [r.token for r in connection.execute(sa.select(subscriptions_table.c.token))] == ["t1"]
            assert "opt_outs" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


def test_the_migrated_schema_is_the_tables_the_code_defines(database_url: str) -> None:
    """The SQLModel classes in ``tracker.store.db`` are what the migrations make: no column,
    type, index or constraint apart (a new SQLite database is created from them)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


_TABLE_CONSTRAINT = ("PRIMARY KEY", "FOREIGN KEY", "UNIQUE", "CHECK", "CONSTRAINT")


def _layout(sql: str) -> str:
    """A ``CREATE`` statement with its spacing normalized and, in a table, its table
    constraints sorted: the columns keep their order, but the order in which a batch copy
    writes the constraints varies from run to run (Alembic collects them in a set)."""
    sql = " ".join(sql.split())
    head, paren, rest = sql.partition("(")
    if not head.startswith("CREATE TABLE") or not paren:
        return sql
    body, parts, depth, start = rest.rsplit(")", 1)[0], [], 0, 0
    for at, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:at].strip())
            start = at + 1
    parts.append(body[start:].strip())
    columns = [part for part in parts if not part.startswith(_TABLE_CONSTRAINT)]
    constraints = sorted(part for part in parts if part.startswith(_TABLE_CONSTRAINT))
    return f"{head}( {', '.join(columns + constraints)} )"


def _sqlite_schema(url: str) -> dict[tuple[str, str], str]:
    """Every table and index of a SQLite file as its ``CREATE`` statement (``_layout``; the
    quotes a batch copy puts around a table's name aside)."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").all()
    finally:
        engine.dispose()
    return {(kind, name): _layout(str(sql).replace(f'"{name}"', name)) for kind, name, sql in rows}


def test_a_new_sqlite_database_is_created_as_the_migrations_would_make_it(tmp_path: Path) -> None:
    migrated, created = f"sqlite:///{tmp_path / 'migrated.db'}", f"sqlite:///{tmp_path / 'new.db'}"
    engine = db.make_engine(migrated)
    db.upgrade(engine)
    engine.dispose()
    engine = db.make_engine(created)
    db.create_or_upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    db.create_or_upgrade(engine)  # a second time: at the head, nothing to do
    engine.dispose()
    assert _sqlite_schema(created) == _sqlite_schema(migrated)
