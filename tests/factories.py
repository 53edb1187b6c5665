"""Small builders for test records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tracker.models import CallRecord, CallStatus


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
