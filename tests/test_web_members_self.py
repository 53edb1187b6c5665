"""A member's own changes of address and erasure on the preferences page (issue 17): the new
address confirmed by a signed, expiring link before anything changes, the old address told,
the same answer whether or not the new address is a member, CSRF, and erasure with its
confirm step (and the refusal for a subscriber a file keeps).

Same world as test_web_members.py: the app in process, the real email channel to a local
SMTP sink.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.members_support import PUBLIC_URL, TENANT, mails_to, member_settings, plain, sync_files
from tests.test_web_members import (
    NEW,
    NOW,
    SECRET,
    Client,
    Clock,
    csrf,
    member_token,
    web_subscribers,
)
from tracker.config import Settings
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store.db import channels_table, consents_table, subscribers_table, subscriptions_table
from tracker.web import members
from tracker.web.app import create_app

MOVED = "mira.nowak@example.net"


@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink) -> Settings:
    return member_settings(tmp_path, smtp)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, engine: Engine, clock: Clock) -> Iterator[Client]:
    sync_files(settings, engine, NOW)
    yield Client(create_app(settings, engine, clock, secret=SECRET))


def ask_change(client: Client, token: str, email: str, csrf_token: str | None = None) -> tuple[int, str]:
    path = f"/manage/{token}"
    response = client.post(f"{path}/email", data={
        "csrf_token": csrf(client, path) if csrf_token is None else csrf_token,
        "new_email": email})
    return response.status_code, response.text


def change_link(smtp: SmtpSink, email: str = MOVED) -> str:
    text = plain(mails_to(smtp, email)[-1])
    found = re.search(rf"{re.escape(PUBLIC_URL)}(/email-change/\S+)", text)
    assert found, text
    return found.group(1)


def email_of(engine: Engine, subscriber_id: int) -> str:
    with engine.connect() as connection:
        return str(connection.execute(sa.select(channels_table.c.address).where(
            channels_table.c.subscriber_id == subscriber_id,
            channels_table.c.channel == "email")).scalar_one())


def consents_of(engine: Engine, subscriber_id: int) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(consents_table).where(
            consents_table.c.subscriber_id == subscriber_id).order_by(consents_table.c.id)))


# -- a new email address -------------------------------------------------------------------------

def test_a_new_address_counts_only_once_its_mailbox_confirms(
        client: Client, engine: Engine, smtp: SmtpSink, clock: Clock) -> None:
    token = member_token(client, smtp)
    [member] = web_subscribers(engine)
    status, page = ask_change(client, token, MOVED)
    assert status == 200 and "Check your new mailbox" in page
    assert email_of(engine, member.id) == NEW  # nothing changes before confirmation
    link = change_link(smtp)
    confirm_page = client.get(link)  # a mail scanner's GET changes nothing
    assert confirm_page.status_code == 200 and MOVED in confirm_page.text
    assert email_of(engine, member.id) == NEW
    clock.now = NOW + timedelta(hours=1)
    response = client.post(link, data={"csrf_token": csrf(client, link)})
    assert response.status_code == 303
    assert response.headers["location"] == f"/manage/{token}?email=1"
    assert email_of(engine, member.id) == MOVED
    first, second = consents_of(engine, member.id)
    assert (second.email, second.person_name, second.confirmed_at) == (
        MOVED, first.person_name, NOW + timedelta(hours=1))
    assert second.consent_text == members.consent_text(TENANT, "en") and second.nonce != first.nonce
    notice = plain(mails_to(smtp, NEW)[-1])  # the old address is told
    assert MOVED in notice and "instead of this address" in notice
    assert "Your email address is changed." in client.get(response.headers["location"]).text
    # the same link again changes nothing more
    assert client.post(link, data={"csrf_token": csrf(client, link)}).status_code == 303
    assert len(consents_of(engine, member.id)) == 2


def test_the_answer_is_the_same_whether_the_new_address_is_a_member(
        client: Client, engine: Engine, smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    path = f"/manage/{token}"
    csrf_token = csrf(client, path)
    member = ask_change(client, token, "ana@example.org", csrf_token)  # ana: a file member
    stranger = ask_change(client, token, MOVED, csrf_token)
    assert member[0] == stranger[0] == 200
    assert member[1] == stranger[1]  # byte for byte
    assert "/email-change/" not in plain(mails_to(smtp, "ana@example.org")[-1])
    assert "nothing changed" in plain(mails_to(smtp, "ana@example.org")[-1])
    assert "/email-change/" in plain(mails_to(smtp, MOVED)[-1])
    [web] = web_subscribers(engine)
    assert email_of(engine, web.id) == NEW


def test_a_change_of_address_needs_the_csrf_token(client: Client, engine: Engine,
                                                  smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    sent = len(smtp.messages)
    assert ask_change(client, token, MOVED, "")[0] == 403
    assert ask_change(client, token, MOVED, "forged." + "x" * 20)[0] == 403
    assert len(smtp.messages) == sent
    ask_change(client, token, MOVED)
    link = change_link(smtp)
    assert client.post(link, data={}).status_code == 403
    [member] = web_subscribers(engine)
    assert email_of(engine, member.id) == NEW


def test_an_expired_forged_or_stale_change_link_changes_nothing(
        client: Client, engine: Engine, smtp: SmtpSink, clock: Clock) -> None:
    token = member_token(client, smtp)
    [member] = web_subscribers(engine)
    ask_change(client, token, MOVED)
    link = change_link(smtp)
    clock.now = NOW + timedelta(hours=members.CONFIRM_HOURS, minutes=1)
    assert client.get(link).status_code == 410
    assert client.post(link, data={"csrf_token": csrf(client, f"/manage/{token}")}).status_code == 410
    clock.now = NOW
    assert client.get(link[:-4] + "AAAA").status_code == 404
    join_link = "/email-change/" + members.ConfirmationLinks(SECRET).token(members.SignUp(
        tenant=TENANT, name="x", email=MOVED, language="en", timezone="UTC", profiles=("h2",),
        mode="daily", signed_up_at=NOW, signed_up_from="x", consent_text="x"))
    assert client.get(join_link).status_code == 404  # a sign-up's token is not a change's
    assert email_of(engine, member.id) == NEW
    # a second change confirmed first makes the first link stale
    ask_change(client, token, "third@example.org")
    third = change_link(smtp, "third@example.org")
    assert client.post(third, data={"csrf_token": csrf(client, third)}).status_code == 303
    stale = client.post(link, data={"csrf_token": csrf(client, link)})
    assert stale.status_code == 409
    assert email_of(engine, member.id) == "third@example.org"


def test_a_file_subscriber_has_no_change_of_address_here(client: Client, engine: Engine,
                                                         smtp: SmtpSink) -> None:
    token = ana_token(engine)
    path = f"/manage/{token}"
    assert 'name="new_email"' not in client.get(path).text
    assert ask_change(client, token, MOVED)[0] == 400
    assert mails_to(smtp, MOVED) == []


def test_changes_of_address_are_rate_limited(client: Client, smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    csrf_token = csrf(client, f"/manage/{token}")
    answers = [ask_change(client, token, f"m{n}@example.org", csrf_token)[0] for n in range(6)]
    assert answers == [200] * 5 + [429]


# -- erasure ------------------------------------------------------------------------------------

def ana_token(engine: Engine) -> str:
    with engine.connect() as connection:
        ana = connection.execute(sa.select(subscribers_table.c.id)
                                 .where(subscribers_table.c.name == "ana")).scalar_one()
        return str(connection.execute(sa.select(subscriptions_table.c.token)
                                      .where(subscriptions_table.c.subscriber_id == ana)
                                      .order_by(subscriptions_table.c.id)).scalars().first())


def test_erase_my_data_asks_first_then_erases_everything(
        client: Client, engine: Engine, smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    path = f"/manage/{token}"
    assert f'href="{path}/erase"' in client.get(path).text
    page = client.get(f"{path}/erase")  # the confirm step erases nothing
    assert page.status_code == 200 and "cannot be undone" in page.text
    assert len(web_subscribers(engine)) == 1
    assert client.post(f"{path}/erase", data={}).status_code == 403  # CSRF
    assert client.post(f"{path}/erase", data={"csrf_token": "forged.x"}).status_code == 403
    assert len(web_subscribers(engine)) == 1
    response = client.post(f"{path}/erase", data={"csrf_token": csrf(client, f"{path}/erase")})
    assert response.status_code == 200 and "Your data is erased" in response.text
    assert web_subscribers(engine) == []
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(consents_table)
                                  ).scalar_one() == 0
    assert client.get(path).status_code == 404  # the link names no one now


def test_a_file_subscriber_is_told_to_ask_their_manager(client: Client, engine: Engine) -> None:
    token = ana_token(engine)
    path = f"/manage/{token}/erase"
    page = client.get(path)
    assert "subscriber file" in page.text and "Erase my data now" not in page.text
    response = client.post(path, data={"csrf_token": csrf(client, f"/manage/{token}")})
    assert response.status_code == 409 and "remove you from the file" in response.text
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(subscribers_table)
                                  .where(subscribers_table.c.name == "ana")).scalar_one() == 1
