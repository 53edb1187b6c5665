"""Subscribers: who gets told, on which channels, about which profiles, and how often.

A subscriber is data, written in YAML by a cluster manager (``config/subscribers/``) or
created through the Telegram bot; both end up in the same tables. One subscriber has up
to one address per channel (a Telegram chat id, an email address, a webhook URL, an
apprise URL), any number of subscriptions (a profile and a mode: ``instant`` alerts,
``daily`` or ``weekly`` digests, optionally limited to some channels), a timezone in which
digests and reminders are timed and quiet hours are read, quiet hours during which instant
alerts wait, and the days before each cut-off at which deadline reminders go out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tracker.delivery import REMINDER_DAYS
from tracker.destinations import webhook_url_problem
from tracker.i18n import LANGUAGES
from tracker.plugins import channel_plugins
from tracker.ports import WebhookFormat
from tracker.yamlfiles import FilesError, Problem, field_name, line_for, parse_yaml, read_models

Mode = Literal["instant", "daily", "weekly"]
#: a registered channel's name (``tracker.plugins.channel_plugins``)
ChannelName = str

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channels(_Strict):
    """A subscriber's addresses, one per channel: ``channels.<name>``.

    The fields are not declared here: :func:`channels_model` makes one per channel plugin,
    of the type the plugin gives (``ChannelPlugin.address``: its validators check the value
    and give the stored address), so a new channel brings its own address format.
    ``webhook_format`` picks the body of ``webhook`` (``generic``, or ``slack`` / ``teams``:
    the body those channels send), the form subscriber files had before those channels.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _assembled(cls, data: Any, handler: ModelWrapValidatorHandler[Channels]) -> Any:
        if cls is Channels and not isinstance(data, Channels):
            return channels_model().model_validate(data)
        return handler(data)

    if TYPE_CHECKING:  # the fields are made at run time, one per channel plugin
        def __getattr__(self, name: str) -> Any: ...

    @classmethod
    def assembled(cls) -> type[Channels]:
        """The model with the fields (for tools that read fields: "did you mean")."""
        return channels_model()

    def configured(self) -> tuple[ChannelName, ...]:
        """The channels this subscriber has an address for, in a stable order."""
        return tuple(name for name in channel_plugins() if getattr(self, name, None))

    def address(self, channel: ChannelName) -> str:
        """The address on ``channel`` ("-" for a channel without addresses: the console)."""
        value = getattr(self, channel, None)
        if not value:
            raise KeyError(channel)
        return "-" if value is True else str(value)


@functools.cache
def channels_model() -> type[Channels]:
    """``Channels`` with one field per channel plugin (and ``webhook_format`` after ``webhook``)."""
    fields: dict[str, Any] = {}
    for name, plugin in channel_plugins().items():
        default = False if plugin.address is bool else None
        fields[name] = (plugin.address, Field(default, description=plugin.address_help or None))
        if name == "webhook":
            fields["webhook_format"] = (WebhookFormat, "generic")
    return create_model("Channels", __base__=Channels, **fields)


def channel_names() -> tuple[str, ...]:
    """Every registered channel, in the registry's order."""
    return tuple(channel_plugins())


class Subscription(_Strict):
    """One profile followed in one mode, on some or all of the subscriber's channels.

    The same profile may be followed more than once when the channel sets do not overlap:
    Telegram ``instant`` and email ``daily`` for one profile are two subscriptions.
    """

    profile: str = Field(min_length=1)
    mode: Mode = "instant"
    channels: tuple[ChannelName, ...] | None = Field(
        None, min_length=1, description="limit to these channels; default all the subscriber has")

    @field_validator("channels")
    @classmethod
    def _known(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        unknown = [name for name in value or () if name not in channel_plugins()]
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r} (channels: "
                             f"{', '.join(channel_names())})")
        return tuple(dict.fromkeys(value)) if value else value


class Subscriber(_Strict):
    """Someone (a person, a group chat, a mailing list) who receives callwatch's messages."""

    name: str
    tenant: str | None = Field(None, description="the cluster this subscriber belongs to")
    timezone: str = "Europe/Brussels"
    language: str = Field("en", pattern=r"^[a-z]{2}$")
    channels: Channels
    subscriptions: tuple[Subscription, ...] = Field(min_length=1)
    quiet_hours: str | None = Field(None, description='"22:00-07:00" in the subscriber\'s timezone')
    reminders: tuple[int, ...] = Field(REMINDER_DAYS, description="days before each cut-off")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_', '-' or '@' (at most 100)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r} (use an IANA name like Europe/Madrid)") from exc
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"callwatch does not write in {value!r} (languages: {', '.join(LANGUAGES)})")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not _HOURS.match(value.replace(" ", "")):
            raise ValueError(f"expected HH:MM-HH:MM, got {value!r}")
        return value.replace(" ", "") if value else value

    @field_validator("reminders")
    @classmethod
    def _days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 0 or day > 365 for day in value):
            raise ValueError("reminder days must be between 0 and 365")
        return tuple(sorted(set(value), reverse=True))

    @model_validator(mode="after")
    def _channels_exist(self) -> Subscriber:
        configured = set(self.channels.configured())
        if not configured:
            named = [name for name, plugin in channel_plugins().items() if plugin.address is not bool]
            raise ValueError(f"no channel configured: give at least one of {', '.join(named)}")
        problems = subscription_problems(self.subscriptions, self.channels.configured())
        if problems:
            # each problem at its subscription's own place, so a file's error names its line
            raise ValidationError.from_exception_data("Subscriber", [
                InitErrorDetails(type=PydanticCustomError("value_error", "{reason}",
                                                          {"reason": reason}),
                                 loc=loc, input=None)
                for loc, reason in problems])
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def channels_for(self, subscription: Subscription) -> tuple[ChannelName, ...]:
        """The channels a subscription's messages go to."""
        return subscription.channels or self.channels.configured()

    def quiet_until(self, now: datetime) -> datetime | None:
        """When quiet hours end if ``now`` falls inside them, else None."""
        return quiet_until(self.quiet_hours, self.timezone, now)


def subscription_problems(subscriptions: Sequence[Subscription], configured: Sequence[ChannelName]
                          ) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with a subscriber's subscriptions, each with where it is (a pydantic
    ``loc``): a channel the subscriber has no address on, and a profile followed twice on
    one channel. A profile may be followed once per channel set as long as the sets do not
    overlap (``channels`` left out means every channel the subscriber has)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    taken: dict[tuple[str, str], int] = {}  # (profile, channel) → the subscription that has it
    for index, subscription in enumerate(subscriptions):
        missing = [c for c in subscription.channels or () if c not in configured]
        if missing:
            problems.append((("subscriptions", index, "channels"),
                             f"uses {', '.join(missing)} but the subscriber has no address there"))
            continue
        channels = subscription.channels or tuple(configured)
        clashes = [(c, taken[(subscription.profile, c)]) for c in channels
                   if (subscription.profile, c) in taken]
        if clashes:
            by: dict[int, list[str]] = {}
            for channel, other in clashes:
                by.setdefault(other, []).append(channel)
            where = " and ".join(f"on {', '.join(names)} by subscriptions[{other}]"
                                 for other, names in by.items())
            problems.append((("subscriptions", index),
                             f"profile {subscription.profile!r} is already followed {where}: "
                             "follow a profile once per channel, naming each subscription's "
                             "channels (e.g. `channels: [telegram]`)"))
            continue
        taken.update(((subscription.profile, c), index) for c in channels)
    return problems


@dataclass(frozen=True)
class StoredSubscription:
    """A subscription row as the file sync compares it with the file."""

    id: int
    profile: str
    mode: str
    channels: tuple[ChannelName, ...] | None


@dataclass(frozen=True)
class SubscriptionSync:
    """What mirroring a subscriber file's subscriptions into the table does (pure:
    ``plan_subscription_sync``): rows to insert, rows to change (mode or channels) and rows
    to delete. A row is kept (and so its token and digest position) wherever it can be."""

    insert: tuple[Subscription, ...] = ()
    update: tuple[tuple[StoredSubscription, Subscription], ...] = ()
    delete: tuple[int, ...] = ()


def without_opt_outs(subscriber: Subscriber, opted_out: Mapping[str, Collection[ChannelName]]
                     ) -> list[Subscription]:
    """``subscriber``'s subscriptions less the channels its recipient ended from an
    unsubscribe link (``opted_out``: profile → channels), so the file, which still lists
    them, does not bring them back; a subscription left with no channel is dropped."""
    kept: list[Subscription] = []
    for subscription in subscriber.subscriptions:
        ended = opted_out.get(subscription.profile, ())
        channels = subscriber.channels_for(subscription)
        remaining = tuple(c for c in channels if c not in ended)
        if not remaining:
            continue
        if remaining != channels:
            subscription = subscription.model_copy(update={"channels": remaining})
        kept.append(subscription)
    return kept


def plan_subscription_sync(stored: Sequence[StoredSubscription],
                           wanted: Sequence[Subscription]) -> SubscriptionSync:
    """How the stored subscriptions of one file subscriber become ``wanted``.

    A row with the same profile and channels is kept (its mode changed if need be); then a
    row of the same profile is reused for a wanted subscription of that profile whose
    channels changed, so editing a subscription's ``channels`` keeps its unsubscribe link;
    the rest is inserted or deleted.
    """
    left = list(stored)
    pending: list[Subscription] = []
    update: list[tuple[StoredSubscription, Subscription]] = []
    for subscription in wanted:
        same = next((row for row in left if row.profile == subscription.profile
                     and row.channels == subscription.channels), None)
        if same is None:
            pending.append(subscription)
            continue
        left.remove(same)
        if same.mode != subscription.mode:
            update.append((same, subscription))
    insert: list[Subscription] = []
    for subscription in pending:
        reused = next((row for row in left if row.profile == subscription.profile), None)
        if reused is None:
            insert.append(subscription)
            continue
        left.remove(reused)
        update.append((reused, subscription))
    return SubscriptionSync(insert=tuple(insert), update=tuple(update),
                            delete=tuple(row.id for row in left))


def quiet_until(quiet_hours: str | None, timezone: str, now: datetime) -> datetime | None:
    """The end of the quiet hours ("22:00-07:00", local) ``now`` falls in, else None."""
    if not quiet_hours:
        return None
    zone = ZoneInfo(timezone)
    start_text, end_text = quiet_hours.split("-")
    start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    local = now.astimezone(zone)
    clock = local.time().replace(second=0, microsecond=0)
    inside = (start <= clock < end) if start <= end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone)


def read_subscribers(paths: Iterable[Path], profile_names: Iterable[str] | None = None, *,
                     allow_private: bool = False) -> tuple[list[Subscriber], list[Problem]]:
    """Every subscriber file under ``paths``, and every problem (unknown profiles included).

    ``allow_private`` is ``notifiers.webhook.allow_private``: without it a webhook URL at a
    private address is a problem.
    """
    import difflib

    values, problems = read_models(paths, Subscriber, what="subscriber fields")
    subscribers = [value for _path, value in values]
    seen: dict[str, Path] = {}
    known = list(profile_names) if profile_names is not None else None
    for path, subscriber in values:
        webhook = subscriber.channels.webhook
        problem = webhook_url_problem(webhook, allow_private=allow_private) if webhook else None
        if problem:
            problems.append(Problem(str(path), _line_of(path, ("channels", "webhook")),
                                    "channels.webhook", problem))
        if subscriber.name in seen:
            problems.append(Problem(str(path), _line_of(path, ("name",)), "name",
                                    f"duplicate name {subscriber.name!r} "
                                    f"(also in {seen[subscriber.name]})"))
        seen.setdefault(subscriber.name, path)
        if known is None:
            continue
        for index, subscription in enumerate(subscriber.subscriptions):
            if subscription.profile not in known:
                close = difflib.get_close_matches(subscription.profile, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                where = ("subscriptions", index, "profile")
                problems.append(Problem(str(path), _line_of(path, where), field_name(where),
                                        f"unknown profile {subscription.profile!r}{hint}"))
    return subscribers, problems


def _line_of(path: Path, loc: tuple[str | int, ...]) -> int | None:
    """The line of ``loc`` in the YAML file at ``path`` (read again: only for a problem)."""
    try:
        _data, lines, _problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError):
        return None
    return line_for(loc, lines)


def load_directory(directory: Path, profile_names: Iterable[str] | None = None, *,
                   allow_private: bool = False) -> list[Subscriber]:
    """Every subscriber in ``directory`` (none if it is missing); FilesError on any problem."""
    if not directory.exists():
        return []
    subscribers, problems = read_subscribers([directory], profile_names, allow_private=allow_private)
    if problems:
        raise FilesError("subscribers", problems)
    return subscribers
