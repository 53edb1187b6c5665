"""``callwatch demo``: one full cycle over bundled sample pages, with no network and no setup.

The demo starts the replay servers of ``tracker/fakes`` over the pages bundled in
``tracker/demo/fakes/recordings`` (the portal, interreg.eu, the ECCP, EISMEA, EIT and the
Cascade Funding Hub), a local SMTP sink, the fake Telegram Bot API and a webhook receiver;
writes a config that points every source and channel at them; runs ``run_once`` with the
example profiles and subscribers bundled with callwatch; forces the digests; and writes what
each channel delivered to a folder a person can open (emails as ``.eml`` and ``.html``,
Telegram messages as ``.txt``, webhook bodies as ``.json``).

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

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from tracker.compose import TELEGRAM_TOKEN_ENV, build_notifiers
from tracker.config import PACKAGED_DEFAULTS, Settings, load_config
from tracker.delivery.outbox import enqueue_digests
from tracker.demo.fakes import RECORDINGS
from tracker.demo.fakes.agency import EclSite
from tracker.demo.fakes.eccp import EccpSite
from tracker.demo.fakes.portal import PortalReplayServer
from tracker.demo.fakes.sites import FixtureSite, InterregSearch
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.demo.fakes.telegram_api import FakeTelegram, HtmlError, parse_telegram_html
from tracker.demo.fakes.webhook_receiver import WebhookReceiver
from tracker.pipeline import (
    CycleReport,
    close_notifiers,
    dispatch_step,
    run_once,
)
from tracker.ports import Notifier
from tracker.store import db
from tracker.store.db import deliveries_table, matches_table

log = logging.getLogger(__name__)

#: The demo's clock: the week the bundled pages are dated, 10:00 in Madrid (outside quiet hours).
DEMO_NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
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

    def source_settings(self) -> dict[str, dict[str, Any]]:
        """``[sources.<name>]`` overrides that point each replayed source at its server."""
        return {
            "ft_portal": {"search_url": self.portal.search_url, "bulk_url": self.portal.bulk_url},
            "interreg": {"enabled": True, "search_url": self.interreg.search_url,
                         "api_key": self.interreg.api_key, "hits_per_page": 2},
            "eccp": {"list_url": self.eccp.list_url},
            "eismea": {"list_url": self.eismea.list_url},
            "eit": {"list_url": self.eit.url + "/our-activities/opportunities"},
            "cascade_hub": {"url": self.cascade_hub.url + "/open-calls/"},
        }


class _Server(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Server)


def _started(stack: ExitStack, server: S) -> S:
    server.start()
    stack.callback(server.stop)
    return server


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
            cascade_hub=_started(stack, FixtureSite({
                "/open-calls/": RECORDINGS / "cascade_hub" / "open_calls.html"})),
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


def demo_config(world: LocalWorld, database_url: str, profiles: Path, subscribers: Path) -> str:
    """The demo's config file: local servers, no politeness delays, unreplayed sources off."""
    with PACKAGED_DEFAULTS.open("rb") as handle:
        packaged_sources = tomllib.load(handle).get("sources", {})
    replayed = world.source_settings()
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        # local servers: no delay between requests, fail fast instead of retrying for minutes
        "http": {"delay": 0.0, "retries": 1, "backoff": 0.1, "max_backoff": 1.0, "timeout": 10.0},
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


def local_subscribers(source: Path, target: Path, world: LocalWorld) -> list[str]:
    """Copy the example subscribers, pointing each webhook at the local receiver.

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

    @property
    def ok(self) -> bool:
        """Every source read its bundled pages and every message reached its stand-in."""
        return self.undelivered == 0 and all(s.outcome == "ok" for s in self.sources)


def _matches_per_profile(engine: Engine, profiles: list[str]) -> dict[str, int]:
    with engine.connect() as connection:
        counted = {str(profile): int(count) for profile, count in connection.execute(
            sa.select(matches_table.c.profile, sa.func.count()).group_by(matches_table.c.profile))}
    return {name: counted.get(name, 0) for name in profiles}


def _undelivered(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(deliveries_table)
                                      .where(deliveries_table.c.status != "sent")).scalar_one())


async def _cycle(settings: Settings, engine: Engine, notifiers: Mapping[str, Notifier],
                 now: datetime) -> CycleReport:
    """One cycle as ``callwatch run --once`` runs it, then every digest now (not at 08:00)."""
    def clock() -> datetime:
        return now

    try:
        report = await run_once(settings, engine, clock, notifiers)
        await asyncio.to_thread(enqueue_digests, engine, now, list(notifiers), force=True)
        await dispatch_step(settings, engine, notifiers, clock)
        return report
    finally:
        await close_notifiers(notifiers)


def _demo_notifiers(settings: Settings) -> dict[str, Notifier]:
    """The real channels; Telegram without pacing, since the fake Bot API has no flood limits
    and pacing would only make the demo wait a second per message to one chat."""
    environ = {TELEGRAM_TOKEN_ENV: DEMO_TOKEN,
               settings.notifiers.webhook.secret_env: DEMO_WEBHOOK_SECRET}
    return build_notifiers(settings, environ, paced=False)


def run_demo(out: Path, *, now: datetime = DEMO_NOW) -> DemoReport:
    """Run the demo into ``out`` (created; must not hold an earlier demo) and report."""
    began = time.perf_counter()
    if out.exists() and any(out.iterdir()):
        raise DemoError(f"{out} is not empty; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    config_dir = bundled_config_dir()
    database = out / DATABASE_NAME
    with tempfile.TemporaryDirectory(prefix="callwatch-demo-") as scratch, local_world() as world:
        subscribers = local_subscribers(config_dir / "subscribers", Path(scratch) / "subscribers",
                                        world)
        config_file = Path(scratch) / "callwatch-demo.toml"
        config_file.write_text(demo_config(world, f"sqlite:///{database.resolve()}",
                                           config_dir / "profiles", Path(scratch) / "subscribers"),
                               encoding="utf-8")
        settings = load_config(config_file, environ={})  # never the user's overrides
        engine = db.make_engine(settings.database.resolved_url())
        try:
            db.upgrade(engine)
            cycle = asyncio.run(_cycle(settings, engine, _demo_notifiers(settings), now))
            profiles = sorted(p.stem for p in (config_dir / "profiles").glob("*.y*ml"))
            matches = _matches_per_profile(engine, profiles)
            undelivered = _undelivered(engine)
        finally:
            engine.dispose()
        files = write_deliveries(world, out)
        messages = {"email": len(world.smtp.messages), "telegram": len(world.telegram.sent),
                    "webhook": len(world.webhooks.received)}
    sources = [SourceLine(o.report.source, o.report.items_seen, o.report.invalid,
                          o.report.outcome.value, o.report.error)
               for o in sorted(cycle.scrapes, key=lambda o: o.report.source)]
    return DemoReport(out=out, database=database, now=now, sources=sources, matches=matches,
                      messages=messages, files=files, undelivered=undelivered,
                      seconds=time.perf_counter() - began, subscribers=subscribers)


def format_summary(report: DemoReport) -> str:
    """The demo's printed summary; README shows one, and a test keeps the two alike."""
    lines = [f"callwatch demo: one cycle over bundled pages as of {report.now:%Y-%m-%d %H:%M} UTC, "
             "no network", PAGES_NOTE, ""]
    lines.append(f"{'calls per source':<24}{'calls':>7}{'skipped':>9}")
    for source in report.sources:
        note = "" if source.outcome == "ok" else f"  {source.outcome}: {source.error or ''}".rstrip()
        lines.append(f"  {source.name:<22}{source.calls:>7}{source.skipped:>9}{note}")
    lines += ["", f"{'matches per profile':<24}{'calls':>7}"]
    lines += [f"  {name:<22}{count:>7}" for name, count in report.matches.items()]
    lines += ["", f"{'messages per channel':<24}{'sent':>7}"]
    lines += [f"  {name:<22}{count:>7}" for name, count in report.messages.items()]
    if report.undelivered:
        lines.append(f"  {report.undelivered} message(s) not delivered: "
                     f"callwatch --db sqlite:///{report.database} deliveries --failed")
    counts = Counter({channel: len(paths) for channel, paths in report.files.items()})
    lines += [
        "",
        f"delivered messages are in {report.out}/",
        f"  email/     {_files(counts['email'], '.eml')}, each with an .html beside it to open "
        "in a browser",
        f"  telegram/  {_files(counts['telegram'], '.txt')} (the text each chat received)",
        f"  webhook/   {_files(counts['webhook'], '.json')} (the signed JSON bodies)",
        f"browse the calls: callwatch --db sqlite:///{report.database} calls list",
        f"finished in {report.seconds:.1f} s",
    ]
    return "\n".join(lines)


def _files(count: int, suffix: str) -> str:
    """"1 .txt file", "4 .txt files"."""
    return f"{count} {suffix} file{'' if count == 1 else 's'}"
