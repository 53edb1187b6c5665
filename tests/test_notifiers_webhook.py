"""The webhook channel against a local receiver that checks Standard Webhooks signatures."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from notifiers.webhook import WebhookNotifier, WebhookSettings, sign, webhook_body
from tests.notifier_support import (
    HOSTILE_TITLE,
    LONG_TITLE,
    dispatch_once,
    every_kind,
    item,
    outbox_row,
    queue_one_alert,
)
from tracker.delivery.render import render_alert
from tracker.demo.fakes.webhook_receiver import WebhookReceiver, verify
from tracker.destinations import Address
from tracker.errors import ChannelGone, ChannelRejected, ChannelUnavailable, ConfigError
from tracker.ports import Message, Recipient, SendResult, WebhookFormat
from tracker.retry_after import MAX_RETRY_AFTER

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"callwatch test secret, 32 bytes!").decode()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as server:
        yield server


def post(notifier: WebhookNotifier, *sends: tuple[Recipient, Message]) -> list[SendResult]:
    async def main() -> list[SendResult]:
        try:
            return [await notifier.send(recipient, message) for recipient, message in sends]
        finally:
            await notifier.aclose()
    return asyncio.run(main())


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    # the example in the Standard Webhooks specification and its reference libraries
    assert sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("title", [None, HOSTILE_TITLE, LONG_TITLE])
def test_every_message_kind_arrives_signed_with_the_generic_schema(
        receiver: WebhookReceiver, title: str | None) -> None:
    messages = every_kind(title)
    notifier = WebhookNotifier.from_settings(WebhookSettings(), {"CALLWATCH_WEBHOOK_SECRET": SECRET})
    results = post(notifier, *((Recipient(receiver.endpoint()), m) for m in messages.values()))
    assert [r.verified for r in receiver.received] == [True] * 4
    assert [r.status for r in receiver.received] == [204] * 4
    for got, message, result in zip(receiver.received, messages.values(), results, strict=True):
        body = got.json()
        assert body == message.document
        assert body["schema"] == "callwatch.message/1"
        assert got.headers["content-type"] == "application/json"
        assert got.headers["webhook-id"] == result.message_ids[0]
        item = body["sections"][0]["items"][0]
        assert set(item) >= {"call_id", "title", "programme", "identifier", "status", "url",
                             "next_deadline", "days_left", "budget_eur", "reasons", "changes"}
        if title:
            assert len(item["title"]) <= 300


def test_a_retry_carries_the_same_webhook_id(receiver: WebhookReceiver) -> None:
    message = every_kind()["alert_new"]
    notifier = WebhookNotifier(secret=SECRET)
    first, second = post(notifier, (Recipient(receiver.endpoint()), message),
                         (Recipient(receiver.endpoint()), message))
    assert first.message_ids == second.message_ids
    assert first.message_ids[0].startswith("msg_")


def test_a_plain_secret_is_used_as_bytes() -> None:
    with WebhookReceiver("plain-secret") as plain:
        post(WebhookNotifier(secret="plain-secret"), (Recipient(plain.endpoint()), every_kind()["digest"]))
        assert plain.received[0].verified


def test_a_wrong_secret_or_stale_timestamp_fails_verification(receiver: WebhookReceiver) -> None:
    other = "whsec_" + base64.b64encode(b"another secret").decode()
    with pytest.raises(ChannelRejected) as caught:
        post(WebhookNotifier(secret=other), (Recipient(receiver.endpoint()), every_kind()["alert_new"]))
    assert caught.value.status == 401
    assert receiver.received[0].verified is False
    stale = WebhookNotifier(secret=SECRET, clock=lambda: 1_000_000_000.0)
    with pytest.raises(ChannelRejected):
        post(stale, (Recipient(receiver.endpoint()), every_kind()["alert_new"]))
    headers = dict(receiver.received[1].headers)
    assert verify(SECRET, headers, receiver.received[1].body, now=1_000_000_010.0)
    assert not verify(SECRET, headers, receiver.received[1].body + b" ", now=1_000_000_010.0)


def test_slack_and_teams_bodies_are_selected_per_recipient(receiver: WebhookReceiver) -> None:
    message = every_kind(HOSTILE_TITLE)["digest"]
    formats: list[WebhookFormat] = ["slack", "teams"]
    post(WebhookNotifier(secret=SECRET),
         *((Recipient(receiver.endpoint(f"/{fmt}"), webhook_format=fmt), message) for fmt in formats))
    slack, teams = (r.json() for r in receiver.received)
    assert receiver.received[0].path == "/slack"
    assert slack["text"] == slack_escaped(message.subject) and slack["blocks"][0]["type"] == "header"
    assert "<script>" not in str(slack["blocks"])
    assert teams["type"] == "message"
    assert teams["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert all(r.verified for r in receiver.received)


def slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn_texts(body: dict[str, Any]) -> list[str]:
    """Every string of a Slack body that Slack reads as mrkdwn (and so for mentions)."""
    texts = [body["text"]]
    for block in body["blocks"]:
        if block.get("text", {}).get("type") == "mrkdwn":
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


MENTIONS = "<@U024BE7LH> <#C0000|general> <!channel> <!here> <!subteam^S0614TZR7|team>"


@pytest.mark.parametrize("kind", ["alert_new", "digest", "reminder"])
def test_a_scraped_title_cannot_mention_anyone_on_slack(receiver: WebhookReceiver, kind: str) -> None:
    """Slack turns <@U…>, <#C…|…> and <!channel> into mentions in ``text`` (the notification
    fallback) as in mrkdwn blocks; escaped (&amp; &lt; &gt;) they show as typed."""
    message = every_kind(f"Hydrogen valleys {MENTIONS} R&D")[kind]
    post(WebhookNotifier(secret=SECRET),
         (Recipient(receiver.endpoint(), webhook_format="slack"), message))
    body = receiver.received[0].json()
    assert body["text"] == slack_escaped(message.subject)
    if kind != "digest":  # a digest's subject counts calls; its titles are in the blocks
        assert "&lt;@U024BE7LH&gt;" in body["text"] and "R&amp;D" in body["text"]
    texts = mrkdwn_texts(body)
    assert len(texts) >= 2
    assert [t for t in texts if re.search(r"<[@#!]", t)] == []


def test_a_pipe_in_a_call_url_cannot_retitle_the_slack_link() -> None:
    """In ``<url|title>`` the first ``|`` ends the URL: a scraped URL could pick the link text."""
    call = item("HORIZON-P", url="https://example.invalid/x|Official-EU-portal")
    body = json.loads(webhook_body(render_alert(call, now=NOW, timezone="UTC"), "slack"))
    section = body["blocks"][1]["text"]["text"]
    assert section.startswith("*<https://example.invalid/x%7COfficial-EU-portal|")


@pytest.mark.parametrize(("status", "error", "retry_after"), [
    (500, ChannelUnavailable, None),
    (503, ChannelUnavailable, None),
    (429, ChannelUnavailable, 7.0),
    (408, ChannelUnavailable, None),
    (404, ChannelRejected, None),
    (400, ChannelRejected, None),
    (301, ChannelRejected, None),
    (410, ChannelGone, None),
])
def test_answers_map_to_what_the_dispatcher_should_do(
        receiver: WebhookReceiver, status: int, error: type[Exception], retry_after: float | None) -> None:
    receiver.respond_with.append(status)
    with pytest.raises(error) as caught:
        post(WebhookNotifier(secret=SECRET), (Recipient(receiver.endpoint()), every_kind()["alert_new"]))
    assert type(caught.value) is error
    if isinstance(caught.value, ChannelUnavailable):
        assert caught.value.retry_after == retry_after


def test_an_unreachable_receiver_is_transient() -> None:
    with WebhookReceiver() as gone:
        url = gone.endpoint()
    with pytest.raises(ChannelUnavailable):
        post(WebhookNotifier(), (Recipient(url), every_kind()["alert_new"]))


def test_without_a_secret_no_signature_is_sent(receiver: WebhookReceiver) -> None:
    receiver.secret = None
    post(WebhookNotifier.from_settings(WebhookSettings(), {}),
         (Recipient(receiver.endpoint()), every_kind()["alert_new"]))
    assert "webhook-signature" not in receiver.received[0].headers
    assert "webhook-id" in receiver.received[0].headers


def test_bad_secrets_and_addresses_are_refused_early() -> None:
    with pytest.raises(ConfigError):
        WebhookNotifier(secret="whsec_not base64!")
    with pytest.raises(ChannelRejected, match="not an http"):
        post(WebhookNotifier(), (Recipient("ftp://example.org/x"), every_kind()["alert_new"]))



@pytest.mark.parametrize(("status", "value", "wait"), [
    (429, "nan", None),
    (429, "inf", None),
    (503, "1e20", None),
    (503, "-1", None),
    (429, "99999999999999999999", MAX_RETRY_AFTER),
    (503, "Wed, 25 Nov 2026 12:10:00 GMT", 600.0),  # HTTP-date: ten minutes after NOW
    (429, "Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
])
def test_a_hostile_retry_after_puts_the_row_back_to_pending_with_a_sane_time(
        engine: Engine, status: int, value: str, wait: float | None) -> None:
    """Once ``nan``, ``inf`` or ``1e20`` reached the dispatcher's backoff and raised there:
    the pass aborted and the row stayed ``sending``, claimed again after every lease."""
    with WebhookReceiver() as hooks:
        hooks.respond_with.append(status)
        hooks.retry_after[status] = value
        queue_one_alert(engine, NOW, "webhook", hooks.endpoint())
        dispatch_once(engine, "webhook", WebhookNotifier(clock=NOW.timestamp), NOW)
        assert len(hooks.received) == 1
    row = outbox_row(engine)
    assert (row.status, row.attempts, row.lease_until) == ("pending", 1, None)
    delay = row.next_attempt_at.replace(tzinfo=UTC) - NOW
    assert timedelta(0) < delay <= timedelta(hours=2)
    if wait is not None:
        assert delay >= timedelta(seconds=wait)


@pytest.mark.parametrize(("value", "wait"), [
    ("120", 120.0), ("nan", None), ("1e20", None), ("Wed, 25 Nov 2026 12:00:45 GMT", 45.0)])
def test_retry_after_reaches_the_error_as_a_finite_number(
        receiver: WebhookReceiver, value: str, wait: float | None) -> None:
    receiver.respond_with.append(503)
    receiver.retry_after[503] = value
    with pytest.raises(ChannelUnavailable) as caught:
        post(WebhookNotifier(secret=SECRET, clock=NOW.timestamp),
             (Recipient(receiver.endpoint()), every_kind()["alert_new"]))
    assert caught.value.retry_after == wait


# --- where a webhook may be sent ----------------------------------------------------------


def refused(notifier: WebhookNotifier, url: str) -> ChannelRejected:
    with pytest.raises(ChannelRejected) as caught:
        post(notifier, (Recipient(url), every_kind()["alert_new"]))
    return caught.value


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://10.255.255.1/hook", "set notifiers.webhook.allow_private = true"),
    ("http://[fd12::1]:8080/hook", "set notifiers.webhook.allow_private = true"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address: never allowed"),
    ("http://2852039166/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("http://169.254.1.1/hook", "link-local"),
])
def test_a_refused_address_is_never_connected_to(url: str, fragment: str) -> None:
    """Nothing is sent: pytest-socket would turn a connection to these into another error."""
    assert fragment in str(refused(WebhookNotifier(), url))


def test_allow_private_never_opens_metadata() -> None:
    notifier = WebhookNotifier.from_settings(WebhookSettings(allow_private=True), {})
    assert "never allowed" in str(refused(notifier, "http://169.254.169.254/latest/meta-data/"))


def test_credentials_in_the_url_are_refused_and_not_repeated(receiver: WebhookReceiver) -> None:
    url = receiver.endpoint().replace("http://", "http://alerts:hunter22@")
    error = refused(WebhookNotifier(secret=SECRET), url)
    assert "user name or password" in str(error) and "hunter22" not in str(error)
    assert receiver.received == []


def test_a_name_is_resolved_before_the_post_and_judged_by_its_addresses() -> None:
    """A host name that points at a private or metadata address is refused like the literal;
    every address it has is judged (with allow_private the private one passes, the metadata
    one does not)."""
    answers = {"hooks.intranet.example": [ip_address("10.0.0.9")],
               "sneaky.example": [ip_address("10.0.0.9"), ip_address("169.254.169.254")]}
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[Address]:
        asked.append((host, port))
        return answers[host]

    error = refused(WebhookNotifier(resolve=resolve), "https://hooks.intranet.example/hook")
    assert "hooks.intranet.example resolves to 10.0.0.9" in str(error)
    assert "notifiers.webhook.allow_private" in str(error)
    error = refused(WebhookNotifier(resolve=resolve, allow_private=True), "http://sneaky.example:81/x")
    assert "sneaky.example resolves to 169.254.169.254" in str(error)
    assert asked == [("hooks.intranet.example", 443), ("sneaky.example", 81)]


def test_localhost_and_loopback_are_sent_to(receiver: WebhookReceiver) -> None:
    async def no_lookup(host: str, port: int) -> list[Address]:
        raise AssertionError(f"{host} looked up")

    urls = [receiver.endpoint(), receiver.endpoint().replace("127.0.0.1", "localhost")]
    post(WebhookNotifier(secret=SECRET, resolve=no_lookup),
         *((Recipient(url), every_kind()["alert_new"]) for url in urls))
    assert [r.status for r in receiver.received] == [204, 204]


def test_a_private_address_in_the_outbox_becomes_a_dead_letter_not_a_request(engine: Engine) -> None:
    """An address stored before (or a file loaded with allow_private) and sent without it."""
    queue_one_alert(engine, NOW, "webhook", "http://10.255.255.1/hook")
    dispatch_once(engine, "webhook", WebhookNotifier(), NOW)
    row = outbox_row(engine)
    assert row.status == "dead" and "notifiers.webhook.allow_private" in row.last_error
