"""Exports: iCalendar parsed back with icalendar, CSV and JSON shapes, Atom parsed with feedparser."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import feedparser
import icalendar
import pytest
from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.exports import formats, reading
from tracker.exports.formats import FeedItem
from tracker.exports.rows import CSV_COLUMNS, call_total_text
from tracker.models import CallRecord, ChangeKind, ScrapeResult
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.store.calls import Store, StoredCall

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
CUT_1 = datetime(2027, 2, 10, 16, 0, tzinfo=UTC)
CUT_2 = datetime(2027, 4, 16, 15, 0, tzinfo=UTC)


def _store_run(store: Store, records: list[CallRecord], now: datetime) -> None:
    store.record_run("ft_portal", ScrapeResult(records=records), started_at=now, now=now)


def _match(engine: Engine, profile: str, record: CallRecord, now: datetime,
           reasons: tuple[str, ...] = ('keyword "hydrogen" in title',)) -> None:
    RulesStore(engine).record_matches([Match(
        profile=profile, call_id=record.id, score=len(reasons), reasons=reasons, call=record,
        next_deadline=record.deadlines[0] if record.deadlines else None)], now)


def _events(data: bytes) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(data)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


@pytest.fixture
def two_cutoffs(store: Store, engine: Engine) -> CallRecord:
    """A hydrogen call with two cut-offs, stored and matched for profile h2; a second call
    stored but matched only for another profile, and a third matched then dismissed."""
    record = make_call("H2-A", deadlines=(CUT_1, CUT_2), budget_eur=4_000_000)
    other = make_call("OTHER", title="Something else")
    dismissed = make_call("H2-DISMISSED", title="Hydrogen, but not for us")
    _store_run(store, [record, other, dismissed], T0)
    _match(engine, "h2", record, T0)
    _match(engine, "h2", dismissed, T0)
    _match(engine, "other", other, T0)
    RulesStore(engine).dismiss("h2", dismissed.id, T0)
    return record


# -- iCalendar ----------------------------------------------------------------------------

def test_ical_has_one_event_per_cutoff_in_utc_with_an_alarm(engine: Engine,
                                                            two_cutoffs: CallRecord) -> None:
    data = formats.to_ical(reading.profile_items(engine, "h2"), name="callwatch: h2")
    calendar = icalendar.Calendar.from_ical(data)
    assert str(calendar["VERSION"]) == "2.0"
    assert "callwatch" in str(calendar["PRODID"])
    events = _events(data)
    assert sorted(events) == ["ft_portal:H2-A/0@callwatch", "ft_portal:H2-A/1@callwatch"]
    first, second = events["ft_portal:H2-A/0@callwatch"], events["ft_portal:H2-A/1@callwatch"]
    assert first.decoded("DTSTART") == CUT_1 and second.decoded("DTSTART") == CUT_2
    assert first.decoded("DTSTART").utcoffset() == timedelta(0)
    assert b"DTSTART:20270210T160000Z" in data  # UTC form, no TZID
    for event in (first, second):
        assert event.decoded("DTEND") != event.decoded("DTSTART")
        assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(hours=1)
        assert "DTSTAMP" in event
        assert str(event["SUMMARY"]) == f"Deadline: {two_cutoffs.title}"
        assert str(event["URL"]) == two_cutoffs.url
        description = str(event["DESCRIPTION"])
        assert "Programme: Horizon Europe" in description
        assert "Identifier: H2-A" in description
        assert "Budget: EUR 4.0 M" in description
        alarms = event.walk("VALARM")
        assert len(alarms) == 1
        assert alarms[0].decoded("TRIGGER") == -timedelta(days=7)
        assert str(alarms[0]["ACTION"]) == "DISPLAY"
        assert int(event["SEQUENCE"]) == 0
    assert b"TRIGGER:-P7D" in data
    assert "cut-off 2 of 2" in str(second["DESCRIPTION"])


def test_ical_leaves_out_dismissed_and_other_profiles_calls(engine: Engine,
                                                            two_cutoffs: CallRecord) -> None:
    uids = _events(formats.to_ical(reading.profile_items(engine, "h2"), name="h2"))
    assert sorted(uids) == ["ft_portal:H2-A/0@callwatch", "ft_portal:H2-A/1@callwatch"]
    # the left-out calls are there to leave out: each is in its own profile's export
    others = _events(formats.to_ical(reading.profile_items(engine, "other"), name="other"))
    assert sorted(others) == ["ft_portal:OTHER/0@callwatch"]


def test_ical_uids_are_stable_and_sequence_rises_when_a_deadline_moves(
        store: Store, engine: Engine, two_cutoffs: CallRecord) -> None:
    before = _events(formats.to_ical(reading.profile_items(engine, "h2"), name="h2"))
    moved = two_cutoffs.model_copy(update={"deadlines": (CUT_1, CUT_2 + timedelta(days=14))})
    _store_run(store, [moved], T0 + timedelta(days=1))
    assert [c.kind.value for c in store.history(moved.id)][-1] == "deadline_changed"

    after = _events(formats.to_ical(reading.profile_items(engine, "h2"), name="h2"))
    assert sorted(after) == sorted(before)
    moved_event = after["ft_portal:H2-A/1@callwatch"]
    assert moved_event.decoded("DTSTART") == CUT_2 + timedelta(days=14)
    assert int(moved_event["SEQUENCE"]) == 1
    assert moved_event.decoded("DTSTAMP") == T0 + timedelta(days=1)

    moved_again = moved.model_copy(update={"deadlines": (CUT_1, CUT_2 + timedelta(days=21))})
    _store_run(store, [moved_again], T0 + timedelta(days=2))
    again = _events(formats.to_ical(reading.profile_items(engine, "h2"), name="h2"))
    assert int(again["ft_portal:H2-A/1@callwatch"]["SEQUENCE"]) == 2


def test_a_feed_item_carries_its_calls_latest_changes_and_every_deadline_move(
        store: Store, engine: Engine, two_cutoffs: CallRecord) -> None:
    for days in (14, 21):
        moved = two_cutoffs.model_copy(update={"deadlines": (CUT_1, CUT_2 + timedelta(days=days))})
        _store_run(store, [moved], T0 + timedelta(days=days))
    [item] = reading.profile_items(engine, "h2")
    assert item.deadline_changes == 2
    [latest] = item.changes  # the second move only: the first and the ``new`` are older
    assert latest.kind is ChangeKind.DEADLINE_CHANGED and latest.at == T0 + timedelta(days=21)


def test_ical_of_unchanged_data_is_byte_identical(engine: Engine, two_cutoffs: CallRecord) -> None:
    first = formats.to_ical(reading.profile_items(engine, "h2"), name="h2")
    assert len(_events(first)) == 2  # both cut-offs: an empty calendar would match itself
    assert formats.to_ical(reading.profile_items(engine, "h2"), name="h2") == first


def _stored(record: CallRecord, changed: datetime = T0) -> StoredCall:
    return StoredCall(record=record, first_seen=T0, last_seen=changed, last_changed=changed,
                      still_listed=True)


def test_ical_of_a_call_without_deadline_has_no_event_and_escapes_text() -> None:
    items = [FeedItem(call=_stored(make_call("NONE", deadlines=()))),
             FeedItem(call=_stored(make_call("ODD", title="Commas, semicolons; and\nnewlines")))]
    data = formats.to_ical(items, name="odd")
    events = _events(data)
    assert list(events) == ["ft_portal:ODD/0@callwatch"]
    assert str(events["ft_portal:ODD/0@callwatch"]["SUMMARY"]) == \
        "Deadline: Commas, semicolons; and newlines"
    assert b"SUMMARY:Deadline: Commas\\, semicolons\\; and newlines" in data


# -- CSV and JSON -------------------------------------------------------------------------

def test_csv_has_the_calls_list_columns(now: datetime) -> None:
    text = formats.to_csv([_stored(make_call("A", deadlines=(CUT_1, CUT_2)))], now)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["id"] == "ft_portal:A"
    assert rows[0]["deadlines"] == "2027-02-10T16:00:00Z | 2027-04-16T15:00:00Z"
    assert rows[0]["next_deadline"] == "2027-02-10T16:00:00Z"


def test_json_adds_reasons_only_for_a_profile(engine: Engine, two_cutoffs: CallRecord,
                                              now: datetime) -> None:
    items = reading.profile_items(engine, "h2")
    with_reasons = json.loads(formats.to_json(items, now, with_reasons=True))
    assert [c["id"] for c in with_reasons] == ["ft_portal:H2-A"]
    assert with_reasons[0]["reasons"] == ['keyword "hydrogen" in title']
    assert with_reasons[0]["deadlines"] == ["2027-02-10T16:00:00Z", "2027-04-16T15:00:00Z"]
    plain = json.loads(formats.to_json(items, now, with_reasons=False))
    assert "reasons" not in plain[0]


# -- Atom ---------------------------------------------------------------------------------

def test_atom_parses_with_one_entry_per_matched_call(engine: Engine, two_cutoffs: CallRecord,
                                                     now: datetime) -> None:
    data = formats.to_atom(reading.profile_items(engine, "h2"), now, profile="h2")
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "callwatch: h2"
    assert len(parsed.entries) == 1
    entry = parsed.entries[0]
    assert entry.title == two_cutoffs.title
    assert entry.link == two_cutoffs.url
    assert entry.updated == "2026-11-01T09:00:00Z"
    assert entry.id.startswith("urn:uuid:")
    content = entry.content[0].value
    assert two_cutoffs.summary in content
    assert 'keyword "hydrogen" in title' in content


def test_atom_entries_newest_change_first_and_ids_stable(now: datetime) -> None:
    old = FeedItem(call=_stored(make_call("OLD"), T0))
    fresh = FeedItem(call=_stored(make_call("NEW"), T0 + timedelta(days=3)))
    first = feedparser.parse(formats.to_atom([old, fresh], now, profile="p"))
    assert [e.title for e in first.entries] == [fresh.call.record.title, old.call.record.title]
    assert first.feed.updated == "2026-11-04T09:00:00Z"
    second = feedparser.parse(formats.to_atom([fresh, old], now, profile="p"))
    assert [e.id for e in second.entries] == [e.id for e in first.entries]
    assert first.feed.id == second.feed.id


def test_atom_survives_hostile_text(now: datetime) -> None:
    call = make_call("X", title="<b>Bold</b> & \x0bvertical tab", summary="a ]]> b \x00 c")
    parsed = feedparser.parse(formats.to_atom([FeedItem(call=_stored(call))], now, profile="p"))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.entries[0].title == "<b>Bold</b> & vertical tab"
    assert "a ]]> b  c" in parsed.entries[0].content[0].value


def test_empty_atom_feed_is_valid(now: datetime) -> None:
    parsed = feedparser.parse(formats.to_atom([], now, profile="empty"))
    assert not parsed.bozo
    assert parsed.entries == []
    assert parsed.feed.updated == "2026-11-25T12:00:00Z"


# -- feed tokens --------------------------------------------------------------------------

def test_feed_token_is_made_once_and_checked(engine: Engine, now: datetime) -> None:
    assert not reading.token_is_valid(engine, "h2", "anything")
    token = reading.feed_token(engine, "h2", now)
    assert len(token) >= 40
    assert reading.feed_token(engine, "h2", now) == token
    assert reading.token_is_valid(engine, "h2", token)
    assert not reading.token_is_valid(engine, "h2", token[:-1])
    assert not reading.token_is_valid(engine, "h2", None)
    assert not reading.token_is_valid(engine, "other", token)
    assert reading.feed_token(engine, "other", now) != token
    rotated = reading.feed_token(engine, "h2", now, rotate=True)
    assert rotated != token
    assert not reading.token_is_valid(engine, "h2", token)
    assert reading.token_is_valid(engine, "h2", rotated)


@pytest.mark.parametrize(("topics", "shared"), [(1, " (shared by 1 topic)"), (3, " (shared by 3 topics)"),
                                                 (None, "")])
def test_the_call_total_names_how_many_topics_share_it_in_good_grammar(topics: int | None,
                                                                       shared: str) -> None:
    """The same words as the messages (wording's plural): "1 topic", not "1 topics"."""
    call = make_call(call_budget_eur=60_000_000, call_budget_topics=topics)
    assert call_total_text(call) == f"call total EUR 60.0 M{shared}"
