"""Per-channel modes and unsubscribing, end to end against real local servers.

The world of ``tests/test_delivery.py`` (the portal replay server, a fake Telegram Bot API,
a real SMTP server, aiosmtpd) with subscriber files of this module's own; the unsubscribe
link is taken from a real sent email's ``List-Unsubscribe`` header and POSTed over real
HTTP on 127.0.0.1 to the web app. Every test runs on SQLite and, when configured, on
PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.test_delivery import World, _move_h2_deadline
from tests.test_delivery import world as delivery_world  # noqa: F401 - the fixture `world` takes
from tests.test_health import serve
from tracker.config import load_config
from tracker.delivery.outbox import enqueue_digests, sync_subscribers
from tracker.delivery.subscribers import Subscriber
from tracker.delivery.unsubscribe import links, token_for_delivery
from tracker.store.db import opt_outs_table, subscribers_table, subscriptions_table
from tracker.yamlfiles import parse_model_text

H2_TITLE = "PEM and solid-oxide electrolysers"
PUBLIC = "https://alerts.example.org/callwatch"


@pytest.fixture
def world(request: pytest.FixtureRequest, engine: Engine) -> World:
    """test_delivery's world, whose subscriber files each test here replaces (``engine``,
    named here, gives the tests their backends: SQLite, and PostgreSQL when configured)."""
    found: World = request.getfixturevalue("delivery_world")
    assert found.engine is engine
    return found


def _subscribers(world: World, text: str) -> None:
    folder = Path(world.settings.subscribers.directory)
    for old in folder.glob("*.yaml"):
        old.unlink()
    (folder / "people.yaml").write_text(text, encoding="utf-8")


def test_one_profile_instant_on_telegram_and_a_daily_digest_by_email(world: World) -> None:
    _subscribers(world, """\
name: ana
timezone: Europe/Madrid
channels: {telegram: "1001", email: ana@example.org}
subscriptions:
  - {profile: hydrogen-valley, mode: instant, channels: [telegram]}
  - {profile: hydrogen-valley, mode: daily, channels: [email]}
""")
    world.cycle()
    alerts = [m for m in world.telegram.sent if H2_TITLE in m.text]
    assert [m.chat_id for m in alerts] == ["1001"]
    assert world.smtp.messages == []  # no instant email
    assert {r.channel for r in world.rows()} == {"telegram"}

    world.now = datetime(2026, 11, 26, 7, 5, tzinfo=UTC)  # 08:05 in Madrid: the digest is due
    sent = len(world.telegram.sent)
    assert enqueue_digests(world.engine, world.now, ["email", "telegram"]) == 1
    world.dispatch()
    assert len(world.telegram.sent) == sent  # no digest on Telegram
    (mail,) = [m.message for m in world.smtp.messages]
    assert mail["Subject"].startswith("callwatch daily digest")
    assert H2_TITLE in _plain(mail)


def _plain(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # SMTP's line ends


def _html(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _tokens(world: World) -> dict[tuple[str, str], str]:
    with world.engine.connect() as connection:
        return {(row.name, row.profile): row.token for row in connection.execute(
            sa.select(subscribers_table.c.name, subscriptions_table.c.profile,
                      subscriptions_table.c.token)
            .join(subscribers_table, subscribers_table.c.id == subscriptions_table.c.subscriber_id))}


def test_a_post_to_an_emails_list_unsubscribe_url_ends_exactly_that_subscription(
        world: World, tmp_path: Path) -> None:
    config = tmp_path / "callwatch.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[notifiers.email]\n", f'[notifiers.email]\npublic_url = "{PUBLIC}/"\n')
        + '[web]\nlisten = "127.0.0.1:0"\n[alerts]\nsummary_after = 0\n', encoding="utf-8")
    world.settings = load_config(config, environ={})
    # agri-food first: an email must name the subscription it was sent for, not the
    # subscriber's first one
    _subscribers(world, """\
name: ana
channels:
  email: ana@example.org
subscriptions:
  - profile: alentejo-agrifood
  - profile: hydrogen-valley
""")
    Path(world.settings.subscribers.directory, "bo.yaml").write_text(
        "name: bo\nchannels:\n  email: bo@example.org\nsubscriptions:\n"
        "  - profile: hydrogen-valley\n", encoding="utf-8")
    world.cycle()
    tokens = _tokens(world)
    assert set(tokens) == {("ana", "alentejo-agrifood"), ("ana", "hydrogen-valley"),
                           ("bo", "hydrogen-valley")}
    h2_mails = {m.rcpt_tos[0]: m.message for m in world.smtp.messages
                if H2_TITLE in m.message["Subject"]}
    mail = h2_mails["ana@example.org"]
    token = tokens[("ana", "hydrogen-valley")]
    expected = links(PUBLIC, token)
    assert expected is not None
    assert mail["List-Unsubscribe"] == f"<{expected.unsubscribe}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # the footer shows the same links, in both parts
    assert f'<a href="{expected.manage}" style="color:#0b4f9c">Manage your alerts</a> · ' \
           f'<a href="{expected.unsubscribe}"' in _html(mail)
    assert f"Manage your alerts: {expected.manage}\nUnsubscribe: {expected.unsubscribe}" \
        in _plain(mail)

    url = re.fullmatch(r"<(.+)>", mail["List-Unsubscribe"])
    assert url is not None and url[1].startswith(PUBLIC + "/")
    path = url[1].removeprefix(PUBLIC)  # what the https proxy in front passes on

    async def work(client: httpx.AsyncClient) -> dict[str, httpx.Response]:
        answers = {"confirm": await client.get(path)}
        answers["still"] = await client.get(path)  # a GET (a link preview) ends nothing
        answers["post"] = await client.post(path, content=b"List-Unsubscribe=One-Click",
                                            headers={"Content-Type":
                                                     "application/x-www-form-urlencoded"})
        answers["again"] = await client.post(path, data={"List-Unsubscribe": "One-Click"})
        answers["page"] = await client.get(path)
        answers["bad"] = await client.post("/unsubscribe/" + "x" * len(token))
        answers["bad_get"] = await client.get("/unsubscribe/" + "x" * len(token))
        answers["manage"] = await client.get(f"/manage/{token}")
        return answers

    answers = serve(world.settings, world.engine, lambda: True, work)
    confirm = answers["confirm"]
    assert confirm.status_code == 200
    assert f'<form method="post" action="/unsubscribe/{token}">' in confirm.text
    assert "hydrogen-valley" in confirm.text
    assert "default-src 'none'" in confirm.headers["Content-Security-Policy"]
    assert answers["post"].status_code == 200 and "You are unsubscribed" in answers["post"].text
    assert answers["again"].status_code == 200 and "You are unsubscribed" in answers["again"].text
    assert "You are unsubscribed" in answers["page"].text
    for bad in ("bad", "bad_get"):
        assert answers[bad].status_code == 404  # the site's page for an address that is not one
        assert "<h1>Not found</h1>" in answers[bad].text and "hydrogen-valley" not in answers[bad].text
    manage = answers["manage"]
    assert manage.status_code == 200  # an ended link still opens the manage page
    assert "alentejo-agrifood" in manage.text and "hydrogen-valley" not in manage.text
    assert f'href="/unsubscribe/{tokens[("ana", "alentejo-agrifood")]}"' in manage.text

    # exactly that subscription ended: ana's other one and bo's of the same profile stay
    left = {("ana", "alentejo-agrifood"), ("bo", "hydrogen-valley")}
    assert set(_tokens(world)) == left
    with world.engine.connect() as connection:
        ended = connection.execute(sa.select(opt_outs_table)).all()
    assert [(row.profile, row.channels, row.token) for row in ended] == [
        ("hydrogen-valley", ["email"], token)]

    # the file still lists it: the next cycle does not bring it back, and only bo hears of
    # the moved deadline
    before = len(world.smtp.messages)
    _move_h2_deadline(world)
    world.now += timedelta(hours=6)
    world.cycle()
    assert set(_tokens(world)) == left
    moved = [m for m in world.smtp.messages[before:]
             if re.search(r"(?i)\bdeadline [^\n]*→", _plain(m.message))]
    assert [m.rcpt_tos for m in moved] == [("bo@example.org",)]


def test_a_summary_names_an_instant_subscription_not_the_subscribers_first(engine: Engine) -> None:
    """A summary stands for instant alerts: its unsubscribe link must not end the daily
    digest the subscriber happens to have subscribed to first."""
    subscriber, problems = parse_model_text(
        "name: ana\nchannels: {email: ana@example.org}\nsubscriptions:\n"
        "  - {profile: alentejo-agrifood, mode: daily}\n"
        "  - {profile: hydrogen-valley, mode: instant}\n", Subscriber, "test")
    assert subscriber is not None, problems
    sync_subscribers(engine, [subscriber], datetime(2026, 11, 25, tzinfo=UTC))
    with engine.connect() as connection:
        subscriber_id, instant = connection.execute(
            sa.select(subscriptions_table.c.subscriber_id, subscriptions_table.c.token)
            .where(subscriptions_table.c.profile == "hydrogen-valley")).one()
        found = token_for_delivery(connection, subscriber_id, "email", "summary", None,
                                   f"summary|{subscriber_id}|email|0123abcd")
    assert found == instant
