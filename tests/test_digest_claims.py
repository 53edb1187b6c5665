"""A digest round on PostgreSQL is written as shares that several workers claim: together
they enqueue exactly what one worker does, and the share of a worker that dies is done by
another (issue 15)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.conftest import PG_URL, postgres_url_with_schema
from tests.factories import make_call
from tracker.delivery.dispatch import list_deliveries
from tracker.delivery.outbox import (
    enqueue_digests,
    help_digest_rounds,
    open_digest_round,
    work_digest_rounds,
)
from tracker.models import ScrapeResult
from tracker.store import db
from tracker.store.calls import Store
from tracker.store.db import (
    channels_table,
    digest_claims_table,
    digest_entries_table,
    subscribers_table,
    subscriptions_table,
)

pytestmark = pytest.mark.skipif(PG_URL is None, reason="shares are claimed on PostgreSQL only")

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 10:00 in Brussels: daily digests are due
CALLS = [make_call(f"HORIZON-SHARE-{n}", title=f"Share call {n}") for n in range(6)]
SUBSCRIBERS = 24
PROFILES = ["a", "b", "c"]


@pytest.fixture
def fresh() -> Iterator[Any]:
    """Make migrated schemas of their own (one per worker count), dropped afterwards."""
    assert PG_URL is not None
    admin = db.make_engine(PG_URL)
    made: list[tuple[str, Engine]] = []

    def make() -> Engine:
        schema = f"cw_test_{uuid.uuid4().hex[:12]}"
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = db.make_engine(postgres_url_with_schema(PG_URL, schema))
        db.upgrade(engine)
        made.append((schema, engine))
        _world(engine)
        return engine

    yield make
    for schema, engine in made:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _world(engine: Engine) -> None:
    """Six calls; 24 subscribers following one or two of three profiles, some in
    Telegram too, in two time zones."""
    Store(engine).record_run(
        "ft_portal", ScrapeResult(records=CALLS), started_at=NOW - timedelta(minutes=1), now=NOW
    )
    with engine.begin() as connection:
        for n in range(1, SUBSCRIBERS + 1):
            connection.execute(
                subscribers_table.insert().values(
                    id=n,
                    name=f"sme-{n}",
                    timezone="Europe/Brussels" if n % 3 else "Europe/Lisbon",
                    language="en",
                    reminders=[],
                    origin="bot",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            for channel in ["email", "telegram"] if n % 4 == 0 else ["email"]:
                connection.execute(
                    channels_table.insert().values(
                        subscriber_id=n,
                        channel=channel,
                        address=f"sme-{n}@example.invalid",
                        configured_address=f"sme-{n}@example.invalid",
                        webhook_format="generic",
                        active=True,
                    )
                )
            follows = [PROFILES[n % 3]] + ([PROFILES[(n + 1) % 3]] if n % 5 == 0 else [])
            for profile in follows:
                connection.execute(
                    subscriptions_table.insert().values(
                        subscriber_id=n, profile=profile, mode="daily", channels=None, token=f"t{n}-{profile}"
                    )
                )
        for number, call in enumerate(CALLS):
            for profile in PROFILES[: 1 + number % 3]:
                connection.execute(
                    digest_entries_table.insert().values(
                        key=f"{profile}|{call.id}",
                        profile=profile,
                        call_id=call.id,
                        change_id=None,
                        reasons=[f"title: share {number}"],
                        created_at=NOW,
                    )
                )


def _outbox(engine: Engine) -> dict[str, tuple[str, Any]]:
    """Every outbox row by key: its channel and message (a shared body resolved)."""
    return {row.key: (row.channel, row.message) for row in list_deliveries(engine, limit=10_000)}


def _claims(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(digest_claims_table).order_by(digest_claims_table.c.id)))


def test_two_and_three_workers_enqueue_exactly_what_one_does(fresh: Any) -> None:
    alone = fresh()
    assert enqueue_digests(alone, NOW, ["email", "telegram"], batch=2) == 30
    expected = _outbox(alone)
    assert len(expected) == 30

    for workers in (2, 3):
        engine = fresh()
        name = open_digest_round(engine, NOW, ["email", "telegram"], batch=2)
        counts: list[int] = []
        start = threading.Barrier(workers)

        def work(
            engine: Engine = engine, start: threading.Barrier = start, counts: list[int] = counts
        ) -> None:
            start.wait()
            counts.append(work_digest_rounds(engine))

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert _outbox(engine) == expected  # same keys, same bodies, none twice
        assert sum(counts) == 30 and len(counts) == workers
        claims = _claims(engine)
        assert {c.round for c in claims} == {name} and all(c.done_at for c in claims)
        assert sum(c.enqueued for c in claims) == 30
        # the round is done: nothing left to help with, and no digest is enqueued again
        assert help_digest_rounds(engine) == 0
        assert enqueue_digests(engine, NOW, ["email", "telegram"], batch=2) == 0


STUCK_WORKER = """
import sys, time
from tracker.delivery import outbox
from tracker.store import db

enqueue = outbox._enqueue_digest_batch

def enqueue_then_hang(*args, **kwargs):
    count = enqueue(*args, **kwargs)  # written, not committed: the worker dies here
    print("claimed", args[3], flush=True)
    time.sleep(600)
    return count

outbox._enqueue_digest_batch = enqueue_then_hang
outbox.work_digest_rounds(db.make_engine(sys.argv[1]))
"""


def test_a_worker_killed_inside_its_share_leaves_it_to_the_others(fresh: Any) -> None:
    alone = fresh()
    enqueue_digests(alone, NOW, ["email", "telegram"], batch=2)
    expected = _outbox(alone)

    engine = fresh()
    name = open_digest_round(engine, NOW, ["email", "telegram"], batch=2)
    url = engine.url.render_as_string(hide_password=False)
    root = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen(  # noqa: S603 - this interpreter, this test's script
        [sys.executable, "-c", STUCK_WORKER, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line.startswith("claimed"), line
        # another worker does every other share, not the one held
        assert work_digest_rounds(engine) < 30
        held = [c for c in _claims(engine) if c.done_at is None]
        assert len(held) == 1
        done = _outbox(engine)
        assert done.items() < expected.items()
        assert not any(
            key.startswith(f"digest|{n}|")
            for n in range(held[0].first_id, held[0].last_id + 1)
            for key in done
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    # the dead worker's transaction rolled back: its share is claimed again and done once
    assert work_digest_rounds(engine, name=name) > 0
    assert _outbox(engine) == expected
    assert all(c.done_at for c in _claims(engine))
