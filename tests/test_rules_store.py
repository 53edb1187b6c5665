"""Rules storage and the shell around the matcher, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.config import Settings, load_config
from tracker.delivery.outbox import notify_changes
from tracker.errors import NotFoundError
from tracker.models import ScrapeResult
from tracker.rules.profiles import Profile, ProfileError
from tracker.rules.service import load_profiles, match_stored
from tracker.rules.store import RulesStore
from tracker.store.calls import Store


@pytest.fixture
def rules(engine: Engine) -> RulesStore:
    return RulesStore(engine)


def settings_for(tmp_path: Path, **profiles: str) -> Settings:
    directory = tmp_path / "profiles"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in profiles.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    config = tmp_path / "callwatch.toml"
    config.write_text('[profiles]\ndirectory = "profiles"\n')
    return load_config(config, environ={})


def test_database_profiles_are_saved_replaced_and_deleted(rules: RulesStore, now: datetime) -> None:
    first = Profile.model_validate({"name": "db-one", "query": "hydrogen", "countries": ["ES"]})
    rules.save_profile(first, now)
    rules.save_profile(Profile.model_validate({"name": "db-one", "query": "wind"}), now)
    [loaded] = rules.profiles()
    assert loaded.query == "wind" and loaded.countries == () and loaded.origin == "database"
    assert rules.delete_profile("db-one") is True
    assert rules.delete_profile("db-one") is False
    assert rules.profiles() == []


def test_dismissals_are_idempotent_and_per_profile(store: Store, rules: RulesStore,
                                                   now: datetime) -> None:
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A"), make_call("B")]),
                     started_at=now, now=now)
    assert rules.dismiss("p", "ft_portal:A", now) is True
    assert rules.dismiss("p", "ft_portal:A", now) is False
    assert rules.dismiss("q", "ft_portal:B", now) is True
    assert rules.dismissed() == {("p", "ft_portal:A"), ("q", "ft_portal:B")}
    assert rules.dismissed(["p"]) == {("p", "ft_portal:A")}


def test_recorded_matches_know_which_are_new(store: Store, rules: RulesStore, now: datetime) -> None:
    calls = [make_call("A"), make_call("B")]
    store.record_run("ft_portal", ScrapeResult(records=calls), started_at=now, now=now)
    profile = Profile.model_validate({"name": "p", "query": "hydrogen"})
    from tracker.rules.matcher import match_calls

    first = rules.flag_new(match_calls(calls[:1], [profile], now))
    assert [(m.call_id, m.new) for m in first] == [("ft_portal:A", True)]
    rules.record_matches(first, now)
    later = now + timedelta(hours=6)
    second = rules.flag_new(match_calls(calls, [profile], later))
    assert sorted((m.call_id, m.new) for m in second) == [("ft_portal:A", False), ("ft_portal:B", True)]
    rules.record_matches(second, later)
    assert rules.matched_calls("p") == {"ft_portal:A", "ft_portal:B"}


def test_calls_by_id_skip_unknown_ids(store: Store, rules: RulesStore, now: datetime) -> None:
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A"), make_call("B")]),
                     started_at=now, now=now)
    assert [c.id for c in rules.calls(["ft_portal:B", "ft_portal:nope"])] == ["ft_portal:B"]
    assert [c.id for c in rules.calls()] == ["ft_portal:A", "ft_portal:B"]


HYDROGEN = "name: h2\nquery: hydrogen AND NOT aviation\n"


def test_match_stored_looks_only_at_calls_changed_since_the_last_run(
    engine: Engine, store: Store, tmp_path: Path, now: datetime
) -> None:
    settings = settings_for(tmp_path, h2=HYDROGEN)
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A")]), started_at=now, now=now)
    first = match_stored(engine, settings, now + timedelta(minutes=1))
    assert [(m.call_id, m.new) for m in first] == [("ft_portal:A", True)]

    later = now + timedelta(hours=6)
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A"), make_call("B")]),
                     started_at=later, now=later)
    second = match_stored(engine, settings, later + timedelta(minutes=1))
    assert [m.call_id for m in second] == ["ft_portal:B"]  # A did not change
    assert match_stored(engine, settings, later + timedelta(minutes=2)) == []

    everything = match_stored(engine, settings, later + timedelta(minutes=3), everything=True)
    assert [(m.call_id, m.new) for m in everything] == [("ft_portal:A", True), ("ft_portal:B", True)]


def test_match_stored_records_no_match_so_the_notifier_still_sees_them_new(
    engine: Engine, store: Store, tmp_path: Path, now: datetime
) -> None:
    settings = settings_for(tmp_path, h2=HYDROGEN)
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A"), make_call("B")]),
                     started_at=now, now=now)
    rules = RulesStore(engine)
    looked = match_stored(engine, settings, now, everything=True)
    assert [(m.call_id, m.new) for m in looked] == [("ft_portal:A", True), ("ft_portal:B", True)]
    assert rules.matched_calls("h2") == set()
    # once the notifier has recorded (announced) A, a look shows only B as new
    rules.record_matches(looked[:1], now)
    again = match_stored(engine, settings, now, everything=True)
    assert [(m.call_id, m.new) for m in again] == [("ft_portal:A", False), ("ft_portal:B", True)]
    assert rules.matched_calls("h2") == {"ft_portal:A"}


def test_the_notify_step_matches_what_changed_skips_dismissed_and_records(
    engine: Engine, store: Store, tmp_path: Path, now: datetime
) -> None:
    """The cycle's matching (``notify_changes``) records what it matched; a repeat is not new."""
    profiles = load_profiles(settings_for(tmp_path, h2=HYDROGEN), engine)
    store.record_run("ft_portal", ScrapeResult(records=[make_call("A"), make_call("B"),
                                                         make_call("C", title="Aviation fuels")]),
                     started_at=now, now=now)
    rules = RulesStore(engine)
    rules.dismiss("h2", "ft_portal:B", now)
    report = notify_changes(engine, profiles, now, available=())
    assert (report.matches, report.new_matches) == (1, 1)
    assert rules.matched_calls("h2") == {"ft_portal:A"}
    assert notify_changes(engine, profiles, now, available=()).matches == 0  # nothing changed


def test_profiles_come_from_files_and_the_database(engine: Engine, tmp_path: Path,
                                                   now: datetime) -> None:
    settings = settings_for(tmp_path, h2=HYDROGEN)
    RulesStore(engine).save_profile(Profile.model_validate({"name": "wind", "query": "wind"}), now)
    assert [(p.name, p.origin) for p in load_profiles(settings, engine)] == [
        ("h2", str(tmp_path / "profiles" / "h2.yaml")), ("wind", "database")]

    RulesStore(engine).save_profile(Profile.model_validate({"name": "h2"}), now)
    # the file wins over a database profile of its name (tracker.rules.sources)
    assert [(p.name, p.origin, p.query) for p in load_profiles(settings, engine)] == [
        ("h2", str(tmp_path / "profiles" / "h2.yaml"), "hydrogen AND NOT aviation"),
        ("wind", "database", "wind")]
    with pytest.raises(NotFoundError, match="no profile named 'nope'"):
        match_stored(engine, settings_for(tmp_path / "other"), now, profile="nope")


def test_an_invalid_file_stops_matching(engine: Engine, tmp_path: Path, now: datetime) -> None:
    settings = settings_for(tmp_path, bad="name: bad\nquery: '(x'\n")
    with pytest.raises(ProfileError, match=r"bad.yaml:2: query"):
        match_stored(engine, settings, now)
