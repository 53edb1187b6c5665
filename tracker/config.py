"""Configuration: one TOML file, validated once at start into frozen models.

Where the file comes from, first match wins: ``--config PATH``, ``$CALLWATCH_CONFIG``,
``./config/callwatch.toml``, else only the packaged defaults (``tracker/defaults.toml``).
The chosen file is deep-merged over the packaged defaults, then any key can be overridden
by an environment variable ``CALLWATCH_<SECTION>__<KEY>`` (upper case, ``__`` between
levels, the value read as a TOML value when it parses as one, else as a string).

Secrets never live in the file: the Telegram token, SMTP credentials and webhook secrets
are read from their own environment variables by the channel that needs them
(``CALLWATCH_TELEGRAM_TOKEN``, ``CALLWATCH_SMTP_USERNAME``, ``CALLWATCH_SMTP_PASSWORD``,
and the variable a webhook's ``secret_env`` names). Those names have no ``__`` and so are
never mistaken for overrides.

Any problem raises ConfigError naming the file (or environment variable), the key and what
was expected; the CLI turns that into exit code 2 before anything starts.
"""

from __future__ import annotations

import copy
import functools
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, get_args
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializeAsAny,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from tracker.delivery import SUMMARY_AFTER
from tracker.errors import ConfigError
from tracker.plugins import channel_plugins, source_plugins
from tracker.ports import ChannelSettings, Delay, Duration, SourceSettings

if TYPE_CHECKING:
    from tracker.delivery.planning import DigestSchedule

PACKAGED_DEFAULTS = Path(__file__).with_name("defaults.toml")
LOCAL_CONFIG = Path("config/callwatch.toml")
ENV_PREFIX = "CALLWATCH_"
APP_NAME = "callwatch"

#: Secrets: read only from these environment variables, never from a file, never logged.
SECRET_ENV = ("CALLWATCH_TELEGRAM_TOKEN", "CALLWATCH_SMTP_USERNAME", "CALLWATCH_SMTP_PASSWORD",
              "CALLWATCH_WEB_SECRET")


def _web_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname \
            or any(c.isspace() for c in value):
        raise ValueError("expected an http:// or https:// URL")
    parts.port  # noqa: B018 - raises ValueError for a port out of range, reported with the key
    return value


#: A URL setting callwatch fetches or links to (every source's ``url``, ``list_url``,
#: ``search_url`` …): http or https with a host, checked when the configuration loads, so
#: that ``file://`` or a missing scheme is a configuration error naming the key (exit 2)
#: rather than a run that fails after its retries.
WebUrl = Annotated[str, AfterValidator(_web_url)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = Field(
        "", description="SQLAlchemy URL. Empty: a SQLite file in the user data directory "
        "(~/.local/share/callwatch/callwatch.db on Linux). A relative SQLite file in your own "
        "file (`sqlite:///live.db`) is relative to it. Production: postgresql://user@host/db",
        json_schema_extra={"shown_default": "empty (SQLite in the user data dir)"},
    )

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        path = Path(platformdirs.user_data_dir(APP_NAME)) / "callwatch.db"
        return f"sqlite:///{path}"


class HttpSettings(_Section):
    user_agent: str = Field(
        "callwatch/0.1 (+https://github.com/callwatch/callwatch; EU funding-call tracker)",
        min_length=3, description="identifies callwatch to every site it reads",
    )
    timeout: float = Field(
        30.0, gt=0, description="seconds one request may take in all: connect, redirects, "
        "headers and body (a deadline, not a per-read timeout)"
    )
    source_timeout: Duration = Field(
        timedelta(minutes=30),
        description="longest one source's run may take; past it the run is stored as failed "
        "(\"gave no complete result within …\") and the other sources go on",
    )
    delay: float = Field(1.0, ge=0, description="seconds between two requests to one host")
    retries: int = Field(
        3, ge=0, le=10, description="retries on timeouts, 5xx and 429 (Retry-After honoured)"
    )
    backoff: float = Field(
        2.0, ge=0, description="first retry wait in seconds; doubles each retry, with jitter"
    )
    max_backoff: float = Field(
        300.0, ge=0, description="longest wait between retries, Retry-After included"
    )
    max_response_bytes: int = Field(
        50_000_000, gt=0, description="larger responses are refused; bulk files are streamed"
    )
    conditional_requests: bool = Field(
        True, description="ask the pages a source's last good run read with If-None-Match / "
        "If-Modified-Since first; when all answer 304 the run is ok and its calls are left as "
        "they were (only sources read by plain GETs whose answers carry an ETag or "
        "Last-Modified)"
    )


class DirectorySettings(_Section):
    directory: Path = Field(description="directory of YAML files")


# The two directories' defaults depend on the platform (the user config directory), so
# load_config sets them and defaults.toml only names them in a comment.
class ProfileDirectory(DirectorySettings):
    directory: Path = Field(
        description="profile YAML files; a relative path in your own file is relative to it",
        json_schema_extra={"shown_default": "`~/.config/callwatch/profiles`"},
    )


class SubscriberDirectory(DirectorySettings):
    directory: Path = Field(
        description="subscriber YAML files; a relative path in your own file is relative to it",
        json_schema_extra={"shown_default": "`~/.config/callwatch/subscribers`"},
    )


class NotifierSettings(_Section):
    """``[notifiers.<channel>]``: one table per registered channel, each its plugin's model.

    The fields are not declared here: :func:`notifier_model` assembles them from the channel
    plugins (``tracker.plugins``), so a channel brings its own settings like a source does.
    Validating this class validates with that model; read a table as
    ``settings.notifiers.webhook`` or, typed, ``settings.notifiers.channel("webhook")``.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _assembled(cls, data: Any, handler: ModelWrapValidatorHandler[NotifierSettings]) -> Any:
        if cls is NotifierSettings and not isinstance(data, NotifierSettings):
            return notifier_model().model_validate({} if data is None else data)
        return handler(data)

    @classmethod
    def assembled(cls) -> type[NotifierSettings]:
        """The model with the fields (for tools that read fields: the settings docs)."""
        return notifier_model()

    def channel(self, name: str) -> ChannelSettings:
        """The settings of channel ``name`` (KeyError for a channel without settings)."""
        value = getattr(self, name, None)
        if not isinstance(value, ChannelSettings):
            raise KeyError(name)
        return value

    if TYPE_CHECKING:  # the fields are made at run time, one per channel plugin
        def __getattr__(self, name: str) -> Any: ...


@functools.cache
def notifier_model() -> type[NotifierSettings]:
    """``NotifierSettings`` with one field per channel plugin that has settings, in their order."""
    fields: dict[str, Any] = {
        name: (plugin.settings, Field(default_factory=plugin.settings, description=plugin.description))
        for name, plugin in channel_plugins().items() if plugin.settings is not None
    }
    return create_model("NotifierSettings", __base__=NotifierSettings, **fields)


class DispatchSettings(_Section):
    """Every `callwatch worker` (and `callwatch run`) sends due deliveries from the outbox."""

    interval: Duration = Field(
        timedelta(seconds=10),
        description="how often a worker looks for due deliveries when nothing wakes it",
    )
    lease: Duration = Field(
        timedelta(minutes=5),
        description="a claimed delivery returns to the queue after this if its worker died",
    )
    batch: int = Field(200, gt=0, le=10_000, description="deliveries claimed at a time")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING, ERROR"
    )
    format: Literal["plain", "json"] = Field(
        "plain", description="`plain` or `json` lines on standard error"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class DigestSettings(_Section):
    """Daily and weekly digests fall due at this hour in each subscriber's own time zone (and
    stay due until that day ends, so a late scheduler still sends them, once)."""

    hour: int = Field(
        8, ge=0, le=23, description="local hour (each subscriber's time zone) from which daily "
        "and weekly digests are due, 0-23"
    )
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                     "sunday"] = Field("monday", description="the weekly digest's day")

    @field_validator("weekday", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def schedule(self) -> DigestSchedule:
        from tracker.delivery.planning import WEEKDAYS, DigestSchedule  # the matcher: not at start

        return DigestSchedule(hour=self.hour, weekday=WEEKDAYS.index(self.weekday))


class AlertSettings(_Section):
    """Instant alerts: one message per new or changed call, except when that would flood."""

    summary_after: int = Field(
        SUMMARY_AFTER, ge=0, le=1000, description="a subscriber's alerts on one channel in one "
        "cycle go out as one summary message when there are more than this many, or more than "
        "one in a profile's first cycle (its first match against every stored call); the "
        "summary shows this many calls in full, closing first, and lists the others by title. "
        "0 sends every alert on its own"
    )


class SchedulerSettings(_Section):
    jitter: Delay = Field(
        timedelta(minutes=5), description="random delay added to each scheduled scrape"
    )


class HealthSettings(_Section):
    listen: str = Field(
        "", description="deprecated name of `web.listen` (the web app now serves /healthz, "
        "/metrics and the feeds): still read when `web.listen` is empty, with a warning",
        json_schema_extra={"shown_default": "empty (off)"},
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        value = value.strip()
        if value:
            split_listen(value)  # raises ValueError, which pydantic reports with the key
        return value


def _checked_listen(value: str) -> str:
    """``value`` trimmed, when empty or ``host:port`` (else ValueError, reported with the key)."""
    value = value.strip()
    if value:
        split_listen(value)
    return value


def _checked_base_url(value: str) -> str:
    """``value`` without spaces around or a ``/`` at the end, when empty or an http(s) URL."""
    value = value.strip().rstrip("/")
    return _web_url(value) if value else value


#: where `callwatch web` listens when ``web.listen`` is empty: loopback, never every interface
WEB_DEFAULT_LISTEN = "127.0.0.1:8080"


class WebSettings(_Section):
    """The web app (``tracker/web``): public call pages per cluster, and sign-in.

    Loopback unless set: exposing it is a decision (``0.0.0.0:8080``, or better a reverse
    proxy with TLS in front of ``127.0.0.1:8080``), never a default.
    """

    listen: str = Field(
        "", description="`host:port` of the web app (the calls of each cluster, sign-in, "
        "/healthz, /metrics, the token-guarded /feeds/<profile>.ics and .atom), served by "
        "`callwatch run` and by the `worker` that holds the scheduler; empty: `run` and "
        f"`worker` serve nothing, `callwatch web` listens on `{WEB_DEFAULT_LISTEN}`",
        json_schema_extra={"shown_default": f"empty (`callwatch web`: {WEB_DEFAULT_LISTEN})"},
    )
    public_url: str = Field(
        "", description="the address people reach the web app at, e.g. "
        "`https://calls.example.org` behind a reverse proxy (`callwatch web` prints it; links "
        "in messages are to use it); empty: `http://` and the address it listens on",
        json_schema_extra={"shown_default": "empty"},
    )

    _listen = field_validator("listen")(_checked_listen)
    _public_url = field_validator("public_url")(_checked_base_url)

    def address(self) -> tuple[str, int]:
        """(host, port) for `callwatch web`: ``listen``, else loopback port 8080."""
        return split_listen(self.listen or WEB_DEFAULT_LISTEN)

    def base_url(self, host: str, port: int) -> str:
        """``public_url``, else the ``http://`` address of ``host:port`` (where it listens)."""
        if self.public_url:
            return self.public_url
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def split_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` or ``[::1]:8080`` as (host, port); ValueError when it is neither."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port such as 127.0.0.1:8080, got {value!r}")
    return host, int(port)


class Settings(_Section):
    """The whole validated configuration."""

    database: DatabaseSettings = DatabaseSettings()
    http: HttpSettings = HttpSettings()
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    profiles: ProfileDirectory
    subscribers: SubscriberDirectory
    notifiers: SerializeAsAny[NotifierSettings] = Field(
        default_factory=lambda: NotifierSettings.model_validate({}))
    dispatch: DispatchSettings = DispatchSettings()
    log: LogSettings = LogSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    digests: DigestSettings = DigestSettings()
    alerts: AlertSettings = AlertSettings()
    health: HealthSettings = HealthSettings()
    web: WebSettings = WebSettings()
    #: where the settings came from, for messages (not a config key)
    origin: str = Field("packaged defaults", exclude=True)

    def web_listen(self) -> tuple[str, str]:
        """The key and the ``host:port`` the web app is served on by `run` and `worker`:
        ``web.listen``, else the deprecated ``health.listen``, else ``("web.listen", "")``
        (off). The key names the setting in errors and in the deprecation warning."""
        if not self.web.listen and self.health.listen:
            return "health.listen", self.health.listen
        return "web.listen", self.web.listen


#: logged at start when ``health.listen`` is what sets the web app's address
HEALTH_LISTEN_DEPRECATED = (
    "health.listen is deprecated: the web app now serves /healthz, /metrics and the feeds; "
    "rename it to web.listen (in [web], or CALLWATCH_WEB__LISTEN)")


def find_config_file(explicit: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read, by the documented order; None means packaged defaults only."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError("no such config file", path=str(path))
        return path
    from_env = environ.get("CALLWATCH_CONFIG")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError("no such config file (from $CALLWATCH_CONFIG)", path=str(path))
        return path
    return LOCAL_CONFIG if LOCAL_CONFIG.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path)) from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8: byte 0x{exc.object[exc.start]:02x} on line {line} cannot "
                          "be read; save the file as UTF-8", path=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from exc


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The overrides found in ``environ`` as a nested dict, and dotted key → variable name."""
    overrides: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name or name in SECRET_ENV:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if not all(parts):
            raise ConfigError("empty part in variable name", path=name)
        node = overrides
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError("conflicts with another override", path=name)
            node = child
        node[parts[-1]] = _env_value(raw)
        origins[".".join(parts)] = name
    return overrides, origins


def _describe(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    if "input" in error and not isinstance(error["input"], dict | list):
        message += f", got {error['input']!r}"
    return message


def _raise_validation(
    exc: ValidationError, prefix: str, file_label: str, origins: Mapping[str, str]
) -> NoReturn:
    problems = []
    for error in exc.errors():
        key = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        problems.append((origins.get(key, file_label), key, _describe(error)))
    path, key, message = problems[0]
    for other_path, other_key, other_message in problems[1:]:
        message += f"\n{other_path}: {other_key}: {other_message}"
    raise ConfigError(message, path=path, key=key)


def _resolve_dir(value: Any, base: Path) -> Any:
    if isinstance(value, str) and value:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path))
    return value


def resolve_sqlite_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative file (``sqlite:///live.db``) made relative to ``base``,
    the config file's directory, like the profile and subscriber directories; any other URL
    (absolute, ``~``, in memory, a ``file:`` URI, another database) as it is.

    SQLAlchemy (0.4 s) is imported only to read a SQLite URL, not with every settings load:
    `profiles check` with no ``[database]`` URL or a server's never loads it."""
    if not url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import url as sa_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = sa_url.make_url(url)
    except (ArgumentError, ValueError):  # not a URL: refused, with its message, when used
        return url
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or parsed.query.get("uri") in ("true", "1") or database.startswith(("~", "file:")):
        return url
    path = Path(database)
    if path.is_absolute():
        return url
    return parsed.set(database=str(base / path)).render_as_string(hide_password=False)


def _path_keys(channel: str) -> list[str]:
    """The keys of ``[notifiers.<channel>]`` that hold a file's path (email's ``ca_file``)."""
    plugin = channel_plugins().get(channel)
    if plugin is None or plugin.settings is None:
        return []
    return [key for key, info in plugin.settings.model_fields.items()
            if info.annotation is Path or Path in get_args(info.annotation)]


def load_config(
    explicit: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    database_url: str | None = None,
) -> Settings:
    """Read, merge and validate the configuration; raise ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    raw = _read_toml(PACKAGED_DEFAULTS)
    raw.setdefault("profiles", {}).setdefault(
        "directory", str(Path(platformdirs.user_config_dir(APP_NAME)) / "profiles"))
    raw.setdefault("subscribers", {}).setdefault(
        "directory", str(Path(platformdirs.user_config_dir(APP_NAME)) / "subscribers"))
    path = find_config_file(explicit, environ)
    file_label = str(path) if path else str(PACKAGED_DEFAULTS)
    if path is not None:
        from_file = _read_toml(path)
        base = path.resolve().parent
        for section in ("profiles", "subscribers"):
            block = from_file.get(section)
            if isinstance(block, dict) and "directory" in block:
                block["directory"] = _resolve_dir(block["directory"], base)
        database = from_file.get("database")
        if isinstance(database, dict) and isinstance(database.get("url"), str):
            database["url"] = resolve_sqlite_url(database["url"], base)
        notifiers = from_file.get("notifiers")
        for channel, block in (notifiers.items() if isinstance(notifiers, dict) else ()):
            for key in _path_keys(channel):  # beside the file, like directories
                if isinstance(block, dict) and key in block:
                    block[key] = _resolve_dir(block[key], base)
        raw = _merge(raw, from_file)
    overrides, origins = env_overrides(environ)
    raw = _merge(raw, overrides)
    if database_url:
        raw = _merge(raw, {"database": {"url": database_url}})
        origins["database.url"] = "--db"

    sources_raw = raw.pop("sources", {}) or {}
    if not isinstance(sources_raw, dict):
        raise ConfigError("expected a table of sources", path=file_label, key="sources")
    sources = {
        name: _validate_source(name, block, file_label, origins)
        for name, block in sources_raw.items()
    }
    try:
        settings = Settings.model_validate({**raw, "sources": sources, "origin": file_label})
    except ValidationError as exc:
        _raise_validation(exc, "", file_label, origins)
    if settings.health.listen and settings.web.listen \
            and settings.health.listen != settings.web.listen:
        raise ConfigError(f"the deprecated name of web.listen, set to {settings.health.listen!r} "
                          f"while web.listen is {settings.web.listen!r}: remove health.listen",
                          path=origins.get("health.listen", file_label), key="health.listen")
    return settings


def _validate_source(
    name: str, block: Any, file_label: str, origins: Mapping[str, str]
) -> SourceSettings:
    key = f"sources.{name}"
    if not isinstance(block, dict):
        raise ConfigError("expected a table", path=origins.get(key, file_label), key=key)
    kind = block.get("kind") or name
    plugins = source_plugins()
    plugin = plugins.get(kind)
    if plugin is None:
        known = ", ".join(sorted(plugins)) or "none installed"
        raise ConfigError(f"unknown source kind {kind!r} (known kinds: {known})",
                          path=origins.get(f"{key}.kind", file_label), key=f"{key}.kind")
    try:
        return plugin.settings.model_validate(block)
    except ValidationError as exc:
        _raise_validation(exc, key, file_label, origins)
