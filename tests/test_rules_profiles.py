"""Profiles: every field validated, every problem reported with file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tracker.errors import ConfigError
from tracker.models import CallStatus
from tracker.rules.profiles import (
    Profile,
    ProfileError,
    load_directory,
    parse_profile_text,
    read_profiles,
    validate_profile,
)

REPO = Path(__file__).resolve().parent.parent

VALID = [
    ({}, "status", (CallStatus.OPEN, CallStatus.FORTHCOMING)),
    ({}, "min_score", 1),
    ({}, "query", None),
    ({"query": "  "}, "query", None),
    ({"query": "hydrogen OR electroly*"}, "query", "hydrogen OR electroly*"),
    ({"description": "Aragon cluster"}, "description", "Aragon cluster"),
    ({"programmes": ["SMP", "horizon europe"]}, "programmes",
     ("Single Market Programme", "Horizon Europe")),
    ({"exclude_programmes": ["EDF"]}, "exclude_programmes", ("European Defence Fund",)),
    ({"action_types": ["RIA", "IA"]}, "action_types", ("RIA", "IA")),
    ({"status": ["closed"]}, "status", (CallStatus.CLOSED,)),
    ({"deadline": {"min_days": 14}}, "deadline", {"min_days": 14, "max_days": None}),
    ({"deadline": {"min_days": 14, "max_days": 14}}, "deadline", {"min_days": 14, "max_days": 14}),
    ({"budget_eur": {"min": 500000}}, "budget_eur", {"min": 500000, "max": None}),
    ({"budget_eur": {"max": 2000000}}, "budget_eur", {"min": None, "max": 2000000}),
    ({"deadline": {"max_days": 90}}, "deadline", {"min_days": None, "max_days": 90}),
    ({"status": ["open", "forthcoming", "closed"]}, "status",
     (CallStatus.OPEN, CallStatus.FORTHCOMING, CallStatus.CLOSED)),
    ({"countries": ["NO"]}, "countries", ("NO",)),  # Norway; test_no_is_norway_not_false covers YAML
    ({"countries": ["es", "ES24", "EL"]}, "countries", ("ES", "ES24", "EL")),
    ({"audience": ["sme", "research  organisation"]}, "audience", ("sme", "research organisation")),
    ({"min_score": 0}, "min_score", 0),
]


@pytest.mark.parametrize(("fields", "name", "expected"), VALID)
def test_valid_fields(fields: dict[str, Any], name: str, expected: Any) -> None:
    profile, problems = validate_profile({"name": "p", **fields}, "t.yaml")
    assert problems == []
    assert profile is not None
    value = getattr(profile, name)
    assert (value.model_dump() if hasattr(value, "model_dump") else value) == expected


INVALID = [
    ({"name": "has space"}, "name", "letters, digits"),
    ({"name": ""}, "name", "letters, digits"),
    ({"query": '"fuel cell'}, "query", "unbalanced quote: this phrase is never closed at column 1"),
    ({"query": "a AND (b"}, "query", "'(' is never closed at column 7"),
    ({"programmes": ["Horizn Europe"]}, "programmes[0]",
     "unknown programme 'Horizn Europe'; did you mean 'Horizon Europe'?"),
    ({"exclude_programmes": ["Interreg", "Digitl Europe"]}, "exclude_programmes[1]",
     "did you mean 'Digital Europe'?"),
    ({"action_types": [""]}, "action_types[0]", "must not be empty"),
    ({"status": ["opn"]}, "status[0]", "'forthcoming', 'open' or 'closed'"),
    ({"status": []}, "status", "at least 1 item"),
    ({"deadline": {"min_days": 30, "max_days": 10}}, "deadline", "min_days 30 is above max_days 10"),
    ({"deadline": {"min_days": -1}}, "deadline.min_days", "greater than or equal to 0"),
    ({"deadline": {"days": 3}}, "deadline.days", "unknown field"),
    ({"budget_eur": {"min": 5, "max": 1}}, "budget_eur", "min 5 is above max 1"),
    ({"budget_eur": 1000}, "budget_eur", "valid dictionary"),
    ({"countries": ["Spain"]}, "countries[0]", "not an ISO 3166 alpha-2 country or a NUTS code"),
    ({"countries": ["XX1"]}, "countries[0]", "not an ISO 3166"),
    ({"audience": ["  "]}, "audience[0]", "must not be empty"),
    ({"min_score": -1}, "min_score", "greater than or equal to 0"),
    ({"min_score": "high"}, "min_score", "valid integer"),
    ({"querry": "x"}, "querry", "unknown field; did you mean 'query'?"),
]


@pytest.mark.parametrize(("fields", "field", "message"), INVALID)
def test_invalid_fields(fields: dict[str, Any], field: str, message: str) -> None:
    profile, problems = validate_profile({"name": "p", **fields}, "t.yaml")
    assert profile is None
    assert [p.field for p in problems] == [field]
    assert message in problems[0].message


def test_a_missing_name_is_reported() -> None:
    _, problems = validate_profile({"query": "x"}, "t.yaml")
    assert [(p.field, p.message) for p in problems] == [("name", "required field is missing")]


BAD_FILE = """\
name: hydrogen-valley
description: Hydrogen cluster
query: '(hydrogen OR "fuel cell*" AND NOT aviation'
programmes: [Horizon Europe, Singel Market Programme]
deadline:
  min_days: 400
  max_days: 365
countries: [NO, ES]
colour: green
"""


def test_every_problem_in_a_file_is_reported_with_its_line() -> None:
    profile, problems = parse_profile_text(BAD_FILE, "bad.yaml")
    assert profile is None
    assert sorted(str(p) for p in problems) == sorted([
        "bad.yaml:3: query: unbalanced parenthesis: '(' is never closed at column 1",
        "bad.yaml:4: programmes[1]: unknown programme 'Singel Market Programme'; "
        "did you mean 'Single Market Programme'?",
        "bad.yaml:5: deadline: min_days 400 is above max_days 365",
        "bad.yaml:9: colour: unknown field",
    ])


def test_no_is_norway_not_false() -> None:
    profile, problems = parse_profile_text("name: p\ncountries: [NO, no, SE]\n", "p.yaml")
    assert problems == []
    assert profile is not None and profile.countries == ("NO", "NO", "SE")


def test_broken_yaml_reports_its_line() -> None:
    _, problems = parse_profile_text("name: p\nquery: [unclosed\nstatus: [open]\n", "p.yaml")
    assert len(problems) == 1
    assert problems[0].line == 3 and "not valid YAML" in problems[0].message


def test_duplicate_keys_are_reported() -> None:
    _, problems = parse_profile_text("name: p\nquery: a\nquery: b\n", "p.yaml")
    assert [str(p) for p in problems] == ["p.yaml:3: query: duplicate field"]


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_a_file_must_hold_a_mapping(text: str) -> None:
    _, problems = parse_profile_text(text, "p.yaml")
    assert len(problems) == 1 and "expected a mapping of profile fields" in problems[0].message


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: same\n")
    (tmp_path / "b.yml").write_text("name: same\n")
    (tmp_path / "notes.txt").write_text("not a profile")
    profiles, problems = read_profiles([tmp_path])
    assert len(profiles) == 2
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b.yml'}: name: duplicate name 'same' (also in {tmp_path / 'a.yaml'})"
    ]


def test_load_directory_raises_a_config_error_listing_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nquery: '(x'\n")
    (tmp_path / "b.yaml").write_text("name: b\nstatus: [gone]\n")
    with pytest.raises(ProfileError) as caught:
        load_directory(tmp_path)
    assert isinstance(caught.value, ConfigError)
    assert len(caught.value.problems) == 2
    assert "a.yaml:2: query" in str(caught.value) and "b.yaml:2: status[0]" in str(caught.value)


def test_a_missing_directory_holds_no_profiles(tmp_path: Path) -> None:
    assert load_directory(tmp_path / "nowhere") == []


def test_the_example_profiles_are_valid() -> None:
    profiles, problems = read_profiles([REPO / "config" / "profiles"])
    assert problems == []
    assert {p.name for p in profiles} == {"hydrogen-valley", "nordic-vision-ai", "alentejo-agrifood"}
    assert all(p.parsed_query is not None for p in profiles)


def test_a_profile_round_trips_through_its_mapping() -> None:
    profile = Profile.model_validate({"name": "p", "query": "a OR b", "countries": ["ES"],
                                      "deadline": {"max_days": 30}})
    again = Profile.model_validate(profile.as_mapping())
    assert again.as_mapping() == profile.as_mapping()
    assert again.parsed_query == profile.parsed_query
