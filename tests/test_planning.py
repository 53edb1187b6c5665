"""The pure planning steps: matching what changed into events and planning what they cause
(data in, plans out, no database), when digests fall due, and the settings that set the
schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.factories import make_call
from tracker.config import load_config
from tracker.delivery.planning import (
    Audience,
    ChangedCalls,
    DigestSchedule,
    digest_period,
    match_changes,
    plan_notify,
)
from tracker.errors import ConfigError
from tracker.models import CallRecord, Change, ChangeKind
from tracker.rules.profiles import Profile

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 13:00 in Brussels, 21:00 in Tokyo


@pytest.mark.parametrize(("mode", "now", "timezone", "schedule", "expected"), [
    ("daily", MONDAY, "Europe/Brussels", DigestSchedule(), "2026-11-23"),
    ("weekly", MONDAY, "Europe/Brussels", DigestSchedule(), "2026-W48"),
    ("daily", MONDAY, "Europe/Brussels", DigestSchedule(hour=14), None),  # 13:00 < 14:00
    ("daily", MONDAY, "Europe/Brussels", DigestSchedule(hour=13), "2026-11-23"),
    ("weekly", MONDAY, "Europe/Brussels", DigestSchedule(weekday=4), None),  # Fridays only
    ("weekly", datetime(2026, 11, 27, 7, 0, tzinfo=UTC), "Europe/Brussels",
     DigestSchedule(weekday=4), "2026-W48"),  # Friday 08:00 in Brussels
    # the subscriber's own zone decides: Monday 21:00 in Tokyo is past 20:00 …
    ("daily", MONDAY, "Asia/Tokyo", DigestSchedule(hour=20), "2026-11-23"),
    # … and Monday 04:00 in New York is not yet 08:00
    ("daily", MONDAY.replace(hour=9), "America/New_York", DigestSchedule(), None),
    ("instant", MONDAY, "Europe/Brussels", DigestSchedule(), None),
])
def test_digest_period(mode: str, now: datetime, timezone: str, schedule: DigestSchedule,
                       expected: str | None) -> None:
    assert digest_period(mode, now, timezone, schedule) == expected


def test_the_schedule_comes_from_the_digests_settings(tmp_path: Path) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text('[digests]\nhour = 7\nweekday = "Friday"\n', encoding="utf-8")
    settings = load_config(path, environ={})
    assert settings.digests.schedule() == DigestSchedule(hour=7, weekday=4)
    assert load_config(None, environ={}).digests.schedule() == DigestSchedule(hour=8, weekday=0)


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ("[digests]\nhour = 24\n", "digests.hour", "less than or equal to 23"),
    ('[digests]\nweekday = "mon"\n', "digests.weekday", "'monday'"),
])
def test_a_bad_schedule_names_its_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.key == key and fragment in str(caught.value)


# -- the notify step's match and plan ------------------------------------------------------

H2 = Profile.model_validate({"name": "h2", "query": "hydrogen"})
WIND = Profile.model_validate({"name": "wind", "query": "wind"})


def changed(*calls: CallRecord, kinds: dict[str, ChangeKind] | None = None,
            dismissed: frozenset[tuple[str, str]] = frozenset(),
            recorded: tuple[tuple[str, str, tuple[str, ...]], ...] = ()) -> ChangedCalls:
    """What the read step would give for one change event per call."""
    events = {c.id: [(n, Change(call_id=c.id, kind=(kinds or {}).get(c.id, ChangeKind.NEW),
                                at=MONDAY))]
              for n, c in enumerate(calls, start=1)}
    return ChangedCalls(through=len(calls), events=len(calls), changes=events,
                        calls={c.id: c for c in calls}, dismissed=dismissed, recorded=recorded)


def test_match_changes_tells_first_matches_repeats_and_former_matches_apart() -> None:
    fresh = make_call("A")
    repeat = make_call("B")
    gone = make_call("C", title="Aviation fuels", keywords=())  # matched h2 before, not now
    dismissed = make_call("D", title="Hydrogen storage", keywords=())
    read = changed(fresh, repeat, gone, dismissed,
                   kinds={repeat.id: ChangeKind.DEADLINE_CHANGED, gone.id: ChangeKind.TITLE_CHANGED},
                   dismissed=frozenset({("h2", dismissed.id)}),
                   recorded=(("h2", repeat.id, ("old",)), ("h2", gone.id, ("was hydrogen",)),
                             ("h2", dismissed.id, ("dismissed since",))))
    matches, events = match_changes(read, [H2, WIND], MONDAY)
    assert [(m.call_id, m.new) for m in matches] == [(fresh.id, True), (repeat.id, False)]
    assert [(e.profile, e.call.id, e.first_match, e.change_ids) for e in events] == [
        ("h2", fresh.id, True, (1,)), ("h2", repeat.id, False, (2,)),
        ("h2", gone.id, False, (3,))]
    assert events[2].reasons == ("was hydrogen",)  # a former match keeps its recorded reasons
    assert [c.kind for c in events[1].changes] == [ChangeKind.DEADLINE_CHANGED]


def audience(subscriber_id: int, profile: str, mode: str = "instant") -> Audience:
    return Audience(subscriber_id=subscriber_id, subscriber=f"s{subscriber_id}", profile=profile,
                    mode=mode, channels=("telegram",), timezone="Europe/Brussels")


def test_plan_notify_plans_each_batch_as_all_events_would() -> None:
    """Digest entries once per event, whoever follows; alerts per batch of subscribers, in
    event order, only for the events of the batch's profiles, and never for a repeat
    without a change worth an alert."""
    h2_call, wind_call = make_call("A"), make_call("W", title="Offshore wind", keywords=())
    read = changed(h2_call, wind_call, make_call("B"),
                   kinds={make_call("B").id: ChangeKind.DETAILS_CHANGED},
                   recorded=(("h2", make_call("B").id, ("hydrogen",)),))
    _, events = match_changes(read, [H2, WIND], MONDAY)
    plan = plan_notify(events)
    assert [(e.event.profile, e.event.call.id, e.key) for e in plan.digest_entries] == [
        ("h2", h2_call.id, f"h2|{h2_call.id}|match"), ("wind", wind_call.id, f"wind|{wind_call.id}|match")]
    later = MONDAY + timedelta(hours=1)
    first_batch = [audience(1, "wind"), audience(2, "h2"), audience(3, "h2", mode="daily")]
    second_batch = [audience(4, "h2")]
    assert [(a.key, a.not_before) for a in plan.alerts(first_batch, later)] == [
        (f"alert|2|telegram|{h2_call.id}|match", later),
        (f"alert|1|telegram|{wind_call.id}|match", later)]
    assert [a.key for a in plan.alerts(second_batch, later)] == [
        f"alert|4|telegram|{h2_call.id}|match"]
    assert plan.alerts([audience(5, "nobody")], later) == []
