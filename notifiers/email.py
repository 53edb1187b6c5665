"""The email channel: multipart plain text and HTML over SMTP (aiosmtplib), one kept connection.

Settings: ``[notifiers.email] host, port, security (none | starttls | ssl), sender,
public_url, unsubscribe_url, timeout, ca_file, allow_plaintext_login``. Secrets: ``CALLWATCH_SMTP_USERNAME``
and ``CALLWATCH_SMTP_PASSWORD`` from the environment (no login when the username is unset).
A login with ``security = "none"`` is refused at start (``check_plaintext_login``) unless the
host is this machine or ``allow_plaintext_login`` is set.

Every message carries ``List-Unsubscribe`` with the token of the subscription it was sent
for (RFC 2369): callwatch's own ``<public_url>/unsubscribe/<token>`` (or the configured
``unsubscribe_url`` with ``{token}`` filled in), plus ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058, which requires an https URL); without a URL, a
``mailto:`` to the sender whose subject carries the token. Its footer shows the same
subscription's "Manage your alerts · Unsubscribe" links (``tracker.delivery.unsubscribe``:
the URL shapes, the footer, and ending a subscription). ``Auto-Submitted:
auto-generated`` keeps vacation responders quiet.

TLS (``starttls`` or ``ssl``) always verifies the server's certificate and name. The CAs
trusted are the system's plus, when set, those in ``ca_file``: a relay signed by a company's
internal CA needs its CA added, and adding rather than replacing means that pointing
``host`` at a public provider later still works (a public CA will not issue a certificate
for an internal name, so the system's CAs add no way in for such a relay).

One SMTP connection is kept open and reused (a new one per message would cap throughput
at the server's handshake rate); it is reopened once if the server dropped it while idle.

Errors: a refused recipient (550/551/553) raises ``ChannelGone``; another 5xx answer
``ChannelRejected``; 4xx answers, timeouts and lost connections ``ChannelUnavailable``; a
rejected login, a server certificate that cannot be verified and ``starttls`` against a
server that offers no STARTTLS ``ConfigError`` (see ``untrusted_certificate`` for why). A
connection lost after the server accepted the data but before it said so is the one window
where a retry can duplicate a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import os
import re
import ssl
from collections.abc import Mapping
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from tracker.destinations import is_loopback_host
from tracker.errors import ChannelGone, ChannelRejected, ChannelUnavailable, ConfigError
from tracker.ports import ChannelPlugin, ChannelSettings, Message, Notifier, Recipient, SendResult

if TYPE_CHECKING:
    import aiosmtplib

log = logging.getLogger(__name__)
USERNAME_ENV = "CALLWATCH_SMTP_USERNAME"
PASSWORD_ENV = "CALLWATCH_SMTP_PASSWORD"  # noqa: S105  # the variable's name, not a password
_GONE_CODES = {550, 551, 553}
#: SMTP line ends, and no folding of long headers (a folded List-Unsubscribe URL trips
#: some mail programs); 998 is the RFC 5322 hard limit.
_POLICY = email.policy.SMTP.clone(max_line_length=998)
#: OpenSSL's verify codes for a certificate issued to another name or address
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")


class EmailSettings(ChannelSettings):
    host: str = Field("localhost", description="SMTP server")
    port: int = Field(25, gt=0, lt=65536, description="SMTP port")
    security: Literal["none", "starttls", "ssl"] = Field(
        "none", description="`none`, `starttls` or `ssl`"
    )
    sender: str = Field("callwatch@localhost", description="the From address")
    public_url: str = Field(
        "", description="the base URL at which people reach callwatch's pages (the web app, "
        "`web.listen`, behind your https proxy), e.g. "
        "`https://alerts.example.org`: every email links `<public_url>/manage/<token>` and "
        "`<public_url>/unsubscribe/<token>` in its footer and List-Unsubscribe (one-click, "
        "RFC 8058, when https). Empty: no links, and List-Unsubscribe is a mailto: to the sender",
        json_schema_extra={"shown_default": "empty (no links)"},
    )
    unsubscribe_url: str = Field(
        "", description="overrides the List-Unsubscribe target: an https URL containing "
        "`{token}` (also enables one-click List-Unsubscribe-Post). Empty: "
        "`<public_url>/unsubscribe/<token>`"
    )

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                    or parts.fragment or any(c.isspace() for c in value):
                raise ValueError("expected an http:// or https:// base URL such as "
                                 "https://alerts.example.org (no query)")
        return value.rstrip("/")
    timeout: float = Field(30.0, gt=0, description="seconds to wait for the SMTP server")
    ca_file: Path | None = Field(
        None, description="PEM file of CA certificates trusted for the SMTP server's "
        "certificate in addition to the system's (a relay signed by an internal CA); a "
        "relative path is read beside the config file; checked at start (missing, unreadable "
        "or not PEM: exit 2); only with `security` `starttls` or `ssl`. Empty: the system's "
        "CAs only"
    )
    allow_plaintext_login: bool = Field(
        False, description="with `security` `none`, a login (`CALLWATCH_SMTP_USERNAME` set) to "
        "a host other than this machine is refused at start (exit 2) because the password "
        "would cross the network unencrypted; `true` accepts it (a trusted LAN). \"This "
        "machine\" is `localhost` or a loopback address as written in `host` (another name is "
        "not resolved)"
    )

    @field_validator("ca_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ca_file")
    @classmethod
    def _readable_pem(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Checked at start: a CA file that is missing, unreadable or holds no PEM certificate."""
        if value is None:
            return None
        if info.data.get("security") == "none":
            raise ValueError('only used over TLS: set security to "starttls" or "ssl"')
        path = value.expanduser()
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except OSError as exc:
            if not isinstance(exc, ssl.SSLError):
                raise ValueError(f"cannot read the CA file: {exc.strerror or exc}") from exc
            raise ValueError("not a PEM file of CA certificates") from exc
        return path


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    """Verify the server's certificate and name against the system's CAs plus ``ca_file``."""
    context = ssl.create_default_context()
    if settings.ca_file is not None:
        try:
            context.load_verify_locations(cafile=settings.ca_file)
        except OSError as exc:  # checked at start; gone or changed since
            raise ConfigError(f"cannot load {settings.ca_file}: {exc}",
                              key="notifiers.email.ca_file") from exc
    return context


def _verification_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed somewhere in ``exc``'s chain, if that is what failed.

    aiosmtplib wraps it for implicit TLS (``SMTPConnectError`` from the handshake's
    ``OSError``) and lets it through as it is for STARTTLS.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def untrusted_certificate(settings: EmailSettings, failure: ssl.SSLCertVerificationError) -> ConfigError:
    """The error for a server certificate that did not pass verification.

    Permanent, and a ``ConfigError`` rather than either channel error:

    - not ``ChannelUnavailable`` (transient): retrying against the same certificate with
      the same trusted CAs fails the same way every time; backoff would only hide the
      problem for hours and then dead-letter every message;
    - not ``ChannelRejected`` (permanent, per message): the dispatcher would dead-letter
      each queued message one by one although none of them is at fault;
    - ``ConfigError`` is what a rejected login already is: nothing can be sent through this
      channel until its settings (``ca_file``, ``host``) or the server's certificate are
      fixed. The daemon's start-up check (``check_notifiers``) stops it with exit 2; at
      send time the dispatcher logs it and leaves the channel's messages pending, no
      attempt counted, so they go out once the fault is fixed. That suits an expired
      certificate too: once the server renews it, the next pass sends, nothing lost.
    """
    where = f"{settings.host}:{settings.port}"
    reason = failure.verify_message or str(failure)
    if failure.verify_code in _NAME_MISMATCH:
        hint = "notifiers.email.host must be a name the certificate lists"
    elif settings.ca_file is not None:
        hint = (f"it is trusted neither by the system's CAs nor by {settings.ca_file}: "
                "notifiers.email.ca_file must hold the CA that signed it")
    else:
        hint = ("for a server whose certificate comes from a private CA, set "
                "notifiers.email.ca_file to that CA's PEM file")
    return ConfigError(f"the TLS certificate of {where} cannot be verified ({reason}); {hint}",
                       key="notifiers.email")


def check_plaintext_login(settings: EmailSettings, username: str | None) -> None:
    """Refuse a login without TLS to another machine: the password would cross the network
    in clear text (AUTH PLAIN and LOGIN are only base64).

    ConfigError (exit 2 at start) unless ``allow_plaintext_login`` accepts it, which is
    then logged as a warning. "This machine" is ``localhost`` or a loopback address as
    written in ``host``; another name is not resolved (a DNS answer can change after the check).
    """
    if username is None or settings.security != "none" or is_loopback_host(settings.host):
        return
    where = f"{settings.host}:{settings.port}"
    if not settings.allow_plaintext_login:
        raise ConfigError(
            f'"none" would send the SMTP login ({USERNAME_ENV}, {PASSWORD_ENV}) unencrypted to '
            f'{where}; set it to "starttls" or "ssl", or set '
            "notifiers.email.allow_plaintext_login = true to accept that (a relay on a network "
            "you trust)", key="notifiers.email.security")
    log.warning("channel=email logs in to %s without TLS (notifiers.email.allow_plaintext_login)",
                where)


def unsubscribe_headers(sender: str, token: str | None, url_template: str,
                        public_url: str = "") -> dict[str, str]:
    """List-Unsubscribe (and, for an https URL, List-Unsubscribe-Post) for one subscription:
    ``url_template`` with the token, else callwatch's own ``<public_url>/unsubscribe/<token>``
    (``tracker.delivery.unsubscribe``), else a mailto: to the sender."""
    if not token:
        return {}
    safe_token = quote(token, safe="")
    from tracker.delivery.unsubscribe import links  # Jinja: loaded when a mail is built

    own = links(public_url, safe_token)
    url = url_template.replace("{token}", safe_token) if url_template else (
        own.unsubscribe if own is not None else "")
    if url.startswith("https://"):
        return {"List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    address = sender.split("<")[-1].rstrip(">").strip()
    mailto = f"<mailto:{address}?subject=unsubscribe%20{safe_token}>"
    return {"List-Unsubscribe": f"<{url}>, {mailto}" if url.startswith("http://") else mailto}


def build_email(message: Message, *, sender: str, to: str, unsubscribe_token: str | None = None,
                unsubscribe_url: str = "", public_url: str = "") -> EmailMessage:
    """The MIME message: plain text first, HTML as the alternative, and the list headers;
    the footer carries the recipient's manage and unsubscribe links."""
    mime = EmailMessage(policy=_POLICY)
    mime["From"] = sender
    mime["To"] = to
    mime["Subject"] = " ".join(message.subject.split())  # no header injection by newlines
    # the clock the body was written with (a demo's or a test's too), so the two agree
    mime["Date"] = (format_datetime(message.date.astimezone(UTC), usegmt=True)
                    if message.date is not None else formatdate(localtime=False, usegmt=True))
    domain = sender.split("@")[-1].rstrip(">").strip() or "localhost"
    mime["Message-ID"] = make_msgid(domain=domain)
    mime["Auto-Submitted"] = "auto-generated"
    for name, value in unsubscribe_headers(sender, unsubscribe_token, unsubscribe_url,
                                           public_url).items():
        mime[name] = value
    token = quote(unsubscribe_token, safe="") if unsubscribe_token else ""
    from tracker.delivery.unsubscribe import links, with_footer

    text, html = with_footer(message.text, message.html, links(public_url, token),
                             message.language)
    mime.set_content(text)
    mime.add_alternative(html, subtype="html")
    return mime


class EmailNotifier:
    """Sends rendered messages as email through one SMTP server."""

    channel = "email"

    def __init__(self, settings: EmailSettings, *, username: str | None = None,
                 password: str | None = None) -> None:
        self.settings = settings
        self._username = username or None
        self._password = password or None
        check_plaintext_login(settings, self._username)
        self._smtp: aiosmtplib.SMTP | None = None
        self._tls: ssl.SSLContext | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: EmailSettings,
                      environ: Mapping[str, str] | None = None) -> EmailNotifier:
        """Build from ``[notifiers.email]`` and the SMTP credentials in the environment."""
        env = os.environ if environ is None else environ
        return cls(settings, username=env.get(USERNAME_ENV), password=env.get(PASSWORD_ENV))

    async def _connection(self) -> aiosmtplib.SMTP:
        import aiosmtplib  # here, not at the top: loading the channel's settings stays cheap

        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        security = self.settings.security
        if security != "none" and self._tls is None:  # once: it reads the system's CAs
            self._tls = await asyncio.to_thread(tls_context, self.settings)
        smtp = aiosmtplib.SMTP(
            hostname=self.settings.host, port=self.settings.port, timeout=self.settings.timeout,
            use_tls=security == "ssl", start_tls=False, tls_context=self._tls,
        )
        try:
            await self._open(smtp)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ConfigError(f"the SMTP server rejected {USERNAME_ENV}/{PASSWORD_ENV}",
                              key="notifiers.email") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            failure = _verification_failure(exc)
            if failure is not None:
                raise untrusted_certificate(self.settings, failure) from exc
            if security == "starttls" and "STARTTLS extension not supported" in str(exc):
                # aiosmtplib has no type of its own for this; like a certificate that fails
                # to verify it will fail the same way on every retry, so it is the setting
                raise ConfigError(
                    f"{self.settings.host}:{self.settings.port} does not offer STARTTLS; set "
                    "notifiers.email.security to \"ssl\" if it speaks TLS from the start, or "
                    "check host and port", key="notifiers.email.security") from exc
            raise ChannelUnavailable(f"email: cannot connect to {self.settings.host}:"
                                     f"{self.settings.port}: {exc}") from exc
        self._smtp = smtp
        return smtp

    async def _open(self, smtp: aiosmtplib.SMTP) -> None:
        """Connect, upgrade to TLS (``starttls``) and log in, one step at a time, so that a
        failure at any step ends the connection at once (``_abort``)."""
        try:
            await smtp.connect()
            if self.settings.security == "starttls":
                await smtp.starttls()
            if self._username is not None:
                await smtp.login(self._username, self._password or "")
        except BaseException:
            _abort(smtp)
            raise

    async def send(self, recipient: Recipient, message: Message) -> SendResult:
        """Send one message; see the module docstring for what each error means."""
        import aiosmtplib

        mime = build_email(message, sender=self.settings.sender, to=recipient.address,
                           unsubscribe_token=recipient.unsubscribe_token,
                           unsubscribe_url=self.settings.unsubscribe_url,
                           public_url=self.settings.public_url)
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
        import aiosmtplib

        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        """Forget a connection that failed (or was quit): ended at once, never reused."""
        if self._smtp is not None:
            _abort(self._smtp)
            self._smtp = None

    async def check(self) -> None:
        """Connect (TLS and login included) and keep the connection for the first send."""
        async with self._lock:
            await self._connection()

    async def aclose(self) -> None:
        """QUIT, then end the connection ourselves (``_abort``): after QUIT aiosmtplib
        closes a TLS transport gracefully, which leaves it mid-shutdown, its socket open,
        when the loop ends before the server's close_notify arrives."""
        import aiosmtplib

        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        transport = smtp.transport  # QUIT forgets it: kept to end it below
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit()
        _abort(smtp, transport)


def _abort(smtp: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """End a connection we are done with (a failure, or after QUIT) without a TLS goodbye.

    aiosmtplib's ``close`` closes a TLS transport gracefully: it sends close_notify and
    closes the socket only when the server has answered, on a later turn of the event
    loop. After a failure (a failed STARTTLS or login, a lost or stuck session) or a QUIT
    there is nothing left to say to that server, and a loop that ends first (a one-off
    ``callwatch notify``, a check at start) leaves the socket open, found unclosed only
    when it is collected. ``abort`` closes it on the loop's next turn, also when a graceful
    close has already begun (it is then already "closing"), and does nothing more when
    the transport is gone.
    """
    transport = transport or smtp.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    smtp.close()


def _address(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value.strip()):
        raise ValueError(f"{value!r} is not an email address")
    return value.strip() if value else value


def create(settings: EmailSettings, environ: Mapping[str, str]) -> Notifier | None:
    return EmailNotifier.from_settings(settings, environ) if settings.enabled else None


PLUGIN = ChannelPlugin(
    name="email", description="SMTP", settings=EmailSettings, create=create,
    address=Annotated[str | None, AfterValidator(_address)], address_help="an email address",
    reads=frozenset({"subject", "text", "html"}),
)
