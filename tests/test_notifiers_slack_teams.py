"""Slack and Teams as channels of their own (``channels.slack`` / ``channels.teams``),
delivered end to end to the local webhook receiver, and the bodies they render.

Both forms of a Slack or Teams subscriber must send the same bytes: the channel, and the
older ``webhook`` + ``webhook_format`` that stored subscribers and outbox rows still use.
The pinned digests are the bytes the webhook channel sent for these messages before the
Slack and Teams bodies moved out of ``tracker/delivery/render.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from notifiers import create_notifiers
from notifiers.slack import slack_body
from notifiers.teams import teams_body
from notifiers.webhook import webhook_body
from tests.notifier_support import HOSTILE_TITLE, NOW, big_digest, every_kind
from tracker.config import NotifierSettings
from tracker.delivery.dispatch import dispatch
from tracker.delivery.outbox import sync_subscribers
from tracker.delivery.subscribers import FilesError, load_directory
from tracker.demo.fakes.webhook_receiver import WebhookReceiver
from tracker.ports import Message
from tracker.store.db import deliveries_table, subscribers_table

#: sha256 of the bytes the webhook channel POSTs with ``webhook_format`` slack / teams (last
#: recomputed when issue 16 changed what messages say: sections, what changed in words)
BEFORE = {
    ("digest", "slack"): "8a39db70f63aacf9b74bca26d509eef23ccdec963685ff1ba0623c517c9da187",
    ("digest", "teams"): "c63412cc32806fe69b882b40365837a0712296c26f8022205c668d97e54fecc2",
    ("alert_changed", "slack"): "a3f6988ff7453d71bee662de65945d3c0603574d10bf80336be0590b0fb8aca3",
    ("alert_changed", "teams"): "a6d9542a4a3f39e6762f727c7c43dd846cb509c0412e56bec72554760a040f44",
    ("big", "slack"): "625cdd21f4c42305bbcc4d011098eb42d474f3863ac7e5b7f9470b9ce399baef",
    ("big", "teams"): "9685b71f6f0881e4ea78bf5ad88040ca15a7c6e757392545984c8071923167c7",
}


def sample(name: str) -> Message:
    return big_digest(80) if name == "big" else every_kind(HOSTILE_TITLE)[name]


@pytest.mark.parametrize(("name", "fmt"), sorted(BEFORE))
def test_the_bodies_are_the_bytes_the_webhook_format_sent_before(name: str, fmt: str) -> None:
    assert hashlib.sha256(webhook_body(sample(name), fmt)).hexdigest() == BEFORE[(name, fmt)]


def write_subscriber(directory: Path, name: str, channels: str) -> None:
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\nchannels:\n{channels}\nsubscriptions:\n  - profile: hydrogen-valley\n",
        encoding="utf-8")


def deliver_to_every_subscriber(engine: Engine, directory: Path, message: Message) -> None:
    """Subscriber files → tables → one pending message per channel row → one dispatch pass
    through the channels the registry builds."""
    subscribers = load_directory(directory)
    sync_subscribers(engine, subscribers, NOW)
    with engine.begin() as connection:
        ids = dict(connection.execute(sa.select(subscribers_table.c.name, subscribers_table.c.id)).all())
        for subscriber in subscribers:
            for channel in subscriber.channels.configured():
                connection.execute(deliveries_table.insert().values(
                    key=f"test|{subscriber.name}|{channel}", subscriber_id=ids[subscriber.name],
                    channel=channel, kind=message.kind, call_id=None,
                    message=message.model_dump(mode="json"), status="pending",
                    next_attempt_at=NOW, created_at=NOW))

    async def one_pass() -> None:
        notifiers = create_notifiers(NotifierSettings.model_validate({}), {})
        try:
            await dispatch(engine, notifiers, lambda: NOW)
        finally:
            for notifier in notifiers.values():
                await notifier.aclose()

    asyncio.run(one_pass())


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_a_slack_or_teams_subscriber_gets_the_bytes_of_the_webhook_format(
        engine: Engine, tmp_path: Path, fmt: str) -> None:
    message = every_kind(HOSTILE_TITLE)["digest"]
    with WebhookReceiver() as receiver:
        write_subscriber(tmp_path, "channel-form", f"  {fmt}: {receiver.endpoint('/channel')}")
        write_subscriber(tmp_path, "webhook-form", f"  webhook: {receiver.endpoint('/webhook')}\n"
                                                   f"  webhook_format: {fmt}")
        deliver_to_every_subscriber(engine, tmp_path, message)
        got = {r.path: r.body for r in receiver.received}
    assert sorted(got) == ["/channel", "/webhook"]
    assert got["/channel"] == got["/webhook"]
    assert hashlib.sha256(got["/channel"]).hexdigest() == BEFORE[("digest", fmt)]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(deliveries_table.c.channel, deliveries_table.c.status,
                                            deliveries_table.c.message)).all()
    assert sorted((r.channel, r.status) for r in rows) == [(fmt, "sent"), ("webhook", "sent")]
    stored = {r.channel: r.message for r in rows}
    assert json.loads(json.dumps(stored[fmt]))["document"] == message.document


@pytest.mark.parametrize("fmt", ["slack", "teams"])
def test_a_slack_or_teams_address_must_be_a_public_or_loopback_url(tmp_path: Path, fmt: str) -> None:
    write_subscriber(tmp_path, "intranet", f"  {fmt}: https://10.0.0.5/hook")
    with pytest.raises(FilesError) as caught:
        load_directory(tmp_path)
    assert f"channels.{fmt}" in str(caught.value)
    (tmp_path / "intranet.yaml").unlink()
    write_subscriber(tmp_path, "typo", f"  {fmt}: hooks.slack.com/services/T0/B0/x")
    with pytest.raises(FilesError, match="not an http") as caught:
        load_directory(tmp_path)
    assert "T0/B0/x" not in str(caught.value)  # the URL is the secret: never quoted


def test_slack_body_escapes_and_keeps_within_block_limits() -> None:
    body = slack_body(every_kind(HOSTILE_TITLE)["alert_changed"].document)
    assert body["text"].startswith("Deadline 16 Apr → 30 Apr 2026")
    assert body["blocks"][0]["type"] == "header" and len(body["blocks"][0]["text"]["text"]) <= 150
    section = body["blocks"][1]["text"]["text"]
    assert "&lt;script&gt;" in section and "<script>" not in section
    assert section.startswith("*<https://example.invalid/topic-details/HORIZON-B|")
    big = slack_body(big_digest(80).document)
    assert len(big["blocks"]) <= 50
    assert big["blocks"][-1]["type"] == "context"
    assert all(len(b["text"]["text"]) <= 3000 for b in big["blocks"] if b["type"] == "section")


def test_teams_body_is_an_adaptive_card_with_neutralised_markdown() -> None:
    body = teams_body(every_kind(HOSTILE_TITLE)["digest"].document)
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    texts = [json.dumps(block) for block in card["body"]]
    assert any("New calls" in t for t in texts)
    assert not any("[link](https" in t for t in texts)
    links = [b["selectAction"]["url"] for b in card["body"] if "selectAction" in b]
    assert links and all(url.startswith("https://example.invalid/") for url in links)
