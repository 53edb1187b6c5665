"""The matcher: each profile field, exclusion precedence, scores, reasons, and fast == naive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_call
from tests.rules_oracle import match_naive
from tracker.models import CallRecord, CallStatus
from tracker.rules.matcher import indices, match_calls
from tracker.rules.profiles import Profile

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def profile(**fields: Any) -> Profile:
    return Profile.model_validate({"name": "p", **fields})


def call(**fields: Any) -> CallRecord:
    values: dict[str, Any] = {
        "title": "Renewable hydrogen valleys", "keywords": (), "summary": "",
        "deadlines": (NOW + timedelta(days=41, hours=3),), "budget_eur": 4_000_000,
    }
    values.update(fields)
    return make_call("HORIZON-X", **values)


def matched(p: Profile, c: CallRecord, dismissed: frozenset[tuple[str, str]] = frozenset()) -> bool:
    fast = match_calls([c], [p], NOW, dismissed)
    assert fast == match_naive([c], [p], NOW, dismissed)  # both evaluators, every case
    return bool(fast)


FIELDS = [
    # (profile fields, call fields, matches?)
    ({"query": "hydrogen"}, {}, True),
    ({"query": "fusion"}, {}, False),
    ({"query": "fusion"}, {"tags": ("Fusion energy",)}, True),  # tags are searched like keywords
    ({"query": "fusion"}, {"summary": "Fusion research."}, True),
    ({"description": "says fusion, which is never matched"}, {}, True),  # description: just text
    ({}, {}, True),  # no query: every call that passes the filters
    ({"programmes": ["Horizon Europe"]}, {}, True),
    ({"programmes": ["Digital Europe"]}, {}, False),
    ({"programmes": ["Digital Europe"]}, {"programme": None}, False),
    ({"programmes": ["Cohesion Policy"]}, {"programme": "Interreg"}, True),  # family
    ({"programmes": ["Interreg"]}, {"programme": "INTERREG"}, True),  # alias in the record
    ({"exclude_programmes": ["Horizon Europe"]}, {}, False),
    ({"exclude_programmes": ["Digital Europe"]}, {}, True),
    ({"action_types": ["RIA"]}, {"action_type": "HORIZON-RIA"}, True),
    ({"action_types": ["IA"]}, {"action_type": "HORIZON-RIA"}, False),
    ({"action_types": ["RIA"]}, {"action_type": None}, True),  # unknown is not a mismatch
    ({"status": ["open"]}, {"status": CallStatus.OPEN}, True),
    ({}, {"status": CallStatus.CLOSED}, False),  # default: open and forthcoming
    ({}, {"status": CallStatus.FORTHCOMING}, True),
    ({"status": ["closed"]}, {"status": CallStatus.OPEN}, False),
    ({"deadline": {"min_days": 41}}, {}, True),
    ({"deadline": {"min_days": 42}}, {}, False),
    ({"deadline": {"max_days": 41}}, {}, True),
    ({"deadline": {"max_days": 40}}, {}, False),
    ({"deadline": {"min_days": 14, "max_days": 365}}, {"deadlines": ()}, True),
    ({"deadline": {"min_days": 0}}, {"deadlines": (NOW - timedelta(days=2),)}, False),
    ({"budget_eur": {"min": 4_000_000}}, {}, True),
    ({"budget_eur": {"min": 4_000_001}}, {}, False),
    ({"budget_eur": {"max": 3_999_999}}, {}, False),
    ({"budget_eur": {"min": 1}}, {"budget_eur": None}, True),
    ({"countries": ["ES"]}, {"countries": ("ES", "PT")}, True),
    ({"countries": ["ES"]}, {"countries": ("FR",)}, False),
    ({"countries": ["ES"]}, {}, True),  # lists no places: passes
    ({"countries": ["ES24"]}, {"countries": ("ES",)}, True),
    ({"countries": ["ES"]}, {"regions": ("ES24",)}, True),
    ({"countries": ["ES24"]}, {"regions": ("ES30",)}, False),
    ({"countries": ["EL"]}, {"countries": ("GR",)}, True),
    ({"audience": ["sme"]}, {"audience": ("SMEs", "universities")}, True),
    ({"audience": ["cluster"]}, {"audience": ("SMEs",)}, False),
    ({"audience": ["research organisation"]}, {"audience": ("Research organisations",)}, True),
    ({"audience": ["cluster"]}, {}, True),
    ({"min_score": 3}, {}, False),  # no positive term scores 1
    ({"query": "hydrogen", "min_score": 3}, {}, True),  # title: 3
    ({"query": "hydrogen", "min_score": 3}, {"title": "Valleys", "keywords": ("hydrogen",)}, False),
    ({"query": "hydrogen", "min_score": 2}, {"title": "Valleys", "tags": ("hydrogen",)}, True),
    ({"query": "hydrogen OR valleys", "min_score": 6}, {"keywords": ()}, True),  # 3 per title term
    ({"budget_eur": {"min": 1_000_000, "max": 4_000_000}}, {}, True),
    ({"budget_eur": {"min": 1_000_000, "max": 3_999_999}}, {}, False),
    ({"status": ["open", "closed"]}, {"status": CallStatus.CLOSED}, True),
    ({"action_types": ["IA", "RIA"]}, {"action_type": "HORIZON-RIA"}, True),
    ({"countries": ["PT", "ES"]}, {"countries": ("ES",)}, True),
    ({"audience": ["cluster", "sme"]}, {"audience": ("SMEs",)}, True),
]


@pytest.mark.parametrize(("fields", "call_fields", "expected"), FIELDS)
def test_each_profile_field(fields: dict[str, Any], call_fields: dict[str, Any], expected: bool) -> None:
    assert matched(profile(**fields), call(**call_fields)) is expected


EXCLUSIONS = [
    # exclusions win over the strongest inclusion
    ({"query": "hydrogen OR NOT aviation"}, {"title": "Hydrogen for aviation"}),
    ({"query": "hydrogen AND NOT aviation"}, {"keywords": ("aviation",)}),
    ({"query": "hydrogen AND NOT aviation"}, {"summary": "Mentions aviation once."}),
    ({"programmes": ["Horizon Europe"], "exclude_programmes": ["Horizon Europe"]}, {}),
    ({"programmes": ["Interreg"], "exclude_programmes": ["Cohesion Policy"]},
     {"programme": "Interreg"}),
]


@pytest.mark.parametrize(("fields", "call_fields"), EXCLUSIONS)
def test_exclusions_always_win(fields: dict[str, Any], call_fields: dict[str, Any]) -> None:
    assert matched(profile(**fields), call(**call_fields)) is False


def test_a_dismissed_call_never_comes_back_for_that_profile() -> None:
    c = call()
    assert matched(profile(query="hydrogen"), c)
    assert not matched(profile(query="hydrogen"), c, frozenset({("p", c.id)}))
    assert matched(profile(query="hydrogen"), c, frozenset({("other", c.id)}))


def test_reasons_explain_the_match() -> None:
    p = profile(query='(hydrogen OR "fuel cell*" OR electroly*) AND NOT aviation',
                countries=["ES"], audience=["sme"])
    c = call(keywords=("Fuel cells", "electrolysis"), countries=("ES", "PT"),
             audience=("SMEs",), summary="Hydrogen again.")
    [m] = match_calls([c], [p], NOW)
    assert m.explanation == ("title: hydrogen; keywords: fuel cells, electrolysis; Horizon Europe; "
                             "next deadline in 41 days; budget EUR 4.0 M; eligible: ES; "
                             "audience: SMEs")
    assert m.score == 3 + 2 + 2
    assert m.next_deadline == c.deadlines[0]


def test_title_is_weighted_highest_and_ranking_is_by_score() -> None:
    p = profile(query="hydrogen")
    in_title = make_call("A", title="Hydrogen valleys", keywords=(), summary="")
    in_keywords = make_call("B", title="Valleys", keywords=("hydrogen",), summary="")
    in_summary = make_call("C", title="Valleys", keywords=(), summary="About hydrogen.")
    matches = match_calls([in_summary, in_keywords, in_title], [p], NOW)
    assert [(m.call_id, m.score) for m in matches] == [
        ("ft_portal:A", 3), ("ft_portal:B", 2), ("ft_portal:C", 1)]


def test_equal_scores_rank_by_soonest_deadline_then_id() -> None:
    p = profile(query="hydrogen")
    later = make_call("A", deadlines=(NOW + timedelta(days=90),))
    sooner = make_call("B", deadlines=(NOW + timedelta(days=20),))
    none = make_call("C", deadlines=())
    assert [m.call_id for m in match_calls([none, later, sooner], [p], NOW)] == [
        "ft_portal:B", "ft_portal:A", "ft_portal:C"]


@pytest.mark.parametrize(("days", "text"), [
    (timedelta(days=1, hours=1), "next deadline in 1 day"),
    (timedelta(hours=5), "next deadline today"),
])
def test_deadline_wording(days: timedelta, text: str) -> None:
    [m] = match_calls([call(deadlines=(NOW + days,))], [profile()], NOW)
    assert text in m.reasons


def test_indices_of_a_bitset() -> None:
    assert list(indices(0)) == []
    assert list(indices(0b1011)) == [0, 1, 3]
    assert list(indices(1 << 4999 | 1 << 8)) == [8, 4999]


# -- property: the set-based matcher equals the one-pair-at-a-time matcher ------------------

WORDS = ["hydrogen", "fuel", "cell", "cells", "energía", "energia", "art", "artificial", "ai",
         "aviation", "space", "satellite", "wine"]
TERMS = st.sampled_from([
    "hydrogen", '"fuel cell*"', "fuel-cell", "energia", "art*", "ai", "aviation", "space",
    '"cell fuel"', "wine", "satell*",
])


@st.composite
def queries(draw: st.DrawFn, depth: int = 2) -> str:
    if depth == 0 or draw(st.booleans()):
        return draw(TERMS)
    left, right = draw(queries(depth - 1)), draw(queries(depth - 1))
    shape = draw(st.sampled_from(["{} AND {}", "{} OR {}", "{} {}", "NOT {}", "({} OR {})",
                                  "{} AND NOT {}", "NOT ({} AND {})"]))
    return shape.format(left, right) if shape.count("{}") == 2 else shape.format(left)


text = st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join)
calls_strategy = st.lists(
    st.builds(
        lambda i, title, keywords, summary, programme, status, days, budget, countries, audience:
        make_call(f"C{i}", title=title or "untitled", keywords=tuple(keywords), summary=summary,
                  programme=programme, status=status,
                  deadlines=() if days is None else (NOW + timedelta(days=days, hours=1),),
                  budget_eur=budget, countries=tuple(countries), audience=tuple(audience),
                  action_type="HORIZON-RIA" if i % 3 else None),
        st.integers(0, 10_000), text, st.lists(text, max_size=3), text,
        st.sampled_from([None, "Horizon Europe", "Interreg", "Digital Europe"]),
        st.sampled_from(list(CallStatus)), st.one_of(st.none(), st.integers(-5, 400)),
        st.one_of(st.none(), st.integers(0, 10_000_000)),
        st.lists(st.sampled_from(["ES", "PT", "GR"]), max_size=2),
        st.lists(st.sampled_from(["SMEs", "Clusters"]), max_size=1),
    ),
    max_size=12, unique_by=lambda c: c.id,
)
profiles_strategy = st.lists(
    st.builds(
        lambda i, query, programmes, excluded, days, budget, countries, audience, score, types:
        Profile.model_validate({
            "name": f"p{i}", "query": query, "programmes": programmes,
            "exclude_programmes": excluded, "deadline": days, "budget_eur": budget,
            "countries": countries, "audience": audience, "min_score": score,
            "action_types": types}),
        st.integers(0, 1000), st.one_of(st.none(), queries()),
        st.lists(st.sampled_from(["Horizon Europe", "Cohesion Policy"]), max_size=1),
        st.lists(st.sampled_from(["Interreg", "Digital Europe"]), max_size=1),
        st.one_of(st.none(), st.just({"min_days": 10, "max_days": 100})),
        st.one_of(st.none(), st.just({"min": 1_000_000})),
        st.lists(st.sampled_from(["ES", "EL", "PT18"]), max_size=2),
        st.lists(st.sampled_from(["sme", "cluster"]), max_size=1),
        st.integers(0, 4), st.lists(st.sampled_from(["RIA", "CSA"]), max_size=1),
    ),
    max_size=6, unique_by=lambda p: p.name,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(calls_strategy, profiles_strategy, st.data())
def test_fast_matcher_equals_naive_matcher(
    calls: list[CallRecord], profiles: list[Profile], data: st.DataObject
) -> None:
    pairs = [(p.name, c.id) for p in profiles for c in calls]
    dismissed = frozenset(data.draw(st.lists(st.sampled_from(pairs), max_size=3))) if pairs else frozenset()
    assert match_calls(calls, profiles, NOW, dismissed) == match_naive(calls, profiles, NOW, dismissed)


def test_profiles_sharing_a_name_still_rank_like_the_naive_matcher() -> None:
    calls = [make_call("A", deadlines=(NOW + timedelta(days=9),)),
             make_call("B", title="Hydrogen", keywords=(), deadlines=(NOW + timedelta(days=5),))]
    twins = [profile(query="electroly*"), profile(query="hydrogen")]
    fast = match_calls(calls, twins, NOW)
    assert fast == match_naive(calls, twins, NOW)
    assert [(m.call_id, m.score) for m in fast] == [  # one ranking across both
        ("ft_portal:B", 3), ("ft_portal:A", 3), ("ft_portal:A", 3), ("ft_portal:B", 1)]
