"""The first scrape's shortcuts (issue 15) leave what is stored and read unchanged: the record
serialized once, fewer collections."""

from __future__ import annotations

import gc
import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from tests.factories import make_call
from tracker.collection import YOUNG_THRESHOLD, fewer_collections
from tracker.models import ScrapeResult, fingerprint_of
from tracker.store.calls import Store
from tracker.store.db import JSONText, calls_table, make_engine, write_json


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
