"""Small builders for test records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.models import CallRecord, CallStatus, RunOutcome
from tracker.store.calls import SourceRun


def make_call(native_id: str = "HORIZON-CL5-2026-D3-01-01", **overrides: Any) -> CallRecord:
    values: dict[str, Any] = {
        "source": "ft_portal",
        "native_id": native_id,
        "title": "Next-generation electrolysers for renewable hydrogen",
        "status": CallStatus.OPEN,
        "programme": "Horizon Europe",
        "call_identifier": "HORIZON-CL5-2026-D3-01",
        "topic_identifier": native_id,
        "summary": "Develop electrolysers.",
        "url": f"https://example.invalid/topic-details/{native_id}",
        "opening_date": datetime(2026, 5, 6, 0, 0, tzinfo=UTC),
        "deadlines": (datetime(2027, 4, 16, 15, 0, tzinfo=UTC),),
        "deadline_model": "single-stage",
        "budget_eur": 3_000_000,
        "keywords": ("hydrogen", "electrolysis"),
    }
    values.update(overrides)
    return CallRecord(**values)


def make_runs(source: str, outcomes: Sequence[RunOutcome], error: str | None = None,
              newest: datetime = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)) -> list[SourceRun]:
    """A source's run log, newest first, one run an hour; ``error`` on the newest run."""
    return [SourceRun(id=len(outcomes) - n, source=source, started_at=newest - timedelta(hours=n),
                      finished_at=newest - timedelta(hours=n) + timedelta(minutes=1), outcome=one,
                      items_seen=0 if one is RunOutcome.FAILED else 40, new=0, changed=0, invalid=0,
                      error=error if n == 0 else None, notes=None)
            for n, one in enumerate(outcomes)]
