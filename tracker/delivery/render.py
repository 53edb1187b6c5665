"""Rendering what to tell a subscriber into every channel's form of it (pure: data and ``now`` in).

Four kinds of message, each returned as one ``tracker.ports.Message``:

- an **alert**: one matching call, new or changed, saying what changed ("deadline 12 Mar
  → 26 Mar 2027", "now open", "budget EUR 10.0 M → 12.0 M", "new documents: …": the notes
  of ``tracker.delivery.changes``);
- a **digest**: one message per recipient and period across all of its profiles, in
  sections new calls, changed, closing soon and opening soon, its subject counting them
  ("3 new, 1 deadline moved, 2 closing soon"); a call matched by several profiles is shown
  once with every profile and reason; an empty period renders nothing (``None``);
- a **summary**: the alerts of a first cycle or a backlog in one message, the calls closing
  first in full and the others by title;
- a **reminder**: a cut-off of a matched call is N days away.

Every item shows the title, what changed, the first sentences of the summary, programme,
identifier, status, type of action, opening date, every cut-off with its days left (in the
subscriber's time zone; deadlines are stored in UTC) and the deadline model, the budget and
its basis, eligibility, why it matched in words and the link. The words made in Python come
from ``tracker.delivery.wording``; the labels are in the templates. Telegram HTML, plain
text and email HTML are rendered from Jinja templates (tracker/delivery/templates/<form>/)
that all read one view of the message (``_View``, with its sections and items), so the
forms say the same. Each form has its own environment, whose escaping applies to every
printed value: ``tg_escape`` for Telegram, HTML autoescape for email, none for plain text.
Scraped text is untrusted: escaped so, clipped to sane lengths, and links other than
http(s) are dropped.

Telegram limits a message to 4096 characters (counted here in UTF-16 code units, as
Telegram counts, and before entity parsing, so the real count is never higher). Long
digests are split at item boundaries; a single item that alone is too long is cut inside
its text, never inside a tag or an entity, and its open tags are closed.

The generic webhook body (``Message.document``) has the schema ``callwatch.message/1``::

    {"schema": "callwatch.message/1", "kind": "alert|digest|summary|reminder",
     "subject": str, "generated_at": "2026-11-25T12:00:00Z", "timezone": "Europe/Madrid",
     "language": "en" (what its texts are written in: the subscriber's language),
     "sections": [{"key": "alert|new|changed|closing|opening|first|others|reminder",
                   "title": str, "items": [ITEM, ...]}],
     "outro": str (a summary's closing line; absent otherwise)}
    ITEM = {"call_id", "title", "programme", "identifier", "status", "url",
            "next_deadline" (ISO UTC or null), "next_deadline_local" (text or null),
            "days_left" (int or null), "budget_eur" (the topic's own: int or null),
            "budget" (text: the topic's figures, then "call total EUR … (shared by N topics)"
            when the source gives only a budget several topics share),
            "summary", "action_type", "opening_date_local", "cutoffs_local": [str],
            "deadline_model", "eligible" (text or null),
            "profiles": [str], "reasons": [str] (as the matcher records them),
            "why" (why it matched, in words),
            "changes": [{"kind", "field", "before", "after", "text", "old", "new"}]}

The Slack and Teams channels (``notifiers/slack.py``, ``notifiers/teams.py``) derive their
bodies from that document, so a stored message can be re-shaped at send time.
"""

from __future__ import annotations

import html
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache, partial
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape

from tracker.dates import days_left as days_left  # re-exported: tracker.web imports it from here
from tracker.dates import isoformat_utc, to_utc
from tracker.dates import zone as zone_named
from tracker.delivery.changes import ChangeNote, clip, counts_text, subject_counts, what_changed
from tracker.delivery.wording import (
    EN,
    Phrase,
    count,
    describe_days,
    format_amount,
    format_day,
    format_deadline,
    join_list,
    say,
    why_matched,
)
from tracker.i18n import install_jinja, language_or_default, translations
from tracker.models import CallRecord, CallStatus, Change
from tracker.ports import Button, Message

__all__ = ["AlertItem", "clip", "describe_change", "describe_days", "format_day",
           "format_deadline", "render_alert", "render_digest", "render_reminder",
           "render_summary"]

TELEGRAM_LIMIT = 4096
SCHEMA = "callwatch.message/1"

#: Clip lengths for untrusted text, in characters.
TITLE_MAX = 300
LINE_MAX = 500
SUBJECT_TITLE_MAX = 120
SUMMARY_MAX = 320
SUMMARY_SENTENCES = 2
#: how many calls a summary lists by title after the ones it shows in full
SUMMARY_LISTED = 40

_STATUS_KEYS = {CallStatus.FORTHCOMING: "status.forthcoming", CallStatus.OPEN: "status.open",
                CallStatus.CLOSED: "status.closed"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'«“])")


@dataclass(frozen=True)
class AlertItem:
    """One matched call and what to say about it.

    ``changes`` empty (or a ``new`` change) means a new matching call; otherwise the typed
    changes of a call the subscriber already matched. ``reasons`` come from the matcher.
    """

    call: CallRecord
    changes: tuple[Change, ...] = ()
    reasons: tuple[str, ...] = ()
    profile: str = ""


@dataclass
class _Item:
    """An item prepared for display: every string plain (not yet escaped)."""

    call_id: str
    title: str
    programme: str
    identifier: str
    status: str
    url: str | None
    deadline: datetime | None
    deadline_text: str | None
    days_left: int | None
    days_text: str
    budget_eur: int | None
    budget: str
    summary: str = ""
    action_type: str = ""
    opening: datetime | None = None
    opening_text: str = ""
    #: every cut-off still ahead (or the last one, when all have passed), "<when> (<days>)"
    cutoffs: list[str] = field(default_factory=list)
    deadline_model: str = ""
    places: str = ""
    profiles: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[ChangeNote] = field(default_factory=list)
    #: a line of its own (a summary's "also matching" list): title, deadline and link only
    compact: bool = False
    #: the language everything about it is said in (the subscriber's)
    lang: str = EN

    @property
    def changes(self) -> list[ChangeNote]:
        """What changed, as the templates show it (each note's ``text``)."""
        return self.notes

    @property
    def why(self) -> tuple[Phrase, ...]:
        """Why it matched, in words, counting the days left from the message's ``now``."""
        return why_matched(tuple(self.reasons), self.days_left, self.lang)

    @property
    def why_text(self) -> str:
        return "; ".join(p.marked for p in self.why)

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "title": self.title, "programme": self.programme or None,
            "identifier": self.identifier, "status": self.status.lower(), "url": self.url,
            "next_deadline": isoformat_utc(self.deadline),
            "next_deadline_local": self.deadline_text, "days_left": self.days_left,
            "budget_eur": self.budget_eur, "budget": self.budget,
            "summary": self.summary or None, "action_type": self.action_type or None,
            "opening_date_local": self.opening_text or None, "cutoffs_local": self.cutoffs,
            "deadline_model": self.deadline_model or None, "eligible": self.places or None,
            "profiles": self.profiles, "reasons": self.reasons,
            "why": "; ".join(p.plain for p in self.why),
            "changes": [n.as_json() for n in self.notes],
        }


@dataclass
class _Section:
    key: str
    title: str
    items: list[_Item]
    #: a line after the items (a summary's "and 12 more")
    note: str = ""


@dataclass(frozen=True)
class _View:
    """One message as every form's templates see it (Telegram, plain text, email), so the
    forms cannot drift apart in what they say; each escapes it in its own way."""

    kind: Literal["alert", "digest", "reminder", "summary"]
    subject: str
    intro: str
    sections: list[_Section]
    #: a closing line (a summary's "from now on, one alert per call")
    outro: str = ""
    #: the language it is written in (the subscriber's)
    lang: str = EN

    @property
    def show_titles(self) -> bool:
        """Section headings are for digests and summaries: an alert or a reminder is one item."""
        return self.kind in ("digest", "summary")


# --- small pure helpers -------------------------------------------------------------------


def safe_url(url: str | None) -> str | None:
    """The link if it is http(s), else None: a scraped ``javascript:`` link is never shown."""
    if url and re.match(r"https?://[^\s<>\"']+$", url, re.IGNORECASE):
        return url
    return None


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def sentence(text: str) -> str:
    """``text`` with a capital first letter: a note ("deadline moved") opening a subject."""
    return text[:1].upper() + text[1:]


def first_sentences(summary: str, limit: int = SUMMARY_MAX) -> str:
    """The first sentences of a call's summary (``SUMMARY_SENTENCES``, as many of them as
    fit in ``limit`` characters; at least one, clipped): enough to decide whether to read on."""
    flat = " ".join(summary.split())
    if not flat:
        return ""
    kept = ""
    for part in _SENTENCE_END.split(flat)[:SUMMARY_SENTENCES]:
        candidate = f"{kept} {part}" if kept else part
        if len(candidate) > limit:
            break
        kept = candidate
    return kept or clip(flat, limit)


def describe_change(change: Change, zone: ZoneInfo, lang: str = EN) -> str:
    """What one typed change says, in plain text ("deadline 12 Mar → 26 Mar 2027"): its
    notes (``tracker.delivery.changes``) joined; empty for a ``new`` event."""
    return "; ".join(note.text for note in what_changed([change], zone, lang))


def _cutoffs(call: CallRecord, now: datetime, zone: ZoneInfo, lang: str) -> list[str]:
    """Every cut-off still ahead with its days; the last one when all have passed."""
    ahead = [d for d in call.deadlines if d >= now] or list(call.deadlines[-1:])
    return [f"{format_deadline(d, zone, lang)} ({describe_days(days_left(d, now, zone), lang)})"
            for d in ahead]


#: the display fields of calls (see ``_prepare``), least recently used dropped
PREPARED = 32_768
_prepared: OrderedDict[tuple[int, datetime, str, datetime | None, str],
                       tuple[CallRecord, dict[str, Any]]] = OrderedDict()


def _prepare(call: CallRecord, now: datetime, zone: ZoneInfo,
             deadline: datetime | None = None, lang: str = EN) -> _Item:
    """``call`` as a display item. A digest round shows the same call object (at the same
    ``now``, in a few zones) in thousands of digests: its fields are worked out once, kept
    under the object's identity and checked to be that very object, so a reused id is
    never taken for it."""
    key = (id(call), now, zone.key, deadline, lang)
    found = _prepared.get(key)
    if found is not None and found[0] is call:
        _prepared.move_to_end(key)
        return _Item(**found[1])
    fields = _display_fields(call, now, zone, deadline, lang)
    _prepared[key] = (call, fields)
    if len(_prepared) > PREPARED:
        _prepared.popitem(last=False)
    return _Item(**fields)


def _display_fields(call: CallRecord, now: datetime, zone: ZoneInfo,
                    deadline: datetime | None, lang: str) -> dict[str, Any]:
    deadline = deadline or call.next_deadline(now)
    days = days_left(deadline, now, zone) if deadline else None
    opening = call.opening_date
    return dict(
        call_id=call.id,
        title=clip(call.title, TITLE_MAX),
        programme=clip(" / ".join(p for p in (call.programme, call.sub_programme) if p), 120),
        identifier=clip(call.topic_identifier or call.call_identifier or call.native_id, 120),
        status=say(_STATUS_KEYS[call.status], lang),
        url=safe_url(call.url),
        deadline=deadline,
        deadline_text=format_deadline(deadline, zone, lang) if deadline else None,
        days_left=days,
        days_text=describe_days(days, lang) if days is not None else "",
        budget_eur=call.budget_eur,
        budget=budget_line(call, lang),
        summary=first_sentences(call.summary),
        action_type=clip(call.action_type or "", 80),
        opening=opening,
        opening_text=format_day(to_utc(opening).astimezone(zone).date(), lang) if opening else "",
        cutoffs=_cutoffs(call, now, zone, lang),
        deadline_model=clip(call.deadline_model or "", 60),
        places=clip(join_list([*call.countries, *call.regions]), LINE_MAX),
        lang=lang,
    )


def budget_line(call: CallRecord, lang: str = EN) -> str:
    """The budget with its basis: the topic's own figures, then the call total it shares,
    named as such, so a Joint Undertaking's call total is never read as the topic's."""
    parts = []
    if call.budget_eur is not None:
        parts.append(say("budget.topic", lang, amount=format_amount(call.budget_eur, lang)))
    if call.budget_max_eur is not None:
        parts.append(say("budget.max_grant", lang, amount=format_amount(call.budget_max_eur, lang)))
    elif call.budget_min_eur is not None:
        parts.append(say("budget.min_grant", lang, amount=format_amount(call.budget_min_eur, lang)))
    if call.expected_grants:
        parts.append(count("budget.grants", call.expected_grants, lang))
    if call.call_budget_eur is not None:
        total = say("budget.call_total", lang,
                    amount=format_amount(call.call_budget_eur, lang))
        if call.call_budget_topics:
            total += f" ({count('budget.shared', call.call_budget_topics, lang)})"
        parts.append(total)
    return join_list(parts)


def _merge(items: Iterable[AlertItem], now: datetime, zone: ZoneInfo,
           seen: set[str], lang: str = EN) -> list[_Item]:
    """One display item per call: profiles, reasons and changes of duplicates merged."""
    merged: dict[str, _Item] = {}
    for item in items:
        call_id = item.call.id
        if call_id in seen and call_id not in merged:
            continue  # already shown in an earlier group of the same digest
        view = merged.get(call_id)
        if view is None:
            view = merged[call_id] = _prepare(item.call, now, zone, None, lang)
        if item.profile and item.profile not in view.profiles:
            view.profiles.append(item.profile)
        for reason in item.reasons:
            reason = clip(reason, 200)
            if reason not in view.reasons:
                view.reasons.append(reason)
        known = {note.text for note in view.notes}
        for note in what_changed(item.changes, zone, lang):
            if note.text not in known:
                view.notes.append(note)
                known.add(note.text)
    seen.update(merged)
    return list(merged.values())


# --- Telegram HTML ------------------------------------------------------------------------


def tg_escape(text: str) -> str:
    """Escape untrusted text for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


_TOKEN = re.compile(r"<(/?)([a-z]+)[^>]*>|&#?\w+;|[^<&]+|[<&]", re.IGNORECASE)


def truncate_html(markup: str, limit: int, ellipsis: str = "…") -> str:
    """Cut Telegram HTML to at most ``limit`` UTF-16 units without breaking a tag or entity.

    Text is cut at a character boundary, entities are kept whole or dropped, and tags that
    are still open at the cut are closed, so the result always parses.
    """
    if utf16_len(markup) <= limit:
        return markup
    out: list[str] = []
    open_tags: list[str] = []
    used = 0

    def closing() -> int:
        return sum(len(t) + 3 for t in open_tags) + utf16_len(ellipsis)

    for match in _TOKEN.finditer(markup):
        token = match.group(0)
        if match.group(2):  # a tag
            name = match.group(2).lower()
            if match.group(1):
                if used + len(token) + closing() - len(name) - 3 > limit:
                    break
                out.append(token)
                used += len(token)
                if open_tags and open_tags[-1] == name:
                    open_tags.pop()
            else:
                if used + len(token) + closing() + len(name) + 3 > limit:
                    break
                out.append(token)
                used += len(token)
                open_tags.append(name)
            continue
        size = utf16_len(token)
        if used + size + closing() <= limit:
            out.append(token)
            used += size
            continue
        if not token.startswith("&"):  # plain text: keep what fits
            room = limit - used - closing()
            kept = ""
            for char in token:
                width = utf16_len(char)
                if width > room:
                    break
                kept += char
                room -= width
            out.append(kept)
        break
    out.append(ellipsis)
    out.extend(f"</{name}>" for name in reversed(open_tags))
    return "".join(out)


def split_telegram(header: str, blocks: Sequence[str], limit: int = TELEGRAM_LIMIT,
                   continued: str = "<i>(continued)</i>") -> tuple[str, ...]:
    """Join ``blocks`` under ``header`` into parts of at most ``limit``, at block boundaries."""
    parts: list[str] = []
    current = header
    for block in blocks:
        candidate = f"{current}\n\n{block}" if current else block
        if utf16_len(candidate) <= limit:
            current = candidate
            continue
        if current and current not in (header, continued):
            parts.append(current)
            current = continued
        candidate = f"{current}\n\n{block}" if current else block
        if utf16_len(candidate) > limit:
            room = limit - (utf16_len(current) + 2 if current else 0)
            block = truncate_html(block, room)
            candidate = f"{current}\n\n{block}" if current else block
        current = candidate
    if current and (current not in (header, continued) or not parts):
        parts.append(current)
    return tuple(parts)


# --- the forms: one Jinja environment each, its escaping built in --------------------------

#: The forms rendered from templates; each has its folder under tracker/delivery/templates/, with an
#: item template and a message template (telegram/message.j2: the header and headings).
Form = Literal["telegram", "text", "email"]


def _telegram_finalize(value: Any) -> Markup:
    """What every ``{{ }}`` of a Telegram template prints: a plain value escaped by
    ``tg_escape`` (``<``, ``>``, ``&``; quotes stay as Telegram shows them), markup
    (``|safe``, ``|quoted``, a macro's output) as it is. Jinja's own autoescape then sees
    Markup and leaves it alone. Escaping is thus the environment's, not each template's: a
    field added to a template is escaped without anyone remembering a filter."""
    if isinstance(value, Markup):
        return value
    return Markup(tg_escape(str(value)))  # noqa: S704 - escaped here, by tg_escape


def _quoted(value: str) -> Markup:
    """An attribute value in Telegram HTML: quotes escaped too (``safe_url`` already keeps
    them out of links; this keeps a template safe without relying on that)."""
    return Markup(html.escape(value, quote=True))  # noqa: S704 - escaped here, quotes too


@cache
def _environment(form: Form, lang: str = EN) -> jinja2.Environment:
    """The Jinja environment of one form in one language. It loads only its own folder
    (tracker/delivery/templates/<form>/), so a template is always rendered with its form's escaping:
    Telegram HTML by ``tg_escape`` (in ``finalize``), email HTML by Jinja's HTML autoescape,
    plain text by nothing. Made once a process per language, whose catalog
    ``tracker.i18n.install_jinja`` installs (``_()``, ``{% trans %}``); its templates are
    compiled once."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tracker.delivery", f"templates/{form}"),
        autoescape=form != "text",  # noqa: S701 - plain text is not markup: nothing to escape
        finalize=_telegram_finalize if form == "telegram" else None,
        undefined=jinja2.StrictUndefined,
        trim_blocks=form == "email",
        lstrip_blocks=form == "email",
        auto_reload=False,  # packaged files: no stat of the template for each of 140,000 items
    )
    if form == "telegram":
        env.filters["quoted"] = _quoted
    return install_jinja(env, lang)


@cache
def _macro(form: Form, name: str, macro: str = "render", lang: str = EN) -> Callable[..., str]:
    """A macro of the template ``name`` of ``form``, called from Python.

    Every template is a macro (``render``; telegram/message.j2 has ``header`` and
    ``heading``, the pieces that ``split_telegram`` places): a call costs a few
    microseconds, where ``Template.render`` builds a new context each time and costs several
    times that, for each of 140,000 items and messages of a round. What a macro returns is
    ``Markup`` in an autoescaping form; ``_message`` and ``_forms`` keep plain ``str``.
    """
    found: Callable[..., str] = getattr(_environment(form, lang).get_template(name).module, macro)
    return found


# --- each item's shell, made once ---------------------------------------------------------

#: distinct item shells (``_shell``), and reasons' and profiles' forms, kept (least
#: recently used dropped). A digest round for
#: 112,000 subscribers renders some 30,000 distinct digests; the items of the 700 cluster
#: profiles (about 12,000, one time zone each) recur in most of them, among some 100,000
#: that appear once (an SME's own profile). The email HTML of an item was most of the cost
#: of a digest. About 3 KB an entry.
ITEM_FORMS = 32_768


class _ItemForms(NamedTuple):
    """One item in every form, as that form's item template renders it."""

    telegram: str
    text: str
    email: str


def _forms(item: _Item) -> _ItemForms:
    """The item's Telegram HTML, plain text and email HTML: its shell (``_shell``, rendered
    once per call, zone and language) with why it matched and its profiles put in. Not
    kept itself: putting them in costs a few replaces, and keeping every item's forms
    besides the shells cost 107 MiB at the peak of a 112,000-subscriber round for no
    measurable time (BENCHMARKS.md, issue 15)."""
    why = item.why
    shell = _shell(item, bool(why), bool(item.profiles))
    whys, profiles = _why_forms(why), _profile_forms(tuple(item.profiles))
    return _ItemForms(*(
        form.replace(_WHY_MARK, why_form, 1).replace(_PROFILES_MARK, profiles_form, 1)
        for form, why_form, profiles_form in zip(shell, whys, profiles, strict=True)))


#: Stand-ins for why an item matched and its profiles while its template is rendered: an
#: SME's own profile makes each of its items distinct in those two lines alone (some
#: 100,000 items of a round for 112,000 subscribers), while the rest of an item depends on
#: its call, zone and language. The rest is rendered once per call and the two lines are
#: put in its place. Random per process, so no scraped text can contain them.
_WHY_MARK = f"\x00why-{secrets.token_hex(8)}\x00"
_PROFILES_MARK = f"\x00profiles-{secrets.token_hex(8)}\x00"
_MARKED_WHY = (Phrase(((_WHY_MARK, False),)),)

#: an item's forms with the stand-ins, by everything but its reasons and profiles
_item_shells: OrderedDict[tuple[Any, ...], _ItemForms] = OrderedDict()


class _Marked:
    """An item as its templates see it with the stand-ins for why and profiles."""

    def __init__(self, item: _Item, why: bool, profiles: bool) -> None:
        self._item = item
        self.why = _MARKED_WHY if why else ()
        self.why_text = _WHY_MARK if why else ""
        self.profiles = [_PROFILES_MARK] if profiles else []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._item, name)


def _shell(item: _Item, why: bool, profiles: bool) -> _ItemForms:
    """The item's forms with the stand-ins in place of why it matched and its profiles."""
    key = (item.call_id, item.title, item.programme, item.identifier, item.status, item.url,
           item.deadline_text, item.days_text, item.budget, tuple(n.text for n in item.notes),
           item.summary, item.action_type, item.opening_text, tuple(item.cutoffs),
           item.deadline_model, item.places, item.compact, item.lang, why, profiles)
    found = _item_shells.get(key)
    if found is not None:
        _item_shells.move_to_end(key)
        return found
    lang, marked = item.lang, _Marked(item, why, profiles)
    found = _item_shells[key] = _ItemForms(
        telegram=str(_macro("telegram", "item.j2", "render", lang)(marked)),
        text=str(_macro("text", "item.j2", "render", lang)(marked)),
        email=str(_macro("email", "item.html", "render", lang)(marked)))
    if len(_item_shells) > ITEM_FORMS:
        _item_shells.popitem(last=False)
    return found


@lru_cache(maxsize=ITEM_FORMS)
def _why_forms(why: tuple[Phrase, ...]) -> _ItemForms:
    """Why an item matched as each item template writes it: phrases joined by "; ", the
    matched words in ``<i>`` (Telegram, escaped by ``tg_escape``), between asterisks (text)
    and in ``<em>`` (email, escaped as Jinja's autoescape does)."""
    return _ItemForms(
        telegram="; ".join("".join(f"<i>{tg_escape(t)}</i>" if strong else tg_escape(t)
                                   for t, strong in p.parts) for p in why),
        text="; ".join(p.marked for p in why),
        email="; ".join("".join(f"<em>{escape(t)}</em>" if strong else str(escape(t))
                                for t, strong in p.parts) for p in why))


@lru_cache(maxsize=ITEM_FORMS)
def _profile_forms(profiles: tuple[str, ...]) -> _ItemForms:
    """An item's profiles as each item template writes them (``|join(", ")``, escaped)."""
    joined = ", ".join(profiles)
    return _ItemForms(telegram=tg_escape(joined), text=joined, email=str(escape(joined)))


# --- assembling one message ---------------------------------------------------------------


def _message(view: _View, now: datetime, zone: ZoneInfo,
             buttons: tuple[Button, ...] = ()) -> Message:
    """Every form of ``view``: each form's message template places that form's items."""
    forms = [[_forms(item) for item in section.items] for section in view.sections]

    def placed(form: Form) -> list[tuple[_Section, list[str]]]:
        """Each section with its items rendered in ``form``."""
        return [(section, [getattr(item, form) for item in items])
                for section, items in zip(view.sections, forms, strict=True)]

    lang = view.lang
    frame = partial(_macro, "telegram", "message.j2", lang=lang)
    blocks: list[str] = []
    for section, items in placed("telegram"):
        if view.show_titles and items:  # the heading stays with the section's first item
            items[0] = f"{frame('heading')(section)}\n\n{items[0]}"
        blocks += items
        if section.note:
            blocks.append(str(frame("note")(section)))
    if view.outro:
        blocks.append(str(frame("outro")(view)))
    document = {
        "schema": SCHEMA, "kind": view.kind, "subject": view.subject,
        "generated_at": isoformat_utc(now), "timezone": zone.key, "language": lang,
        "sections": [{"key": s.key, "title": s.title, "items": [i.as_json() for i in s.items]}
                     for s in view.sections],
    }
    if view.outro:
        document["outro"] = view.outro
    return Message(
        kind="digest" if view.kind == "summary" else view.kind, subject=view.subject,
        # one newline at the end, whatever the last item ends with
        text=_macro("text", "message.j2", "render", lang)(view, placed("text")).rstrip() + "\n",
        html=str(_macro("email", "message.html", "render", lang)(view, placed("email"))),
        telegram=split_telegram(str(frame("header")(view)), blocks,
                                continued=f"<i>{tg_escape(say('telegram.continued', lang))}</i>"),
        document=document, buttons=buttons, date=to_utc(now), language=lang,
    )


def _zone(timezone: str | ZoneInfo) -> ZoneInfo:
    return timezone if isinstance(timezone, ZoneInfo) else zone_named(timezone)


def _alert_buttons(item: AlertItem, lang: str) -> tuple[Button, ...]:
    """Dismiss and switch-to-digest buttons, left out when callback data would pass 64 bytes."""
    wanted = [(say("button.dismiss", lang), f"dismiss:{item.call.id}")]
    if item.profile:
        wanted.append((say("button.daily", lang), f"mode:{item.profile}:daily"))
    return tuple(Button(label=label, data=data) for label, data in wanted
                 if len(data.encode()) <= 64)


def _language(language: str) -> str:
    """The language a message is written in: the subscriber's, English when unsupported."""
    return language_or_default(language)


def render_alert(item: AlertItem, *, now: datetime, timezone: str | ZoneInfo = "UTC",
                 language: str = EN) -> Message:
    """An instant alert: a new matching call, or what changed about a matched call
    ("Deadline 12 Mar → 26 Mar 2027 — <title>"), in the subscriber's ``language``."""
    zone, lang = _zone(timezone), _language(language)
    [view] = _merge([item], now, zone, set(), lang)
    what = (sentence(" · ".join(n.text for n in view.notes)) if view.notes
            else say("alert.new", lang))
    subject = say("alert.subject", lang, what=clip(what, 80),
                  title=clip(view.title, SUBJECT_TITLE_MAX))
    intro = clip(what, 200)
    section = _Section("alert", intro, [view])
    return _message(_View("alert", subject, intro, [section], lang=lang), now, zone,
                    _alert_buttons(item, lang))


def _by_deadline(items: list[_Item], now: datetime) -> list[_Item]:
    return sorted(items, key=lambda i: (i.deadline is None, i.deadline or now, i.call_id))


def render_digest(
    *,
    new: Sequence[AlertItem] = (),
    changed: Sequence[AlertItem] = (),
    closing: Sequence[AlertItem] = (),
    opening: Sequence[AlertItem] = (),
    period: Literal["daily", "weekly"] = "daily",
    now: datetime,
    timezone: str | ZoneInfo = "UTC",
    language: str = EN,
) -> Message | None:
    """One digest for one recipient across all of its profiles; None when there is nothing.

    Sections: new calls (first-time matches), changed (each with what changed), closing
    soon (ordered by the next deadline) and opening soon (by opening date). A call is shown
    once, in the first section it appears in; a "changed" call whose events say nothing
    but that it is new is a new call. The subject counts them: "3 new, 1 deadline moved,
    2 closing soon". Written in the subscriber's ``language``.
    """
    zone, lang = _zone(timezone), _language(language)
    seen: set[str] = set()
    fresh = _merge(new, now, zone, seen, lang)
    moved = _merge(changed, now, zone, seen, lang)
    fresh += [i for i in moved if not i.notes]
    moved = [i for i in moved if i.notes]
    groups = [
        _Section("new", say("section.new", lang), fresh),
        _Section("changed", say("section.changed", lang), moved),
        _Section("closing", say("section.closing", lang), _by_deadline(
            _merge(closing, now, zone, seen, lang), now)),
        _Section("opening", say("section.opening", lang), sorted(
            _merge(opening, now, zone, seen, lang),
            key=lambda i: (i.opening is None, i.opening or now, i.call_id))),
    ]
    sections = [s for s in groups if s.items]
    if not sections:
        return None
    counted = {"count.new": len(fresh)} if fresh else {}
    counted |= subject_counts(i.notes[0].counted_as for i in moved)
    counted |= {f"count.{s.key}": len(s.items) for s in sections if s.key in ("closing", "opening")}
    counts = counts_text(counted, lang)
    today = format_day(to_utc(now).astimezone(zone).date(), lang)
    intro = say(f"digest.intro.{period}", lang, day=today, counts=counts)
    subject = say(f"digest.subject.{period}", lang, counts=counts)
    return _message(_View("digest", subject, intro, sections, lang=lang), now, zone)


def render_summary(items: Sequence[AlertItem], *, shown: int, now: datetime,
                   timezone: str | ZoneInfo = "UTC", language: str = EN) -> Message:
    """One message in place of many alerts (a subscription's first cycle, or a backlog):
    "12 calls match hydrogen-valley; here are the 5 closing first", those in full, then
    every other one on a line of its own (title, deadline, link), up to ``SUMMARY_LISTED``,
    and how many more there are. Written in the subscriber's ``language``."""
    zone, lang = _zone(timezone), _language(language)
    merged = _by_deadline(_merge(items, now, zone, set(), lang), now)
    per_profile: dict[str, int] = {}
    for item in merged:
        for profile in item.profiles:
            per_profile[profile] = per_profile.get(profile, 0) + 1
    first, others = merged[:shown], merged[shown:]
    for item in others:
        item.compact = True
    matches = [count("summary.calls" if position == 0 else "summary.profile", n, lang,
                     profile=profile)
               for position, (profile, n) in enumerate(per_profile.items())]
    head = join_list(matches)
    shown_text = count("summary.shown", len(first), lang)
    subject = say("summary.head", lang, head=head, rest=shown_text) if others else head
    intro = say("summary.head", lang, head=head,
                rest=shown_text if others else say("summary.all", lang))
    sections = [_Section("first", say("section.first", lang), first)]
    if others:
        listed = others[:SUMMARY_LISTED]
        more = (count("summary.more", len(others) - len(listed), lang)
                if len(others) > len(listed) else "")
        sections.append(_Section("others", say("section.others", lang), listed, more))
    return _message(_View("summary", subject, intro, sections, say("summary.outro", lang),
                          lang=lang), now, zone)


def render_reminder(item: AlertItem, deadline: datetime, *, now: datetime,
                    timezone: str | ZoneInfo = "UTC", language: str = EN) -> Message:
    """A reminder that the cut-off ``deadline`` of a matched call is close, in the
    subscriber's ``language``."""
    zone, lang = _zone(timezone), _language(language)
    [view] = _merge([item], now, zone, set(), lang)
    specific = _prepare(item.call, now, zone, deadline, lang)
    view.deadline, view.deadline_text = specific.deadline, specific.deadline_text
    view.days_left, view.days_text = specific.days_left, specific.days_text
    days = view.days_left or 0
    label = (say("reminder.today", lang) if days == 0
             else say("reminder.tomorrow", lang) if days == 1
             else count("reminder.days", days, lang))
    subject = say("alert.subject", lang, what=label, title=clip(view.title, SUBJECT_TITLE_MAX))
    section = _Section("reminder", label, [view])
    return _message(_View("reminder", subject, label, [section], lang=lang), now, zone,
                    _alert_buttons(item, lang)[:1])


# --- the lines of one document item, for the channels that re-shape the document -------


def document_item_lines(item: dict[str, Any], lang: str = EN) -> list[str]:
    """One item of the generic document as plain lines after its title: its changes, its
    facts, deadline, budget and why it matched (the Slack and Teams bodies, ``notifiers/``),
    labelled in ``lang`` (the document's ``language``), as the templates label them."""
    lang = _language(lang)
    _ = translations(lang).gettext
    lines = [f"• {c['text']}" for c in item.get("changes", [])]
    if item.get("summary"):
        lines.append(str(item["summary"]))
    facts = " · ".join(str(f) for f in (item.get("programme"), item.get("identifier"),
                                        str(item.get("status", "")).capitalize(),
                                        item.get("action_type")) if f)
    lines.append(facts)
    if item.get("next_deadline_local"):
        days = item.get("days_left")
        lines.append(f"{_('Deadline')}: {item['next_deadline_local']}"
                     + (f" ({describe_days(days, lang)})" if days is not None else ""))
    if item.get("budget"):
        lines.append(f"{_('Budget')}: {item['budget']}")
    if item.get("eligible"):
        lines.append(f"{_('Eligible')}: {item['eligible']}")
    why = item.get("why") or "; ".join(item.get("reasons", []))
    if why:
        lines.append(f"{_('Why')}: {why}")
    return lines
