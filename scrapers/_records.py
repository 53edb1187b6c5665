"""Turning parsed items into CallRecords, counting the ones that cannot be, and run results.

Every source builds its records through ``RecordBatch``: one bad item (an unparseable
deadline, an empty title) is logged with its id and counted in ``ScrapeResult.invalid``, and
never stops the run. A failure of the whole run (a rejected key, a challenge page, a changed
layout) becomes a ``ScrapeResult`` with ``error`` set, keeping whatever was read before it,
so the store records the reason and the source's health shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from pydantic import ValidationError

from tracker.dedupe import OFFICIAL_ID_IN_TEXT
from tracker.errors import CallwatchError, InvalidRecord
from tracker.models import CallRecord, CallStatus, ScrapeResult

log = logging.getLogger(__name__)

#: Official EU call and topic identifiers (HORIZON-…, SMP-COSME-…, DIGITAL-…) inside a text.
IDENTIFIER = OFFICIAL_ID_IN_TEXT


def status_for(opening: datetime | None, deadlines: Iterable[datetime], now: datetime,
               stated: str | None = None) -> CallStatus:
    """The call's status: what the source states when it says, else from its dates.

    A stated "open" whose every deadline has passed is closed: sources lag behind.
    """
    cut_offs = list(deadlines)
    past = bool(cut_offs) and all(d < now for d in cut_offs)
    word = (stated or "").strip().casefold()
    if word.startswith(("closed", "close")) or past:
        return CallStatus.CLOSED
    if word.startswith(("forthcoming", "upcoming", "coming")):
        return CallStatus.FORTHCOMING
    if word.startswith("open"):
        return CallStatus.OPEN
    if opening is not None and opening > now:
        return CallStatus.FORTHCOMING
    return CallStatus.OPEN


class RecordBatch:
    """Records of one run, and the count of items that could not become one."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.records: list[CallRecord] = []
        self.invalid = 0
        self.notes: list[str] = []
        self._seen: set[str] = set()

    def add(self, item_id: str, build: Callable[[], CallRecord]) -> CallRecord | None:
        """Build one record; on a bad item log it with ``item_id`` and count it."""
        try:
            record = build()
        except (InvalidRecord, ValidationError, ValueError) as exc:
            self.invalid += 1
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("invalid item source=%s call=%s reason=%s", self.source, item_id, reason)
            return None
        if record.native_id in self._seen:  # a call listed twice in one run
            return None
        self._seen.add(record.native_id)
        self.records.append(record)
        return record

    def result(self, *, complete: bool = True, error: str | None = None) -> ScrapeResult:
        return ScrapeResult(records=self.records, invalid=self.invalid, complete=complete,
                            error=error, notes=list(self.notes))

    def failed(self, exc: CallwatchError) -> ScrapeResult:
        """The run stopped on ``exc``: keep what was read, say why, never count it complete."""
        log.warning("source failed source=%s error=%s: %s", self.source, type(exc).__name__, exc)
        self.notes.append(f"error type: {type(exc).__name__}")
        return self.result(complete=False, error=str(exc))


def require(value: str | None, what: str, item_id: str) -> str:
    """``value`` when it has text, else InvalidRecord naming what is missing."""
    if value is None or not value.strip():
        raise InvalidRecord(f"no {what}", native_id=item_id)
    return value.strip()


def own_identifier(text: str) -> str | None:
    """The one official identifier ``text`` names, a call's topic winning over the call
    (SMP-COSME-2024-CLUSTER-01 over SMP-COSME-2024-CLUSTER); None when it names several."""
    found = set(IDENTIFIER.findall(text))
    specific = {i for i in found if not any(o != i and o.startswith(i + "-") for o in found)}
    return specific.pop() if len(specific) == 1 else None
