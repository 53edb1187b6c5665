"""The call store on every backend: upserts, change events, absence rule, run log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.factories import make_call
from tracker.errors import NotFoundError
from tracker.models import CallStatus, ChangeKind, RunOutcome, ScrapeResult
from tracker.source_status import status_of
from tracker.store.calls import Store


def save(store: Store, now: datetime, *records, complete: bool = True, source: str = "ft_portal"):
    result = ScrapeResult(records=list(records), complete=complete,
                          error=None if complete else "page 3 failed")
    return store.record_run(source, result, started_at=now - timedelta(seconds=5), now=now)


def test_first_save_records_new_events(store: Store, now: datetime) -> None:
    report = save(store, now, make_call("A"), make_call("B"))
    assert [c.kind for c in report.changes] == [ChangeKind.NEW, ChangeKind.NEW]
    assert (report.new, report.changed, report.items_seen) == (2, 0, 2)
    assert report.outcome is RunOutcome.OK


def test_saving_the_same_records_twice_records_nothing(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"), make_call("B"))
    report = save(store, now + timedelta(hours=6), make_call("A"), make_call("B"))
    assert report.changes == []
    assert (report.new, report.changed) == (0, 0)
    assert [c.kind for c in store.history("ft_portal:A")] == [ChangeKind.NEW]


def test_moving_one_deadline_records_exactly_one_deadline_changed(
    store: Store, now: datetime
) -> None:
    old_deadline = datetime(2027, 4, 16, 15, 0, tzinfo=UTC)
    new_deadline = datetime(2027, 4, 30, 15, 0, tzinfo=UTC)
    save(store, now, make_call("A", deadlines=(old_deadline,)), make_call("B"))
    later = now + timedelta(hours=6)
    report = save(store, later, make_call("A", deadlines=(new_deadline,)), make_call("B"))
    assert len(report.changes) == 1
    change = report.changes[0]
    assert change.kind is ChangeKind.DEADLINE_CHANGED
    assert change.old == ["2027-04-16T15:00:00Z"]
    assert change.new == ["2027-04-30T15:00:00Z"]
    history = store.history("ft_portal:A")
    assert [c.kind for c in history] == [ChangeKind.NEW, ChangeKind.DEADLINE_CHANGED]
    assert history[1].at == later
    stored = store.get_call("ft_portal:A")
    assert stored.record.deadlines == (new_deadline,)
    assert stored.last_changed == later and stored.first_seen == now


def test_datetimes_come_back_timezone_aware_in_utc(store: Store, now: datetime) -> None:
    brussels = datetime(2027, 4, 16, 17, 0, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Brussels"))
    save(store, now, make_call("A", deadlines=(brussels,)))
    stored = store.get_call("ft_portal:A")
    assert stored.record.deadlines[0] == brussels
    assert stored.record.deadlines[0].tzinfo == UTC
    assert stored.first_seen.tzinfo is not None and stored.first_seen == now


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (CallStatus.FORTHCOMING, CallStatus.OPEN, ChangeKind.OPENED),
        (CallStatus.OPEN, CallStatus.CLOSED, ChangeKind.CLOSED),
        (CallStatus.CLOSED, CallStatus.OPEN, ChangeKind.REOPENED),
        (CallStatus.OPEN, CallStatus.FORTHCOMING, ChangeKind.STATUS_CHANGED),
    ],
)
def test_status_moves_are_typed(store: Store, now: datetime, before, after, kind) -> None:
    save(store, now, make_call("A", status=before))
    report = save(store, now + timedelta(hours=1), make_call("A", status=after))
    assert [(c.kind, c.old, c.new) for c in report.changes] == [(kind, before.value, after.value)]


def test_budget_title_and_documents_changes(store: Store, now: datetime) -> None:
    save(store, now, make_call("A", updates=("Call opened",)))
    report = save(store, now + timedelta(hours=1), make_call(
        "A", budget_eur=4_500_000, title="Electrolysers, revised",
        updates=("Call opened", "Deadline extension: see the updated work programme"),
    ))
    kinds = {c.kind: c for c in report.changes}
    assert set(kinds) == {ChangeKind.BUDGET_CHANGED, ChangeKind.TITLE_CHANGED,
                          ChangeKind.DOCUMENTS_CHANGED}
    assert kinds[ChangeKind.BUDGET_CHANGED].old["total"] == 3_000_000
    assert kinds[ChangeKind.BUDGET_CHANGED].new["total"] == 4_500_000
    assert kinds[ChangeKind.DOCUMENTS_CHANGED].new.startswith("Deadline extension")
    assert report.changed == 1


def test_summary_rewording_updates_silently(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"))
    report = save(store, now + timedelta(hours=1), make_call("A", summary="Reworded."))
    assert report.changes == []
    assert store.get_call("ft_portal:A").record.summary == "Reworded."


def test_removed_only_after_two_complete_runs_without_it(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"), make_call("B"))
    first = save(store, now + timedelta(hours=6), make_call("A"))
    assert first.changes == []
    assert store.get_call("ft_portal:B").still_listed
    second = save(store, now + timedelta(hours=12), make_call("A"))
    assert [(c.call_id, c.kind) for c in second.changes] == [
        ("ft_portal:B", ChangeKind.REMOVED_FROM_SOURCE)
    ]
    gone = store.get_call("ft_portal:B")  # never deleted
    assert not gone.still_listed
    third = save(store, now + timedelta(hours=18), make_call("A"))
    assert third.changes == []  # reported once


def test_a_call_seen_again_resets_its_strikes(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"), make_call("B"))
    save(store, now + timedelta(hours=6), make_call("A"))
    save(store, now + timedelta(hours=12), make_call("A"), make_call("B"))
    report = save(store, now + timedelta(hours=18), make_call("A"))
    assert report.changes == []
    assert store.get_call("ft_portal:B").still_listed


def test_partial_runs_never_mark_anything_removed(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"), make_call("B"))
    for hours in (6, 12, 18):
        report = save(store, now + timedelta(hours=hours), make_call("A"), complete=False)
        assert report.outcome is RunOutcome.PARTIAL
        assert report.changes == []
    assert store.get_call("ft_portal:B").still_listed


def test_absence_is_counted_per_source(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"))
    save(store, now, make_call("X", source="eccp"), source="eccp")
    for hours in (6, 12):
        save(store, now + timedelta(hours=hours), make_call("A"))
    assert store.get_call("eccp:X").still_listed


def test_a_run_is_one_transaction(store: Store, now: datetime) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        save(store, now, make_call("A"), make_call("X", source="eccp"))
    assert store.list_calls() == []
    assert store.runs() == []


def test_run_log_and_health(store: Store, now: datetime) -> None:
    save(store, now, make_call("A"))
    failed = ScrapeResult(records=[], complete=False, error="HTTP 500 from search API")
    for hours in (1, 2):
        store.record_run("ft_portal", failed, started_at=now + timedelta(hours=hours),
                         now=now + timedelta(hours=hours))
    runs = store.runs("ft_portal")
    assert [r.outcome for r in runs] == [RunOutcome.FAILED, RunOutcome.FAILED, RunOutcome.OK]
    assert runs[0].error == "HTTP 500 from search API"
    assert runs[2].items_seen == 1 and runs[2].new == 1
    health = status_of(store, "ft_portal")
    assert health.consecutive_failures == 2
    assert health.last_success == now
    assert store.get_call("ft_portal:A").still_listed


def test_list_filters(store: Store, now: datetime) -> None:
    save(store, now,
         make_call("A", title="Hydrogen valleys"),
         make_call("B", status=CallStatus.CLOSED, programme="Digital Europe", title="AI testing"),
         make_call("C", status=CallStatus.FORTHCOMING, programme="Digital Europe",
                   title="Données et énergie"))
    assert [c.id for c in store.list_calls(statuses=[CallStatus.OPEN])] == ["ft_portal:A"]
    assert {c.id for c in store.list_calls(programme="digital europe")} == {
        "ft_portal:B", "ft_portal:C"}
    assert [c.id for c in store.list_calls(search="énergie")] == ["ft_portal:C"]
    assert store.list_calls(source="eccp") == []


def test_unknown_call_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.history("ft_portal:nope")


def test_many_records_in_one_run(store: Store, now: datetime) -> None:
    records = [make_call(f"T-{i:05d}") for i in range(1_234)]
    report = save(store, now, *records)
    assert report.new == 1_234
    with store.engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM call_changes")).scalar()
    assert count == 1_234
    assert save(store, now + timedelta(hours=1), *records).changes == []
