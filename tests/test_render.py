"""Rendering is pure: plain values in, every channel's text out, escaped and within limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import make_call
from tests.notifier_support import (
    HOSTILE_TITLE,
    LONG_TITLE,
    NOW,
    big_digest,
    budget_changed,
    change,
    deadline_moved,
    every_kind,
    item,
)
from tracker.dates import days_left
from tracker.delivery.render import (
    TELEGRAM_LIMIT,
    AlertItem,
    describe_change,
    render_alert,
    render_digest,
    render_reminder,
    split_telegram,
    truncate_html,
    utf16_len,
)
from tracker.demo.fakes.telegram_api import HtmlError, parse_telegram_html
from tracker.models import CallStatus, ChangeKind
from tracker.ports import Message

MADRID = ZoneInfo("Europe/Madrid")


def test_new_call_alert_shows_everything_a_reader_needs() -> None:
    message = render_alert(item("HORIZON-A"), now=NOW, timezone="Europe/Madrid")
    assert message.kind == "alert"
    assert message.subject.startswith("New matching call — Next-generation electrolysers")
    for text in (message.text, message.telegram[0], message.html):
        assert "Next-generation electrolysers for renewable hydrogen" in text
        assert "Horizon Europe" in text
        assert "HORIZON-A" in text
        assert "Open" in text
        # 16 Apr 2027 15:00 UTC is 17:00 in Madrid; 142 days after 25 Nov 2026
        assert "16 Apr 2027, 17:00 CEST (in 142 days)" in text
        assert "EUR 3.0 M" in text
        assert "hydrogen-valley" in text
        assert "https://example.invalid/topic-details/HORIZON-A" in text
    assert 'keyword "hydrogen" in title' in message.text
    assert "keyword &#34;hydrogen&#34; in title" in message.html
    assert [b.data for b in message.buttons] == ["dismiss:ft_portal:HORIZON-A",
                                                 "mode:hydrogen-valley:daily"]


@pytest.mark.parametrize(("kind", "values", "expected"), [
    (ChangeKind.DEADLINE_CHANGED, {"old": ["2026-04-16T15:00:00Z"], "new": ["2026-04-30T15:00:00Z"]},
     "deadline 16 Apr → 30 Apr 2026"),
    (ChangeKind.DEADLINE_CHANGED, {"old": ["2026-04-16T15:00:00Z"], "new": ["2026-04-16T10:00:00Z"]},
     "deadline 16 Apr 2026, 17:00 CEST → 16 Apr 2026, 12:00 CEST"),
    (ChangeKind.OPENED, {"old": "forthcoming", "new": "open"}, "now open"),
    (ChangeKind.CLOSED, {}, "now closed"),
    (ChangeKind.REOPENED, {}, "reopened"),
    (ChangeKind.STATUS_CHANGED, {"old": "open", "new": "forthcoming"},
     "status open → forthcoming"),
    (ChangeKind.BUDGET_CHANGED, {"old": {"total": 3_000_000}, "new": {"total": 4_500_000}},
     "budget EUR 3.0 M → 4.5 M"),
    (ChangeKind.BUDGET_CHANGED,
     {"old": {"total": 1, "max_grant": 1_000_000}, "new": {"total": 1, "max_grant": 2_000_000}},
     "grant size up to EUR 1.0 M → 2.0 M"),
    (ChangeKind.DOCUMENTS_CHANGED, {"new": "Call documents updated"},
     "portal update: Call documents updated"),
    (ChangeKind.TITLE_CHANGED, {"old": "Old title", "new": "New"}, "title changed (was: Old title)"),
    (ChangeKind.REMOVED_FROM_SOURCE, {}, "no longer listed by the source"),
    (ChangeKind.DETAILS_CHANGED, {"field": "action_type", "old": "RIA", "new": "IA"},
     "type of action RIA → IA"),
    (ChangeKind.DETAILS_CHANGED, {"field": "opening_date", "old": "2026-05-06T00:00:00Z",
                                  "new": "2026-06-01T00:00:00Z"},
     "opening date 6 May → 1 Jun 2026"),
])
def test_every_change_kind_reads_as_a_sentence(kind: ChangeKind, values: dict[str, object],
                                                expected: str) -> None:
    assert describe_change(change(make_call(), kind, **values), MADRID) == expected


def test_change_alert_names_the_change_in_subject_and_body() -> None:
    message = render_alert(item("B", ChangeKind.DEADLINE_CHANGED), now=NOW, timezone="Europe/Madrid")
    assert message.subject.startswith("Deadline 16 Apr → 30 Apr 2026 — ")
    assert "• deadline 16 Apr → 30 Apr 2026" in message.telegram[0]
    assert "<li>deadline 16 Apr → 30 Apr 2026</li>" in message.html
    two = render_alert(item("B", ChangeKind.DEADLINE_CHANGED, ChangeKind.BUDGET_CHANGED), now=NOW)
    assert two.subject.startswith("Deadline 16 Apr → 30 Apr 2026 · budget EUR 3.0 M → 4.5 M — ")
    assert [c["kind"] for c in two.document["sections"][0]["items"][0]["changes"]] == [
        "deadline_changed", "budget_changed"]


def test_days_left_are_counted_in_the_readers_time_zone() -> None:
    late = datetime(2026, 11, 25, 23, 30, tzinfo=UTC)  # 00:30 on the 26th in Madrid
    alert = item("A", deadlines=(late,))
    assert "(today)" in render_alert(alert, now=NOW, timezone="UTC").text
    assert "26 Nov 2026, 00:30 CET (tomorrow)" in render_alert(alert, now=NOW,
                                                                timezone="Europe/Madrid").text


@pytest.mark.parametrize(("cutoff", "now", "zone", "expected"), [
    # the same day, whatever the hours: 0 from 00:05 to 23:59
    ("2026-11-26T22:59+00:00", "2026-11-25T23:05+00:00", "Europe/Madrid", 0),
    # one minute before midnight in the reader's zone is still the day before
    ("2026-11-26T23:01+00:00", "2026-11-26T22:59+00:00", "Europe/Madrid", 1),
    # in UTC those two instants share a day
    ("2026-11-26T23:01+00:00", "2026-11-26T22:59+00:00", "UTC", 0),
    # across the spring DST change (a 23-hour day): days, not 24-hour spans
    ("2026-03-30T00:30+02:00", "2026-03-28T23:30+01:00", "Europe/Brussels", 2),
    # a cut-off already past counts below zero
    ("2026-11-24T12:00+00:00", "2026-11-25T12:00+00:00", "Asia/Tokyo", -1),
])
def test_days_left_counts_calendar_days_in_the_readers_zone(
        cutoff: str, now: str, zone: str, expected: int) -> None:
    assert days_left(datetime.fromisoformat(cutoff), datetime.fromisoformat(now),
                     ZoneInfo(zone)) == expected


def test_a_call_without_deadline_or_budget_still_renders() -> None:
    alert = item("A", deadlines=(), budget_eur=None, url=None, programme=None,
                 status=CallStatus.FORTHCOMING)
    message = render_alert(alert, now=NOW)
    assert "Deadline:" not in message.text and "Budget:" not in message.text
    assert "Forthcoming" in message.text
    assert message.document["sections"][0]["items"][0]["next_deadline"] is None


def test_an_empty_digest_renders_nothing() -> None:
    assert render_digest(now=NOW) is None


def test_digest_is_one_message_across_profiles_grouped_without_duplicates() -> None:
    soon = NOW + timedelta(days=3)
    later = NOW + timedelta(days=9)
    message = render_digest(
        new=[item("N1", profile="hydrogen"), item("N1", profile="smes"), item("N2")],
        changed=[item("C1", ChangeKind.BUDGET_CHANGED), item("N2", ChangeKind.BUDGET_CHANGED)],
        closing=[item("S2", deadlines=(later,)), item("S1", deadlines=(soon,)), item("C1")],
        period="weekly", now=NOW, timezone="Europe/Madrid",
    )
    assert message is not None and message.kind == "digest"
    sections = {s["key"]: [i["call_id"] for i in s["items"]] for s in message.document["sections"]}
    assert sections == {"new": ["ft_portal:N1", "ft_portal:N2"], "changed": ["ft_portal:C1"],
                        "closing": ["ft_portal:S1", "ft_portal:S2"]}
    n1 = message.document["sections"][0]["items"][0]
    assert n1["profiles"] == ["hydrogen", "smes"]
    assert message.subject == "callwatch weekly digest: 2 new, 1 budget changed, 2 closing soon"
    assert message.text.index("New calls (2)") < message.text.index("Changed (1)") \
        < message.text.index("Closing soon (2)")
    assert "<b>Closing soon (2)</b>" in message.telegram[0]
    assert "(in 3 days)" in message.text


def test_reminder_is_about_the_given_cut_off() -> None:
    first = NOW + timedelta(days=7)
    second = NOW + timedelta(days=60)
    alert = item("R", deadlines=(first, second))
    message = render_reminder(alert, first, now=NOW, timezone="Europe/Madrid")
    assert message.kind == "reminder"
    assert message.subject.startswith("Deadline in 7 days — ")
    assert "(in 7 days)" in message.telegram[0]
    assert render_reminder(alert, NOW + timedelta(hours=1), now=NOW).subject.startswith(
        "Deadline today")


@pytest.mark.parametrize("title", [HOSTILE_TITLE, LONG_TITLE])
def test_hostile_titles_are_escaped_and_clipped_everywhere(title: str) -> None:
    for name, message in every_kind(title).items():
        for part in message.telegram:
            parse_telegram_html(part)  # raises where Telegram would refuse the message
            assert utf16_len(part) <= TELEGRAM_LIMIT
            assert "<script>" not in part and "javascript:" not in part.split("href")[0]
        assert "<script>" not in message.html, name
        assert 'href="javascript:' not in message.html
        assert len(message.subject) < 250
        assert "\n" not in message.subject
        if title is HOSTILE_TITLE:
            assert "&lt;script&gt;" in message.html
            assert "&lt;script&gt;" in message.telegram[0]
            assert '<script>alert("x")</script>' in message.text  # plain text stays plain
        else:
            assert len(message.document["sections"][0]["items"][0]["title"]) <= 300


def test_every_field_of_an_item_is_escaped_in_each_form_by_its_own_rules() -> None:
    """Each form's templates escape every printed field, not only the title: Telegram with
    tg_escape (quotes stay), email with HTML autoescape (quotes too), plain text not at all."""
    call = make_call("T<1>&", title="Title <i>&</i>", programme="Prog <x> & y",
                     sub_programme="Sub >", url="https://example.invalid/?a=1&b=2")
    hostile = AlertItem(call, (change(call, ChangeKind.DOCUMENTS_CHANGED, field="updates",
                                      new="Docs <v2> & more"),),
                        ('keyword "<h2>" & more',), "ops<&>")
    digest = render_digest(new=[hostile], closing=[item("OTHER")], now=NOW)
    assert digest is not None
    messages = [render_alert(hostile, now=NOW), digest,
                render_reminder(hostile, call.deadlines[0], now=NOW)]
    for message in messages:
        telegram = "".join(message.telegram)
        for part in message.telegram:
            parse_telegram_html(part)
        for expected in ("<b>Title &lt;i&gt;&amp;&lt;/i&gt;</b>",
                         "<i>Prog &lt;x&gt; &amp; y / Sub &gt;</i>",
                         "<code>T&lt;1&gt;&amp;</code>",
                         "• portal update: Docs &lt;v2&gt; &amp; more",
                         'Why: keyword "&lt;h2&gt;" &amp; more',
                         "Profile: ops&lt;&amp;&gt;",
                         '<a href="https://example.invalid/?a=1&amp;b=2">Open the call</a>'):
            assert expected in telegram, (message.kind, expected)
        for expected in ("Title <i>&</i>", "  Prog <x> & y / Sub > · T<1>& · Open",
                         "  * portal update: Docs <v2> & more",
                         '  Why: keyword "<h2>" & more', "  Profile: ops<&>",
                         "  https://example.invalid/?a=1&b=2"):
            assert expected in message.text, (message.kind, expected)
        for expected in (">Title &lt;i&gt;&amp;&lt;/i&gt;</a>",
                         "<td>Prog &lt;x&gt; &amp; y / Sub &gt;</td>",
                         "<code>T&lt;1&gt;&amp;</code>",
                         "<li>portal update: Docs &lt;v2&gt; &amp; more</li>",
                         "<td>keyword &#34;&lt;h2&gt;&#34; &amp; more; ",
                         "<td>ops&lt;&amp;&gt;</td>",
                         'href="https://example.invalid/?a=1&amp;b=2"'):
            assert expected in message.html, (message.kind, expected)
        assert "<v2>" not in telegram + message.html and "<x>" not in telegram + message.html


def test_every_form_is_a_plain_string() -> None:
    """Not Jinja's Markup: ``Markup + str`` escapes the str, so a Markup kept in a message
    would change what a later concatenation (a footer, a split) sends."""
    for message in every_kind().values():
        for part in (message.text, message.html, *message.telegram):
            assert type(part) is str, message.kind


def test_non_http_links_are_dropped() -> None:
    message = render_alert(item("A", url="javascript:alert(1)"), now=NOW)
    assert "javascript" not in message.telegram[0] + message.html + message.text
    assert message.document["sections"][0]["items"][0]["url"] is None


def test_callback_data_over_64_bytes_drops_the_button_not_the_message() -> None:
    message = render_alert(item("X" * 70), now=NOW)
    assert [b.label for b in message.buttons] == ["Switch to daily digest"]


def test_long_digest_is_split_at_item_boundaries_each_part_within_the_limit() -> None:
    message = big_digest(60)
    assert len(message.telegram) > 1
    seen: list[str] = []
    for index, part in enumerate(message.telegram):
        assert utf16_len(part) <= TELEGRAM_LIMIT
        parse_telegram_html(part)
        if index:
            assert part.startswith("<i>(continued)</i>\n\n<b>Call number")
        seen += [line[6:-7] for line in part.split("\n") if line.startswith("<code>")
                 ] or [chunk.split("</code>")[0] for chunk in part.split("<code>")[1:]]
    # every item exactly once, in order, none cut in half
    assert seen == [f"HORIZON-BIG-{n:03d}" for n in range(60)]
    assert all(part.rstrip().endswith("Open the call</a>") for part in message.telegram)


def test_a_single_oversized_item_is_truncated_without_breaking_tags() -> None:
    record_item = item("HUGE")
    updates = tuple(change(record_item.call, ChangeKind.DOCUMENTS_CHANGED, new=f"<&> update {n} " * 40)
                    for n in range(40))
    message = render_alert(AlertItem(record_item.call, updates, (), "p"), now=NOW)
    assert len(message.telegram) == 1
    part = message.telegram[0]
    assert utf16_len(part) <= TELEGRAM_LIMIT
    assert "…" in part
    parse_telegram_html(part)


def test_split_counts_utf16_units_like_telegram() -> None:
    block = "<b>" + "🇪🇺" * 1500 + "</b>"  # 4 UTF-16 units per flag, 6000 in all
    [part] = split_telegram("<b>head</b>", [block])
    assert utf16_len(part) <= TELEGRAM_LIMIT
    parse_telegram_html(part)


_pieces = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30).map(
        lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")),
    st.sampled_from(["<b>", "</b>", "<i>", "</i>", '<a href="https://x.eu/?a=1&amp;b=2">', "</a>",
                     "&lt;", "&amp;", "&#64;", "🇪🇺"]),
)


def _balanced(tokens: list[str]) -> str:
    out, stack = [], []
    for token in tokens:
        if token.startswith("</"):
            name = token[2:-1]
            if stack and stack[-1] == name:
                stack.pop()
                out.append(token)
        elif token.startswith("<") and not token.startswith("&"):
            name = token[1:].split(">")[0].split()[0]
            stack.append(name)
            out.append(token)
        else:
            out.append(token)
    out += [f"</{name}>" for name in reversed(stack)]
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=60), st.integers(min_value=12, max_value=200))
def test_truncation_always_yields_valid_telegram_html_within_the_limit(
        tokens: list[str], limit: int) -> None:
    markup = _balanced(tokens)
    cut = truncate_html(markup, limit)
    assert utf16_len(cut) <= limit
    parse_telegram_html(cut)
    if utf16_len(markup) <= limit:
        assert cut == markup


def test_the_html_checker_of_the_fake_refuses_what_telegram_refuses() -> None:
    for bad in ("<b>open", "a < b", "<script>x</script>", "<b><i>x</b></i>", "&nbsp;"):
        with pytest.raises(HtmlError):
            parse_telegram_html(bad)
    assert parse_telegram_html('<a href="https://e.eu">x &amp; y</a>') == "x & y"


def test_messages_survive_the_outbox_as_json() -> None:
    for message in every_kind(HOSTILE_TITLE).values():
        assert Message.model_validate_json(message.model_dump_json()) == message
        json.dumps(message.document)


def test_budget_and_deadline_helpers_from_the_support_module_render() -> None:
    record = make_call()
    assert describe_change(deadline_moved(record), MADRID) == "deadline 16 Apr → 30 Apr 2026"
    assert describe_change(budget_changed(record), MADRID) == "budget EUR 3.0 M → 4.5 M"
