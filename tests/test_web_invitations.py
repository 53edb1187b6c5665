"""Managers' invitations (issue 17): the sign-up's double opt-in email sent for a manager,
nothing stored before the invitee confirms, the consent naming the manager; rate-limited,
CSRF-checked, their own tenant only, every refused line reported (escaped)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.members_support import PROFILE, TENANT, mails_to, member_settings, plain, sync_files
from tests.test_web_members import NOW, SECRET, SITE, Client, confirm, web_subscribers
from tracker.config import Settings
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store.db import consents_table, users_table
from tracker.web import accounts, manage_members, members
from tracker.web.app import SESSION_COOKIE, create_app
from tracker.web.manage import manage_url

INVITE = manage_url(TENANT, "/invite")
MANAGER = "boss@example.org"
HOSTILE = '<img src=x onerror=alert(1)>'


# -- pure -----------------------------------------------------------------------------------------

def _parse(text: str, **form: str) -> members.Invitations:
    values = {"mode": "weekly", "timezone": "Europe/Warsaw", "language": "de", **form}
    return members.parse_invitations(text, values, [PROFILE], [PROFILE, "other"], tenant=TENANT,
                                     invited_by=MANAGER, now=NOW, address="192.0.2.9")


def test_each_line_is_an_invitee_with_the_forms_choices_or_a_reason() -> None:
    asked = _parse("\n  Mira@Example.org, Mira  Nowak, pl \nlars@example.org\n\nnope, Someone\n"
                   "x@example.org, Xavier, xx\nmira@example.org\n"
                   f"long@example.org, {'a' * 101}\nacme@example.org; Acme, Inc.")
    assert [(n, s.email, s.name, s.language) for n, _line, s in asked.sign_ups] == [
        (2, "mira@example.org", "Mira Nowak", "pl"), (3, "lars@example.org", "", "de"),
        (9, "acme@example.org", "Acme, Inc.", "de")]
    assert [(n, why) for n, _line, why in asked.refused] == [
        (5, "not a valid email address"),
        (6, "'xx' is not a language callwatch writes (en, de, fr, es, it, pl, pt, nl, cs)"),
        (7, "listed before (invited once)"), (8, "the name is longer than 100 characters")]
    first = asked.sign_ups[0][2]
    assert (first.invited_by, first.profiles, first.mode, first.timezone, first.tenant) == (
        MANAGER, (PROFILE,), "weekly", "Europe/Warsaw", TENANT)
    assert first.consent_text == members.consent_text(TENANT, "pl") != members.consent_text(
        TENANT, "en")  # in the invitee's language, the words the confirmation page shows
    assert asked.problems == ()


def test_the_shared_choices_are_checked_once_and_nothing_is_invited_then() -> None:
    asked = _parse("a@example.org", mode="hourly", timezone="Mars/Base")
    assert asked.sign_ups == () and len(asked.problems) == 2
    assert _parse("  \n").problems == ("Give at least one email address.",)
    many = "\n".join(f"m{n}@example.org" for n in range(members.MAX_INVITATIONS + 1))
    assert _parse(many).sign_ups == ()


def test_an_invitation_link_carries_the_manager_and_an_old_link_reads_without() -> None:
    links = members.ConfirmationLinks(SECRET)
    [(_n, _line, sign_up)] = _parse("a@example.org").sign_ups
    assert links.sign_up(links.token(sign_up), NOW) == sign_up
    payload = sign_up.payload()
    del payload["i"]  # a link mailed before invitations existed
    assert members.SignUp.from_payload(payload).invited_by == ""


# -- over HTTP ------------------------------------------------------------------------------------

@pytest.fixture
def settings(tmp_path: Path, smtp: SmtpSink) -> Settings:
    return member_settings(tmp_path, smtp)


def _client(settings: Settings, engine: Engine, email: str) -> Client:
    client = Client(create_app(settings, engine, lambda: NOW, secret=SECRET))
    cookie = accounts.Sessions(SECRET).cookie(accounts.get_user(engine, email))
    client.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
    return client


@pytest.fixture
def site(settings: Settings, engine: Engine) -> Engine:
    sync_files(settings, engine, NOW)
    with engine.begin() as connection:
        connection.execute(users_table.insert(), [
            {"email": email, "tenant": tenant, "role": "manager", "password_hash": "-",
             "password_changed_at": NOW, "created_at": NOW}
            for email, tenant in ((MANAGER, TENANT), ("rita@example.org", "alentejo-agrifood"))])
    return engine


@pytest.fixture
def boss(settings: Settings, site: Engine) -> Iterator[Client]:
    yield _client(settings, site, MANAGER)


def _csrf(client: Client) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(manage_url(TENANT, "/members")).text)
    assert found
    return found.group(1)


def _invite(client: Client, text: str, token: str | None = None, **form: str) -> tuple[int, str]:
    data = {"csrf_token": token if token is not None else _csrf(client), "invitees": text,
            "profile": PROFILE, "mode": "weekly", "language": "en", "timezone": "Europe/Berlin",
            **form}
    response = client.post(INVITE, data=data, headers={"origin": SITE})
    return response.status_code, response.text


def test_an_invitee_gets_the_sign_up_email_in_their_language_and_confirms(
        boss: Client, site: Engine, smtp: SmtpSink) -> None:
    status, page = _invite(boss, f"ola@example.org, Ola, pl\nana@example.org\n{HOSTILE}\n"
                                 "jo@example.org")
    assert status == 200, page
    assert "Invitation sent to 2 addresses" in page
    assert "a member of this cluster already: not invited" in page  # ana, from the file
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert web_subscribers(site) == []  # nothing stored before the invitee confirms
    assert mails_to(smtp, "ana@example.org") == []
    [polish] = mails_to(smtp, "ola@example.org")
    assert polish["Subject"] == "hydrogen-valley zaprasza Cię do powiadomień callwatch"
    link = re.search(rf"https://calls\.example\.org(/t/{TENANT}/join/\S+)", plain(polish))
    assert link
    assert len(mails_to(smtp, "jo@example.org")) == 1
    confirm(Client(boss.app), link.group(1))  # the invitee, in a browser of their own
    [member] = web_subscribers(site)
    assert (member.tenant, member.language, member.timezone) == (TENANT, "pl", "Europe/Berlin")
    with site.connect() as connection:
        consent = connection.execute(sa.select(consents_table)).one()
    assert (consent.invited_by, consent.email, consent.person_name) == (
        MANAGER, "ola@example.org", "Ola")
    assert consent.consent_text == members.consent_text(TENANT, "pl")


def test_an_invitation_needs_the_forms_csrf_token(boss: Client, smtp: SmtpSink) -> None:
    status, page = _invite(boss, "ola@example.org", token="forged")
    assert status == 403 and "Form expired" in page
    assert smtp.messages == []


def test_another_tenants_manager_cannot_invite_here(settings: Settings, site: Engine,
                                                   smtp: SmtpSink) -> None:
    rita = _client(settings, site, "rita@example.org")
    token = re.search(r'name="csrf_token" value="([^"]+)"', rita.get("/account").text)
    assert token
    status, _page = _invite(rita, "ola@example.org", token=token.group(1))
    assert status == 403
    assert rita.get(manage_url(TENANT, "/invite")).status_code == 403
    assert smtp.messages == []


def test_a_manager_sends_a_limited_number_an_hour(settings: Settings, site: Engine,
                                                 smtp: SmtpSink,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manage_members, "INVITES_PER_HOUR", 2)
    boss = _client(settings, site, MANAGER)
    status, page = _invite(boss, "a@example.org\nb@example.org\nc@example.org")
    assert status == 200 and "Invitation sent to 2 addresses" in page
    assert "not sent: 2 invitations an hour at most" in page
    assert mails_to(smtp, "c@example.org") == []
    status, page = _invite(boss, "d@example.org")
    assert status == 400 and mails_to(smtp, "d@example.org") == []


def test_the_members_page_offers_the_form_with_labels(boss: Client) -> None:
    page = boss.get(manage_url(TENANT, "/members")).text
    form = re.search(r'<form[^>]*action="/t/hydrogen-valley/manage/invite"[^>]*>(.*?)</form>',
                     page, re.S)
    assert form and 'name="csrf_token"' in form.group(1)
    for field in re.findall(r'id="(invite[^"]*|invitees)"', form.group(1)):
        assert f'for="{field}"' in form.group(1), field
