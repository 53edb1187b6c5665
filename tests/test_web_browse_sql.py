"""The calls page in SQL gives what the records say: the same calls, statuses at ``now``,
duplicates folded and order as judging every parsed record in Python (the oracle below,
which is how the page worked before), for every filter, on SQLite and PostgreSQL; and the
listing columns follow each write."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.delivery.outbox import sync_subscribers
from tracker.delivery.subscribers import Subscriber
from tracker.exports.rows import deduplicated, soonest_next_first
from tracker.models import CallRecord, CallStatus, ScrapeResult
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.store.calls import Store, StoredCall
from tracker.store.db import call_listing_table
from tracker.store.listing import country_key, search_text
from tracker.web.browse import CallFilters, calls_page

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TENANT = "mixed-cluster"
SOURCES = ("ft_portal", "eccp", "eit")
PROGRAMMES = ("Horizon Europe", "Interreg", "LIFE", None)
#: official ids several sources share, so duplicates (and same-source clashes) happen
TOPICS = [f"HORIZON-CL5-2026-D3-01-{n:02d}" for n in range(12)]


def random_calls(rng: random.Random, count: int) -> dict[str, list[CallRecord]]:
    """Calls of three sources with every shape the rules care about: shared topic ids and
    urls, cut-offs before and after ``now``, opening dates either side, stated statuses
    that dates contradict, unknown budgets and places."""
    by_source: dict[str, list[CallRecord]] = {source: [] for source in SOURCES}
    for n in range(count):
        source = rng.choice(SOURCES)
        cutoffs = tuple(NOW + timedelta(days=rng.randint(-200, 200), hours=rng.randint(0, 23))
                        for _ in range(rng.choice((0, 1, 1, 2, 3))))
        opening = rng.choice((None, NOW - timedelta(days=rng.randint(1, 300)),
                              NOW + timedelta(days=rng.randint(1, 60))))
        topic = rng.choice(TOPICS) if rng.random() < 0.5 else None
        by_source[source].append(make_call(
            f"T-{n:03d}", source=source, topic_identifier=topic, call_identifier=None,
            title=rng.choice(("Hydrogen valleys", "Soil health", "Straße der Energie",
                              "Batteries 100% recycled")) + f" {n}",
            summary=rng.choice(("Electrolysers for steel.", "Olive groves_and water.", "")),
            url=f"https://example.invalid/{rng.choice(('a', 'b', 'c', 'x' + str(n)))}",
            status=rng.choice(list(CallStatus)), opening_date=opening, deadlines=cutoffs,
            programme=rng.choice(PROGRAMMES),
            budget_eur=rng.choice((None, 50_000, 700_000, 2_000_000, 20_000_000)),
            countries=rng.choice(((), ("PT",), ("EL", "DE"))),
            regions=rng.choice(((), (), ("ES24",))),
            keywords=rng.choice(((), ("aquaculture",)))))
    return by_source


def populate(engine: Engine, seed: int) -> None:
    rng = random.Random(seed)
    store = Store(engine)
    calls = random_calls(rng, 120)
    for source, records in calls.items():
        store.record_run(source, ScrapeResult(records=records), started_at=NOW - timedelta(days=3),
                         now=NOW - timedelta(days=3))
    sync_subscribers(engine, [
        Subscriber.model_validate({"name": "ana", "tenant": TENANT,
                                   "channels": {"email": "ana@example.org"},
                                   "subscriptions": [{"profile": "a"}, {"profile": "b"}]}),
        Subscriber.model_validate({"name": "rui", "tenant": "other",
                                   "channels": {"email": "rui@example.org"},
                                   "subscriptions": [{"profile": "c"}]}),
    ], NOW - timedelta(days=3))
    rules = RulesStore(engine)
    every = [record for records in calls.values() for record in records]
    matches = [Match(profile=rng.choice("abc"), call_id=record.id, score=1, reasons=("x",),
                     call=record, next_deadline=None) for record in every if rng.random() < 0.9]
    rules.record_matches(matches, NOW - timedelta(days=2))
    for match in matches[::9]:
        rules.dismiss(match.profile, match.call_id, NOW - timedelta(days=1))


def oracle(engine: Engine, filters: CallFilters, now: datetime) -> list[tuple[str, ...]]:
    """The tenant's calls as the page listed them before: every record parsed and judged."""
    rules = RulesStore(engine)
    dismissed = rules.dismissed({"a", "b"})
    with engine.connect() as connection:
        ids = {(row.profile, row.call_id) for row in connection.execute(
            sa.text("SELECT profile, call_id FROM matches WHERE profile IN ('a', 'b')"))}
    mine = {call_id for _, call_id in ids - dismissed}
    calls = [call.as_of(now) for call in Store(engine).list_calls() if call.id in mine]

    def wanted(call: StoredCall) -> bool:
        r = call.record
        statuses = filters.statuses()
        shown = r.next_deadline(now)
        places = {country_key(code) for code in (*r.countries, *r.regions)}
        return all((
            statuses is None or r.status in statuses,
            filters.within_days is None or (
                shown is not None and now <= shown <= now + timedelta(days=filters.within_days)),
            not filters.programme or (r.programme or "").lower() == filters.programme.lower(),
            filters.budget_eur is None or r.budget_eur is None or r.budget_eur >= filters.budget_eur,
            not filters.source or r.source == filters.source,
            not filters.country or not places or filters.country in places,
            not filters.search or filters.search.casefold() in search_text(r),
        ))

    listed = soonest_next_first(deduplicated([c for c in calls if wanted(c)]), now)
    return [tuple(call.id for call in group) for group in listed]


def every_page(engine: Engine, filters: CallFilters, now: datetime) -> list[tuple[str, ...]]:
    """Every page of the tenant's calls, in pages of 7, as the page lists them."""
    first = calls_page(engine, TENANT, filters, now, size=7)
    entries = list(first.entries)
    for number in range(2, first.pages + 1):
        page = calls_page(engine, TENANT, CallFilters(**{**filters.__dict__, "page": number}),
                          now, size=7)
        assert (page.page, page.total) == (number, first.total)
        entries += page.entries
    assert len(entries) == first.total
    for entry in entries:  # each with its status at now
        assert all(call.as_of(now) == call for call in entry)
    return [tuple(call.id for call in entry) for entry in entries]


FILTERS = [
    {}, {"status": "all"}, {"status": "closed"}, {"status": "open"}, {"status": "forthcoming"},
    {"within": "30"}, {"within": "365", "status": "all"}, {"programme": "interreg"},
    {"budget": "1000000"}, {"budget": "100000", "status": "all"}, {"source": "eccp"},
    {"country": "pt"}, {"country": "GR", "status": "all"}, {"country": "es"},
    {"q": "hydrogen"}, {"q": "STRASSE", "status": "all"}, {"q": "100%"}, {"q": "groves_and"},
    {"q": "aquaculture", "status": "all", "budget": "500000", "country": "DE"},
]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_sql_page_lists_what_judging_every_record_lists(engine: Engine, seed: int) -> None:
    populate(engine, seed)
    duplicates = 0
    for query in FILTERS:
        filters = CallFilters.parse(query)
        for now in (NOW, NOW + timedelta(days=45)):  # time moves statuses and deadlines
            expected = oracle(engine, filters, now)
            assert every_page(engine, filters, now) == expected, (query, now)
            duplicates += sum(len(entry) > 1 for entry in expected)
    assert duplicates  # the data folds copies, so folding is tested


def test_a_page_past_the_end_shows_the_last_and_an_empty_list_has_one_page(engine: Engine) -> None:
    populate(engine, 3)
    last = calls_page(engine, TENANT, CallFilters(status="all"), NOW, size=7)
    beyond = calls_page(engine, TENANT, CallFilters(status="all", page=999), NOW, size=7)
    assert beyond.page == last.pages and beyond.total == last.total and beyond.entries
    none = calls_page(engine, TENANT, CallFilters(search="no such words"), NOW)
    assert (none.entries, none.total, none.page, none.pages) == ([], 0, 1, 1)


def test_listing_columns_follow_every_write(engine: Engine) -> None:
    """A rewrite updates the columns, cut-offs and keys; a copy at a second source marks
    both shared, and losing the key it shared unmarks both."""
    store = Store(engine)
    portal = make_call("HORIZON-CL5-2026-D3-01-01", countries=("EL",), budget_eur=None)
    mirror = make_call("eccp-1", source="eccp", topic_identifier="HORIZON-CL5-2026-D3-01-01",
                       url="https://eccp.invalid/1")

    def run(source: str, records: Sequence[CallRecord], days: int) -> None:
        store.record_run(source, ScrapeResult(records=list(records)),
                         started_at=NOW + timedelta(days=days), now=NOW + timedelta(days=days))

    def shared() -> dict[str, bool]:
        with engine.connect() as connection:
            return dict(connection.execute(sa.select(call_listing_table.c.call_id,
                                                     call_listing_table.c.shared)).all())

    run("ft_portal", [portal], 0)
    run("eccp", [mirror], 0)
    assert shared() == {portal.id: True, mirror.id: True}
    with engine.connect() as connection:
        row = connection.execute(sa.select(call_listing_table)
                                 .where(call_listing_table.c.call_id == portal.id)).one()
    assert (row.places, row.budget_eur, row.first_deadline) == (",GR,", None, portal.deadlines[0])
    run("eccp", [mirror.model_copy(update={"topic_identifier": None})], 1)
    assert shared() == {portal.id: False, mirror.id: False}
    store.refresh_statuses(portal.deadlines[-1] + timedelta(days=1))  # the clock closes both
    with engine.connect() as connection:
        assert set(connection.execute(sa.select(call_listing_table.c.status)).scalars()) == {
            "closed"}
