"""Recognising one call at two sources by identifier, portal cascade id or url."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.factories import make_call
from tracker.dedupe import duplicates_of, group_duplicates, identity_keys, normalize_url
from tracker.exports.rows import deduplicated, listed_call_as_json
from tracker.models import CallRecord
from tracker.store.calls import StoredCall


def test_normalize_url_ignores_what_does_not_identify_a_page() -> None:
    assert normalize_url("http://WWW.Example.eu/calls/x/?utm_source=nl&b=2&a=1#apply") == \
        normalize_url("https://example.eu/calls/x?a=1&b=2")
    assert normalize_url("https://example.eu/calls/x") != normalize_url("https://example.eu/calls/y")


def test_portal_topic_and_its_eccp_mirror_are_one_call() -> None:
    portal = make_call("SMP-COSME-2024-CLUSTER-01", call_identifier="SMP-COSME-2024-CLUSTER")
    eccp = make_call("joint-cluster-initiatives", source="eccp",
                     topic_identifier="SMP-COSME-2024-CLUSTER-01", call_identifier=None,
                     url="https://www.clustercollaboration.eu/content/joint-cluster-initiatives")
    other = make_call("HORIZON-CL4-2026-01", source="eccp", topic_identifier="HORIZON-CL4-2026-01",
                      url="https://www.clustercollaboration.eu/content/other")
    groups = group_duplicates([portal, eccp, other])
    assert [g.ids for g in groups] == [(portal.id, eccp.id), (other.id,)]
    assert groups[0].sources == ("ft_portal", "eccp")
    assert groups[0].primary is portal
    assert duplicates_of(portal, [eccp, other]) == [eccp]


def test_topics_of_one_call_at_one_source_stay_apart() -> None:
    a = make_call("HORIZON-CL5-2026-D3-01-01", call_identifier="HORIZON-CL5-2026-D3-01")
    b = make_call("HORIZON-CL5-2026-D3-01-02", call_identifier="HORIZON-CL5-2026-D3-01")
    assert len(group_duplicates([a, b])) == 2
    assert "id:HORIZON-CL5-2026-D3-01-01" in identity_keys(a)
    assert not any(k.endswith("D3-01") for k in identity_keys(a))  # the shared call id is no key


def test_cascade_id_in_a_summary_links_an_aggregator_to_the_portal() -> None:
    portal = make_call("11143COMPETITIVE_CALLen", topic_identifier=None, call_identifier=None,
                       url="https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/"
                           "opportunities/competitive-calls-cs/46214053")
    hub = make_call("open-call-x", source="cascade_hub", topic_identifier=None, call_identifier=None,
                    url="https://cascadefunding.eu/open-call/x/",
                    summary="Apply: https://ec.europa.eu/info/funding-tenders/opportunities/portal/"
                            "screen/opportunities/competitive-calls-cs/46214053")
    sibling = make_call("11145COMPETITIVE_CALLen", topic_identifier=None, call_identifier=None,
                        url=portal.url)  # a second sub-call under the same portal id
    groups = group_duplicates([portal, sibling, hub])
    assert [g.ids for g in groups] == [(portal.id, hub.id), (sibling.id,)]


def test_same_url_at_two_sources_and_transitive_grouping() -> None:
    interreg = make_call("callForProjectsPage_3129", source="interreg", topic_identifier=None,
                         call_identifier=None, url="https://interreg-sudoe.eu/3a-convocatoria/")
    feed = make_call("https://interreg-sudoe.eu/3a-convocatoria", source="sudoe_feed",
                     topic_identifier=None, call_identifier=None,
                     url="http://www.interreg-sudoe.eu/3a-convocatoria")
    assert [g.sources for g in group_duplicates([interreg, feed])] == [("interreg", "sudoe_feed")]


def _stored(record: CallRecord) -> StoredCall:
    seen = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    return StoredCall(record=record, first_seen=seen, last_seen=seen, last_changed=seen,
                      still_listed=True)


def test_a_listing_shows_a_call_once_with_every_source_that_lists_it() -> None:
    """`calls list` keeps the store's order and the first record, and names both sources."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    portal = _stored(make_call("SMP-COSME-2024-CLUSTER-01"))
    other = _stored(make_call("HORIZON-CL4-2026-01", topic_identifier="HORIZON-CL4-2026-01"))
    eccp = _stored(make_call("joint-cluster-initiatives", source="eccp",
                             topic_identifier="SMP-COSME-2024-CLUSTER-01",
                             url="https://www.clustercollaboration.eu/content/jci"))
    listed = deduplicated([portal, other, eccp])
    assert [[c.id for c in group] for group in listed] == [[portal.id, eccp.id], [other.id]]
    shown = listed_call_as_json(listed[0], now)
    assert (shown["id"], shown["source"]) == (portal.id, "ft_portal")
    assert shown["sources"] == ["ft_portal", "eccp"]
    assert shown["ids"] == [portal.id, eccp.id]
    alone = listed_call_as_json(listed[1], now)
    assert (alone["sources"], alone["ids"]) == (["ft_portal"], [other.id])
