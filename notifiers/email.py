"""The email channel: multipart plain text and HTML over SMTP (aiosmtplib), one kept connection.

Settings: ``[notifiers.email] host, port, security (none | starttls | ssl), sender,
unsubscribe_url, timeout``. Secrets: ``CALLWATCH_SMTP_USERNAME`` and
``CALLWATCH_SMTP_PASSWORD`` from the environment (no login when the username is unset).

Every message carries ``List-Unsubscribe`` with the subscription's token (RFC 2369): the
configured ``unsubscribe_url`` with ``{token}`` filled in, plus ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058, which requires an https URL); without a URL, a
``mailto:`` to the sender whose subject carries the token. ``Auto-Submitted:
auto-generated`` keeps vacation responders quiet.

One SMTP connection is kept open and reused (a new one per message would cap throughput
at the server's handshake rate); it is reopened once if the server dropped it while idle.

Errors: a refused recipient (550/551/553) raises ``ChannelGone``; another 5xx answer
``ChannelRejected``; 4xx answers, timeouts and lost connections ``ChannelUnavailable``; a
rejected login ``ConfigError``. A connection lost after the server accepted the data but
before it said so is the one window where a retry can duplicate a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import os
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import quote

import aiosmtplib

from tracker.config import EmailSettings
from tracker.errors import ChannelGone, ChannelRejected, ChannelUnavailable, ConfigError
from tracker.ports import Message, Recipient, SendResult

USERNAME_ENV = "CALLWATCH_SMTP_USERNAME"
PASSWORD_ENV = "CALLWATCH_SMTP_PASSWORD"  # noqa: S105  # the variable's name, not a password
_GONE_CODES = {550, 551, 553}
#: SMTP line ends, and no folding of long headers (a folded List-Unsubscribe URL trips
#: some mail programs); 998 is the RFC 5322 hard limit.
_POLICY = email.policy.SMTP.clone(max_line_length=998)


def unsubscribe_headers(sender: str, token: str | None, url_template: str) -> dict[str, str]:
    """List-Unsubscribe (and, for an https URL, List-Unsubscribe-Post) for one subscription."""
    if not token:
        return {}
    safe_token = quote(token, safe="")
    if url_template.startswith("https://"):
        url = url_template.replace("{token}", safe_token)
        return {"List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    address = sender.split("<")[-1].rstrip(">").strip()
    return {"List-Unsubscribe": f"<mailto:{address}?subject=unsubscribe%20{safe_token}>"}


def build_email(message: Message, *, sender: str, to: str, unsubscribe_token: str | None = None,
                unsubscribe_url: str = "") -> EmailMessage:
    """The MIME message: plain text first, HTML as the alternative, and the list headers."""
    mime = EmailMessage(policy=_POLICY)
    mime["From"] = sender
    mime["To"] = to
    mime["Subject"] = " ".join(message.subject.split())  # no header injection by newlines
    mime["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.split("@")[-1].rstrip(">").strip() or "localhost"
    mime["Message-ID"] = make_msgid(domain=domain)
    mime["Auto-Submitted"] = "auto-generated"
    for name, value in unsubscribe_headers(sender, unsubscribe_token, unsubscribe_url).items():
        mime[name] = value
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class EmailNotifier:
    """Sends rendered messages as email through one SMTP server."""

    channel = "email"

    def __init__(self, settings: EmailSettings, *, username: str | None = None,
                 password: str | None = None) -> None:
        self.settings = settings
        self._username = username or None
        self._password = password or None
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: EmailSettings,
                      environ: Mapping[str, str] | None = None) -> EmailNotifier:
        """Build from ``[notifiers.email]`` and the SMTP credentials in the environment."""
        env = os.environ if environ is None else environ
        return cls(settings, username=env.get(USERNAME_ENV), password=env.get(PASSWORD_ENV))

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        security = self.settings.security
        smtp = aiosmtplib.SMTP(
            hostname=self.settings.host, port=self.settings.port, timeout=self.settings.timeout,
            use_tls=security == "ssl", start_tls=security == "starttls",
            username=self._username, password=self._password,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ConfigError(f"the SMTP server rejected {USERNAME_ENV}/{PASSWORD_ENV}",
                              key="notifiers.email") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ChannelUnavailable(f"email: cannot connect to {self.settings.host}:"
                                     f"{self.settings.port}: {exc}") from exc
        self._smtp = smtp
        return smtp

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        """Send one message; see the module docstring for what each error means."""
        mime = build_email(message, sender=self.settings.sender, to=recipient.address,
                           unsubscribe_token=recipient.unsubscribe_token,
                           unsubscribe_url=self.settings.unsubscribe_url)
        envelope_from = parseaddr(self.settings.sender)[1] or self.settings.sender
        async with self._lock:
            for attempt in (1, 2):
                smtp = await self._connection()
                try:
                    # flattened here, not by aiosmtplib, to keep our no-folding policy
                    await smtp.sendmail(envelope_from, [recipient.address], mime.as_bytes())
                    break
                except aiosmtplib.SMTPServerDisconnected as exc:
                    self._drop()
                    if attempt == 2:
                        raise ChannelUnavailable(f"email: connection lost: {exc}") from exc
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    refused = exc.recipients[0] if exc.recipients else None
                    code = refused.code if refused is not None else 550
                    text = refused.message if refused is not None else str(exc)
                    await self._reset(smtp)
                    raise self._by_code(code, f"email: {recipient.address} refused: {text}",
                                        gone=True) from exc
                except aiosmtplib.SMTPResponseException as exc:
                    await self._reset(smtp)
                    raise self._by_code(exc.code, f"email: {exc.code} {exc.message}") from exc
                except (aiosmtplib.SMTPException, OSError) as exc:  # timeouts included
                    self._drop()
                    raise ChannelUnavailable(f"email: {exc}") from exc
        return SendResult(channel=self.channel, address=recipient.address,
                          message_ids=(str(mime["Message-ID"]),))

    @staticmethod
    def _by_code(code: int, text: str, gone: bool = False) -> Exception:
        if 400 <= code < 500:
            return ChannelUnavailable(text)
        if gone and code in _GONE_CODES:
            return ChannelGone(text, status=code)
        return ChannelRejected(text, status=code)

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """After a refused message the session may be mid-transaction: RSET, or start over."""
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    async def check(self) -> None:
        """Connect (TLS and login included) and keep the connection for the first send."""
        async with self._lock:
            await self._connection()

    async def aclose(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.quit()
        self._drop()
