"""Subscriber files: the model, validation with file/line/field, quiet hours."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tracker.cli import cli
from tracker.delivery.subscribers import (
    StoredSubscription,
    Subscriber,
    SubscriptionSync,
    load_directory,
    plan_subscription_sync,
    read_subscribers,
    without_opt_outs,
)
from tracker.yamlfiles import FilesError

REPO = Path(__file__).resolve().parent.parent
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
    assert [(p.field, p.line) for p in problems] == [("subscriptions[0].channels", 11)]
    assert "uses webhook but the subscriber has no address there" in problems[0].message


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


# --- where a webhook may point ----------------------------------------------------------

NEVER = [  # refused whatever notifiers.webhook.allow_private says
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://2852039166/latest/meta-data/", "169.254.169.254 is a cloud metadata"),  # inet_aton form
    ("http://0xA9FEA9FE/", "169.254.169.254 is a cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address"),
    ("http://[fd00:ec2::254]/latest", "cloud metadata address"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("http://169.254.10.1/hook", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://0.0.0.0:8080/hook", "not a unicast address"),
    ("https://alerts:hunter22@hooks.example.org/T000", "user name or password"),
    ("https://token@hooks.example.org/T000", "user name or password"),
]
PRIVATE = ["http://10.0.0.5/hook", "http://172.16.4.2:8080/hook", "https://192.168.1.20/x",
           "http://100.64.0.7/hook", "http://[fd12:3456::1]/hook"]
LOOPBACK = ["http://127.0.0.1:8080/hook", "http://localhost:9000/hook", "http://[::1]/hook",
            "http://127.0.0.2/hook"]


def with_webhook(url: str) -> str:
    return GOOD.replace("https://hooks.example.org/T000/B000", url)


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(("url", "fragment"), NEVER)
def test_webhooks_at_metadata_link_local_or_with_credentials_are_never_accepted(
        tmp_path: Path, url: str, fragment: str, allow_private: bool) -> None:
    path = write(tmp_path, with_webhook(url))
    _, problems = read_subscribers([tmp_path], allow_private=allow_private)
    assert [(p.origin, p.line, p.field) for p in problems] == [(str(path), 8, "channels.webhook")]
    assert fragment in problems[0].message
    assert "hunter22" not in problems[0].message  # the password is not repeated


@pytest.mark.parametrize("url", PRIVATE)
def test_private_webhooks_need_allow_private_which_the_error_names(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, with_webhook(url))
    _, problems = read_subscribers([tmp_path])
    assert [(p.origin, p.line, p.field) for p in problems] == [(str(path), 8, "channels.webhook")]
    assert "is a private address: set notifiers.webhook.allow_private = true" in problems[0].message
    subscribers, problems = read_subscribers([tmp_path], allow_private=True)
    assert problems == [] and subscribers[0].channels.webhook == url


@pytest.mark.parametrize("url", LOOPBACK)
def test_loopback_webhooks_are_accepted(tmp_path: Path, url: str) -> None:
    write(tmp_path, with_webhook(url))
    subscribers, problems = read_subscribers([tmp_path])
    assert problems == [] and subscribers[0].channels.webhook == url


def test_subscribers_check_and_run_refuse_a_private_webhook_unless_allowed(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    shutil.copy(REPO / "config" / "profiles" / "hydrogen-valley.yaml", tmp_path / "profiles")
    folder = tmp_path / "subscribers"
    folder.mkdir()
    (folder / "ana.yaml").write_text(
        "name: ana\nchannels:\n  webhook: http://10.1.2.3:8080/hook\n"
        "subscriptions:\n  - profile: hydrogen-valley\n", encoding="utf-8")
    config = tmp_path / "callwatch.toml"
    base = ('[profiles]\ndirectory = "profiles"\n[subscribers]\ndirectory = "subscribers"\n'
            + "".join(f"[sources.{name}]\nenabled = false\n" for name in (
                "ft_portal", "eccp", "eismea", "hadea", "eit", "cascade_hub")))

    def callwatch(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), "--db",
                                        f"sqlite:///{tmp_path / 'callwatch.db'}", *args])

    config.write_text(base, encoding="utf-8")
    refused = callwatch("subscribers", "check")
    assert refused.exit_code == 2
    assert (f"{folder / 'ana.yaml'}:3: channels.webhook: 10.1.2.3 is a private address: "
            "set notifiers.webhook.allow_private = true") in refused.stderr
    assert callwatch("run", "--once").exit_code == 2  # the start refuses the same file

    config.write_text(base + "[notifiers.webhook]\nallow_private = true\n", encoding="utf-8")
    allowed = callwatch("subscribers", "check")
    assert allowed.exit_code == 0, allowed.output
    assert "1 subscriber(s) OK" in allowed.stdout
    assert callwatch("run", "--once").exit_code == 0

    (folder / "ana.yaml").write_text(
        "name: ana\nchannels:\n  webhook: http://169.254.169.254/latest/meta-data/\n"
        "subscriptions:\n  - profile: hydrogen-valley\n", encoding="utf-8")
    metadata = callwatch("subscribers", "check")
    assert metadata.exit_code == 2
    assert "channels.webhook: 169.254.169.254 is a cloud metadata address" in metadata.stderr


# -- one profile, a different mode per channel -----------------------------------------------

PER_CHANNEL = """\
name: ana
channels:
  telegram: "123456789"
  email: ana@example.org
subscriptions:
  - profile: digital-ai-sme
  - profile: hydrogen-valley
    mode: instant
    channels: [telegram]
  - profile: hydrogen-valley
    mode: daily
    channels: [email]
"""


def test_one_profile_may_have_a_mode_per_channel(tmp_path: Path) -> None:
    write(tmp_path, PER_CHANNEL)
    (subscriber,) = load_directory(tmp_path, ["hydrogen-valley", "digital-ai-sme"])
    _, instant, daily = subscriber.subscriptions
    assert (instant.profile, instant.mode, subscriber.channels_for(instant)) == (
        "hydrogen-valley", "instant", ("telegram",))
    assert (daily.profile, daily.mode, subscriber.channels_for(daily)) == (
        "hydrogen-valley", "daily", ("email",))


@pytest.mark.parametrize(("third", "line", "where"), [
    # all the subscriber's channels (none named) overlap both earlier ones
    ("  - profile: hydrogen-valley\n    mode: weekly\n", 13,
     "on telegram by subscriptions[1] and on email by subscriptions[2]"),
    ("  - profile: hydrogen-valley\n    channels: [email, telegram]\n", 13,
     "on email by subscriptions[2] and on telegram by subscriptions[1]"),
    ("  - profile: hydrogen-valley\n    mode: weekly\n    channels: [email]\n", 13,
     "on email by subscriptions[2]"),
])
def test_overlapping_channels_of_one_profile_name_the_line_and_the_profile(
        tmp_path: Path, third: str, line: int, where: str) -> None:
    path = write(tmp_path, PER_CHANNEL + third)
    _, problems = read_subscribers([tmp_path])
    assert [(p.origin, p.line, p.field) for p in problems] == [(str(path), line, "subscriptions[3]")]
    assert f"profile 'hydrogen-valley' is already followed {where}" in problems[0].message


def test_the_same_profile_twice_without_channels_points_at_the_second(tmp_path: Path) -> None:
    write(tmp_path, "name: bo\nchannels:\n  email: bo@example.org\nsubscriptions:\n"
                    "  - profile: h2\n  - profile: solar\n  - profile: h2\n    mode: daily\n")
    _, problems = read_subscribers([tmp_path])
    assert [(p.line, p.field) for p in problems] == [(7, "subscriptions[2]")]
    assert "profile 'h2' is already followed on email by subscriptions[0]" in problems[0].message


def test_an_empty_channel_list_is_refused(tmp_path: Path) -> None:
    write(tmp_path, PER_CHANNEL.replace("channels: [email]", "channels: []"))
    _, problems = read_subscribers([tmp_path])
    assert [(p.line, p.field) for p in problems] == [(12, "subscriptions[2].channels")]


def _subscriber(text: str = PER_CHANNEL) -> Subscriber:
    from tracker.yamlfiles import parse_model_text

    subscriber, problems = parse_model_text(text, Subscriber, "test")
    assert subscriber is not None, problems
    return subscriber


def test_an_opt_out_removes_only_its_channels() -> None:
    ana = _subscriber()
    assert without_opt_outs(ana, {}) == list(ana.subscriptions)
    kept = without_opt_outs(ana, {"hydrogen-valley": {"email"}, "digital-ai-sme": {"telegram"}})
    assert [(s.profile, s.mode, s.channels) for s in kept] == [
        ("digital-ai-sme", "instant", ("email",)),  # all channels, less the one ended
        ("hydrogen-valley", "instant", ("telegram",)),
    ]


def test_the_file_sync_keeps_rows_by_profile_and_channels() -> None:
    ana = _subscriber()
    stored = [StoredSubscription(1, "hydrogen-valley", "instant", None),
              StoredSubscription(2, "digital-ai-sme", "daily", None),
              StoredSubscription(3, "solar", "daily", None)]
    plan = plan_subscription_sync(stored, ana.subscriptions)
    # digital-ai-sme keeps its row with a new mode; hydrogen-valley's row becomes the
    # telegram one (its link keeps working), the email one is new; solar is gone
    assert [(row.id, s.mode, s.channels) for row, s in plan.update] == [
        (2, "instant", None), (1, "instant", ("telegram",))]
    assert [(s.profile, s.mode, s.channels) for s in plan.insert] == [
        ("hydrogen-valley", "daily", ("email",))]
    assert plan.delete == (3,)
    synced = [StoredSubscription(2, "digital-ai-sme", "instant", None),
              StoredSubscription(1, "hydrogen-valley", "instant", ("telegram",)),
              StoredSubscription(4, "hydrogen-valley", "daily", ("email",))]
    assert plan_subscription_sync(synced, ana.subscriptions) == SubscriptionSync()


def test_subscribers_check_creates_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    (conf / "profiles").mkdir(parents=True)
    shutil.copy(REPO / "config" / "profiles" / "hydrogen-valley.yaml", conf / "profiles")
    (conf / "subscribers").mkdir()
    (conf / "subscribers" / "ana.yaml").write_text(
        "name: ana\nchannels:\n  email: ana@example.org\nsubscriptions:\n"
        "  - profile: hydrogen-valley\n", encoding="utf-8")
    config = conf / "callwatch.toml"
    config.write_text('[database]\nurl = "sqlite:///data/live.db"\n[profiles]\n'
                      'directory = "profiles"\n[subscribers]\ndirectory = "subscribers"\n',
                      encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def callwatch(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), *args])

    checked = callwatch("subscribers", "check")
    assert checked.exit_code == 0, checked.output
    assert "1 subscriber(s) OK" in checked.stdout
    assert list(tmp_path.rglob("*.db")) == [] and not (conf / "data").exists()
    # the database, once made, is beside the config file (not where the command ran), and a
    # profile stored in it counts
    assert callwatch("db", "upgrade").exit_code == 0
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*.db")] == [
        Path("conf/data/live.db")]
    from tracker.rules.profiles import Profile
    from tracker.rules.store import RulesStore
    from tracker.store import db

    engine = db.make_engine(f"sqlite:///{conf / 'data' / 'live.db'}")
    RulesStore(engine).save_profile(Profile.model_validate({"name": "solar", "query": "solar"}),
                                    datetime(2026, 11, 25, tzinfo=UTC))
    engine.dispose()
    (conf / "subscribers" / "bo.yaml").write_text(
        "name: bo\nchannels:\n  email: bo@example.org\nsubscriptions:\n  - profile: solar\n",
        encoding="utf-8")
    rechecked = callwatch("subscribers", "check")
    assert rechecked.exit_code == 0, rechecked.output
    assert "2 subscriber(s) OK" in rechecked.stdout
