"""The email channel against a real SMTP server (aiosmtpd) on loopback; what it got is parsed back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from notifiers.email import EmailNotifier, build_email
from tests.notifier_support import HOSTILE_TITLE, LONG_TITLE, every_kind
from tracker.config import EmailSettings
from tracker.errors import ChannelGone, ChannelUnavailable, ConfigError
from tracker.fakes.smtp_sink import SmtpSink
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
        assert plain.rstrip() == message.text.rstrip()
        assert rich.rstrip() == message.html.rstrip()
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
