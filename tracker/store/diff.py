"""Diffing two versions of the same call into typed change events (pure, no I/O).

Semantics:
- No previous version: one ``new`` event.
- Status: forthcoming→open is ``opened``; anything→closed is ``closed``; closed→open is
  ``reopened``; any other move (open→forthcoming, closed→forthcoming) is ``status_changed``.
  The same events come from the clock alone: ``Store.refresh_statuses`` diffs a stored call
  against itself at ``now`` (the status rule, ``tracker.status.status_for``), so a call
  that opens between two scrapes is one ``opened``, exactly as if a scrape had seen it.
- The list of cut-offs differs: one ``deadline_changed`` with the old and new lists.
- Any budget figure differs: one ``budget_changed`` with old and new budget objects.
- Title differs: ``title_changed``.
- New entries in ``updates`` (portal news, document notices): one ``documents_changed``
  per new entry, its text as the new value; entries that disappear are not events.
- New urls in ``documents`` (call documents, submission links): one ``documents_changed``
  per new document, "title: url" as the new value (field ``documents``). A previous
  version that never carried documents (``None``: stored before its source read them, or
  read from a fallback without them) is a baseline, not a burst of events.
- Opening date, deadline model, identifiers, url or type of action differ: one
  ``details_changed`` per field.
- Summary, keywords and tags are refreshed silently: portals re-edit them constantly and
  an alert for a reworded paragraph is noise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tracker.dates import isoformat_utc
from tracker.models import CallRecord, CallStatus, Change, ChangeKind

_DETAIL_FIELDS = (
    "opening_date",
    "deadline_model",
    "call_identifier",
    "topic_identifier",
    "url",
    "action_type",
)


def status_change_kind(old: CallStatus, new: CallStatus) -> ChangeKind:
    """The event kind for a move from status ``old`` to status ``new``."""
    if new is CallStatus.CLOSED:
        return ChangeKind.CLOSED
    if new is CallStatus.OPEN:
        return ChangeKind.REOPENED if old is CallStatus.CLOSED else ChangeKind.OPENED
    return ChangeKind.STATUS_CHANGED


def _plain(value: Any) -> Any:
    """JSON-ready form of a field value (datetimes as ISO UTC, tuples as lists)."""
    if isinstance(value, datetime):
        return isoformat_utc(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def diff_calls(old: CallRecord | None, new: CallRecord, now: datetime) -> list[Change]:
    """Every material difference between ``old`` and ``new``, seen at ``now``."""
    call_id = new.id
    if old is None:
        return [Change(call_id=call_id, kind=ChangeKind.NEW, new=new.title, at=now)]
    if old == new:
        return []

    changes: list[Change] = []

    def add(kind: ChangeKind, field: str, before: Any, after: Any) -> None:
        changes.append(
            Change(call_id=call_id, kind=kind, field=field, old=_plain(before),
                   new=_plain(after), at=now)
        )

    if old.status != new.status:
        add(status_change_kind(old.status, new.status), "status", old.status.value,
            new.status.value)
    if old.deadlines != new.deadlines:
        add(ChangeKind.DEADLINE_CHANGED, "deadlines", old.deadlines, new.deadlines)
    if old.budget() != new.budget():
        add(ChangeKind.BUDGET_CHANGED, "budget", old.budget(), new.budget())
    if old.title != new.title:
        add(ChangeKind.TITLE_CHANGED, "title", old.title, new.title)
    known = {u.casefold() for u in old.updates}
    for update in new.updates:
        if update.casefold() not in known:
            add(ChangeKind.DOCUMENTS_CHANGED, "updates", None, update)
    if old.documents is not None:
        known_urls = {d.url for d in old.documents}
        for document in new.documents or ():
            if document.url not in known_urls:
                add(ChangeKind.DOCUMENTS_CHANGED, "documents", None, document.describe())
    for field in _DETAIL_FIELDS:
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            add(ChangeKind.DETAILS_CHANGED, field, before, after)
    return changes


#: fields a degraded (fallback) record may lack; stored values are kept for them
DEGRADED_FILLABLE = ("summary", "url", "budget_eur", "budget_min_eur", "budget_max_eur",
             "expected_grants", "call_budget_eur", "call_budget_topics", "action_type",
             "keywords", "tags", "updates", "documents", "countries", "regions", "audience",
             "sub_programme", "programme", "language")


#: a suspicious run (tracker/store/drift.py) may also have lost dates and identifiers to a changed
#: layout: stored values are kept for every field that can be empty
SUSPICIOUS_FILLABLE = (*DEGRADED_FILLABLE, "opening_date", "deadlines", "deadline_model",
                       "call_identifier", "topic_identifier")


def fill_missing(old: CallRecord, new: CallRecord,
                 fields: tuple[str, ...] = DEGRADED_FILLABLE) -> CallRecord:
    """``new`` with every field it leaves empty taken from ``old`` (degraded or suspicious runs)."""
    missing = {name: getattr(old, name) for name in fields
               if getattr(new, name) in (None, "", ()) and getattr(old, name) not in (None, "", ())}
    return new.model_copy(update=missing) if missing else new


def removed_change(call_id: str, now: datetime) -> Change:
    """The event for a call its source stopped listing (after two complete runs)."""
    return Change(call_id=call_id, kind=ChangeKind.REMOVED_FROM_SOURCE, field="still_listed",
                  old=True, new=False, at=now)
