"""``callwatch demo``: two cycles over bundled sample pages, with no network and no setup.

The demo starts the replay servers of ``tracker/fakes`` over the pages bundled in
``tracker/demo/fakes/recordings`` (the portal, interreg.eu, the ECCP, EISMEA, EIT and the
Cascade Funding Hub), a local SMTP sink, the fake Telegram Bot API and a webhook receiver;
writes a config that points every channel at them and keeps every source at its public
address; runs the cycle's steps (as ``run_once`` does) with the example profiles and
subscribers bundled with callwatch, forcing the digests; then moves the clock two months on
(``LATER_NOW``), serves the portal's later state (a deadline moved, a topic opened, a budget
raised, a new topic; ``recordings/ft_portal_later``) and runs the cycle again, so the
channels get what changed, not only what is new. What each channel delivered is written to
a folder a person can open (emails as ``.eml`` and ``.html``, Telegram messages as ``.txt``,
webhook bodies as ``.json``).

The sources fetch through the shared client with each public site's address sent to its
replay server (``RoutedClient``), so the calls keep the links a user would click (the
portal's, eit.europa.eu's …), never ``127.0.0.1:PORT``.

Despite the folder's name only a few bundled pages are real recorded responses (portal
search results and one interreg.eu call); the rest are written in the sites' real shape.
The summary says so (``PAGES_NOTE``), so nobody takes the demo's calls for the live sites';
tests/fixtures/README.md lists each page's kind and origin.

It never reads the user's configuration, environment overrides or database: its settings
come from the packaged defaults plus the local addresses, every source without bundled pages
is switched off (so nothing can reach the network), and its SQLite database is a new file in
the output folder. The clock is fixed at ``DEMO_NOW``, the week the bundled pages are dated,
so the demo prints the same summary on every machine and on any date; README shows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from tracker.compose import TELEGRAM_TOKEN_ENV, build_notifiers, http_client
from tracker.config import PACKAGED_DEFAULTS, Settings, load_config
from tracker.delivery.outbox import enqueue_digests, enqueue_reminders
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes.agency import EclSite
from tracker.demo.fakes.eccp import EccpSite
from tracker.demo.fakes.portal import RECORDED_SEARCHES, PortalReplayServer, load_results
from tracker.demo.fakes.sites import FixtureSite, InterregSearch
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram, HtmlError, parse_telegram_html
from tracker.demo.fakes.webhook_receiver import WebhookReceiver
from tracker.errors import SourceRejected
from tracker.pipeline import (
    ScrapeOutcome,
    build_sources,
    close_notifiers,
    dispatch_step,
    load_audience,
    notify_step,
    report_health,
    scrape_one,
    select_sources,
)
from tracker.ports import HttpClient, Notifier
from tracker.store import db
from tracker.store.calls import Store
from tracker.store.db import changes_table, deliveries_table, matches_table

log = logging.getLogger(__name__)

#: The demo's clock: the week the bundled pages are dated, 10:00 in Madrid (outside quiet hours).
DEMO_NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
#: The second cycle: two months on, the day the portal's later state is dated. The hydrogen
#: topic that opened on 15 January is open by then, and the AI testing facilities close in
#: 14 days (Lars's first reminder day).
LATER_NOW = datetime(2027, 1, 28, 9, 0, tzinfo=UTC)
#: The portal's results that differ in the later state (the others are served as before).
LATER_PORTAL = RECORDINGS / "ft_portal_later" / "search_written_2027-01.json"
DATABASE_NAME = "callwatch-demo.db"
#: Fake secrets shared by the demo's channels and its local servers; they protect nothing.
DEMO_TOKEN = "123456:DEMO-TOKEN"  # noqa: S105  # the fake Bot API's token, not a secret
DEMO_WEBHOOK_SECRET = "demo-webhook-secret"  # noqa: S105  # signs bodies to a local receiver
CHANNEL_FOLDERS = {"email": "email", "telegram": "telegram", "webhook": "webhook"}
#: What the bundled pages are, in the summary: most are written, and saying "recorded
#: pages" would pass them off as the live sites' (tests/fixtures/README.md lists each one).
PAGES_NOTE = "pages: a few real portal and interreg.eu results, the rest written in the real shape"


class DemoError(RuntimeError):
    """The demo cannot start (its bundled files are missing, or the output folder is in use)."""


def bundled_config_dir() -> Path:
    """The example ``config/``: packaged in a wheel as ``tracker/_bundled/config``, else the checkout's."""
    here = Path(__file__).resolve().parent.parent  # tracker/
    for candidate in (here / "_bundled" / "config", here.parent / "config"):
        if (candidate / "profiles").is_dir():
            return candidate
    raise DemoError("the example profiles are missing from this installation "
                    "(expected tracker/_bundled/config or a checkout's config/)")


def fresh_folder(base: Path) -> Path:
    """``base`` when it does not exist yet, else ``base-2``, ``base-3``… (never overwrite)."""
    if not base.exists():
        return base
    for number in range(2, 1000):
        candidate = base.with_name(f"{base.name}-{number}")
        if not candidate.exists():
            return candidate
    raise DemoError(f"{base}: too many earlier demo folders; remove some or pass --out")


# -- the local stand-ins -----------------------------------------------------------------

@dataclass
class LocalWorld:
    """Every server the demo talks to, all on 127.0.0.1."""

    portal: PortalReplayServer
    interreg: InterregSearch
    eccp: EccpSite
    eismea: EclSite
    eit: FixtureSite
    cascade_hub: FixtureSite
    telegram: FakeTelegram
    smtp: SmtpSink
    webhooks: WebhookReceiver

    def source_settings(self, *, routed: bool = False) -> dict[str, dict[str, Any]]:
        """``[sources.<name>]`` of each replayed source. By default each points at its
        replay server (for a callwatch process run against the replays: the tests, the
        daemon benchmark). ``routed``: the public addresses stay as packaged, for a client
        that sends them to the replays (``routes``, the demo's own cycles). Interreg needs
        the replay's search key either way, and pages of two hits so its paging is walked."""
        interreg = {"api_key": self.interreg.api_key, "hits_per_page": 2}
        if routed:
            return {"ft_portal": {}, "interreg": interreg, "eccp": {}, "eismea": {}, "eit": {},
                    "cascade_hub": {}}
        return {
            "ft_portal": {"search_url": self.portal.search_url, "bulk_url": self.portal.bulk_url},
            "interreg": {"search_url": self.interreg.search_url, **interreg},
            "eccp": {"list_url": self.eccp.list_url},
            "eismea": {"list_url": self.eismea.list_url},
            "eit": {"list_url": self.eit.url + "/our-activities/opportunities"},
            "cascade_hub": {"url": self.cascade_hub.url + "/open-calls/"},
        }

    def routes(self, settings: Settings) -> dict[str, str]:
        """Public address → replay server, for ``RoutedClient``: the portal's two endpoints
        by their whole URL (the replay serves them at other paths), every other site by its
        origin (the replays serve the sites' own paths)."""
        portal = settings.sources["ft_portal"].model_dump()
        routes = {portal["search_url"]: self.portal.search_url,
                  portal["bulk_url"]: self.portal.bulk_url}
        servers = {"interreg": (self.interreg, "search_url"), "eccp": (self.eccp, "list_url"),
                   "eismea": (self.eismea, "list_url"), "eit": (self.eit, "list_url"),
                   "cascade_hub": (self.cascade_hub, "url")}
        for name, (server, key) in servers.items():
            routes[_origin(getattr(settings.sources[name], key))] = server.url
        return routes


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class RoutedClient:
    """The shared HTTP client with each public address sent to its replay server.

    The sources ask for the public sites' URLs and resolve the links they find against
    them, as they do live, so stored calls carry public links; only the request goes to
    127.0.0.1. An address with no replay is refused, so the demo never goes online.
    """

    def __init__(self, client: HttpClient, routes: Mapping[str, str]) -> None:
        self._client = client
        self._routes = sorted(routes.items(), key=lambda route: -len(route[0]))  # longest first

    def local(self, url: str) -> str:
        """The replay's URL for ``url``: a whole-URL route first, else its origin's."""
        for public, local in self._routes:
            if url.startswith(public) and (public.count("/") > 2 or _origin(url) == public):
                return local + url[len(public):]
        raise SourceRejected(f"the demo has no replay of {_origin(url)}; it never goes online")

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return await self._client.request(method, self.local(url), **kwargs)

    def stream(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._client.stream(method, self.local(url), **kwargs)


class _Server(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Server)


def _started(stack: ExitStack, server: S) -> S:
    server.start()
    stack.callback(server.stop)
    return server


def _public(site: FixtureSite, base: str) -> FixtureSite:
    """``site`` writing the public ``base`` into the absolute links of its pages."""
    site.base = base
    return site


@contextmanager
def local_world() -> Iterator[LocalWorld]:
    """Start every replay server and channel stand-in; stop them all on exit."""
    eit = RECORDINGS / "eit"
    with ExitStack() as stack:
        yield LocalWorld(
            portal=_started(stack, PortalReplayServer()),
            interreg=_started(stack, InterregSearch(
                sorted((RECORDINGS / "interreg").glob("paged_page*.json")))),
            eccp=_started(stack, EccpSite(RECORDINGS / "eccp")),
            eismea=_started(stack, EclSite(RECORDINGS / "ecl_pages")),
            eit=_started(stack, FixtureSite({
                "/our-activities/opportunities": eit / "opportunities_page0.html",
                "/our-activities/opportunities?page=1": eit / "opportunities_page1.html"})),
            cascade_hub=_started(stack, _public(FixtureSite({
                "/open-calls/": RECORDINGS / "cascade_hub" / "open_calls.html"}),
                "https://cascadefunding.eu")),
            telegram=_started(stack, FakeTelegram(DEMO_TOKEN)),
            smtp=_started(stack, SmtpSink()),
            webhooks=_started(stack, WebhookReceiver(DEMO_WEBHOOK_SECRET)),
        )


# -- settings ------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    """A TOML literal for a str, bool, number or list of those (JSON's syntax is TOML's here)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def demo_config(world: LocalWorld, database_url: str, profiles: Path, subscribers: Path, *,
                routed: bool = False) -> str:
    """The demo's config file: local channels, no politeness delays, unreplayed sources off;
    the replayed sources at their replays, or at their public addresses when ``routed``
    (``LocalWorld.source_settings``)."""
    with PACKAGED_DEFAULTS.open("rb") as handle:
        packaged_sources = tomllib.load(handle).get("sources", {})
    replayed = world.source_settings(routed=routed)
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        # local servers: no delay between requests, fail fast instead of retrying for minutes
        # (a generous timeout: the replays share this process, and a busy machine slows both)
        "http": {"delay": 0.0, "retries": 1, "backoff": 0.1, "max_backoff": 1.0, "timeout": 60.0},
        "profiles": {"directory": str(profiles)},
        "subscribers": {"directory": str(subscribers)},
        "notifiers.console": {"enabled": False},
        "notifiers.telegram": {"enabled": True, "base_url": world.telegram.base_url},
        "notifiers.email": {"enabled": True, "host": world.smtp.host, "port": world.smtp.port,
                            "security": "none", "sender": "callwatch-demo@localhost"},
        "notifiers.webhook": {"enabled": True},
    }
    for name in packaged_sources:
        sections[f"sources.{name}"] = {"enabled": False}  # no bundled pages: never go online
    for name, values in replayed.items():
        sections[f"sources.{name}"] = {"enabled": True, **values}
    return "".join(f"[{section}]\n" + "".join(f"{key} = {_toml_value(value)}\n"
                                              for key, value in values.items()) + "\n"
                   for section, values in sections.items())


def local_subscribers(source: Path, target: Path, world: LocalWorld,
                      language: str | None = None) -> list[str]:
    """Copy the example subscribers, pointing each webhook at the local receiver (and
    setting each one's ``language``, when given: ``callwatch demo --language de``).

    Email addresses and Telegram chat ids need no change: the SMTP sink and the fake Bot
    API accept any. A webhook is a URL, so it becomes ``<receiver>/<subscriber>``.
    """
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(source.glob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        channels = document.get("channels") if isinstance(document, dict) else None
        if isinstance(channels, dict) and channels.get("webhook"):
            channels["webhook"] = world.webhooks.endpoint(f"/{document.get('name', path.stem)}")
        if language is not None and isinstance(document, dict):
            document["language"] = language
        (target / path.name).write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
                                        encoding="utf-8")
        names.append(str(document.get("name", path.stem)) if isinstance(document, dict) else path.stem)
    return names


# -- what was delivered, as files ------------------------------------------------------------

def _slug(text: str, limit: int = 60) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:limit].rstrip("-") or "message"


def _html_part(message: EmailMessage) -> str | None:
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if isinstance(part, EmailMessage) else None


_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)


def _telegram_text(markup: str) -> str:
    """What a Telegram chat shows, with each link's target written after its text."""
    try:
        return parse_telegram_html(_LINK.sub(r"\2: \1", markup))
    except HtmlError:  # the fake accepted the message, so this cannot happen; keep the markup
        return markup


def write_deliveries(world: LocalWorld, out: Path) -> dict[str, list[Path]]:
    """Write everything the stand-ins received under ``out``; the files per channel."""
    written: dict[str, list[Path]] = {channel: [] for channel in CHANNEL_FOLDERS}
    for number, received in enumerate(world.smtp.messages, 1):
        folder = out / CHANNEL_FOLDERS["email"]
        folder.mkdir(parents=True, exist_ok=True)
        to = received.rcpt_tos[0].split("@")[0] if received.rcpt_tos else "unknown"
        stem = f"{number:03d}-{_slug(to, 20)}-{_slug(str(received.message['Subject'] or ''), 50)}"
        (folder / f"{stem}.eml").write_bytes(received.raw)
        written["email"].append(folder / f"{stem}.eml")
        html = _html_part(received.message)
        if html is not None:
            (folder / f"{stem}.html").write_text(html, encoding="utf-8")
    for number, sent in enumerate(world.telegram.sent, 1):
        folder = out / CHANNEL_FOLDERS["telegram"]
        folder.mkdir(parents=True, exist_ok=True)
        visible = _telegram_text(sent.text) if sent.parse_mode == "HTML" else sent.text
        buttons = [b.get("text", "") for row in (sent.reply_markup or {}).get("inline_keyboard", [])
                   for b in row]
        text = f"chat {sent.chat_id}\n\n{visible}\n"
        if buttons:
            text += "\n" + "  ".join(f"[{b}]" for b in buttons) + "\n"
        path = folder / f"{number:03d}-chat-{_slug(sent.chat_id, 20)}.txt"
        path.write_text(text, encoding="utf-8")
        written["telegram"].append(path)
    for number, hook in enumerate(world.webhooks.received, 1):
        folder = out / CHANNEL_FOLDERS["webhook"]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{number:03d}-{_slug(hook.path)}.json"
        path.write_text(json.dumps(hook.json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written["webhook"].append(path)
    return written


# -- the run -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceLine:
    """One source in the summary."""

    name: str
    calls: int
    skipped: int
    outcome: str
    error: str | None = None


@dataclass(frozen=True)
class DemoReport:
    """What the demo did, for the summary and for tests."""

    out: Path
    database: Path
    now: datetime
    sources: list[SourceLine]
    matches: dict[str, int]
    messages: dict[str, int]
    files: dict[str, list[Path]]
    undelivered: int
    seconds: float
    subscribers: list[str] = field(default_factory=list)
    #: the second cycle's clock
    later: datetime = LATER_NOW
    #: what each cycle stored: change kind → events (first cycle, second cycle)
    changes: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: messages per channel sent by each cycle (first, second)
    per_cycle: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: the sources whose first run failed (``sources`` are the second cycle's runs)
    failed_first: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every source read its bundled pages in both cycles and every message reached its
        stand-in."""
        return (self.undelivered == 0 and not self.failed_first
                and all(s.outcome == "ok" for s in self.sources))


def _matches_per_profile(engine: Engine, profiles: list[str]) -> dict[str, int]:
    with engine.connect() as connection:
        counted = {str(profile): int(count) for profile, count in connection.execute(
            sa.select(matches_table.c.profile, sa.func.count()).group_by(matches_table.c.profile))}
    return {name: counted.get(name, 0) for name in profiles}


def _undelivered(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(deliveries_table)
                                      .where(deliveries_table.c.status != "sent")).scalar_one())


def _changes_since(engine: Engine, since: datetime) -> Counter[str]:
    """The change events stored at or after ``since``, by kind (``changed`` by its field)."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(changes_table.c.kind, changes_table.c.field)
                                  .where(changes_table.c.at >= since))
        return Counter(kind if kind != "changed" or not field else f"{kind}: {field}"
                       for kind, field in rows)


def _sent(world: LocalWorld) -> dict[str, int]:
    return {"email": len(world.smtp.messages), "telegram": len(world.telegram.sent),
            "webhook": len(world.webhooks.received)}


async def _cycle(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                 routes: Mapping[str, str], now: datetime) -> list[ScrapeOutcome]:
    """One cycle composed of the steps ``run_once`` composes, with two differences: the
    sources fetch through ``RoutedClient`` (public addresses, local replays), and every
    digest is sent now rather than at 08:00 in each subscriber's zone."""
    def clock() -> datetime:
        return now

    channels = list(notifiers)
    audience = await asyncio.to_thread(load_audience, settings, engine)
    store = Store(engine)
    async with http_client(settings.http) as shared:
        http = RoutedClient(shared, routes)
        sources = build_sources(settings, http, select_sources(settings))
        scrapes = list(await asyncio.gather(*(
            scrape_one(name, source, store, clock, ceiling=settings.http.source_timeout)
            for name, source in sources.items())))
    await report_health(settings, engine, notifiers, sources)
    await asyncio.to_thread(store.refresh_statuses, now)
    await asyncio.to_thread(notify_step, settings, engine, now, channels, audience)
    await asyncio.to_thread(enqueue_reminders, engine, now, channels)
    await asyncio.to_thread(enqueue_digests, engine, now, channels, force=True)
    await dispatch_step(settings, engine, notifiers, clock)
    return scrapes


def later_portal_results() -> list[dict[str, Any]]:
    """The portal's results two months on: the bundled ones, with each result of the later
    file (``LATER_PORTAL``) in place of the one with its ``reference``, new ones last."""
    later = {result["reference"]: result for result in load_results([LATER_PORTAL])}
    results = [later.pop(result["reference"], result) for result in load_results(RECORDED_SEARCHES)]
    return results + list(later.values())


async def _two_cycles(settings: Settings, engine: Engine, world: LocalWorld,
                      now: datetime, later: datetime
                      ) -> tuple[list[ScrapeOutcome], list[str], dict[str, int]]:
    """The first cycle at ``now``, then the portal's later state at ``later``; the second
    cycle's runs (what is stored now), the sources that failed in the first, and what the
    first sent per channel."""
    notifiers = _demo_notifiers(settings)
    routes = world.routes(settings)
    try:
        first = await _cycle(settings, engine, notifiers, routes, now)
        failed = sorted(o.report.source for o in first if o.report.outcome.value != "ok")
        sent_first = _sent(world)
        world.portal.results = later_portal_results()
        return await _cycle(settings, engine, notifiers, routes, later), failed, sent_first
    finally:
        await close_notifiers(notifiers)


def _demo_notifiers(settings: Settings) -> dict[str, Notifier]:
    """The real channels; Telegram without pacing, since the fake Bot API has no flood limits
    and pacing would only make the demo wait a second per message to one chat."""
    environ = {TELEGRAM_TOKEN_ENV: DEMO_TOKEN,
               settings.notifiers.webhook.secret_env: DEMO_WEBHOOK_SECRET}
    return build_notifiers(settings, environ, paced=False)


def run_demo(out: Path, *, now: datetime = DEMO_NOW, later: datetime = LATER_NOW,
             language: str | None = None) -> DemoReport:
    """Run the demo into ``out`` (created; must not hold an earlier demo) and report;
    ``language``: every subscriber's messages in it (else each example's own)."""
    began = time.perf_counter()
    if out.exists() and any(out.iterdir()):
        raise DemoError(f"{out} is not empty; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    config_dir = bundled_config_dir()
    database = out / DATABASE_NAME
    with tempfile.TemporaryDirectory(prefix="callwatch-demo-") as scratch, local_world() as world:
        subscribers = local_subscribers(config_dir / "subscribers", Path(scratch) / "subscribers",
                                        world, language)
        config_file = Path(scratch) / "callwatch-demo.toml"
        config_file.write_text(demo_config(world, f"sqlite:///{database.resolve()}",
                                           config_dir / "profiles", Path(scratch) / "subscribers",
                                           routed=True),
                               encoding="utf-8")
        settings = load_config(config_file, environ={})  # never the user's overrides
        engine = db.make_engine(settings.database.resolved_url())
        try:
            db.create_or_upgrade(engine)
            scrapes, failed_first, sent_first = asyncio.run(
                _two_cycles(settings, engine, world, now, later))
            profiles = sorted(p.stem for p in (config_dir / "profiles").glob("*.y*ml"))
            matches = _matches_per_profile(engine, profiles)
            undelivered = _undelivered(engine)
            second = _changes_since(engine, later)
            total = _changes_since(engine, now)
        finally:
            engine.dispose()
        files = write_deliveries(world, out)
        messages = _sent(world)
    sources = [SourceLine(o.report.source, o.report.items_seen, o.report.invalid,
                          o.report.outcome.value, o.report.error)
               for o in sorted(scrapes, key=lambda o: o.report.source)]
    changes = {kind: (total[kind] - second[kind], second[kind]) for kind in sorted(total)}
    per_cycle = {channel: (sent_first[channel], count - sent_first[channel])
                 for channel, count in messages.items()}
    return DemoReport(out=out, database=database, now=now, sources=sources, matches=matches,
                      messages=messages, files=files, undelivered=undelivered,
                      seconds=time.perf_counter() - began, subscribers=subscribers, later=later,
                      changes=changes, per_cycle=per_cycle, failed_first=failed_first)


def callwatch_command() -> str:
    """How to run callwatch again from where the user is: ``callwatch`` when it is on PATH
    (an activated venv, pipx), else the path of the console script beside this Python
    (``.venv/bin/callwatch`` after the README's install), else ``python -m tracker``."""
    import shutil
    import sys

    beside = Path(sys.executable).with_name("callwatch")
    on_path = shutil.which("callwatch")
    if on_path and Path(on_path).resolve() == beside.resolve():
        return "callwatch"
    if beside.is_file():
        try:
            return str(beside.relative_to(Path.cwd()))
        except ValueError:
            return str(beside)
    return f"{sys.executable} -m tracker"


def format_summary(report: DemoReport, command: str = "callwatch") -> str:
    """The demo's printed summary; README shows one, and a test keeps the two alike.
    ``command`` is how the hints run callwatch (``callwatch_command()``)."""
    lines = [f"callwatch demo: two cycles over bundled pages, {report.now:%Y-%m-%d %H:%M} and "
             f"{report.later:%Y-%m-%d %H:%M} UTC, no network", PAGES_NOTE, ""]
    lines.append(f"{'calls per source':<24}{'calls':>7}{'skipped':>9}")
    for source in report.sources:
        note = "" if source.outcome == "ok" else f"  {source.outcome}: {source.error or ''}".rstrip()
        lines.append(f"  {source.name:<22}{source.calls:>7}{source.skipped:>9}{note}")
    if report.failed_first:
        lines.append(f"  failed in the first cycle: {', '.join(report.failed_first)}")
    lines += ["", f"{'what the cycles stored':<24}{'first':>7}{'second':>9}"]
    lines += [f"  {kind:<22}{first:>7}{second:>9}" for kind, (first, second) in report.changes.items()]
    lines += ["", f"{'matches per profile':<24}{'calls':>7}"]
    lines += [f"  {name:<22}{count:>7}" for name, count in report.matches.items()]
    lines += ["", f"{'messages per channel':<24}{'first':>7}{'second':>9}"]
    lines += [f"  {name:<22}{first:>7}{second:>9}" for name, (first, second) in report.per_cycle.items()]
    if report.undelivered:
        lines.append(f"  {report.undelivered} message(s) not delivered: "
                     f"{command} --db sqlite:///{report.database} deliveries --failed")
    counts = Counter({channel: len(paths) for channel, paths in report.files.items()})
    lines += [
        "",
        f"delivered messages are in {report.out}/",
        f"  email/     {counts['email']} .eml files, each with an .html beside it to open in a browser",
        f"  telegram/  {counts['telegram']} .txt files (the text each chat received)",
        f"  webhook/   {counts['webhook']} .json files (the signed JSON bodies)",
        f"browse the calls: {command} --db sqlite:///{report.database} calls list",
        f"finished in {report.seconds:.1f} s",
    ]
    return "\n".join(lines)
