"""The apprise channel against a local HTTP receiver through apprise's own json:// service."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifiers import create_notifiers
from notifiers.apprise import EXTRA, AppriseNotifier, scrub, url_problem
from tests.notifier_support import HOSTILE_TITLE, LONG_TITLE, NOW, every_kind
from tracker.config import NotifierSettings
from tracker.delivery.dispatch import dispatch
from tracker.delivery.outbox import sync_subscribers
from tracker.delivery.subscribers import Subscriber, read_subscribers
from tracker.demo.fakes.webhook_receiver import WebhookReceiver
from tracker.errors import ChannelRejected, ChannelUnavailable, ConfigError
from tracker.plugins import channel_plugins
from tracker.ports import Message, Recipient, SendResult
from tracker.store.db import channels_table, deliveries_table

# a user and password in the URL stand for the tokens real services carry in theirs
USER, PASSWORD = "cw-user", "s3cret-token-4711"
PATH_TOKEN = "T0KEN-in-the-path-0815"  # Discord, Slack and others keep a token in the path


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def apprise_url(receiver: WebhookReceiver, path: str = "/notify") -> str:
    host_port = receiver.url.split("://", 1)[1]
    return f"json://{USER}:{PASSWORD}@{host_port}{path}"


def send(url: str, *messages: Message, environ: dict[str, str] | None = None) -> list[SendResult]:
    async def main() -> list[SendResult]:
        notifier = AppriseNotifier.from_settings(None, environ or {})
        try:
            return [await notifier.send(Recipient(url, subscriber="ana"), m) for m in messages]
        finally:
            await notifier.aclose()
    return asyncio.run(main())


@pytest.mark.parametrize("title", [None, HOSTILE_TITLE, LONG_TITLE])
def test_every_message_kind_arrives_as_title_and_plain_text(
        receiver: WebhookReceiver, title: str | None) -> None:
    messages = every_kind(title)
    results = send(apprise_url(receiver), *messages.values())
    assert len(receiver.received) == len(messages)
    for got, message, result in zip(receiver.received, messages.values(), results, strict=True):
        body = got.json()
        assert got.path == "/notify"
        assert body["title"] == message.subject
        # plain text (apprise trims its ends): apprise escapes it for services that want markup
        assert body["message"] == message.text.strip()
        assert body["type"] == ("warning" if message.kind == "reminder" else "info")
        assert result.channel == "apprise"
        assert result.address == "json://…"  # URLs hold tokens: not even in the result


class Collect(logging.Handler):
    """A handler on the root logger, where callwatch's own log handler sits (tracker/logs.py).

    Not caplog: pytest also attaches caplog to loggers that do not propagate, which are
    exactly the ones kept out of callwatch's logs.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def root_log() -> Iterator[Collect]:
    root, handler = logging.getLogger(), Collect()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_refused_message_is_transient_and_never_names_the_secret(
        receiver: WebhookReceiver, root_log: Collect) -> None:
    receiver.respond_with.extend([500, 400])
    message = next(iter(every_kind().values()))
    url = apprise_url(receiver, f"/hook/{PATH_TOKEN}")
    for _ in range(2):  # apprise cannot tell a 500 from a 400: both are retried, then dead letters
        with pytest.raises(ChannelUnavailable) as caught:
            send(url, message)
        assert "JSON did not accept the message" in str(caught.value)
        assert "error=500" in str(caught.value) or "error=400" in str(caught.value)
        for secret in (USER, PASSWORD, PATH_TOKEN):
            assert secret not in str(caught.value)
    assert [r.path for r in receiver.received] == [f"/hook/{PATH_TOKEN}"] * 2
    logged = "\n".join(root_log.lines)
    assert "asyncio: Using selector" in logged, "the root logger saw no DEBUG lines: proves nothing"
    for secret in (PASSWORD, PATH_TOKEN):
        assert secret not in logged


def test_an_unreachable_service_is_transient(receiver: WebhookReceiver) -> None:
    url = apprise_url(receiver)
    receiver.__exit__(None, None, None)  # nobody listens on that port any more
    with pytest.raises(ChannelUnavailable) as caught:
        send(url, next(iter(every_kind().values())))
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("url", ["nosuchservice://token@host", "not a url", f"json://{PASSWORD}:"])
def test_an_address_apprise_cannot_use_is_rejected(url: str) -> None:
    with pytest.raises(ChannelRejected) as caught:
        send(url, next(iter(every_kind().values())))
    assert PASSWORD not in str(caught.value)


def test_an_env_address_is_read_from_the_environment_at_each_send(receiver: WebhookReceiver) -> None:
    message = next(iter(every_kind().values()))
    [result] = send("env:CALLWATCH_APPRISE_OPS", message,
                    environ={"CALLWATCH_APPRISE_OPS": apprise_url(receiver)})
    assert receiver.received[0].json()["title"] == message.subject
    assert result.address == "env:CALLWATCH_APPRISE_OPS"
    with pytest.raises(ChannelRejected, match="CALLWATCH_APPRISE_OPS is not set"):
        send("env:CALLWATCH_APPRISE_OPS", message, environ={})


def test_scrub_masks_every_part_of_the_url() -> None:
    url = "tgram://123456:ABCDEF-secret@/-100987654?format=html&token=T0KEN%2Fx"
    text = f"posting to {url} with 123456:ABCDEF-secret for -100987654 and T0KEN/x"
    scrubbed = scrub(text, url)
    for secret in ("ABCDEF-secret", "-100987654", "T0KEN/x", "T0KEN%2Fx"):
        assert secret not in scrubbed


# -- subscribers and the registry -----------------------------------------------------------

SUBSCRIBER = """\
name: ops-team
channels:
  apprise: "{url}"
subscriptions:
  - profile: hydrogen-valley
"""


def check(tmp_path: Path, url: str) -> tuple[list[str], list[str]]:
    (tmp_path / "ops.yaml").write_text(SUBSCRIBER.format(url=url), encoding="utf-8")
    subscribers, problems = read_subscribers([tmp_path], ["hydrogen-valley"])
    return [s.channels.address("apprise") for s in subscribers], [str(p) for p in problems]


def test_a_subscriber_can_give_an_apprise_url(tmp_path: Path) -> None:
    url = f"discord://{PASSWORD}/webhook-token"
    addresses, problems = check(tmp_path, url)
    assert (addresses, problems) == ([url], [])


def test_a_subscriber_can_name_an_environment_variable_instead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLWATCH_APPRISE_OPS", f"discord://{PASSWORD}/webhook-token")
    # only the name is kept: the database and the outbox never hold the URL
    assert check(tmp_path, "env:CALLWATCH_APPRISE_OPS") == (["env:CALLWATCH_APPRISE_OPS"], [])
    monkeypatch.setenv("CALLWATCH_APPRISE_OPS", f"nosuchservice://{PASSWORD}")
    [problem] = check(tmp_path, "env:CALLWATCH_APPRISE_OPS")[1]
    assert "apprise cannot use this nosuchservice:// URL" in problem and PASSWORD not in problem
    monkeypatch.delenv("CALLWATCH_APPRISE_OPS")
    [problem] = check(tmp_path, "env:CALLWATCH_APPRISE_OPS")[1]
    assert "the environment variable CALLWATCH_APPRISE_OPS is not set" in problem


@pytest.mark.parametrize(("url", "fragment"), [
    (f"nosuchservice://{PASSWORD}@host", "apprise cannot use this nosuchservice:// URL"),
    (PASSWORD, "not an apprise URL"),
    ("json://" + "x" * 600, "at most 500 characters"),
])
def test_a_bad_apprise_url_fails_the_check_without_repeating_it(
        tmp_path: Path, url: str, fragment: str) -> None:
    addresses, problems = check(tmp_path, url)
    assert addresses == []
    [problem] = problems
    assert "channels.apprise" in problem and fragment in problem
    assert PASSWORD not in problem


def test_without_the_package_a_subscriber_url_is_a_config_error_naming_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # what `import apprise` sees when missing
    _, problems = check(tmp_path, "discord://a/b")
    assert len(problems) == 1 and EXTRA in problems[0]
    with pytest.raises(ConfigError, match=r"callwatch\[apprise\]"):
        AppriseNotifier()


def test_the_registry_builds_apprise_only_when_the_package_is_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "apprise" in channel_plugins()
    built = create_notifiers(NotifierSettings.model_validate({}), {})
    assert isinstance(built["apprise"], AppriseNotifier)
    monkeypatch.setitem(sys.modules, "apprise", None)
    assert "apprise" not in create_notifiers(NotifierSettings.model_validate({}), {})


def test_url_problem_accepts_what_apprise_accepts() -> None:
    assert url_problem("json://127.0.0.1:9/x") is None
    assert url_problem("mailto://user:pass@example.org") is None


# -- through the outbox ---------------------------------------------------------------------

def test_the_dispatcher_delivers_through_apprise_and_retries_a_refusal(
        engine: Engine, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """An env: address all the way: the tables hold only the name, a 500 is retried later."""
    environ = {"CALLWATCH_APPRISE_OPS": apprise_url(receiver, f"/hook/{PATH_TOKEN}")}
    monkeypatch.setenv("CALLWATCH_APPRISE_OPS", environ["CALLWATCH_APPRISE_OPS"])
    subscriber = Subscriber.model_validate({
        "name": "ops", "channels": {"apprise": "env:CALLWATCH_APPRISE_OPS"},
        "subscriptions": [{"profile": "hydrogen-valley"}]})
    sync_subscribers(engine, [subscriber], NOW)
    messages = list(every_kind().values())[:2]
    with engine.begin() as connection:
        [(subscriber_id, address)] = connection.execute(
            sa.select(channels_table.c.subscriber_id, channels_table.c.address)
            .where(channels_table.c.channel == "apprise"))
        for index, message in enumerate(messages):
            connection.execute(deliveries_table.insert().values(
                key=f"alert|{subscriber_id}|apprise|call-{index}|match", subscriber_id=subscriber_id,
                channel="apprise", kind=message.kind, message=message.model_dump(mode="json"),
                status="pending", next_attempt_at=NOW, created_at=NOW))
    assert address == "env:CALLWATCH_APPRISE_OPS"
    receiver.respond_with.extend([204, 500])

    async def once() -> list[tuple[str, str]]:
        notifier = AppriseNotifier(environ)
        try:
            report = await dispatch(engine, {"apprise": notifier}, lambda: NOW)
        finally:
            await notifier.aclose()
        return sorted(report.outcomes)

    assert asyncio.run(once()) == [("apprise", "retry"), ("apprise", "sent")]
    assert asyncio.run(once()) == []  # the retry waits for its backoff; the sent one never again
    with engine.connect() as connection:
        rows = list(connection.execute(sa.select(deliveries_table).order_by(deliveries_table.c.id)))
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1), ("pending", 1)]
    assert "error=500" in rows[1].last_error
    assert PASSWORD not in rows[1].last_error and PATH_TOKEN not in rows[1].last_error
    assert [r.json()["title"] for r in receiver.received] == [m.subject for m in messages]
