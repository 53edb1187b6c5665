"""When digests fall due (pure: a schedule, a time zone and ``now``), and the settings that
set the schedule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracker.config import load_config
from tracker.errors import ConfigError
from tracker.planning import DigestSchedule, digest_period

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 13:00 in Brussels, 21:00 in Tokyo


@pytest.mark.parametrize(("mode", "now", "timezone", "schedule", "expected"), [
    ("daily", MONDAY, "Europe/Brussels", DigestSchedule(), "2026-11-23"),
    ("weekly", MONDAY, "Europe/Brussels", DigestSchedule(), "2026-W48"),
    ("daily", MONDAY, "Europe/Brussels", DigestSchedule(hour=14), None),  # 13:00 < 14:00
    ("daily", MONDAY, "Europe/Brussels", DigestSchedule(hour=13), "2026-11-23"),
    ("weekly", MONDAY, "Europe/Brussels", DigestSchedule(weekday=4), None),  # Fridays only
    ("weekly", datetime(2026, 11, 27, 7, 0, tzinfo=UTC), "Europe/Brussels",
     DigestSchedule(weekday=4), "2026-W48"),  # Friday 08:00 in Brussels
    # the subscriber's own zone decides: Monday 21:00 in Tokyo is past 20:00 …
    ("daily", MONDAY, "Asia/Tokyo", DigestSchedule(hour=20), "2026-11-23"),
    # … and Monday 04:00 in New York is not yet 08:00
    ("daily", MONDAY.replace(hour=9), "America/New_York", DigestSchedule(), None),
    ("instant", MONDAY, "Europe/Brussels", DigestSchedule(), None),
])
def test_digest_period(mode: str, now: datetime, timezone: str, schedule: DigestSchedule,
                       expected: str | None) -> None:
    assert digest_period(mode, now, timezone, schedule) == expected


def test_the_schedule_comes_from_the_digests_settings(tmp_path: Path) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text('[digests]\nhour = 7\nweekday = "Friday"\n', encoding="utf-8")
    settings = load_config(path, environ={})
    assert settings.digests.schedule() == DigestSchedule(hour=7, weekday=4)
    assert load_config(None, environ={}).digests.schedule() == DigestSchedule(hour=8, weekday=0)


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ("[digests]\nhour = 24\n", "digests.hour", "less than or equal to 23"),
    ('[digests]\nweekday = "mon"\n', "digests.weekday", "'monday'"),
])
def test_a_bad_schedule_names_its_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = tmp_path / "callwatch.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.key == key and fragment in str(caught.value)
