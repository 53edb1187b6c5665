"""The first scrape's shortcuts (issue 15) leave what is stored and read unchanged: the record
serialized once, fewer collections."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from tests.factories import make_call
from tracker.collection import YOUNG_THRESHOLD, fewer_collections
from tracker.models import ScrapeResult, fingerprint_of
from tracker.store import db as db_module
from tracker.store.calls import Store
from tracker.store.db import JSONText, UTCDateTime, calls_table, make_engine, write_json


def test_the_record_column_holds_the_text_the_fingerprint_was_taken_of(
        store: Store, now: datetime) -> None:
    record = make_call(summary="Électrolyseurs — “quoted” \u2028 text")
    store.record_run("ft_portal", ScrapeResult(records=[record]), started_at=now, now=now)
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(calls_table.c.record, calls_table.c.fingerprint)).one()
        if connection.dialect.name == "sqlite":  # the stored text itself: json.dumps's
            text = connection.execute(sa.text("SELECT record FROM calls")).scalar()
            assert text == json.dumps(record.model_dump(mode="json"))
    assert row.record == record.model_dump(mode="json")
    assert row.fingerprint == fingerprint_of(record.model_dump(mode="json")) == record.fingerprint()
    assert store.get_call(record.id).record == record


def test_json_text_is_written_as_given_and_reads_as_its_object_elsewhere() -> None:
    value = {"a": [1, "é"], "b": None}
    marked = JSONText(value, "given text")
    assert write_json(marked) == "given text"  # the engines' serializer trusts the text
    assert write_json(value) == json.dumps(value)
    assert json.dumps(marked) == json.dumps(value)  # an engine without write_json


def test_engines_write_json_through_write_json(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert engine.dialect._json_serializer is write_json  # type: ignore[attr-defined]
    engine.dispose()


def test_fewer_collections_nests_and_restores() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a failed scrape")
    assert gc.get_threshold() == before


@pytest.mark.parametrize("dialect", [sqlite_dialect.dialect(), postgresql_dialect.dialect()],
                         ids=["sqlite", "postgresql"])
def test_a_datetime_column_writes_each_instant_as_it_did_unremembered(
        dialect: sa.Dialect, monkeypatch: pytest.MonkeyPatch) -> None:
    """``UTCDateTime`` remembers what it wrote for a value: one instant given in two zones
    is written alike, the UTC text SQLite stores; a naive twin is still refused."""
    column = UTCDateTime().dialect_impl(dialect)  # as a statement's compiler takes it
    assert isinstance(column, UTCDateTime)
    written = column.bind_processor(dialect)
    impl = column.impl_instance.bind_processor(dialect) or (lambda value: value)
    assert written is not None

    def unremembered(value: datetime) -> object:
        return impl(column.process_bind_param(value, dialect))

    paris = timezone(timedelta(hours=2))
    instants = [datetime(2027, 1, 16, 17, 0, tzinfo=UTC),
                datetime(2027, 1, 16, 19, 0, tzinfo=paris),  # the same instant
                datetime(2027, 1, 16, 17, 0, 0, 250, tzinfo=UTC),
                datetime(2026, 12, 4, 2, 30, 5, 123456, tzinfo=paris)]
    for value in [*instants, *reversed(instants), *instants]:
        assert written(value) == unremembered(value)
    if dialect.name == "sqlite":
        assert written(instants[1]) == "2027-01-16 17:00:00.000000"
    assert written(None) is None
    with pytest.raises(ValueError, match="naive"):
        written(datetime(2027, 1, 16, 17, 0))  # noqa: DTZ001 - the naive value refused
    monkeypatch.setattr(db_module, "REMEMBERED_INSTANTS", 2)  # forgets, then remembers anew
    for value in instants * 2:
        assert written(value) == unremembered(value)
