"""The small interfaces between the core and its edges: sources, their HTTP client, channels.

A source plugin is found through the ``callwatch.sources`` entry-point group (built-ins are
registered the same way, in pyproject.toml). It declares its settings model and builds a
``Source`` for each configured instance; the core then only calls ``scrape``.

A channel plugin is found the same way, in ``callwatch.channels``: it declares its settings
(``[notifiers.<name>]``), the address a subscriber file gives it, the parts of a ``Message``
it reads, and builds its ``Notifier``; the core then only calls ``send``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from tracker.conditional import Validator
from tracker.dates import format_duration, parse_duration

if TYPE_CHECKING:  # for annotations only: loading the plugins' settings must stay cheap
    import httpx

    from tracker.models import ScrapeResult

#: Where the I/O edges read the time from: the system clock in service, a fixed or stepping
#: clock in tests and the demo. Pure code takes a ``now`` instead.
Clock = Callable[[], datetime]


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"expected a duration above zero like '6h' or '30s', got {format_duration(value)!r}")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("expected a duration of zero or more, like '0s' or '5m'")
    return value


#: A duration in config: "6h", "30s", "1d12h", or a number of seconds; above zero
#: (an interval of zero would spin).
Duration = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
]

#: A delay that may be zero, which switches it off (jitter = "0s").
Delay = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_not_negative),
    PlainSerializer(format_duration, return_type=str),
]


class SourceSettings(BaseModel):
    """Settings every source has; each plugin extends this with its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str | None = Field(
        None, description="which source plugin serves this instance; set it when the name is not "
        "the plugin's own (several instances of one kind)",
        json_schema_extra={"shown_default": "the name"},
    )
    enabled: bool = Field(True, description="scrape on schedule and with `callwatch scrape`")
    interval: Duration = Field(
        timedelta(hours=6), description="how often to scrape; a duration: `30s`, `15m`, `6h`, `1d12h`"
    )


class Progress(Protocol):
    """Where a source reports page progress (a progress bar on a terminal, or nothing)."""

    def __call__(self, done: int, total: int | None, /) -> None: ...


class HttpClient(Protocol):
    """The shared polite HTTP client (scrapers/_http.py): pacing, retries, size cap."""

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...

    def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> AbstractAsyncContextManager[httpx.Response]: ...


class RunClient(HttpClient, Protocol):
    """The shared client as one source run sees it (scrapers/_http.py): it notes what the run
    fetched, so that the next run can ask whether any of it changed (tracker/conditional.py)."""

    def fetched(self) -> list[Validator] | None:
        """Every GET of this run with its validators; None when the run cannot be asked again."""
        ...

    async def unchanged(self, previous: Sequence[Validator]) -> bool:
        """Whether every page of ``previous`` answers 304 now."""
        ...


class Source(Protocol):
    """One configured source instance."""

    name: str

    async def scrape(self, now: datetime, progress: Progress | None = None) -> ScrapeResult:
        """Fetch and parse every open and forthcoming call; never raise for one bad record."""
        ...


@runtime_checkable
class SkipsUnchanged(Protocol):
    """A source that can leave unread the rows it read before (issue 15): told the digests
    of the stored calls' source rows before it scrapes, it reports a row with the same
    digest in ``ScrapeResult.unchanged`` instead of reading it into a record."""

    def skip_unchanged(self, digests: Mapping[str, str]) -> None:
        """Rows whose digest is ``digests[native id]`` are the stored ones."""
        ...


@dataclass(frozen=True)
class SourcePlugin:
    """What a source module exports as ``PLUGIN``."""

    kind: str
    description: str
    settings: type[SourceSettings]
    create: Callable[[str, Any, HttpClient], Source]


# --- Delivery channels --------------------------------------------------------------------
# tracker/delivery/render.py turns what to say into a ``Message`` holding every channel's form of it
# (pure, no I/O); the outbox stores it as JSON; a dispatcher hands it to a ``Notifier``.


class Button(BaseModel):
    """An inline button under a Telegram message; ``data`` is callback data (≤64 bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    data: str = Field(max_length=64)


class Message(BaseModel):
    """One rendered message in the form of every channel, JSON-serializable for the outbox.

    ``telegram`` holds Telegram-HTML parts, each at most 4096 characters, split at item
    boundaries; ``document`` is the generic webhook JSON (schema ``callwatch.message/1``)
    from which the Slack and Teams bodies are derived.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["alert", "digest", "reminder", "notice"]
    subject: str = Field(description="one line: the email subject, the webhook title")
    text: str = Field(description="plain text: console and the email plain part")
    html: str = Field(description="a whole HTML document: the email HTML part")
    telegram: tuple[str, ...] = Field(description="Telegram HTML parts, each ≤4096 characters")
    document: dict[str, Any] = Field(description="the generic webhook JSON body")
    buttons: tuple[Button, ...] = Field((), description="inline buttons under the last Telegram part")
    date: datetime | None = Field(
        None, description="when it was composed, by the clock its body was written with: the "
        "email Date header (None in messages stored before it was kept)")
    language: str = Field("en", description="the language it is written in (the subscriber's): "
                          "the email footer, added at send time, is written in it too")


WebhookFormat = Literal["generic", "slack", "teams"]


@dataclass(frozen=True)
class Recipient:
    """Where one message goes on one channel.

    ``address`` is a Telegram chat id, an email address or a webhook URL (ignored by the
    console). ``unsubscribe_token`` identifies the subscription in email List-Unsubscribe
    headers; ``webhook_format`` picks the JSON body a webhook receives.
    """

    address: str
    subscriber: str | None = None
    unsubscribe_token: str | None = None
    webhook_format: WebhookFormat = "generic"


@dataclass(frozen=True)
class SendResult:
    """What a channel accepted: its own message ids, and a new address when the chat moved."""

    channel: str
    address: str
    message_ids: tuple[str, ...] = ()
    #: set when Telegram moved the group to a new chat id and the message went there
    new_address: str | None = None


class Notifier(Protocol):
    """One delivery channel.

    ``send`` either returns a ``SendResult`` (the channel accepted the message) or raises:
    ``ChannelUnavailable`` (retry later, honour ``retry_after``), ``ChatMigrated`` (store
    ``new_address``, send again), ``ChannelGone`` (deactivate this channel of the
    subscriber), ``ChannelRejected`` (dead-letter this message).
    """

    channel: str

    async def send(self, recipient: Recipient, message: Message) -> SendResult: ...

    async def check(self) -> None:
        """Reach the channel's server once without sending anything (start-up checks).

        Raises what ``send`` would: ``ChannelUnavailable`` for a server that is down,
        ``ConfigError`` for rejected credentials. Channels without one server of their own
        (webhooks, apprise: one address per subscriber) return at once.
        """
        ...

    async def aclose(self) -> None: ...


#: The help of every channel's ``enabled``.
CHANNEL_ENABLED = "a channel that is off sends nothing; its deliveries wait in the outbox"


class ChannelSettings(BaseModel):
    """Settings every channel has (``[notifiers.<name>]``); each plugin extends this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description=CHANNEL_ENABLED)


@dataclass(frozen=True)
class ChannelPlugin:
    """What a channel module exports as ``PLUGIN`` (entry-point group ``callwatch.channels``).

    Everything the core needs to know about a channel is here, so a new channel is one
    module and one entry point: the core asks the registry (``tracker.plugins``) instead of
    naming channels.
    """

    name: str
    description: str
    #: ``[notifiers.<name>]``; None: the channel has no settings (and no section)
    settings: type[ChannelSettings] | None
    #: the channel built from its settings and the environment (secrets), or None when it
    #: cannot work here (no token, a missing extra) or is switched off
    create: Callable[[Any, Mapping[str, str]], Notifier | None]
    #: the type of ``channels.<name>`` in a subscriber file: an ``Annotated`` type whose
    #: validators check the value (ValueError with a message for the file's author) and
    #: give the stored address; ``bool`` for a channel without addresses (the console)
    address: Any
    #: help for ``channels.<name>`` (README's subscriber table)
    address_help: str = ""
    #: the parts of a rendered ``Message`` the channel reads: an outbox row keeps only
    #: those (the others emptied); None keeps the whole message
    reads: frozenset[str] | None = None
    #: part → another part also kept when that part is empty (Telegram falls back to text)
    fallbacks: Mapping[str, str] = dataclass_field(default_factory=dict)
    #: the JSON body the channel POSTs for a message (webhook-style channels), else None
    render: Callable[[Message], dict[str, Any]] | None = None
