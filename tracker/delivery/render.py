"""Rendering what to tell a subscriber into every channel's form of it (pure: data and ``now`` in).

Three kinds of message, each returned as one ``tracker.ports.Message``:

- an **alert**: one matching call, new or changed ("Deadline moved: 16 Apr 2026 → 30 Apr
  2026", "Now open for submission", "Budget changed: EUR 3.0 M → 4.5 M", "New update from
  the portal: …");
- a **digest**: one message per recipient and period across all of its profiles, grouped
  into new calls, changed calls and closing soon; a call matched by several profiles is
  shown once with every profile and reason; an empty period renders nothing (``None``);
- a **reminder**: a cut-off of a matched call is N days away.

Every item shows the title, programme, identifier, status, next deadline with days left
(in the subscriber's time zone; deadlines are stored in UTC), budget, why it matched and
the link. Telegram HTML, plain text and email HTML are rendered from Jinja templates
(tracker/delivery/templates/<form>/) that all read one view of the message (``_View``, with its
sections and items), so the forms say the same. Each form has its own environment, whose
escaping applies to every printed value: ``tg_escape`` for Telegram, HTML autoescape for
email, none for plain text. Scraped text is untrusted: escaped so, clipped to sane lengths,
and links other than http(s) are dropped.

Telegram limits a message to 4096 characters (counted here in UTF-16 code units, as
Telegram counts, and before entity parsing, so the real count is never higher). Long
digests are split at item boundaries; a single item that alone is too long is cut inside
its text, never inside a tag or an entity, and its open tags are closed.

The generic webhook body (``Message.document``) has the schema ``callwatch.message/1``::

    {"schema": "callwatch.message/1", "kind": "alert|digest|reminder",
     "subject": str, "generated_at": "2026-11-25T12:00:00Z", "timezone": "Europe/Madrid",
     "sections": [{"key": "alert|new|changed|closing|reminder", "title": str,
                   "items": [ITEM, ...]}]}
    ITEM = {"call_id", "title", "programme", "identifier", "status", "url",
            "next_deadline" (ISO UTC or null), "next_deadline_local" (text or null),
            "days_left" (int or null), "budget_eur" (the topic's own: int or null),
            "budget" (text: the topic's figures, then "call total EUR … (shared by N topics)"
            when the source gives only a budget several topics share),
            "profiles": [str], "reasons": [str],
            "changes": [{"kind", "field", "old", "new", "text"}]}

The Slack and Teams channels (``notifiers/slack.py``, ``notifiers/teams.py``) derive their
bodies from that document, so a stored message can be re-shaped at send time.
"""

from __future__ import annotations

import html
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from tracker.dates import isoformat_utc, to_utc
from tracker.exports.rows import call_total_text
from tracker.models import CallRecord, CallStatus, Change, ChangeKind
from tracker.money import format_eur
from tracker.ports import Button, Message

TELEGRAM_LIMIT = 4096
SCHEMA = "callwatch.message/1"

#: Clip lengths for untrusted text, in characters.
TITLE_MAX = 300
LINE_MAX = 500
SUBJECT_TITLE_MAX = 120

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STATUS = {CallStatus.FORTHCOMING: "Forthcoming", CallStatus.OPEN: "Open",
           CallStatus.CLOSED: "Closed"}
_DETAIL_LABELS = {
    "opening_date": "Opening date", "deadline_model": "Deadline model",
    "call_identifier": "Call identifier", "topic_identifier": "Topic identifier",
    "url": "Link", "action_type": "Type of action",
}


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
    profiles: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "title": self.title, "programme": self.programme or None,
            "identifier": self.identifier, "status": self.status.lower(), "url": self.url,
            "next_deadline": isoformat_utc(self.deadline),
            "next_deadline_local": self.deadline_text, "days_left": self.days_left,
            "budget_eur": self.budget_eur, "budget": self.budget,
            "profiles": self.profiles, "reasons": self.reasons, "changes": self.changes,
        }


@dataclass
class _Section:
    key: str
    title: str
    items: list[_Item]


@dataclass(frozen=True)
class _View:
    """One message as every form's templates see it (Telegram, plain text, email), so the
    forms cannot drift apart in what they say; each escapes it in its own way."""

    kind: Literal["alert", "digest", "reminder"]
    subject: str
    intro: str
    sections: list[_Section]

    @property
    def show_titles(self) -> bool:
        """Section headings are for digests: an alert or a reminder is one item."""
        return self.kind == "digest"


# --- small pure helpers -------------------------------------------------------------------


def clip(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, with an ellipsis when cut."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def format_day(value: date) -> str:
    """16 Apr 2026 (English month names, independent of the process locale)."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def format_deadline(value: datetime, zone: ZoneInfo) -> str:
    """30 Apr 2026, 17:00 CEST — the cut-off in the reader's time zone."""
    local = to_utc(value).astimezone(zone)
    return f"{format_day(local.date())}, {local:%H:%M} {local.tzname()}"


def days_left(deadline: datetime, now: datetime, zone: ZoneInfo) -> int:
    """Calendar days from today to the deadline's day, both in the reader's time zone."""
    return (to_utc(deadline).astimezone(zone).date() - to_utc(now).astimezone(zone).date()).days


def describe_days(days: int) -> str:
    if days < 0:
        return "passed" if days == -1 else f"passed {-days} days ago"
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    return f"in {days} days"


def safe_url(url: str | None) -> str | None:
    """The link if it is http(s), else None: a scraped ``javascript:`` link is never shown."""
    if url and re.match(r"https?://[^\s<>\"']+$", url, re.IGNORECASE):
        return url
    return None


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _parse_dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _dates_text(values: Any, zone: ZoneInfo, with_time: bool) -> str:
    items = values if isinstance(values, list | tuple) else [values]
    out = []
    for raw in items:
        parsed = _parse_dt(raw)
        if parsed is None or parsed.tzinfo is None:
            out.append(clip(str(raw), 40))
        elif with_time:
            out.append(format_deadline(parsed, zone))
        else:
            out.append(format_day(to_utc(parsed).astimezone(zone).date()))
    return ", ".join(out) if out else "none"


def _eur_pair(old: int | None, new: int | None) -> str:
    before = format_eur(old) or "unknown"
    after = format_eur(new) or "unknown"
    if before.startswith("EUR ") and after.startswith("EUR "):
        after = after[4:]
    return f"{before} → {after}"


def _budget_text(old: Any, new: Any) -> str:
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "Budget changed"
    if old.get("total") != new.get("total"):
        return f"Budget changed: {_eur_pair(old.get('total'), new.get('total'))}"
    if old.get("max_grant") != new.get("max_grant"):
        return f"Grant size changed: up to {_eur_pair(old.get('max_grant'), new.get('max_grant'))}"
    if old.get("min_grant") != new.get("min_grant"):
        return f"Grant size changed: from {_eur_pair(old.get('min_grant'), new.get('min_grant'))}"
    if old.get("expected_grants") != new.get("expected_grants"):
        return (f"Expected grants changed: {old.get('expected_grants') or 'unknown'}"
                f" → {new.get('expected_grants') or 'unknown'}")
    if old.get("call_total") != new.get("call_total"):
        return f"Call total changed: {_eur_pair(old.get('call_total'), new.get('call_total'))}"
    return "Budget changed"


def headline(change: Change) -> str:
    """The short label of a change, for subjects: "Deadline moved", "Now open"."""
    return {
        ChangeKind.NEW: "New matching call",
        ChangeKind.OPENED: "Now open",
        ChangeKind.CLOSED: "Closed",
        ChangeKind.REOPENED: "Reopened",
        ChangeKind.STATUS_CHANGED: "Status changed",
        ChangeKind.DEADLINE_CHANGED: "Deadline moved",
        ChangeKind.BUDGET_CHANGED: "Budget changed",
        ChangeKind.TITLE_CHANGED: "Title changed",
        ChangeKind.DOCUMENTS_CHANGED: "Portal update",
        ChangeKind.REMOVED_FROM_SOURCE: "No longer listed",
        ChangeKind.DETAILS_CHANGED: "Details changed",
    }[change.kind]


def describe_change(change: Change, zone: ZoneInfo) -> str:
    """One line saying what changed, in plain text (escape it before putting it in HTML)."""
    kind = change.kind
    if kind is ChangeKind.NEW:
        return "New matching call"
    if kind is ChangeKind.OPENED:
        return "Now open for submission"
    if kind is ChangeKind.CLOSED:
        return "Closed for submission"
    if kind is ChangeKind.REOPENED:
        return "Reopened for submission"
    if kind is ChangeKind.STATUS_CHANGED:
        return f"Status changed: {clip(str(change.old), 30)} → {clip(str(change.new), 30)}"
    if kind is ChangeKind.DEADLINE_CHANGED:
        before = _dates_text(change.old or [], zone, with_time=False)
        after = _dates_text(change.new or [], zone, with_time=False)
        if before == after:  # same days, the hour moved
            before = _dates_text(change.old or [], zone, with_time=True)
            after = _dates_text(change.new or [], zone, with_time=True)
        return f"Deadline moved: {before} → {after}"
    if kind is ChangeKind.BUDGET_CHANGED:
        return _budget_text(change.old, change.new)
    if kind is ChangeKind.TITLE_CHANGED:
        return f"Title changed (was: {clip(str(change.old), TITLE_MAX)})"
    if kind is ChangeKind.DOCUMENTS_CHANGED:
        return f"New update from the portal: {clip(str(change.new), LINE_MAX)}"
    if kind is ChangeKind.REMOVED_FROM_SOURCE:
        return "No longer listed by the source"
    label = _DETAIL_LABELS.get(change.field or "", "Details")
    if change.field == "url":
        return "Link changed"
    if change.field == "opening_date":
        old = _dates_text(change.old, zone, with_time=False) if change.old else "none"
        new = _dates_text(change.new, zone, with_time=False) if change.new else "none"
        return f"Opening date changed: {old} → {new}"
    return f"{label} changed: {clip(str(change.old or 'none'), 80)} → {clip(str(change.new or 'none'), 80)}"


def _prepare(call: CallRecord, now: datetime, zone: ZoneInfo,
             deadline: datetime | None = None) -> _Item:
    deadline = deadline or call.next_deadline(now)
    days = days_left(deadline, now, zone) if deadline else None
    return _Item(
        call_id=call.id,
        title=clip(call.title, TITLE_MAX),
        programme=clip(" / ".join(p for p in (call.programme, call.sub_programme) if p), 120),
        identifier=clip(call.topic_identifier or call.call_identifier or call.native_id, 120),
        status=_STATUS[call.status],
        url=safe_url(call.url),
        deadline=deadline,
        deadline_text=format_deadline(deadline, zone) if deadline else None,
        days_left=days,
        days_text=describe_days(days) if days is not None else "",
        budget_eur=call.budget_eur,
        budget=_budget_line(call),
    )


def _budget_line(call: CallRecord) -> str:
    """The topic's own budget, then the call total it shares, named as such: a Joint
    Undertaking's call total is never shown as if it were the topic's."""
    parts = []
    if call.budget_eur is not None:
        parts.append(format_eur(call.budget_eur))
    if call.budget_max_eur is not None:
        parts.append(f"up to {format_eur(call.budget_max_eur)} per grant")
    if call.expected_grants:
        parts.append(f"{call.expected_grants} grants expected")
    if call.call_budget_eur is not None:
        parts.append(call_total_text(call))
    return ", ".join(parts)


def _merge(items: Iterable[AlertItem], now: datetime, zone: ZoneInfo,
           seen: set[str]) -> list[_Item]:
    """One display item per call: profiles, reasons and changes of duplicates merged."""
    merged: dict[str, _Item] = {}
    for item in items:
        call_id = item.call.id
        if call_id in seen and call_id not in merged:
            continue  # already shown in an earlier group of the same digest
        view = merged.get(call_id)
        if view is None:
            view = merged[call_id] = _prepare(item.call, now, zone)
        if item.profile and item.profile not in view.profiles:
            view.profiles.append(item.profile)
        for reason in item.reasons:
            reason = clip(reason, 200)
            if reason not in view.reasons:
                view.reasons.append(reason)
        known = {(c["kind"], c["text"]) for c in view.changes}
        for change in item.changes:
            text = describe_change(change, zone)
            if change.kind is not ChangeKind.NEW and (change.kind.value, text) not in known:
                view.changes.append({"kind": change.kind.value, "field": change.field,
                                     "old": change.old, "new": change.new, "text": text})
                known.add((change.kind.value, text))
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
def _environment(form: Form) -> jinja2.Environment:
    """The Jinja environment of one form. It loads only its own folder
    (tracker/delivery/templates/<form>/), so a template is always rendered with its form's escaping:
    Telegram HTML by ``tg_escape`` (in ``finalize``), email HTML by Jinja's HTML autoescape,
    plain text by nothing. Made once a process; its templates are compiled once."""
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
    return env


@cache
def _macro(form: Form, name: str, macro: str = "render") -> Callable[..., str]:
    """A macro of the template ``name`` of ``form``, called from Python.

    Every template is a macro (``render``; telegram/message.j2 has ``header`` and
    ``heading``, the pieces that ``split_telegram`` places): a call costs a few
    microseconds, where ``Template.render`` builds a new context each time and costs several
    times that, for each of 140,000 items and messages of a round. What a macro returns is
    ``Markup`` in an autoescaping form; ``_message`` and ``_forms`` keep plain ``str``.
    """
    found: Callable[..., str] = getattr(_environment(form).get_template(name).module, macro)
    return found


# --- each item's forms, made once ---------------------------------------------------------

#: distinct items whose forms are kept (least recently used dropped). A digest round for
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


_item_forms: OrderedDict[tuple[Any, ...], _ItemForms] = OrderedDict()


def _forms(item: _Item) -> _ItemForms:
    """The item's Telegram HTML, plain text and email HTML. Each is a function of the fields
    in the key alone, so an item shown in many messages is rendered once."""
    key = (item.call_id, item.title, item.programme, item.identifier, item.status, item.url,
           item.deadline_text, item.days_text, item.budget, tuple(item.profiles),
           tuple(item.reasons), tuple(c["text"] for c in item.changes))
    found = _item_forms.get(key)
    if found is not None:
        _item_forms.move_to_end(key)
        return found
    found = _item_forms[key] = _ItemForms(telegram=str(_macro("telegram", "item.j2")(item)),
                                          text=str(_macro("text", "item.j2")(item)),
                                          email=str(_macro("email", "item.html")(item)))
    if len(_item_forms) > ITEM_FORMS:
        _item_forms.popitem(last=False)
    return found


# --- assembling one message ---------------------------------------------------------------


def _message(view: _View, now: datetime, zone: ZoneInfo,
             buttons: tuple[Button, ...] = ()) -> Message:
    """Every form of ``view``: each form's message template places that form's items."""
    forms = [[_forms(item) for item in section.items] for section in view.sections]

    def placed(form: Form) -> list[tuple[_Section, list[str]]]:
        """Each section with its items rendered in ``form``."""
        return [(section, [getattr(item, form) for item in items])
                for section, items in zip(view.sections, forms, strict=True)]

    blocks: list[str] = []
    for section, items in placed("telegram"):
        if view.show_titles and items:  # the heading stays with the section's first item
            items[0] = f"{_macro('telegram', 'message.j2', 'heading')(section)}\n\n{items[0]}"
        blocks += items
    document = {
        "schema": SCHEMA, "kind": view.kind, "subject": view.subject,
        "generated_at": isoformat_utc(now), "timezone": zone.key,
        "sections": [{"key": s.key, "title": s.title, "items": [i.as_json() for i in s.items]}
                     for s in view.sections],
    }
    return Message(
        kind=view.kind, subject=view.subject,
        # one newline at the end, whatever the last item ends with
        text=_macro("text", "message.j2")(view, placed("text")).rstrip() + "\n",
        html=str(_macro("email", "message.html")(view, placed("email"))),
        telegram=split_telegram(str(_macro("telegram", "message.j2", "header")(view)), blocks),
        document=document, buttons=buttons,
    )


def _zone(timezone: str | ZoneInfo) -> ZoneInfo:
    return timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)


def _alert_buttons(item: AlertItem) -> tuple[Button, ...]:
    """Dismiss and switch-to-digest buttons, left out when callback data would pass 64 bytes."""
    wanted = [("Dismiss", f"dismiss:{item.call.id}")]
    if item.profile:
        wanted.append(("Switch to daily digest", f"mode:{item.profile}:daily"))
    return tuple(Button(label=label, data=data) for label, data in wanted
                 if len(data.encode()) <= 64)


def render_alert(item: AlertItem, *, now: datetime, timezone: str | ZoneInfo = "UTC") -> Message:
    """An instant alert: a new matching call, or the typed changes of a matched call."""
    zone = _zone(timezone)
    [view] = _merge([item], now, zone, set())
    material = [c for c in item.changes if c.kind is not ChangeKind.NEW]
    if not material:
        label = "New matching call"
    elif len(view.changes) == 1:
        label = view.changes[0]["text"]
    else:
        label = " · ".join(dict.fromkeys(headline(c) for c in material))
    short = "New matching call" if not material else " · ".join(
        dict.fromkeys(headline(c) for c in material))
    subject = f"{clip(label, 80)} — {clip(view.title, SUBJECT_TITLE_MAX)}"
    section = _Section("alert", short, [view])
    return _message(_View("alert", subject, short, [section]), now, zone, _alert_buttons(item))


def render_digest(
    *,
    new: Sequence[AlertItem] = (),
    changed: Sequence[AlertItem] = (),
    closing: Sequence[AlertItem] = (),
    period: Literal["daily", "weekly"] = "daily",
    now: datetime,
    timezone: str | ZoneInfo = "UTC",
) -> Message | None:
    """One digest for one recipient across all of its profiles; None when there is nothing.

    A call is shown once, in the first group it appears in (new, then changed, then
    closing soon); closing soon is ordered by the next deadline.
    """
    zone = _zone(timezone)
    seen: set[str] = set()
    groups = [
        _Section("new", "New calls", _merge(new, now, zone, seen)),
        _Section("changed", "Changed calls", _merge(changed, now, zone, seen)),
        _Section("closing", "Closing soon", sorted(
            _merge(closing, now, zone, seen),
            key=lambda i: (i.deadline is None, i.deadline or now))),
    ]
    sections = [s for s in groups if s.items]
    if not sections:
        return None
    today = format_day(to_utc(now).astimezone(zone).date())
    counts = ", ".join(f"{len(s.items)} {s.title.lower().replace(' calls', '')}" for s in sections)
    intro = f"callwatch {period} digest, {today}: {counts}"
    subject = f"callwatch {period} digest: {counts}"
    return _message(_View("digest", subject, intro, sections), now, zone)


def render_reminder(item: AlertItem, deadline: datetime, *, now: datetime,
                    timezone: str | ZoneInfo = "UTC") -> Message:
    """A reminder that the cut-off ``deadline`` of a matched call is close."""
    zone = _zone(timezone)
    [view] = _merge([item], now, zone, set())
    specific = _prepare(item.call, now, zone, deadline)
    view.deadline, view.deadline_text = specific.deadline, specific.deadline_text
    view.days_left, view.days_text = specific.days_left, specific.days_text
    days = view.days_left or 0
    label = ("Deadline today" if days == 0 else "Deadline tomorrow" if days == 1
             else f"Deadline in {days} days")
    subject = f"{label} — {clip(view.title, SUBJECT_TITLE_MAX)}"
    section = _Section("reminder", label, [view])
    return _message(_View("reminder", subject, label, [section]), now, zone,
                    _alert_buttons(item)[:1])


# --- the lines of one document item, for the channels that re-shape the document -------


def document_item_lines(item: dict[str, Any]) -> list[str]:
    """One item of the generic document as plain lines after its title: its changes, its
    facts, deadline, budget and why it matched (the Slack and Teams bodies, ``notifiers/``)."""
    lines = [f"• {c['text']}" for c in item.get("changes", [])]
    facts = " · ".join(str(f) for f in (item.get("programme"), item.get("identifier"),
                                        str(item.get("status", "")).capitalize()) if f)
    lines.append(facts)
    if item.get("next_deadline_local"):
        days = item.get("days_left")
        lines.append(f"Deadline: {item['next_deadline_local']}"
                     + (f" ({describe_days(days)})" if days is not None else ""))
    if item.get("budget"):
        lines.append(f"Budget: {item['budget']}")
    if item.get("reasons"):
        lines.append("Why: " + "; ".join(item["reasons"]))
    return lines
