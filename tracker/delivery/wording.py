"""Every phrase a subscriber reads that is made in Python, in one place, in their language (pure).

Messages are rendered from templates (``tracker/delivery/templates/``), which hold their
own labels ("Deadline", "Budget", marked for translation there); what the templates print
from data comes from here: what changed, why a call matched, the subject lines and section
titles, counts with their plurals, days, dates and amounts. Each phrase is one entry of
``PHRASES`` (or ``PLURALS`` for a count), marked for extraction where it is written and
translated by ``say`` or ``count`` through the subscriber's gettext catalog
(``tracker.i18n.translations``, the one the Telegram bot uses), so English phrases are the
msgids. Every function takes the language last (``"en"`` by default): a phrase never
changes language halfway through a message.

A phrase is a whole sentence or fragment with its fields (``{before}``, ``{n}``), never
glued from translated pieces, so a translator can reorder it: "{words} in the title" is a
phrase of its own for each field, because languages inflect "in the title" differently.

Dates, days and amounts: English keeps the forms callwatch has always written ("16 Apr
2026", "EUR 4.5 M"; CLDR's English would write "Sept" and "€4.5M"), which the CLI, the
exports and the web pages share; every other language is written by Babel (CLDR) for its
locale ("16. Apr. 2026", "12 mln €"), independent of the process locale either way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tracker import i18n
from tracker.dates import to_utc
from tracker.i18n import N_
from tracker.money import format_eur

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: the language the phrases are written in (their msgids)
EN = i18n.SOURCE_LANGUAGE


class _Plural:
    """Marks a plural pair for extraction: Babel reads calls named ``ngettext`` (forms one
    and two), and this one only returns the pair, translated later by ``count``."""

    @staticmethod
    def ngettext(singular: str, plural: str) -> tuple[str, str]:
        return singular, plural


_plural = _Plural()

#: key → the phrase (its English msgid), with ``{placeholders}``
PHRASES: dict[str, str] = {
    # what changed (tracker.delivery.changes)
    "change.deadline": N_("deadline {before} → {after}"),
    "change.cutoff_added": N_("new cut-off {after}"),
    "change.cutoff_removed": N_("cut-off {before} removed"),
    "change.opened": N_("now open"),
    "change.closed": N_("now closed"),
    "change.reopened": N_("reopened"),
    "change.status": N_("status {before} → {after}"),
    "change.budget.total": N_("budget {before} → {after}"),
    "change.budget.max_grant": N_("grant size up to {before} → {after}"),
    "change.budget.min_grant": N_("grant size from {before} → {after}"),
    "change.budget.expected_grants": N_("grants expected {before} → {after}"),
    "change.budget.call_total": N_("call total {before} → {after}"),
    "change.budget": N_("budget changed"),
    # TRANSLATORS: the old title follows, as published
    "change.title": N_("title changed (was: {before})"),
    # TRANSLATORS: the names of the documents follow, as published
    "change.documents": N_("new documents: {after}"),
    "change.updates": N_("portal update: {after}"),
    "change.removed": N_("no longer listed by the source"),
    "change.opening_date": N_("opening date {before} → {after}"),
    "change.deadline_model": N_("deadline model {before} → {after}"),
    "change.action_type": N_("type of action {before} → {after}"),
    "change.call_identifier": N_("call identifier {before} → {after}"),
    "change.topic_identifier": N_("topic identifier {before} → {after}"),
    "change.url": N_("new link"),
    # TRANSLATORS: {field} is the name of a field of the call, in English
    "change.details": N_("{field} {before} → {after}"),
    "value.none": N_("none"),
    "value.unknown": N_("unknown"),
    # statuses
    "status.forthcoming": N_("Forthcoming"),
    "status.open": N_("Open"),
    "status.closed": N_("Closed"),
    # days
    "days.today": N_("today"),
    "days.tomorrow": N_("tomorrow"),
    # TRANSLATORS: a cut-off that was yesterday
    "days.passed": N_("passed"),
    "left.today": N_("last day today"),
    "left.passed": N_("deadline passed"),
    # why it matched
    # TRANSLATORS: {terms} lists the words found and where ("hydrogen in the title and …")
    "why.matched": N_("matched {terms}"),
    "why.term.title": N_("{words} in the title"),
    "why.term.keywords": N_("{words} in the keywords"),
    "why.term.summary": N_("{words} in the summary"),
    # TRANSLATORS: joins two "… in the title" phrases; keep the spaces
    "why.and": N_(" and "),
    "why.eligible": N_("eligible: {places}"),
    # TRANSLATORS: who a call is for ("for SMEs")
    "why.audience": N_("for {audience}"),
    # budget
    "budget.topic": N_("{amount} for this topic"),
    "budget.max_grant": N_("up to {amount} per grant"),
    "budget.min_grant": N_("at least {amount} per grant"),
    "budget.call_total": N_("call total {amount}"),
    # headings and subjects
    "section.new": N_("New calls"),
    "section.changed": N_("Changed"),
    "section.closing": N_("Closing soon"),
    "section.opening": N_("Opening soon"),
    "section.first": N_("Closing first"),
    "section.others": N_("Also matching"),
    # TRANSLATORS: {counts} is e.g. "3 new, 1 deadline moved, 2 closing soon"
    "digest.intro.daily": N_("callwatch daily digest, {day}: {counts}"),
    "digest.intro.weekly": N_("callwatch weekly digest, {day}: {counts}"),
    "digest.subject.daily": N_("callwatch daily digest: {counts}"),
    "digest.subject.weekly": N_("callwatch weekly digest: {counts}"),
    "alert.new": N_("New matching call"),
    # TRANSLATORS: an email subject: what happened, then the call's title
    "alert.subject": N_("{what} — {title}"),
    "reminder.today": N_("Deadline today"),
    "reminder.tomorrow": N_("Deadline tomorrow"),
    "summary.all": N_("here they are, closing first"),
    # TRANSLATORS: {head} is e.g. "12 calls match hydrogen-valley"; {rest} "here are the 5 closing first"
    "summary.head": N_("{head}; {rest}"),
    "summary.outro": N_("From now on each new or changed call comes as an alert of its own."),
    "button.dismiss": N_("Dismiss"),
    "button.daily": N_("Switch to daily digest"),
    # TRANSLATORS: "(continued)": the next Telegram message of a long digest
    "telegram.continued": N_("(continued)"),
}

#: phrases that are punctuation, the same in every language here: not translated
_SEPARATORS = {"why.list": ", ", "list.separator": ", "}

#: key → (one, many) with ``{n}``: a count and its noun agree ("1 grant", "2 grants")
PLURALS: dict[str, tuple[str, str]] = {
    "days.in": _plural.ngettext("in {n} day", "in {n} days"),
    "days.ago": _plural.ngettext("passed {n} day ago", "passed {n} days ago"),
    "left.days": _plural.ngettext("{n} day left", "{n} days left"),
    "budget.grants": _plural.ngettext("{n} grant expected", "{n} grants expected"),
    "budget.shared": _plural.ngettext("shared by {n} topic", "shared by {n} topics"),
    "reminder.days": _plural.ngettext("Deadline in {n} day", "Deadline in {n} days"),
    "count.new": _plural.ngettext("{n} new", "{n} new"),
    "count.deadline": _plural.ngettext("{n} deadline moved", "{n} deadlines moved"),
    "count.opened": _plural.ngettext("{n} now open", "{n} now open"),
    "count.closed": _plural.ngettext("{n} closed", "{n} closed"),
    "count.budget": _plural.ngettext("{n} budget changed", "{n} budgets changed"),
    "count.documents": _plural.ngettext("{n} with new documents", "{n} with new documents"),
    "count.changed": _plural.ngettext("{n} changed", "{n} changed"),
    "count.closing": _plural.ngettext("{n} closing soon", "{n} closing soon"),
    "count.opening": _plural.ngettext("{n} opening soon", "{n} opening soon"),
    "summary.calls": _plural.ngettext("{n} call matches {profile}", "{n} calls match {profile}"),
    # TRANSLATORS: after "12 calls match hydrogen-valley, ": how many match another profile
    "summary.profile": _plural.ngettext("{n} matches {profile}", "{n} match {profile}"),
    "summary.more": _plural.ngettext("and {n} more", "and {n} more"),
    "summary.shown": _plural.ngettext("here is the one closing first",
                                      "here are the {n} closing first"),
}


def say(key: str, lang: str = EN, /, **values: object) -> str:
    """The phrase ``key`` in ``lang`` with ``values`` in its placeholders."""
    if key in _SEPARATORS:
        return _SEPARATORS[key]
    phrase = PHRASES[key]
    if lang != EN:
        phrase = i18n.translations(lang).gettext(phrase)
    return phrase.format(**values)


def count(key: str, n: int, lang: str = EN, /, **values: object) -> str:
    """The phrase ``key`` for ``n`` things in ``lang``, its noun agreeing with ``n`` (as
    many forms as the language has: Polish has three)."""
    one, many = PLURALS[key]
    if lang != EN:
        return i18n.translations(lang).ngettext(one, many, n).format(n=n, **values)
    return (one if n == 1 else many).format(n=n, **values)


def join_list(items: Sequence[str]) -> str:
    return say("list.separator").join(items)


# -- dates, days and amounts -------------------------------------------------------------

def format_day(value: date, lang: str = EN) -> str:
    """16 Apr 2026 (English month names, independent of the process locale); another
    language's own form ("16. Apr. 2026", "16 kwi 2026")."""
    if lang != EN:
        return _babel_date(value, lang)
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def format_day_short(value: date, lang: str = EN) -> str:
    """16 Apr: the first day of a range whose second day gives the year."""
    if lang != EN:
        return _babel_day_month(value, lang)
    return f"{value.day} {_MONTHS[value.month - 1]}"


def day_range(before: date, after: date, lang: str = EN) -> tuple[str, str]:
    """("12 Mar", "26 Mar 2027") within one year, else both with their years."""
    if before.year == after.year:
        return format_day_short(before, lang), format_day(after, lang)
    return format_day(before, lang), format_day(after, lang)


def format_deadline(value: datetime, zone: ZoneInfo, lang: str = EN) -> str:
    """30 Apr 2026, 17:00 CEST — the cut-off in the reader's time zone (another language:
    "30. Apr. 2026, 17:00 CEST", the locale's way of joining a date and a time)."""
    if lang != EN:
        return _babel_datetime(value, zone, lang)
    local = to_utc(value).astimezone(zone)
    return f"{format_day(local.date())}, {local:%H:%M} {local.tzname()}"


def format_amount(eur: int, lang: str = EN) -> str:
    """An amount in a message: "EUR 4.5 M" in English (as exports and the CLI write it),
    the locale's own form in another language ("4,5 Mio. €", "4,5 mln €")."""
    if lang != EN:
        return _babel_money(eur, lang)
    return format_eur(eur)


# Babel's formatting costs tens of microseconds a call, and a digest round formats the same
# few hundred days, cut-offs and amounts thousands of times: each is kept once per language.
_babel_date = functools.lru_cache(maxsize=4096)(i18n.format_date)
_babel_day_month = functools.lru_cache(maxsize=4096)(i18n.format_day_month)
_babel_money = functools.lru_cache(maxsize=4096)(i18n.format_money)


@functools.lru_cache(maxsize=16_384)
def _babel_datetime(value: datetime, zone: ZoneInfo, lang: str) -> str:
    return i18n.format_datetime(value, lang, zone)


def describe_days(days: int, lang: str = EN) -> str:
    """When a cut-off is, from today: "in 5 days", "tomorrow", "passed 2 days ago"."""
    if days < 0:
        return say("days.passed", lang) if days == -1 else count("days.ago", -days, lang)
    if days == 0:
        return say("days.today", lang)
    if days == 1:
        return say("days.tomorrow", lang)
    return count("days.in", days, lang)


def days_left_text(days: int, lang: str = EN) -> str:
    """How long is left to apply: "78 days left", "last day today"."""
    if days < 0:
        return say("left.passed", lang)
    if days == 0:
        return say("left.today", lang)
    return count("left.days", days, lang)


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


def _matched_phrase(hits: Sequence[tuple[str, list[str]]], lang: str) -> Phrase:
    prefix, _, suffix = say("why.matched", lang, terms="\0").partition("\0")
    parts: list[tuple[str, bool]] = [(prefix, False)]
    for position, (field, words) in enumerate(hits):
        if position:
            parts.append((say("why.and", lang), False))
        before, _, after = say(f"why.term.{field}", lang, words="\0").partition("\0")
        parts.append((before, False))
        for index, word in enumerate(words):
            if index:
                parts.append((say("why.list"), False))
            parts.append((word, True))
        parts.append((after, False))
    parts.append((suffix, False))
    return Phrase(tuple((text, strong) for text, strong in parts if text))


@functools.lru_cache(maxsize=16_384)
def why_matched(reasons: tuple[str, ...], days: int | None,
                lang: str = EN) -> tuple[Phrase, ...]:
    """Why a call matched, in words: "matched *hydrogen* in the title and *electrolyser* in
    the keywords", the programme, then how long is left (from ``days``, counted at render
    time, not the day the match was recorded), all in ``lang``.

    ``reasons`` are what the rules layer records (``tracker.rules.matcher.describe``):
    ``"<field>: <words>"`` hits, the programme, a deadline and budget fact (dropped here:
    the deadline is recounted and the budget has a line of its own), ``eligible: …`` and
    ``audience: …``. A reason in another form is kept as it is. Cached: the matches of a
    profile share their reasons, and a digest round shows them thousands of times (the
    language is part of the key, so a German digest never reuses English phrases).
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
            rest.append(Phrase(((say("why.eligible", lang, places=prefixed.group(2)), False),)))
        elif prefixed:
            rest.append(Phrase(((say("why.audience", lang, audience=prefixed.group(2)), False),)))
        else:
            rest.append(Phrase(((reason, False),)))
    phrases = ([_matched_phrase(hits, lang)] if hits else []) + rest
    if days is not None:
        phrases.append(Phrase(((days_left_text(days, lang), False),)))
    return tuple(phrases)
