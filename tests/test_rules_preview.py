"""The profile preview, pure: (profile text, calls, now) → what it matches and why; the
editor form's text and where its problems are shown; the help read from the rules' docs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_call
from tracker.models import CallStatus
from tracker.rules import query as query_module
from tracker.rules.matcher import match_calls
from tracker.rules.preview import PreviewCalls, filter_help, grammar, preview_profile, query_help
from tracker.rules.profiles import parse_profile_text
from tracker.store.calls import StoredCall
from tracker.web.manage_profiles import ProfileForm, field_problems, where_in

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def stored(native_id: str, *, seen_days_ago: int = 1, **fields: object) -> StoredCall:
    first = NOW - timedelta(days=seen_days_ago)
    return StoredCall(record=make_call(native_id, **fields), first_seen=first, last_seen=NOW,
                      last_changed=first, still_listed=True)


def deadline(days: int) -> tuple[datetime, ...]:
    return (NOW + timedelta(days=days),)


CALLS = [
    stored("H2-LATE", title="Hydrogen valleys", deadlines=deadline(90), seen_days_ago=200),
    stored("H2-SOON", title="Electrolyser stacks", keywords=("hydrogen",), deadlines=deadline(10)),
    stored("WIND", title="Offshore wind farms", keywords=("wind",), deadlines=deadline(20)),
    stored("H2-NUCLEAR", title="Hydrogen from nuclear heat", deadlines=deadline(30)),
    stored("H2-CLOSED", title="Hydrogen buses", status=CallStatus.CLOSED, deadlines=deadline(-5)),
]


def text(query: str, rest: str = "") -> str:
    return ProfileForm(name="h2-web", query=query, filters=rest).text()


def test_the_preview_lists_matches_by_deadline_with_the_matchers_reasons() -> None:
    calls = PreviewCalls.of(CALLS, NOW)
    preview = preview_profile(text("hydrogen AND NOT nuclear"), calls, NOW)
    assert preview.problems == () and preview.profile is not None
    assert [m.call_id for m in preview.listed] == ["ft_portal:H2-SOON", "ft_portal:H2-LATE"]
    assert preview.total == 2 and preview.searched == len(CALLS)
    # the same reasons the cycle's matcher gives for the same profile and calls
    expected = {m.call_id: m.reasons for m in match_calls(
        [c.record for c in CALLS], [preview.profile], NOW)}
    assert {m.call_id: m.reasons for m in preview.listed} == expected
    assert preview.listed[0].reasons[0] == "keywords: hydrogen"
    assert preview.listed[1].reasons[0] == "title: hydrogen"


def test_it_counts_every_match_but_lists_only_the_first_ones() -> None:
    many = [stored(f"H2-{n:03d}", title=f"Hydrogen topic {n}", deadlines=deadline(n + 1),
                   seen_days_ago=n) for n in range(150)]
    preview = preview_profile(text("hydrogen"), PreviewCalls.of(many, NOW), NOW, limit=20)
    assert preview.total == 150 and len(preview.listed) == 20
    assert [m.call_id for m in preview.listed] == [f"ft_portal:H2-{n:03d}" for n in range(20)]
    assert preview.recent == 91  # first seen 0 to 90 days ago
    assert preview.window_days == 90


def test_filters_dismissals_and_the_last_90_days_count() -> None:
    calls = PreviewCalls.of(CALLS, NOW)
    narrow = preview_profile(text("hydrogen", "deadline:\n  max_days: 60\n"), calls, NOW)
    assert [m.call_id for m in narrow.listed] == ["ft_portal:H2-SOON", "ft_portal:H2-NUCLEAR"]
    assert narrow.recent == 2
    with_closed = preview_profile(text("hydrogen", "status: [open, closed]\n"), calls, NOW,
                                  dismissed={"ft_portal:H2-NUCLEAR"})
    assert [m.call_id for m in with_closed.listed] == [
        "ft_portal:H2-CLOSED", "ft_portal:H2-SOON", "ft_portal:H2-LATE"]
    assert (with_closed.total, with_closed.recent) == (3, 2)  # H2-LATE was seen 200 days ago


def test_an_invalid_profile_previews_its_problems_as_profiles_check_reports_them() -> None:
    calls = PreviewCalls.of(CALLS, NOW)
    written = text("hydrogen AND (fuel", "deadline:\n  max_days: -1\nprogramme: [x]\n")
    preview = preview_profile(written, calls, NOW)
    assert preview.profile is None and preview.total == 0 and preview.listed == ()
    _, checked = parse_profile_text(written, "the form")  # what `profiles check` runs per file
    assert preview.problems == tuple(checked)
    assert {p.field for p in preview.problems} == {"query", "deadline.max_days", "programme"}


def test_the_form_text_is_a_profile_file_and_problems_land_on_their_field() -> None:
    form = ProfileForm(name="h2", description='He said "hi"\\', query='hydrogen\nAND (fuel',
                       filters="countries: [ES]\ndeadline:\n  max_days: nope\n")
    profile, problems = parse_profile_text(form.text(), "the form")
    assert profile is None
    shown = field_problems(form, problems)
    assert shown["query"] == ["line 2, column 5: unbalanced parenthesis: '(' is never closed"]
    assert shown["filters"] == ["line 3: deadline.max_days: Input should be a valid integer, "
                                "unable to parse string as an integer, got 'nope'"]
    assert "name" not in shown and "description" not in shown
    fixed = ProfileForm(name="h2", description='He said "hi"\\', query="hydrogen\nAND fuel",
                        filters="countries: [ES]\n")
    profile, problems = parse_profile_text(fixed.text(), "the form")
    assert problems == [] and profile is not None
    assert (profile.description, profile.query, profile.countries) == (
        'He said "hi"\\', "hydrogen\nAND fuel", ("ES",))
    assert ProfileForm.of_definition(profile.as_mapping()) == ProfileForm(
        name="h2", description='He said "hi"\\', query="hydrogen\nAND fuel",
        filters="countries:\n- ES\n", original="h2")


def test_a_field_the_other_box_repeats_is_shown_there() -> None:
    form = ProfileForm(name="h2", query="hydrogen", filters="query: wind\n")
    shown = field_problems(form, parse_profile_text(form.text(), "the form")[1])
    assert shown == {"filters": ["line 1: query: duplicate field"]}  # where it is repeated


@pytest.mark.parametrize(("column", "expected"), [(1, (1, 1)), (4, (1, 4)), (6, (2, 1)), (9, (2, 4))])
def test_where_in_a_multiline_text(column: int, expected: tuple[int, int]) -> None:
    assert where_in("abcd\nefgh", column) == expected


def test_the_help_is_read_from_the_rules_modules() -> None:
    points = ["".join(text for _, text in point.pieces) for point in query_help()]
    assert len(points) == 5
    assert points[0].startswith("A query is made of terms (hydrogen)")
    assert any(point.startswith("Exclusions always win.") for point in points)
    assert all(point.split(" ")[1] in (query_module.__doc__ or "") for point in points)
    codes = {text for point in query_help() for is_code, text in point.pieces if is_code}
    assert {"electroly*", '"fuel cell"', "NOT (space AND NOT satellite)"} <= codes
    assert grammar() == "or := and (OR and)*; and := not (AND? not)*"
    assert any("min_score" in "".join(t for _, t in p.pieces) for p in filter_help())


@pytest.mark.parametrize("min_score", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("query", ["hydrogen", "hydrogen OR NOT wind", "NOT nuclear",
                                   "electrolyser OR valleys OR buses", ""])
def test_the_counts_agree_with_the_matcher_for_every_min_score(query: str, min_score: int) -> None:
    """The preview counts without scoring each call when min_score allows (at most 1)."""
    every = [*CALLS, stored("SOLAR", title="Solar roofs", keywords=("solar",),
                            summary="Panels on buses.", deadlines=deadline(3))]
    calls = PreviewCalls.of(every, NOW)
    written = text(query, f"min_score: {min_score}\nstatus: [open, closed]\n")
    preview = preview_profile(written, calls, NOW, limit=2, dismissed={"ft_portal:WIND"})
    assert preview.profile is not None
    expected = match_calls([c.as_of(NOW).record for c in every], [preview.profile], NOW,
                           dismissed={("h2-web", "ft_portal:WIND")})
    assert preview.total == len(expected)
    by_deadline = sorted(expected, key=lambda m: m.next_deadline or NOW)
    assert [m.call_id for m in preview.listed] == [m.call_id for m in by_deadline[:2]]
    assert [m.reasons for m in preview.listed] == [m.reasons for m in by_deadline[:2]]
    recent = {c.id for c in every if c.first_seen >= NOW - timedelta(days=90)}
    assert preview.recent == sum(1 for m in expected if m.call_id in recent)
