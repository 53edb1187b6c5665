"""A world for the member pages' tests: a config with email to a local SMTP sink, one profile,
one tenant whose manager keeps a subscriber file, and a cycle over a recorded call.

The cycle is ``run_once`` itself with every source switched off: the call it alerts about is
recorded into the store first, as a scrape would have, so matching, the file sync, the
outbox and the real email channel all run as they do in the daemon.
"""

from __future__ import annotations

import asyncio
import tomllib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.factories import make_call
from tracker.compose import build_notifiers
from tracker.config import PACKAGED_DEFAULTS, Settings, load_config
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.models import ScrapeResult
from tracker.pipeline import close_notifiers, run_once, sync_audience
from tracker.store.calls import Store

TENANT = "hydrogen-valley"
PROFILE = "h2"
PUBLIC_URL = "https://calls.example.org"
PROFILE_YAML = f"name: {PROFILE}\nquery: hydrogen\nstatus: [open, forthcoming]\n"
#: the manager's subscriber file: the tenant exists because this subscriber names it
FILE_SUBSCRIBER = f"""name: ana
tenant: {TENANT}
channels: {{email: ana@example.org}}
subscriptions:
  - {{profile: {PROFILE}, mode: instant}}
  - {{profile: other, mode: daily}}
"""
OTHER_PROFILE_YAML = "name: other\nquery: olive\n"


def member_settings(directory: Path, smtp: SmtpSink, public_url: str = PUBLIC_URL) -> Settings:
    """Email to ``smtp``, profiles and subscriber files in ``directory``, no source, no console."""
    profiles, subscribers = directory / "profiles", directory / "subscribers"
    profiles.mkdir(parents=True, exist_ok=True)
    subscribers.mkdir(parents=True, exist_ok=True)
    (profiles / f"{PROFILE}.yaml").write_text(PROFILE_YAML, encoding="utf-8")
    (profiles / "other.yaml").write_text(OTHER_PROFILE_YAML, encoding="utf-8")
    (subscribers / "ana.yaml").write_text(FILE_SUBSCRIBER, encoding="utf-8")
    with PACKAGED_DEFAULTS.open("rb") as handle:
        sources = tomllib.load(handle)["sources"]
    config = directory / "callwatch.toml"
    config.write_text("".join(f"[sources.{name}]\nenabled = false\n" for name in sources) + f"""
[profiles]
directory = "{profiles}"
[subscribers]
directory = "{subscribers}"
[web]
public_url = "{public_url}"
[notifiers.console]
enabled = false
[notifiers.telegram]
enabled = false
[notifiers.email]
enabled = true
host = "{smtp.host}"
port = {smtp.port}
security = "none"
sender = "callwatch@example.org"
public_url = "https://health.example.org"
""", encoding="utf-8")
    return load_config(config, environ={})


def sync_files(settings: Settings, engine: Engine, now: datetime) -> None:
    """The file subscribers into the database, as the start of every cycle does."""
    sync_audience(settings, engine, now)


def cycle(settings: Settings, engine: Engine, now: datetime, native_id: str = "H2-NEW") -> None:
    """One cycle at ``now`` that finds a new hydrogen call (recorded as a scrape would)."""
    call = make_call(native_id, title=f"Hydrogen refuelling for SMEs {native_id}")
    Store(engine).record_run("ft_portal", ScrapeResult(records=[call]), started_at=now, now=now)
    run_cycle(settings, engine, now)


def run_cycle(settings: Settings, engine: Engine, now: datetime) -> None:
    """``run_once`` at ``now`` with the configured channels (the SMTP sink's email): sync,
    match, notify and send, as the daemon's cycle does."""

    async def once() -> None:
        notifiers = build_notifiers(settings, environ={})
        try:
            await run_once(settings, engine, lambda: now, notifiers)
        finally:
            await close_notifiers(notifiers)

    # in a thread of its own: sync Playwright keeps an event loop running in the test's thread
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, once()).result()


def mails_to(smtp: SmtpSink, address: str) -> list[EmailMessage]:
    return [m.message for m in smtp.messages if address in m.rcpt_tos]


def plain(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]  # an EmailMessage part
