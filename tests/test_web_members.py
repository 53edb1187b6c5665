"""Member SMEs on the web: sign-up with double opt-in, the consent record, no enumeration,
CSRF and expiry, the preferences page, one-click unsubscribe, and web members surviving the
file sync of every cycle (issue 17).

The app runs in process at https://testserver (so the Secure cookies are kept), through
httpx's ASGI transport as in test_web_accounts.py (Starlette's Client wants httpx2 now,
and warns, which fails a test, with the httpx callwatch uses); emails go through the real
email channel to a local SMTP sink.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.members_support import (
    PROFILE,
    PUBLIC_URL,
    TENANT,
    cycle,
    mails_to,
    member_settings,
    plain,
    sync_files,
)
from tests.test_web_accounts import Browser
from tests.test_web_pages import _PageScan
from tracker.config import Settings
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store.db import (
    consents_table,
    opt_outs_table,
    subscribers_table,
    subscriptions_table,
)
from tracker.web import members
from tracker.web.app import create_app
from tracker.web.language import from_accept_language, pick
from tracker.web.security import CONTENT_SECURITY_POLICY

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET = "m" * 40
SITE = "https://testserver"
NEW = "mira@example.org"


class Client(Browser):
    """``get`` and ``post`` over the app, cookies kept between requests."""

    def get(self, path: str, **options: object) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: object) -> httpx.Response:
        return self.request("POST", path, **options)


class Clock:
    """The app's clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


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


def csrf(client: Client, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_up(client: Client, email: str = NEW, *, token: str | None = None,
            mode: str = "instant", **extra: str) -> tuple[int, str]:
    path = f"/t/{TENANT}/join"
    form = {"csrf_token": token if token is not None else csrf(client, path), "name": "Mira Nowak",
            "email": email, "language": "en", "timezone": "Europe/Warsaw", "profile": PROFILE,
            "mode": mode, "consent": "yes", **extra}
    response = client.post(path, data=form, headers={"origin": SITE})
    return response.status_code, response.text


def confirmation_link(smtp: SmtpSink, email: str = NEW) -> str:
    found = re.search(rf"{re.escape(PUBLIC_URL)}(/t/{TENANT}/join/\S+)", plain(mails_to(smtp, email)[-1]))
    assert found, plain(mails_to(smtp, email)[-1])
    return found.group(1)


def confirm(client: Client, path: str) -> str:
    """Confirm from the link's page; the preferences path it leads to."""
    response = client.post(path, data={"csrf_token": csrf(client, path)})
    assert response.status_code == 303, response.text
    return response.headers["location"].split("?")[0]


def web_subscribers(engine: Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(subscribers_table)
                                       .where(subscribers_table.c.origin == "web")))


def subscriptions_of(engine: Engine, subscriber_id: int) -> list[tuple[str, str, list[str] | None]]:
    with engine.connect() as connection:
        return [(r.profile, r.mode, r.channels) for r in connection.execute(
            sa.select(subscriptions_table).where(subscriptions_table.c.subscriber_id == subscriber_id)
            .order_by(subscriptions_table.c.profile))]


# -- pure parts ------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    ("de-AT,de;q=0.9,en;q=0.5", "de"), ("en;q=0.2, pl", "pl"), ("ja, zh-CN", None),
    ("", None), ("fr;q=0, it;q=0.1", "it"), ("pt-BR;q=bad, nl", "nl"),
])
def test_the_browser_language_is_the_best_one_callwatch_writes(header: str,
                                                                expected: str | None) -> None:
    assert from_accept_language(header) == expected


def test_a_page_speaks_the_asked_then_the_subscribers_then_the_browsers_language() -> None:
    assert pick("pl", "de", "fr") == "pl"
    assert pick(None, "de", "fr") == "de"
    assert pick("xx", None, "fr-BE") == "fr"
    assert pick(None, None, None) == "en"


def test_templates_translate_with_the_messages_catalogs_in_the_pages_language() -> None:
    import jinja2

    from tracker.web.language import install

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    install(environment)
    template = environment.from_string('{{ _("Usage: /unsubscribe NAME") }}|'
                                       '{% trans %}Usage: /unsubscribe NAME{% endtrans %}')
    assert template.render(language="de") == ("Verwendung: /unsubscribe NAME|"
                                              "Verwendung: /unsubscribe NAME")
    assert template.render() == "Usage: /unsubscribe NAME|Usage: /unsubscribe NAME"  # managers'
    assert template.render(language="xx") == template.render()


def test_one_subscription_per_profile_and_mode_on_the_channels_set_to_it() -> None:
    wanted = members.wanted_subscriptions(["a", "b"], {"email": "weekly", "telegram": "instant",
                                                       "webhook": members.OFF})
    assert [(s.profile, s.mode, s.channels) for s in wanted] == [
        ("a", "weekly", ("email",)), ("a", "instant", ("telegram",)),
        ("b", "weekly", ("email",)), ("b", "instant", ("telegram",))]


def test_a_confirmation_link_is_signed_and_expires() -> None:
    links = members.ConfirmationLinks(SECRET)
    sign_up, problems = members.parse_sign_up(
        {"name": " Mira  Nowak ", "email": "Mira@Example.org", "timezone": "Europe/Warsaw",
         "mode": "weekly", "consent": "yes", "language": "pl"}, [PROFILE], [PROFILE],
        tenant=TENANT, now=NOW, address="192.0.2.7")
    assert problems == [] and sign_up is not None
    assert (sign_up.name, sign_up.email, sign_up.language) == ("Mira Nowak", "mira@example.org", "pl")
    token = links.token(sign_up)
    assert links.sign_up(token, NOW + timedelta(hours=members.CONFIRM_HOURS)) == sign_up
    with pytest.raises(members.LinkExpired):
        links.sign_up(token, NOW + timedelta(hours=members.CONFIRM_HOURS, seconds=1))
    assert links.sign_up(token[:-3] + "abc", NOW) is None  # tampered
    assert members.ConfirmationLinks("x" * 40).sign_up(token, NOW) is None  # another secret


def test_a_sign_up_names_every_problem() -> None:
    sign_up, problems = members.parse_sign_up(
        {"name": "", "email": "nope", "timezone": "Mars/Base", "mode": "hourly"},
        ["not-offered"], [PROFILE], tenant=TENANT, now=NOW, address="x")
    assert sign_up is None and len(problems) == 6, problems


# -- sign-up over HTTP ---------------------------------------------------------------------------

def test_nothing_is_stored_or_sent_but_one_email_until_the_member_confirms(
        client: Client, engine: Engine, smtp: SmtpSink, settings: Settings) -> None:
    status, _page = sign_up(client)
    assert status == 200
    assert web_subscribers(engine) == []  # nothing stored before confirmation
    assert len(mails_to(smtp, NEW)) == 1
    link = confirmation_link(smtp)
    cycle(settings, engine, NOW + timedelta(minutes=5))  # a cycle before confirming
    assert len(mails_to(smtp, NEW)) == 1  # sends the unconfirmed address nothing
    page = client.get(link)  # a mail scanner's GET subscribes no one
    assert page.status_code == 200 and "Confirm" in page.text and web_subscribers(engine) == []
    manage = confirm(client, link)
    [member] = web_subscribers(engine)
    assert (member.tenant, member.language, member.timezone) == (TENANT, "en", "Europe/Warsaw")
    assert member.name.startswith("web-")
    assert subscriptions_of(engine, member.id) == [(PROFILE, "instant", ["email"])]
    assert client.get(manage).status_code == 200


def test_the_consent_is_recorded_with_its_words_times_and_addresses(
        client: Client, engine: Engine, smtp: SmtpSink, clock: Clock) -> None:
    page = client.get(f"/t/{TENANT}/join")
    shown = re.search(r'<label for="consent">(.*?)</label>', page.text, re.S)
    assert shown
    sign_up(client)
    clock.now = NOW + timedelta(hours=3)
    confirm(client, confirmation_link(smtp))
    with engine.connect() as connection:
        [consent] = connection.execute(sa.select(consents_table)).all()
    assert consent.consent_text == shown.group(1).strip()
    assert TENANT in consent.consent_text
    assert (consent.person_name, consent.email, consent.tenant) == ("Mira Nowak", NEW, TENANT)
    assert consent.signed_up_at == NOW and consent.confirmed_at == NOW + timedelta(hours=3)
    assert consent.signed_up_from == consent.confirmed_from == "127.0.0.1"


def test_a_link_confirmed_twice_makes_one_member(client: Client, engine: Engine,
                                                 smtp: SmtpSink) -> None:
    sign_up(client)
    link = confirmation_link(smtp)
    first = confirm(client, link)
    assert confirm(client, link) == first
    assert len(web_subscribers(engine)) == 1


def test_sign_up_does_not_tell_whether_the_address_is_a_member(
        client: Client, smtp: SmtpSink) -> None:
    """A member of the tenant (ana, from the manager's file) and a new address get the same
    page; only the mailbox learns the difference."""
    token = csrf(client, f"/t/{TENANT}/join")
    member = sign_up(client, "ana@example.org", token=token)
    new = sign_up(client, NEW, token=token)
    assert member[0] == new[0] == 200
    assert member[1].replace("ana@example.org", NEW) == new[1]
    assert "/manage/" in plain(mails_to(smtp, "ana@example.org")[-1])
    assert "/join/" not in plain(mails_to(smtp, "ana@example.org")[-1])
    assert "/join/" in plain(mails_to(smtp, NEW)[-1])


def test_sign_up_needs_the_csrf_token_and_this_site(client: Client, smtp: SmtpSink) -> None:
    assert sign_up(client, token="")[0] == 403
    assert sign_up(client, token="forged." + "x" * 20)[0] == 403
    token = csrf(client, f"/t/{TENANT}/join")
    response = client.post(f"/t/{TENANT}/join", headers={"origin": "https://evil.example"},
                           data={"csrf_token": token, "name": "M", "email": NEW, "timezone": "UTC",
                                 "profile": PROFILE, "mode": "daily", "consent": "yes"})
    assert response.status_code == 403
    assert smtp.messages == []


def test_an_expired_or_forged_confirmation_link_makes_no_member(
        client: Client, engine: Engine, smtp: SmtpSink, clock: Clock) -> None:
    sign_up(client)
    link = confirmation_link(smtp)
    clock.now = NOW + timedelta(hours=members.CONFIRM_HOURS, minutes=1)
    assert client.get(link).status_code == 410
    assert client.post(link, data={"csrf_token": csrf(client, f"/t/{TENANT}/join")}).status_code == 410
    clock.now = NOW
    assert client.get(link[:-4] + "AAAA").status_code == 404
    assert client.get(link.replace(TENANT, "alentejo")).status_code == 404
    assert client.post(link, data={}).status_code == 403  # in time, but no CSRF token
    assert web_subscribers(engine) == []


def test_sign_up_is_rate_limited(client: Client, smtp: SmtpSink) -> None:
    token = csrf(client, f"/t/{TENANT}/join")
    answers = [sign_up(client, f"m{n}@example.org", token=token)[0] for n in range(6)]
    assert answers == [200] * 5 + [429]
    assert len(smtp.messages) == 5


def test_an_unknown_tenant_has_no_sign_up(client: Client) -> None:
    assert client.get("/t/nobody/join").status_code == 404


def test_the_member_pages_keep_the_security_headers_and_no_inline_script(
        client: Client, engine: Engine, smtp: SmtpSink) -> None:
    sign_up(client)
    manage = confirm(client, confirmation_link(smtp))
    token = manage.rsplit("/", 1)[1]
    for path in (f"/t/{TENANT}/join", manage, f"/unsubscribe/{token}"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["referrer-policy"] == "same-origin", path  # the token stays here
        assert response.headers["cache-control"] == "no-store", path
        scan = _PageScan()
        scan.feed(response.text)
        assert scan.inline == [] and scan.script_text == [], path
        assert all(field in scan.labels for field in scan.fields), (path, scan.fields)


def test_the_pages_speak_the_browsers_language(client: Client) -> None:
    page = client.get(f"/t/{TENANT}/join", headers={"accept-language": "pl-PL,pl;q=0.9"})
    assert '<html lang="pl">' in page.text
    assert '<option value="pl" selected>' in page.text


# -- preferences ---------------------------------------------------------------------------------

def member_token(client: Client, smtp: SmtpSink, mode: str = "instant") -> str:
    sign_up(client, mode=mode)
    return confirm(client, confirmation_link(smtp)).rsplit("/", 1)[1]


def test_preferences_change_modes_settings_and_profiles_keeping_links(
        client: Client, engine: Engine, smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    path = f"/manage/{token}"
    response = client.post(path, data={
        "csrf_token": csrf(client, path), "profile": [PROFILE, "other"], "mode_email": "weekly",
        "language": "de", "timezone": "Europe/Berlin", "quiet_from": "22:00",
        "quiet_to": "07:00", "mute": ""})
    assert response.status_code == 200, response.text
    assert '<html lang="de">' in response.text
    [member] = web_subscribers(engine)
    assert (member.language, member.timezone, member.quiet_hours) == ("de", "Europe/Berlin",
                                                                      "22:00-07:00")
    assert subscriptions_of(engine, member.id) == [(PROFILE, "weekly", ["email"]),
                                                   ("other", "weekly", ["email"])]
    with engine.connect() as connection:  # the h2 subscription kept its row, so its links
        kept = connection.execute(sa.select(subscriptions_table.c.token)
                                  .where(subscriptions_table.c.profile == PROFILE,
                                         subscriptions_table.c.subscriber_id == member.id)).scalar()
    assert kept == token
    response = client.post(path, data={"csrf_token": csrf(client, path), "profile": "other",
                                       "mode_email": "daily", "language": "de",
                                       "timezone": "Europe/Berlin"})
    assert subscriptions_of(engine, member.id) == [("other", "daily", ["email"])]
    assert client.get(path).status_code == 200  # the dropped profile's link still opens the page


def test_preferences_need_the_csrf_token(client: Client, engine: Engine, smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    response = client.post(f"/manage/{token}", data={"mode_email": "weekly", "profile": PROFILE,
                                                      "timezone": "UTC", "language": "en"})
    assert response.status_code == 403
    [member] = web_subscribers(engine)
    assert subscriptions_of(engine, member.id) == [(PROFILE, "instant", ["email"])]


def test_a_bad_preference_is_named_and_nothing_changes(client: Client, engine: Engine,
                                                       smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    path = f"/manage/{token}"
    response = client.post(path, data={"csrf_token": csrf(client, path), "profile": "stolen",
                                       "mode_email": "hourly", "timezone": "Nowhere/Town",
                                       "quiet_from": "25:00", "language": "en"})
    assert response.status_code == 400 and response.text.count('class="problem"') == 4
    [member] = web_subscribers(engine)
    assert subscriptions_of(engine, member.id) == [(PROFILE, "instant", ["email"])]


def test_mute_and_leave(client: Client, engine: Engine, smtp: SmtpSink) -> None:
    token = member_token(client, smtp)
    path = f"/manage/{token}"
    client.post(path, data={"csrf_token": csrf(client, path), "profile": PROFILE,
                            "mode_email": "instant", "language": "en", "timezone": "UTC",
                            "mute": "168"})
    [member] = web_subscribers(engine)
    assert member.muted_until == NOW + timedelta(days=7)
    assert "Muted until 2 Dec 2026, 12:00 UTC." in client.get(path).text  # the member's zone
    response = client.post(f"{path}/leave", data={"csrf_token": csrf(client, path)})
    assert response.status_code == 200
    assert subscriptions_of(engine, member.id) == []
    assert "Nothing: you get no messages" in client.get(path).text


def test_a_subscriber_from_a_file_may_only_mute_or_end_here(
        client: Client, engine: Engine, settings: Settings) -> None:
    with engine.connect() as connection:
        ana = connection.execute(sa.select(subscribers_table)
                                 .where(subscribers_table.c.name == "ana")).one()
        token = connection.execute(sa.select(subscriptions_table.c.token)
                                   .where(subscriptions_table.c.subscriber_id == ana.id)
                                   .order_by(subscriptions_table.c.id)).scalars().first()
    path = f"/manage/{token}"
    page = client.get(path)
    assert 'name="profile"' not in page.text and "cluster manager keeps" in page.text
    client.post(path, data={"csrf_token": csrf(client, path), "mute": "24",
                            "language": "pl", "profile": "other", "mode_email": "off"})
    sync_files(settings, engine, NOW + timedelta(minutes=1))
    with engine.connect() as connection:
        after = connection.execute(sa.select(subscribers_table)
                                   .where(subscribers_table.c.id == ana.id)).one()
    assert after.muted_until == NOW + timedelta(days=1) and after.language == "en"
    assert subscriptions_of(engine, ana.id) == [(PROFILE, "instant", None), ("other", "daily", None)]


# -- one-click unsubscribe ------------------------------------------------------------------------

def test_a_post_ends_exactly_that_subscription_and_a_get_only_asks(
        client: Client, engine: Engine, settings: Settings) -> None:
    with engine.connect() as connection:
        ana = connection.execute(sa.select(subscribers_table.c.id)
                                 .where(subscribers_table.c.name == "ana")).scalar_one()
        tokens = dict(connection.execute(sa.select(subscriptions_table.c.profile,
                                                   subscriptions_table.c.token)
                                         .where(subscriptions_table.c.subscriber_id == ana)).all())
    path = f"/unsubscribe/{tokens[PROFILE]}"
    page = client.get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.text
    assert len(subscriptions_of(engine, ana)) == 2
    # as a mail program sends it (RFC 8058): no cookie, no CSRF token, no Origin
    bare = Client(client.app)
    done = bare.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert subscriptions_of(engine, ana) == [("other", "daily", None)]
    assert bare.post(path).status_code == 200  # a retry is answered alike
    sync_files(settings, engine, NOW + timedelta(minutes=1))  # the file still lists h2
    assert subscriptions_of(engine, ana) == [("other", "daily", None)]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(opt_outs_table)).scalar() == 1
    assert bare.post("/unsubscribe/not-a-token").status_code == 404
    assert bare.get("/unsubscribe/not-a-token").status_code == 404


# -- web members and the cycle --------------------------------------------------------------------

def test_a_cycle_keeps_a_web_member_and_alerts_them(
        client: Client, engine: Engine, smtp: SmtpSink, settings: Settings) -> None:
    token = member_token(client, smtp)
    [before] = web_subscribers(engine)
    cycle(settings, engine, NOW + timedelta(hours=1))
    [after] = web_subscribers(engine)
    assert after.id == before.id
    assert subscriptions_of(engine, after.id) == [(PROFILE, "instant", ["email"])]
    [alert] = [m for m in mails_to(smtp, NEW) if "H2-NEW" in plain(m)]
    # the footer and List-Unsubscribe lead to the web app (web.public_url), not the health server
    assert f"{PUBLIC_URL}/manage/{token}" in plain(alert)
    assert alert["List-Unsubscribe"] == f"<{PUBLIC_URL}/unsubscribe/{token}>"
    assert alert["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
