"""A call's status from its dates: the one rule every source, the store and every view use.

Sources lag: the portal keeps a topic "forthcoming" for days after its opening date and
"open" after its last cut-off. So a status is derived from the dates wherever they are
known, and from the source's own word only where they are not. Pure: data and ``now`` in,
a status out. Scrapers apply it when they build a record, the store when time moves a call
(``Store.refresh_statuses``), and every read at ``now``. It lives in the core, not beside
the scrapers, because the core uses it and must not import an adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from tracker.models import CallRecord, CallStatus


def stated_status(stated: str | None) -> CallStatus | None:
    """The status a source's own word names ("Open", "forthcoming", "Closed"), else None."""
    word = (stated or "").strip().casefold()
    if word.startswith(("closed", "close")):
        return CallStatus.CLOSED
    if word.startswith(("forthcoming", "upcoming", "coming")):
        return CallStatus.FORTHCOMING
    if word.startswith("open"):
        return CallStatus.OPEN
    return None


def status_for(opening: datetime | None, deadlines: Iterable[datetime], now: datetime,
               stated: str | None = None) -> CallStatus:
    """The call's status at ``now``: from its dates wherever they are known, else as stated.

    The one rule every source, the store's refresh step and every read-time view use:

    - every cut-off has passed: closed;
    - the opening date is still ahead: forthcoming;
    - the opening date has passed and a cut-off is still ahead: open;
    - otherwise the dates do not decide, and the source's stated status does: an opening
      date that has passed with no cut-off known is open unless the source says closed;
      with no opening date, the stated status (open when the source says nothing).

    Dates win over the stated word because sources lag: the portal keeps a topic
    "forthcoming" for days after its opening date and "open" after its last cut-off.
    """
    cut_offs = list(deadlines)
    if cut_offs and all(d < now for d in cut_offs):
        return CallStatus.CLOSED
    if opening is not None and opening > now:
        return CallStatus.FORTHCOMING
    said = stated_status(stated)
    if opening is not None:  # it has opened; no cut-off known, or one still ahead
        return CallStatus.CLOSED if said is CallStatus.CLOSED and not cut_offs else CallStatus.OPEN
    return said or CallStatus.OPEN


def status_at(record: CallRecord, now: datetime) -> CallStatus:
    """``record``'s status at ``now`` by ``status_for``, its stored status standing for what
    its source stated: a call stored before its opening date is open once that date passes,
    and closed once its last cut-off has, without a new scrape."""
    return status_for(record.opening_date, record.deadlines, now, record.status.value)


def as_of(record: CallRecord, now: datetime) -> CallRecord:
    """``record`` with its status at ``now`` (the same object when that is its status)."""
    status = status_at(record, now)
    return record if status is record.status else record.model_copy(update={"status": status})
