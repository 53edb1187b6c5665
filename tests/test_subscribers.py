"""Subscriber files: the model, validation with file/line/field, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracker.subscribers import Subscriber, load_directory, read_subscribers
from tracker.yamlfiles import FilesError

GOOD = """\
name: ana-hydrogen-valley
tenant: hydrogen-valley
timezone: Europe/Madrid
language: en
channels:
  telegram: "123456789"
  email: ana@example.org
  webhook: https://hooks.example.org/T000/B000
subscriptions:
  - profile: hydrogen-valley
    mode: instant
    channels: [telegram]
  - profile: digital-ai-sme
    mode: daily
quiet_hours: "22:00-07:00"
reminders: [30, 7, 1]
"""


def write(tmp_path: Path, text: str, name: str = "ana.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    (subscriber,) = load_directory(tmp_path, ["hydrogen-valley", "digital-ai-sme"])
    assert subscriber.name == "ana-hydrogen-valley"
    assert subscriber.channels.configured() == ("telegram", "email", "webhook")
    instant, daily = subscriber.subscriptions
    assert subscriber.channels_for(instant) == ("telegram",)
    assert subscriber.channels_for(daily) == ("telegram", "email", "webhook")
    assert subscriber.reminders == (30, 7, 1)


@pytest.mark.parametrize(
    ("change", "field", "fragment", "line"),
    [
        (("  email: ana@example.org", "  emial: ana@example.org"), "channels.emial",
         "did you mean 'email'", 7),
        (("timezone: Europe/Madrid", "timezone: Europe/Madird"), "timezone", "unknown timezone", 3),
        (("    mode: daily", "    mode: hourly"), "subscriptions[1].mode", "instant", 14),
        (('quiet_hours: "22:00-07:00"', 'quiet_hours: "late"'), "quiet_hours", "HH:MM-HH:MM", 15),
        (("reminders: [30, 7, 1]", "reminders: [30, -1]"), "reminders", "between 0 and 365", 16),
        (('  telegram: "123456789"', "  telegram: not-a-chat"), "channels.telegram",
         "not a Telegram chat id", 6),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, change: tuple[str, str], field: str,
                                         fragment: str, line: int) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    _, problems = read_subscribers([tmp_path])
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.origin, problem.field, problem.line) == (str(path), field, line)
    assert fragment in problem.message


def test_unknown_profile_with_a_suggestion(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    _, problems = read_subscribers([tmp_path], ["hydrogen-valley", "digital-ai-smes"])
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "subscriptions[1].profile: unknown profile 'digital-ai-sme'; did you mean 'digital-ai-smes'?"]
    assert [p.line for p in problems] == [13]  # the line of that subscription's profile


def test_a_subscription_channel_without_an_address(tmp_path: Path) -> None:
    text = GOOD.replace("  webhook: https://hooks.example.org/T000/B000\n", "").replace(
        "channels: [telegram]", "channels: [webhook]")
    write(tmp_path, text)
    _, problems = read_subscribers([tmp_path])
    assert "subscriptions[0] uses webhook" in problems[0].message


def test_every_problem_is_reported_and_loading_refuses(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("Europe/Madrid", "Mars/Olympus").replace("mode: instant", "mode: x"))
    write(tmp_path, "name: [unclosed\n", "broken.yaml")
    with pytest.raises(FilesError) as caught:
        load_directory(tmp_path)
    assert len(caught.value.problems) == 3
    assert "broken.yaml:1" in str(caught.value) or "broken.yaml:2" in str(caught.value)


def test_duplicate_names(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, GOOD, "copy.yaml")
    _, problems = read_subscribers([tmp_path])
    assert [(p.field, p.line) for p in problems] == [("name", 1)]


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2026, 11, 25, 22, 30, tzinfo=UTC), datetime(2026, 11, 26, 6, 0, tzinfo=UTC)),
        (datetime(2026, 11, 25, 5, 0, tzinfo=UTC), datetime(2026, 11, 25, 6, 0, tzinfo=UTC)),
        (datetime(2026, 11, 25, 12, 0, tzinfo=UTC), None),
    ],
)
def test_quiet_hours_cross_midnight_in_the_subscribers_zone(utc: datetime, expected: datetime | None
                                                            ) -> None:
    subscriber = Subscriber.model_validate({
        "name": "x", "timezone": "Europe/Madrid", "quiet_hours": "22:00-07:00",
        "channels": {"email": "a@b.eu"}, "subscriptions": [{"profile": "p"}]})
    until = subscriber.quiet_until(utc)
    assert until == expected
