"""What people read (issue 16): digests that say what happened, enough to decide from one
message, a first cycle that does not flood, and the same changes as data for machines.

All pure: records written in the real shape (tests/factories.py), a fixed ``now``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from notifiers.email import build_email
from tests.factories import make_call
from tests.notifier_support import NOW, change
from tracker.delivery.changes import what_changed
from tracker.delivery.planning import (
    Audience,
    MatchEvent,
    PlannedAlert,
    PlannedSummary,
    closing_soon,
    opening_soon,
    plan_alerts,
    plan_digest_entries,
)
from tracker.delivery.render import (
    AlertItem,
    render_alert,
    render_digest,
    render_reminder,
    render_summary,
)
from tracker.exports.formats import CALLWATCH_NS, FeedItem, to_atom
from tracker.models import CallRecord, CallStatus, ChangeKind
from tracker.store.calls import StoredCall

MADRID = ZoneInfo("Europe/Madrid")
REASONS = ("title: hydrogen", "keywords: electrolyser", "Horizon Europe",
           "next deadline in 3 days", "budget EUR 3.0 M")


def moved(native_id: str = "MOVED", before: str = "2027-03-12T16:00:00Z",
          after: str = "2027-03-26T16:00:00Z") -> AlertItem:
    call = make_call(native_id)
    return AlertItem(call, (change(call, ChangeKind.DEADLINE_CHANGED, field="deadlines",
                                   old=[before], new=[after]),), REASONS, "hydrogen-valley")


def new(native_id: str, **fields: object) -> AlertItem:
    call = make_call(native_id, **fields)
    return AlertItem(call, (change(call, ChangeKind.NEW, new=call.title),), REASONS,
                     "hydrogen-valley")


# -- 1. digests say what happened ---------------------------------------------------------

def test_a_first_time_match_is_entered_as_new_whatever_change_brought_it_in() -> None:
    call = make_call("FIRST")
    first = MatchEvent("h2", call, REASONS, first_match=True,
                       changes=(change(call, ChangeKind.NEW),), change_ids=(41,))
    again = MatchEvent("h2", call, REASONS, first_match=False,
                       changes=(change(call, ChangeKind.OPENED),), change_ids=(42, 43))
    assert [e.change_id for e in plan_digest_entries([first, again])] == [None, 43]


def test_a_digest_has_sections_and_a_subject_that_counts_what_happened() -> None:
    soon = NOW + timedelta(days=7, hours=1)  # 7 days before it: a reminder day
    opens = NOW + timedelta(days=3)
    message = render_digest(
        new=[new("N1")],
        changed=[moved(), new("N2")],  # N2's only event is that it is new: a new call
        closing=[new("C1", deadlines=(soon,))],
        opening=[new("O1", status=CallStatus.FORTHCOMING, opening_date=opens,
                     deadlines=(NOW + timedelta(days=90),))],
        now=NOW, timezone="Europe/Madrid")
    assert message is not None
    assert message.subject == ("callwatch daily digest: 2 new, 1 deadline moved, 1 closing soon, "
                               "1 opening soon")
    sections = {s["key"]: [i["call_id"] for i in s["items"]] for s in message.document["sections"]}
    assert sections == {"new": ["ft_portal:N1", "ft_portal:N2"], "changed": ["ft_portal:MOVED"],
                        "closing": ["ft_portal:C1"], "opening": ["ft_portal:O1"]}
    text = message.text
    assert text.index("New calls (2)") < text.index("Changed (1)") < text.index(
        "Closing soon (1)") < text.index("Opening soon (1)")
    assert "  * deadline 12 Mar → 26 Mar 2027" in text
    assert "• deadline 12 Mar → 26 Mar 2027" in message.telegram[0]
    assert "<li>deadline 12 Mar → 26 Mar 2027</li>" in message.html


def test_opening_soon_is_ordered_by_opening_date() -> None:
    def forthcoming(native_id: str, days: int) -> AlertItem:
        return new(native_id, status=CallStatus.FORTHCOMING,
                   opening_date=NOW + timedelta(days=days), deadlines=(NOW + timedelta(days=90),))

    message = render_digest(opening=[forthcoming("A", 5), forthcoming("B", 2),
                                     forthcoming("C", 3)], now=NOW)
    assert message is not None
    [section] = message.document["sections"]
    assert [i["call_id"] for i in section["items"]] == ["ft_portal:B", "ft_portal:C",
                                                        "ft_portal:A"]


def test_an_alert_says_what_changed_about_its_one_call() -> None:
    alert = render_alert(moved(), now=NOW, timezone="Europe/Madrid")
    assert alert.subject.startswith("Deadline 12 Mar → 26 Mar 2027 — ")
    first = render_alert(new("N"), now=NOW)
    assert first.subject.startswith("New matching call — ")
    assert first.document["sections"][0]["items"][0]["changes"] == []


def test_what_changed_is_one_note_per_thing_a_reader_weighs() -> None:
    call = make_call()
    notes = what_changed([
        change(call, ChangeKind.DEADLINE_CHANGED, field="deadlines",
               old=["2026-12-20T16:00:00Z", "2027-05-01T15:00:00Z"],
               new=["2027-02-03T16:00:00Z", "2027-05-01T15:00:00Z", "2027-09-01T15:00:00Z"]),
        change(call, ChangeKind.OPENED, field="status", old="forthcoming", new="open"),
        change(call, ChangeKind.BUDGET_CHANGED, field="budget",
               old={"total": 10_000_000, "expected_grants": 2},
               new={"total": 12_000_000, "expected_grants": 3}),
        change(call, ChangeKind.DOCUMENTS_CHANGED, field="documents", new="Work programme: https://a"),
        change(call, ChangeKind.DOCUMENTS_CHANGED, field="documents", new="FAQ: https://b"),
    ], ZoneInfo("UTC"))
    assert [n.text for n in notes] == [
        "deadline 20 Dec 2026 → 3 Feb 2027", "new cut-off 1 Sep 2027", "now open",
        "budget EUR 10.0 M → 12.0 M", "grants expected 2 → 3",
        "new documents: Work programme: https://a, FAQ: https://b"]
    assert (notes[0].field, notes[0].before, notes[0].after) == (
        "deadlines", "2026-12-20T16:00:00Z", "2027-02-03T16:00:00Z")
    assert (notes[3].field, notes[3].before, notes[3].after) == (
        "budget.total", 10_000_000, 12_000_000)
    assert what_changed([change(call, ChangeKind.NEW)], ZoneInfo("UTC")) == ()


# -- 2. enough to decide ------------------------------------------------------------------

def test_an_item_shows_what_a_reader_needs_to_decide() -> None:
    call = make_call(
        "FULL", summary="Build electrolysers at scale. Pilot them in two regions. "
        "Then a third sentence nobody needs here.", action_type="HORIZON-IA",
        status=CallStatus.FORTHCOMING, opening_date=datetime(2026, 12, 1, tzinfo=UTC),
        deadlines=(datetime(2027, 2, 11, 16, 0, tzinfo=UTC), datetime(2027, 9, 2, 15, 0, tzinfo=UTC)),
        deadline_model="two-stage", budget_eur=20_000_000, budget_max_eur=5_000_000,
        expected_grants=1, call_budget_eur=60_000_000, call_budget_topics=3,
        countries=("ES", "PT"), regions=("ES30",))
    message = render_alert(AlertItem(call, (), REASONS, "hydrogen-valley"), now=NOW,
                           timezone="Europe/Madrid")
    text = message.text
    assert "  Build electrolysers at scale. Pilot them in two regions.\n" in text
    assert "Then a third sentence" not in text
    assert "HORIZON-IA" in text and "  Opening date: 1 Dec 2026" in text
    assert ("  Deadlines (two-stage): 11 Feb 2027, 17:00 CET (in 78 days); "
            "2 Sep 2027, 17:00 CEST (in 281 days)") in text
    assert ("  Budget: EUR 20.0 M for this topic, up to EUR 5.0 M per grant, 1 grant expected, "
            "call total EUR 60.0 M (shared by 3 topics)") in text
    assert "  Eligible: ES, PT, ES30" in text
    assert ("  Why: matched *hydrogen* in the title and *electrolyser* in the keywords; "
            "Horizon Europe; 78 days left") in text
    assert "matched <i>hydrogen</i> in the title" in message.telegram[0]
    assert "matched <em>hydrogen</em> in the title" in message.html
    item = message.document["sections"][0]["items"][0]
    assert item["why"] == ("matched hydrogen in the title and electrolyser in the keywords; "
                           "Horizon Europe; 78 days left")
    assert item["eligible"] == "ES, PT, ES30" and item["action_type"] == "HORIZON-IA"


def test_counts_and_their_nouns_agree() -> None:
    one = render_alert(AlertItem(make_call("ONE", expected_grants=1, call_budget_eur=9_000_000,
                                           call_budget_topics=1)), now=NOW)
    assert "1 grant expected" in one.text and "1 grants" not in one.text
    assert "(shared by 1 topic)" in one.text
    deadline = NOW + timedelta(days=1, hours=1)
    reminder = render_reminder(new("R", deadlines=(deadline,)), deadline, now=NOW)
    assert reminder.subject.startswith("Deadline tomorrow")
    assert "1 day left" in reminder.text
    digest = render_digest(new=[new("A")], now=NOW)
    assert digest is not None and digest.subject == "callwatch daily digest: 1 new"


def test_every_plain_text_heading_is_underlined_to_its_own_length() -> None:
    title = "A very long call title " * 4
    messages = [render_digest(new=[new("A", title=title)], changed=[moved()], now=NOW),
                render_alert(moved(), now=NOW), render_summary(
                    [new(f"S{n}", deadlines=(NOW + timedelta(days=n + 2),)) for n in range(8)],
                    shown=5, now=NOW)]
    for message in messages:
        assert message is not None
        lines = message.text.splitlines()
        underlined = [(lines[n - 1], line) for n, line in enumerate(lines)
                      if n and line and set(line) in ({"="}, {"-"})]
        assert underlined, message.text
        for heading, rule in underlined:
            assert len(rule) == len(heading), (heading, rule)


def test_the_email_date_is_the_clock_of_its_body() -> None:
    message = render_alert(new("D"), now=NOW)
    mime = build_email(message, sender="callwatch@example.org", to="ana@example.org")
    assert parsedate_to_datetime(mime["Date"]) == NOW


# -- 3. a first cycle that does not flood -------------------------------------------------

def _audience(mode: str = "instant") -> Audience:
    return Audience(subscriber_id=7, subscriber="ana", profile="hydrogen-valley", mode=mode,
                    channels=("telegram", "email"), timezone="Europe/Madrid")


def _events(count: int, *, first: bool) -> list[MatchEvent]:
    events = []
    for n in range(count):
        call = make_call(f"E{n:02d}", deadlines=(NOW + timedelta(days=40 - n),))
        kind = ChangeKind.NEW if first else ChangeKind.DEADLINE_CHANGED
        events.append(MatchEvent("hydrogen-valley", call, REASONS, first_match=first,
                                 changes=(change(call, kind),), change_ids=(100 + n,)))
    return events


def test_a_profiles_first_cycle_is_one_summary_per_channel() -> None:
    plans = plan_alerts(_events(12, first=True), [_audience()], NOW,
                        first_run={"hydrogen-valley"})
    assert [type(p) for p in plans] == [PlannedSummary, PlannedSummary]
    assert {p.channel for p in plans} == {"telegram", "email"}
    summary = plans[0]
    assert isinstance(summary, PlannedSummary) and len(summary.items) == 12
    again = plan_alerts(_events(12, first=True), [_audience()], NOW, first_run={"hydrogen-valley"})
    assert [p.key for p in again] == [p.key for p in plans]  # planned again: the same keys


def test_after_the_first_cycle_alerts_go_one_by_one_unless_there_is_a_backlog() -> None:
    few = plan_alerts(_events(3, first=False), [_audience()], NOW)
    assert len(few) == 6 and all(isinstance(p, PlannedAlert) for p in few)
    backlog = plan_alerts(_events(6, first=False), [_audience()], NOW, summary_after=5)
    assert [type(p) for p in backlog] == [PlannedSummary, PlannedSummary]
    off = plan_alerts(_events(6, first=True), [_audience()], NOW, first_run={"hydrogen-valley"},
                      summary_after=0)
    assert len(off) == 12 and all(isinstance(p, PlannedAlert) for p in off)
    one = plan_alerts(_events(1, first=True), [_audience()], NOW, first_run={"hydrogen-valley"})
    assert all(isinstance(p, PlannedAlert) for p in one)


def test_a_summary_shows_the_calls_closing_first_and_lists_the_rest() -> None:
    items = [new(f"S{n:02d}", deadlines=(NOW + timedelta(days=40 - n),)) for n in range(12)]
    message = render_summary(items, shown=5, now=NOW, timezone="Europe/Madrid")
    assert message.subject == "12 calls match hydrogen-valley; here are the 5 closing first"
    sections = {s["key"]: [i["call_id"] for i in s["items"]] for s in message.document["sections"]}
    assert sections["first"] == [f"ft_portal:S{n:02d}" for n in (11, 10, 9, 8, 7)]
    assert len(sections["others"]) == 7
    assert message.document["kind"] == "summary"
    assert "Also matching (7)" in message.text
    assert message.text.rstrip().endswith("comes as an alert of its own.")
    assert len(message.telegram) == 1


def test_closing_soon_is_a_cut_off_on_one_of_the_subscribers_reminder_days() -> None:
    def call_in(days: int) -> CallRecord:
        return make_call("C", deadlines=(NOW + timedelta(days=days, hours=1),))

    assert closing_soon(call_in(7), "daily", NOW, "Europe/Madrid", (30, 7, 1))
    assert not closing_soon(call_in(5), "daily", NOW, "Europe/Madrid", (30, 7, 1))
    assert closing_soon(call_in(5), "daily", NOW, "Europe/Madrid", (5,))
    assert closing_soon(call_in(10), "weekly", NOW, "Europe/Madrid", (7,))
    forthcoming = make_call("F", status=CallStatus.FORTHCOMING,
                            opening_date=NOW + timedelta(days=3))
    assert opening_soon(forthcoming, "daily", NOW)
    assert not opening_soon(make_call("O"), "daily", NOW)


# -- 7. webhook and Atom carry the changes as data ----------------------------------------

def test_the_webhook_body_carries_each_change_as_fields() -> None:
    document = render_alert(moved(), now=NOW).document
    [note] = document["sections"][0]["items"][0]["changes"]
    assert {k: note[k] for k in ("kind", "field", "before", "after", "text")} == {
        "kind": "deadline_changed", "field": "deadlines", "before": "2027-03-12T16:00:00Z",
        "after": "2027-03-26T16:00:00Z", "text": "deadline 12 Mar → 26 Mar 2027"}
    json.dumps(document)


def test_an_atom_entry_carries_what_last_changed_as_elements() -> None:
    call = make_call("ATOM")
    stored = StoredCall(record=call, first_seen=NOW, last_seen=NOW, last_changed=NOW,
                        still_listed=True)
    budget = change(call, ChangeKind.BUDGET_CHANGED, field="budget",
                    old={"total": 10_000_000}, new={"total": 12_000_000})
    # our own feed, just written: not untrusted input
    feed = ET.fromstring(to_atom([FeedItem(stored, changes=(budget,))], NOW, profile="h2"))  # noqa: S314
    atom = "{http://www.w3.org/2005/Atom}"
    [entry] = feed.findall(f"{atom}entry")
    [element] = entry.findall(f"{{{CALLWATCH_NS}}}change")
    assert element.attrib == {"kind": "budget_changed", "field": "budget.total",
                              "before": "10000000", "after": "12000000"}
    assert element.text == "budget EUR 10.0 M → 12.0 M"
    content = entry.findtext(f"{atom}content") or ""
    assert re.match(r"\* budget EUR 10\.0 M → 12\.0 M\n", content)
