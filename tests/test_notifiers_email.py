"""The email channel against a real SMTP server (aiosmtpd) on loopback; what it got is parsed back.

TLS too: STARTTLS and implicit TLS with a certificate from a private CA made for the run
(``tests/tls_support.py``), trusted through ``notifiers.email.ca_file``.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import socket
import ssl
import traceback
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from notifiers.email import EmailNotifier, EmailSettings, build_email
from tests.notifier_support import (
    HOSTILE_TITLE,
    LONG_TITLE,
    dispatch_once,
    every_kind,
    outbox_row,
    queue_one_email_alert,
)
from tests.tls_support import Authority
from tracker.cli import cli
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.errors import ChannelGone, ChannelUnavailable, ConfigError, TransientError
from tracker.pipeline import check_notifiers
from tracker.ports import Message, Recipient, SendResult


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def settings(sink: SmtpSink, **values: object) -> EmailSettings:
    return EmailSettings.model_validate({"host": sink.host, "port": sink.port,
                                         "sender": "callwatch <alerts@callwatch.example>",
                                         **values})


def deliver(notifier: EmailNotifier, *sends: tuple[Recipient, Message]) -> list[SendResult]:
    async def main() -> list[SendResult]:
        try:
            return [await notifier.send(recipient, message) for recipient, message in sends]
        finally:
            await notifier.aclose()
    return asyncio.run(main())


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    # SMTP carries CRLF line ends; compare the text as written
    return (plain.get_content().replace("\r\n", "\n"), rich.get_content().replace("\r\n", "\n"))


@pytest.mark.parametrize("title", [None, HOSTILE_TITLE, LONG_TITLE])
def test_every_message_kind_arrives_as_plain_and_html(sink: SmtpSink, title: str | None) -> None:
    messages = every_kind(title)
    notifier = EmailNotifier(settings(sink, unsubscribe_url="https://callwatch.example/u/{token}"))
    results = deliver(notifier, *((Recipient("ana@example.org", unsubscribe_token=f"tok-{n}"), m)
                                  for n, m in enumerate(messages.values())))
    assert len(sink.messages) == 4
    for n, (received, message) in enumerate(zip(sink.messages, messages.values(), strict=True)):
        mail = received.message
        assert received.rcpt_tos == ("ana@example.org",)
        assert received.mail_from == "alerts@callwatch.example"
        assert mail.get_content_type() == "multipart/alternative"
        assert mail["Subject"] == message.subject
        assert mail["From"] == "callwatch <alerts@callwatch.example>"
        assert mail["List-Unsubscribe"] == f"<https://callwatch.example/u/tok-{n}>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["Message-ID"] == results[n].message_ids[0]
        plain, rich = parts(mail)
        # the body as rendered, then the recipient's footer (no links without public_url)
        assert plain.startswith(message.text.rstrip() + "\n\n--\nSent by callwatch.")
        before = message.html.split("<!--callwatch:footer-->")[0]
        assert rich.startswith(before) and rich.rstrip().endswith("</html>")
        if title == HOSTILE_TITLE:
            assert '<script>alert("x")</script>' in plain
            assert "<script>" not in rich and "&lt;script&gt;" in rich


def test_without_an_unsubscribe_url_the_token_goes_in_a_mailto(sink: SmtpSink) -> None:
    deliver(EmailNotifier(settings(sink)),
            (Recipient("ana@example.org", unsubscribe_token="a b/c"), every_kind()["digest"]))
    mail = sink.messages[0].message
    assert mail["List-Unsubscribe"] == "<mailto:alerts@callwatch.example?subject=unsubscribe%20a%20b%2Fc>"
    assert mail["List-Unsubscribe-Post"] is None


def test_one_connection_carries_many_messages(sink: SmtpSink) -> None:
    notifier = EmailNotifier(settings(sink))
    message = every_kind()["alert_new"]

    async def main() -> set[int]:
        ids = set()
        for _ in range(5):
            await notifier.send(Recipient("ana@example.org"), message)
            assert notifier._smtp is not None
            ids.add(id(notifier._smtp))
        await notifier.aclose()
        return ids

    assert len(asyncio.run(main())) == 1
    assert sink.count == 5


def test_a_refused_mailbox_means_deactivate_and_the_connection_still_works(sink: SmtpSink) -> None:
    sink.refuse("gone@example.org")
    notifier = EmailNotifier(settings(sink))
    message = every_kind()["alert_new"]

    async def main() -> None:
        with pytest.raises(ChannelGone) as caught:
            await notifier.send(Recipient("gone@example.org"), message)
        assert caught.value.status == 550
        await notifier.send(Recipient("ana@example.org"), message)
        await notifier.aclose()

    asyncio.run(main())
    assert [m.rcpt_tos for m in sink.messages] == [("ana@example.org",)]


def test_a_temporary_failure_is_transient(sink: SmtpSink) -> None:
    sink.temporary_failures = 1
    notifier = EmailNotifier(settings(sink))
    message = every_kind()["alert_new"]

    async def main() -> None:
        with pytest.raises(ChannelUnavailable, match="451"):
            await notifier.send(Recipient("ana@example.org"), message)
        await notifier.send(Recipient("ana@example.org"), message)
        await notifier.aclose()

    asyncio.run(main())
    assert sink.count == 1


def test_an_unreachable_server_is_transient() -> None:
    with SmtpSink() as gone:
        port = gone.port
    notifier = EmailNotifier(EmailSettings(host="127.0.0.1", port=port, timeout=5))
    with pytest.raises(ChannelUnavailable, match="cannot connect"):
        deliver(notifier, (Recipient("ana@example.org"), every_kind()["alert_new"]))


def test_credentials_come_from_the_environment() -> None:
    with SmtpSink(credentials=("mailer", "s3cret")) as sink:
        env = {"CALLWATCH_SMTP_USERNAME": "mailer", "CALLWATCH_SMTP_PASSWORD": "s3cret"}
        deliver(EmailNotifier.from_settings(settings(sink), env),
                (Recipient("ana@example.org"), every_kind()["alert_new"]))
        assert sink.count == 1
        wrong = {**env, "CALLWATCH_SMTP_PASSWORD": "nope"}
        with pytest.raises(ConfigError, match="CALLWATCH_SMTP_USERNAME"):
            deliver(EmailNotifier.from_settings(settings(sink), wrong),
                    (Recipient("ana@example.org"), every_kind()["alert_new"]))
        assert sink.count == 1


def test_the_sink_can_write_eml_files(tmp_path: Path) -> None:
    with SmtpSink(keep=False, directory=tmp_path / "mail") as sink:
        deliver(EmailNotifier(settings(sink)), (Recipient("ana@example.org"), every_kind()["reminder"]))
    [eml] = (tmp_path / "mail").glob("*.eml")
    assert b"Subject: Deadline in 142 days" in eml.read_bytes()
    assert sink.messages == []


def test_subjects_cannot_inject_headers() -> None:
    message = every_kind()["alert_new"].model_copy(
        update={"subject": "Hello\r\nBcc: victim@example.org"})
    mime = build_email(message, sender="a@b.example", to="c@d.example")
    assert mime["Bcc"] is None
    assert "\n" not in str(mime["Subject"])


# --- TLS: STARTTLS and implicit TLS against a private CA --------------------------------

TLS_MODES = [pytest.param("starttls", False, id="starttls"), pytest.param("ssl", True, id="implicit-tls")]
USERNAME, PASSWORD = "mailer@relay.internal", "s3cret-Relay-Pa55"
SMTP_ENV = {"CALLWATCH_SMTP_USERNAME": USERNAME, "CALLWATCH_SMTP_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """The private CA a company's mail relay would be signed by."""
    return Authority.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def relay_tls(authority: Authority, tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """The relay's side: a certificate for 127.0.0.1 and localhost, signed by that CA."""
    return authority.server_context(tmp_path_factory.mktemp("relay"))


def one_alert(notifier: EmailNotifier) -> None:
    deliver(notifier, (Recipient("ana@example.org"), every_kind()["alert_new"]))


@pytest.mark.parametrize(("security", "implicit"), TLS_MODES)
def test_tls_to_a_relay_signed_by_the_ca_in_ca_file(
    authority: Authority, relay_tls: ssl.SSLContext, security: str, implicit: bool
) -> None:
    # the STARTTLS sink refuses MAIL before STARTTLS; the implicit one speaks only TLS
    with SmtpSink(tls=relay_tls, implicit_tls=implicit) as sink:
        one_alert(EmailNotifier(settings(sink, security=security, ca_file=str(authority.ca_file))))
    [received] = sink.messages
    assert received.tls
    assert received.rcpt_tos == ("ana@example.org",)
    assert received.message["Subject"] == every_kind()["alert_new"].subject


@pytest.mark.parametrize(("security", "implicit"), TLS_MODES)
def test_login_with_the_environment_credentials_happens_over_tls(
    authority: Authority, relay_tls: ssl.SSLContext, security: str, implicit: bool
) -> None:
    # over STARTTLS the sink offers AUTH only after the upgrade (aiosmtpd auth_require_tls)
    with SmtpSink(tls=relay_tls, implicit_tls=implicit, credentials=(USERNAME, PASSWORD)) as sink:
        email_settings = settings(sink, security=security, ca_file=str(authority.ca_file))
        one_alert(EmailNotifier.from_settings(email_settings, SMTP_ENV))
        with pytest.raises(ConfigError, match="rejected CALLWATCH_SMTP_USERNAME"):
            one_alert(EmailNotifier.from_settings(
                email_settings, {**SMTP_ENV, "CALLWATCH_SMTP_PASSWORD": "wrong-password"}))
    assert sink.logins == [(USERNAME, True)]
    assert [m.tls for m in sink.messages] == [True]


#: how each way a connection ends is brought about: (security, server speaks TLS first,
#: trust the CA, server offers STARTTLS, password, what the notifier raises or None)
ENDINGS = [
    pytest.param("starttls", False, True, True, PASSWORD, None, id="sent-starttls-quit"),
    pytest.param("ssl", True, True, True, PASSWORD, None, id="sent-implicit-tls-quit"),
    pytest.param("starttls", False, True, True, "wrong", "rejected CALLWATCH_SMTP_USERNAME",
                 id="login-rejected-starttls"),
    pytest.param("ssl", True, True, True, "wrong", "rejected CALLWATCH_SMTP_USERNAME",
                 id="login-rejected-implicit-tls"),
    pytest.param("starttls", False, False, True, PASSWORD, "cannot be verified",
                 id="starttls-untrusted"),
    pytest.param("ssl", True, False, True, PASSWORD, "cannot be verified",
                 id="implicit-tls-untrusted"),
    pytest.param("starttls", False, True, False, PASSWORD, "does not offer STARTTLS",
                 id="starttls-not-offered"),
]


@pytest.mark.parametrize(("security", "implicit", "trusted", "offers_tls", "password", "error"),
                         ENDINGS)
def test_every_way_a_connection_ends_leaves_no_socket_open(
    authority: Authority, relay_tls: ssl.SSLContext, security: str, implicit: bool,
    trusted: bool, offers_tls: bool, password: str, error: str | None,
) -> None:
    """A failed STARTTLS, implicit TLS or login ends the connection at once (aborted), and
    so does ``aclose`` after QUIT: its socket is closed on the loop's next turn, at the relay
    too, and nothing is left for garbage collection to find (no ResourceWarning).

    A TLS close waits for the server's answer on later turns, and the loop of a one-off run
    (`callwatch notify`, the start-up check) may end first: the socket then stayed open
    until collected (a ResourceWarning: unclosed transport)."""
    tls = relay_tls if offers_tls else None
    with SmtpSink(tls=tls, implicit_tls=implicit, credentials=(USERNAME, PASSWORD)) as sink:
        email_settings = settings(sink, security=security,
                                  ca_file=str(authority.ca_file) if trusted else None)
        notifier = EmailNotifier.from_settings(
            email_settings, {**SMTP_ENV, "CALLWATCH_SMTP_PASSWORD": password})

        async def run() -> list[str]:
            if error is None:
                await notifier.send(Recipient("ana@example.org"), every_kind()["alert_new"])
            else:
                with pytest.raises(ConfigError, match=error):
                    await notifier.check()
            await notifier.aclose()
            await asyncio.sleep(0)  # one turn of the loop
            return [repr(t) for t in open_transports_to(sink.port)]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            still_open = asyncio.run(run())
            gc.collect()  # what was left open would warn now, when collected
        at_the_relay = sink.open_connections(wait=2.0)
    assert still_open == []
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert at_the_relay == 0
    assert sink.count == (1 if error is None else 0)


def open_transports_to(port: int) -> list[asyncio.BaseTransport]:
    """This process's transports to ``port`` whose socket is still open."""
    return [o for o in gc.get_objects()
            if isinstance(o, asyncio.BaseTransport) and _open_socket_to(o, port)]


def _open_socket_to(transport: asyncio.BaseTransport, port: int) -> bool:
    try:
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
    except AttributeError:  # a closed TLS transport; the socket transport below it is checked
        return False
    return bool(peer) and peer[1] == port and sock is not None and sock.fileno() != -1


@pytest.mark.parametrize(("security", "implicit"), TLS_MODES)
def test_an_untrusted_certificate_is_a_configuration_error_that_names_ca_file(
    relay_tls: ssl.SSLContext, security: str, implicit: bool
) -> None:
    """Not transient: the same certificate fails the same way on every retry (see
    ``notifiers.email.untrusted_certificate``); nothing is sent, not even the login."""
    with SmtpSink(tls=relay_tls, implicit_tls=implicit, credentials=(USERNAME, PASSWORD)) as sink, \
            pytest.raises(ConfigError) as caught:
        one_alert(EmailNotifier.from_settings(settings(sink, security=security), SMTP_ENV))
    error = caught.value
    assert not isinstance(error, TransientError)
    assert error.key == "notifiers.email"
    assert str(error) == (
        f"notifiers.email: the TLS certificate of 127.0.0.1:{sink.port} cannot be verified "
        "(unable to get local issuer certificate); for a server whose certificate comes from "
        "a private CA, set notifiers.email.ca_file to that CA's PEM file")
    assert sink.logins == [] and sink.count == 0


def test_a_ca_file_that_did_not_sign_the_certificate_is_named(
    relay_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    other = Authority.create(tmp_path, "another CA")
    with SmtpSink(tls=relay_tls) as sink, pytest.raises(ConfigError) as caught:
        one_alert(EmailNotifier(settings(sink, security="starttls", ca_file=str(other.ca_file))))
    assert f"trusted neither by the system's CAs nor by {other.ca_file}" in str(caught.value)
    assert sink.count == 0


def test_a_certificate_for_another_name_points_at_host(authority: Authority, tmp_path: Path) -> None:
    relay = authority.server_context(tmp_path, names=("relay.internal",))
    with SmtpSink(tls=relay) as sink, pytest.raises(ConfigError) as caught:
        one_alert(EmailNotifier(settings(sink, security="starttls", ca_file=str(authority.ca_file))))
    assert "IP address mismatch" in str(caught.value)
    assert "notifiers.email.host must be a name the certificate lists" in str(caught.value)


def test_ca_file_adds_to_the_system_cas_rather_than_replacing_them(
    authority: Authority, relay_tls: ssl.SSLContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay signed by a CA of the system's store is still trusted with ``ca_file`` set."""
    public = Authority.create(tmp_path / "public", "public CA")
    monkeypatch.setenv("SSL_CERT_FILE", str(public.ca_file))  # stands in for the system's store
    with SmtpSink(tls=public.server_context(tmp_path / "public-relay")) as by_public, \
            SmtpSink(tls=relay_tls) as by_private:
        for sink in (by_public, by_private):
            one_alert(EmailNotifier(settings(sink, security="starttls",
                                             ca_file=str(authority.ca_file))))
        with pytest.raises(ConfigError, match=r"set notifiers\.email\.ca_file"):
            one_alert(EmailNotifier(settings(by_private, security="starttls")))
    assert [m.tls for m in by_public.messages + by_private.messages] == [True, True]


def test_the_start_up_check_stops_on_an_untrusted_certificate(relay_tls: ssl.SSLContext) -> None:
    """Like rejected credentials: callwatch does not start (exit 2) with a channel it cannot trust."""
    with SmtpSink(tls=relay_tls) as sink:
        notifier = EmailNotifier(settings(sink, security="starttls"))

        async def main() -> dict[str, str]:
            try:
                return await check_notifiers({"email": notifier})
            finally:
                await notifier.aclose()

        with pytest.raises(ConfigError, match=r"notifiers\.email\.ca_file"):
            asyncio.run(main())


def test_queued_mail_waits_for_the_certificate_to_be_trusted(
    engine: Engine, authority: Authority, relay_tls: ssl.SSLContext
) -> None:
    """Not a dead letter either: the dispatcher leaves the message pending, no attempt
    counted (and does not claim it again in the same pass, which used to spin forever),
    and sends it once ``ca_file`` is set."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    queue_one_email_alert(engine, now)

    with SmtpSink(tls=relay_tls) as sink:
        dispatch_once(engine, "email", EmailNotifier(settings(sink, security="starttls")), now)
        row = outbox_row(engine)
        assert (row.status, row.attempts) == ("pending", 0)
        dispatch_once(engine, "email", EmailNotifier(
            settings(sink, security="starttls", ca_file=str(authority.ca_file))), now)
    row = outbox_row(engine)
    assert (row.status, row.attempts) == ("sent", 1)
    assert [m.rcpt_tos for m in sink.messages] == [("ana@example.org",)]


def test_smtp_credentials_never_reach_a_log_line_or_an_error(
    authority: Authority, relay_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Every log record of this process at DEBUG (the test server's own ``mail.*`` aside)
    and every error raised: neither the user name nor the password, plain or base64 as
    AUTH PLAIN and AUTH LOGIN send them. Without the redaction ``tracker.logs`` adds."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    secrets = (USERNAME, PASSWORD, b64(USERNAME), b64(PASSWORD), b64(f"\0{USERNAME}\0{PASSWORD}"))
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG), socket.socket() as unused, \
            SmtpSink(tls=relay_tls, credentials=(USERNAME, PASSWORD)) as sink:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        trusted = settings(sink, security="starttls", ca_file=str(authority.ca_file))
        one_alert(EmailNotifier.from_settings(trusted, SMTP_ENV))
        for email_settings, env in [
            (trusted, {**SMTP_ENV, "CALLWATCH_SMTP_USERNAME": PASSWORD}),  # swapped by mistake
            (settings(sink, security="starttls"), SMTP_ENV),  # untrusted certificate
        ]:
            with pytest.raises(ConfigError) as caught:
                one_alert(EmailNotifier.from_settings(email_settings, env))
            errors.append(caught.value)
        down = EmailNotifier.from_settings(
            EmailSettings(host="127.0.0.1", port=unused.getsockname()[1], security="ssl",
                          ca_file=authority.ca_file, timeout=5), SMTP_ENV)

        async def check() -> dict[str, str]:
            try:
                return await check_notifiers({"email": down})  # logs why the channel is down
            finally:
                await down.aclose()

        asyncio.run(check())
    assert sink.logins == [(USERNAME, True)]
    ours = [r for r in caplog.records if not r.name.startswith("mail.")]
    assert any(r.name == "tracker.pipeline" for r in ours)  # the check above did log
    texts = [r.getMessage() for r in ours]
    texts += ["".join(traceback.format_exception(r.exc_info[1])) for r in ours if r.exc_info]
    texts += ["".join(traceback.format_exception(e)) for e in errors]
    leaks = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert leaks == []


def test_starttls_against_a_server_that_does_not_offer_it_names_the_setting(sink: SmtpSink) -> None:
    """A plain server never starts offering STARTTLS on a retry: it is the configuration."""
    with pytest.raises(ConfigError) as caught:
        one_alert(EmailNotifier(settings(sink, security="starttls")))
    assert not isinstance(caught.value, TransientError)
    assert caught.value.key == "notifiers.email.security"
    assert f"127.0.0.1:{sink.port} does not offer STARTTLS" in str(caught.value)
    assert sink.count == 0


# --- no password in clear text across the network --------------------------------------


def callwatch(tmp_path: Path, database_url: str, email: str, *args: str,
              env: dict[str, str] | None = None) -> Result:
    """The CLI with one config file: local folders, no source enabled, ``email`` as [notifiers.email].

    The database must have its schema (the ``engine`` fixture makes it): PostgreSQL is not
    upgraded in place."""
    config = tmp_path / "callwatch.toml"
    sources = "".join(f"[sources.{name}]\nenabled = false\n" for name in (
        "ft_portal", "eccp", "eismea", "hadea", "eit", "cascade_hub"))
    config.write_text(f'[profiles]\ndirectory = "profiles"\n[subscribers]\ndirectory = "subscribers"\n'
                      f"{sources}[notifiers.console]\nenabled = false\n[notifiers.email]\n{email}\n",
                      encoding="utf-8")
    return CliRunner().invoke(cli, ["--config", str(config), "--db", database_url, *args], env=env)


@pytest.mark.parametrize("command", [("notify",), ("run", "--once")])
def test_a_login_without_tls_to_another_host_stops_the_start_naming_the_setting(
        tmp_path: Path, database_url: str, engine: Engine, command: tuple[str, ...]) -> None:
    result = callwatch(tmp_path, database_url, 'host = "mail.example.org"\nsecurity = "none"',
                       *command, env=SMTP_ENV)
    assert result.exit_code == 2, result.output
    assert "notifiers.email.security" in result.stderr
    assert "mail.example.org:25" in result.stderr
    assert "notifiers.email.allow_plaintext_login" in result.stderr
    assert PASSWORD not in result.output and USERNAME not in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_login_without_tls_to_this_machine_still_works(
        tmp_path: Path, database_url: str, engine: Engine, host: str) -> None:
    queue_one_email_alert(engine, datetime.now(UTC) - timedelta(minutes=1))
    with SmtpSink(credentials=(USERNAME, PASSWORD)) as sink:
        result = callwatch(tmp_path, database_url, f'host = "{host}"\nport = {sink.port}',
                           "notify", env=SMTP_ENV)
        assert result.exit_code == 0, result.output
    assert sink.logins == [(USERNAME, False)] and sink.count == 1


def test_allow_plaintext_login_lets_it_start(tmp_path: Path, database_url: str, engine: Engine) -> None:
    result = callwatch(tmp_path, database_url,
                       'host = "mail.example.org"\nallow_plaintext_login = true', "notify", env=SMTP_ENV)
    assert result.exit_code == 0, result.output  # nothing is due: no connection is made


@pytest.mark.parametrize(("host", "security", "username", "allow", "refused"), [
    ("mail.example.org", "none", USERNAME, False, True),
    ("10.0.0.25", "none", USERNAME, False, True),  # a private network is still a network
    ("vm", "none", USERNAME, False, True),  # a name is not resolved, even one /etc/hosts maps to 127.0.0.1
    ("127.0.0.1.nip.io", "none", USERNAME, False, True),
    ("127.0.0.1", "none", USERNAME, False, False),
    ("127.0.0.53", "none", USERNAME, False, False),
    ("::1", "none", USERNAME, False, False),
    ("localhost", "none", USERNAME, False, False),
    ("LOCALHOST.", "none", USERNAME, False, False),
    ("mail.example.org", "none", None, False, False),  # no login, no password to give away
    ("mail.example.org", "starttls", USERNAME, False, False),
    ("mail.example.org", "ssl", USERNAME, False, False),
    ("mail.example.org", "none", USERNAME, True, False),
])
def test_which_logins_without_tls_are_refused(
        host: str, security: str, username: str | None, allow: bool, refused: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    email_settings = EmailSettings.model_validate(
        {"host": host, "security": security, "allow_plaintext_login": allow})
    env = {"CALLWATCH_SMTP_USERNAME": username, "CALLWATCH_SMTP_PASSWORD": PASSWORD} if username else {}
    if refused:
        with pytest.raises(ConfigError) as caught:
            EmailNotifier.from_settings(email_settings, env)
        assert caught.value.key == "notifiers.email.security"
        return
    with caplog.at_level(logging.WARNING, logger="notifiers.email"):
        EmailNotifier.from_settings(email_settings, env)
    warned = [r.getMessage() for r in caplog.records if r.name == "notifiers.email"]
    assert bool(warned) == (allow and security == "none")  # allowed, and said so once per start
    assert all(PASSWORD not in text and USERNAME not in text for text in warned)
