"""Every phrase a subscriber reads that is made in Python, in one place (pure).

Messages are rendered from templates (``tracker/delivery/templates/``), which hold their
own labels ("Deadline", "Budget"); what the templates print from data comes from here:
what changed, why a call matched, the subject lines and section titles, counts with their
plurals, days and dates. Each phrase is one entry of ``PHRASES`` (or ``PLURALS`` for a
count), formatted by ``say`` or ``count``, so that one function is where a translation
layer wraps them (gettext's ``gettext`` and ``ngettext`` take exactly these strings).

Dates are English ("16 Apr 2026"), independent of the process locale.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tracker.dates import to_utc

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: key → the phrase, with ``{placeholders}``
PHRASES: dict[str, str] = {
    # what changed (tracker.delivery.changes)
    "change.deadline": "deadline {before} → {after}",
    "change.cutoff_added": "new cut-off {after}",
    "change.cutoff_removed": "cut-off {before} removed",
    "change.opened": "now open",
    "change.closed": "now closed",
    "change.reopened": "reopened",
    "change.status": "status {before} → {after}",
    "change.budget.total": "budget {before} → {after}",
    "change.budget.max_grant": "grant size up to {before} → {after}",
    "change.budget.min_grant": "grant size from {before} → {after}",
    "change.budget.expected_grants": "grants expected {before} → {after}",
    "change.budget.call_total": "call total {before} → {after}",
    "change.budget": "budget changed",
    "change.title": "title changed (was: {before})",
    "change.documents": "new documents: {after}",
    "change.updates": "portal update: {after}",
    "change.removed": "no longer listed by the source",
    "change.opening_date": "opening date {before} → {after}",
    "change.deadline_model": "deadline model {before} → {after}",
    "change.action_type": "type of action {before} → {after}",
    "change.call_identifier": "call identifier {before} → {after}",
    "change.topic_identifier": "topic identifier {before} → {after}",
    "change.url": "new link",
    "change.details": "{field} {before} → {after}",
    "value.none": "none",
    "value.unknown": "unknown",
    # statuses
    "status.forthcoming": "Forthcoming",
    "status.open": "Open",
    "status.closed": "Closed",
    # days
    "days.today": "today",
    "days.tomorrow": "tomorrow",
    "days.passed": "passed",
    "left.today": "last day today",
    "left.passed": "deadline passed",
    # why it matched
    "why.matched": "matched {terms}",
    "why.term": "{words} in the {field}",
    "why.and": " and ",
    "why.list": ", ",
    "why.eligible": "eligible: {places}",
    "why.audience": "for {audience}",
    "field.title": "title",
    "field.keywords": "keywords",
    "field.summary": "summary",
    # budget
    "budget.topic": "{amount} for this topic",
    "budget.max_grant": "up to {amount} per grant",
    "budget.min_grant": "at least {amount} per grant",
    "budget.call_total": "call total {amount}",
    # headings and subjects
    "section.new": "New calls",
    "section.changed": "Changed",
    "section.closing": "Closing soon",
    "section.opening": "Opening soon",
    "section.first": "Closing first",
    "section.others": "Also matching",
    "period.daily": "daily",
    "period.weekly": "weekly",
    "digest.intro": "callwatch {period} digest, {day}: {counts}",
    "digest.subject": "callwatch {period} digest: {counts}",
    "alert.new": "New matching call",
    "alert.subject": "{what} — {title}",
    "reminder.today": "Deadline today",
    "reminder.tomorrow": "Deadline tomorrow",
    "summary.profile": "{count} match {profile}",
    "summary.shown": "here are the {shown} closing first",
    "summary.all": "here they are, closing first",
    "summary.outro": "From now on each new or changed call comes as an alert of its own.",
    "button.dismiss": "Dismiss",
    "button.daily": "Switch to daily digest",
    "list.separator": ", ",
}

#: key → (one, many) with ``{n}``: a count and its noun agree ("1 grant", "2 grants")
PLURALS: dict[str, tuple[str, str]] = {
    "days.in": ("in {n} day", "in {n} days"),
    "days.ago": ("passed {n} day ago", "passed {n} days ago"),
    "left.days": ("{n} day left", "{n} days left"),
    "budget.grants": ("{n} grant expected", "{n} grants expected"),
    "budget.shared": ("shared by {n} topic", "shared by {n} topics"),
    "reminder.days": ("Deadline in {n} day", "Deadline in {n} days"),
    "count.new": ("{n} new", "{n} new"),
    "count.deadline": ("{n} deadline moved", "{n} deadlines moved"),
    "count.opened": ("{n} now open", "{n} now open"),
    "count.closed": ("{n} closed", "{n} closed"),
    "count.budget": ("{n} budget changed", "{n} budgets changed"),
    "count.documents": ("{n} with new documents", "{n} with new documents"),
    "count.changed": ("{n} changed", "{n} changed"),
    "count.closing": ("{n} closing soon", "{n} closing soon"),
    "count.opening": ("{n} opening soon", "{n} opening soon"),
    "summary.calls": ("{n} call matches {profile}", "{n} calls match {profile}"),
    "summary.more": ("and {n} more", "and {n} more"),
}


def say(key: str, **values: object) -> str:
    """The phrase ``key`` with ``values`` in its placeholders."""
    return PHRASES[key].format(**values)


def count(key: str, n: int, **values: object) -> str:
    """The phrase ``key`` for ``n`` things, its noun agreeing with ``n``."""
    one, many = PLURALS[key]
    return (one if n == 1 else many).format(n=n, **values)


def join_list(items: Sequence[str]) -> str:
    return say("list.separator").join(items)


# -- dates and days ----------------------------------------------------------------------

def format_day(value: date) -> str:
    """16 Apr 2026 (English month names, independent of the process locale)."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def format_day_short(value: date) -> str:
    """16 Apr: the first day of a range whose second day gives the year."""
    return f"{value.day} {_MONTHS[value.month - 1]}"


def day_range(before: date, after: date) -> tuple[str, str]:
    """("12 Mar", "26 Mar 2027") within one year, else both with their years."""
    if before.year == after.year:
        return format_day_short(before), format_day(after)
    return format_day(before), format_day(after)


def format_deadline(value: datetime, zone: ZoneInfo) -> str:
    """30 Apr 2026, 17:00 CEST — the cut-off in the reader's time zone."""
    local = to_utc(value).astimezone(zone)
    return f"{format_day(local.date())}, {local:%H:%M} {local.tzname()}"


def describe_days(days: int) -> str:
    """When a cut-off is, from today: "in 5 days", "tomorrow", "passed 2 days ago"."""
    if days < 0:
        return say("days.passed") if days == -1 else count("days.ago", -days)
    if days == 0:
        return say("days.today")
    if days == 1:
        return say("days.tomorrow")
    return count("days.in", days)


def days_left_text(days: int) -> str:
    """How long is left to apply: "78 days left", "last day today"."""
    if days < 0:
        return say("left.passed")
    if days == 0:
        return say("left.today")
    return count("left.days", days)


# -- why it matched ----------------------------------------------------------------------

@dataclass(frozen=True)
class Phrase:
    """A phrase in parts, some emphasized (the words a profile matched): each form shows the
    emphasis its own way (``*hydrogen*``, ``<em>``, ``<i>``)."""

    parts: tuple[tuple[str, bool], ...]

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    @property
    def marked(self) -> str:
        """Plain text with the emphasized words between asterisks."""
        return "".join(f"*{text}*" if strong else text for text, strong in self.parts)


_HIT = re.compile(r"^(title|keywords|summary): (.+)$")
_STALE_FACT = re.compile(r"^(next deadline (today|in \d+ days?)|last deadline \d+ days? ago"
                         r"|budget EUR .+)$")
_PREFIXED = re.compile(r"^(eligible|audience): (.+)$")


def _matched_phrase(hits: Sequence[tuple[str, list[str]]]) -> Phrase:
    prefix, _, suffix = say("why.matched", terms="\0").partition("\0")
    parts: list[tuple[str, bool]] = [(prefix, False)]
    for position, (field, words) in enumerate(hits):
        if position:
            parts.append((say("why.and"), False))
        before, _, after = say("why.term", words="\0", field=say(f"field.{field}")).partition("\0")
        parts.append((before, False))
        for index, word in enumerate(words):
            if index:
                parts.append((say("why.list"), False))
            parts.append((word, True))
        parts.append((after, False))
    parts.append((suffix, False))
    return Phrase(tuple((text, strong) for text, strong in parts if text))


@functools.lru_cache(maxsize=16_384)
def why_matched(reasons: tuple[str, ...], days: int | None) -> tuple[Phrase, ...]:
    """Why a call matched, in words: "matched *hydrogen* in the title and *electrolyser* in
    the keywords", the programme, then how long is left (from ``days``, counted at render
    time, not the day the match was recorded).

    ``reasons`` are what the rules layer records (``tracker.rules.matcher.describe``):
    ``"<field>: <words>"`` hits, the programme, a deadline and budget fact (dropped here:
    the deadline is recounted and the budget has a line of its own), ``eligible: …`` and
    ``audience: …``. A reason in another form is kept as it is. Cached: the matches of a
    profile share their reasons, and a digest round shows them thousands of times.
    """
    hits: list[tuple[str, list[str]]] = []
    rest: list[Phrase] = []
    for reason in reasons:
        found = _HIT.match(reason)
        if found:
            hits.append((found.group(1), [w.strip() for w in found.group(2).split(",")]))
            continue
        if _STALE_FACT.match(reason):
            continue
        prefixed = _PREFIXED.match(reason)
        if prefixed and prefixed.group(1) == "eligible":
            rest.append(Phrase(((say("why.eligible", places=prefixed.group(2)), False),)))
        elif prefixed:
            rest.append(Phrase(((say("why.audience", audience=prefixed.group(2)), False),)))
        else:
            rest.append(Phrase(((reason, False),)))
    phrases = ([_matched_phrase(hits)] if hits else []) + rest
    if days is not None:
        phrases.append(Phrase(((days_left_text(days), False),)))
    return tuple(phrases)
