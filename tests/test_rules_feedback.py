"""Exclusion suggestions from dismissed and kept calls."""

from __future__ import annotations

from tests.factories import make_call
from tracker.rules.feedback import suggest_exclusions
from tracker.rules.profiles import Profile

PROFILE = Profile.model_validate({"name": "h2", "query": "hydrogen AND NOT aviation"})


def test_words_frequent_in_dismissed_and_rare_in_kept_are_proposed() -> None:
    dismissed = [
        make_call("D1", title="Hydrogen for maritime shipping", summary="Ports and ships."),
        make_call("D2", title="Hydrogen ships", keywords=("maritime",), summary="Ports."),
        make_call("D3", title="Hydrogen ports", summary="Shipping lanes, maritime."),
    ]
    kept = [make_call(f"K{i}", title=f"Hydrogen electrolysers {i}", summary="Stacks.")
            for i in range(12)]
    kept.append(make_call("K-ports", title="Hydrogen in ports", summary="Stacks."))
    suggestions = suggest_exclusions(PROFILE, dismissed, kept)
    words = [s.word for s in suggestions]
    assert words[:2] == ["maritime", "ports"]  # 3/3 dismissed; ports also in 1 of 13 kept
    assert "hydrogen" not in words  # already in the query
    assert "electrolysers" not in words and "the" not in words
    assert suggestions[0].clause == "AND NOT maritime"
    assert (suggestions[0].dismissed, suggestions[0].kept) == (3, 0)


def test_a_word_common_in_kept_calls_is_not_proposed() -> None:
    dismissed = [make_call("D1", title="Hydrogen storage"), make_call("D2", title="Hydrogen storage")]
    kept = [make_call("K1", title="Hydrogen storage"), make_call("K2", title="Hydrogen buses")]
    assert "storage" not in [s.word for s in suggest_exclusions(PROFILE, dismissed, kept)]


def test_nothing_dismissed_nothing_proposed() -> None:
    assert suggest_exclusions(PROFILE, [], [make_call("K1")]) == []
