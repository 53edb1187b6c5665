"""Screenshots of what members receive: the demo's "deadline moved" alert and its fullest
daily digest, as emails in a browser, in English, German and Polish.

``python -m tests.message_screenshots`` (from the repository root, with the dev extras)
runs the demo once per language (``run_demo(language=…)``), opens each chosen email's
HTML part in headless Chromium (``/usr/bin/chromium``, as tests/test_web_browser.py) and
writes ``docs/screenshots/<kind>-<lang>.png`` (800 CSS pixels wide, the whole page), the
files README.md links. tests/test_message_screenshots.py makes the same six into a
temporary folder and checks them, so the committed ones can always be made again.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracker.demo.run import DATABASE_NAME, run_demo
from tracker.models import ChangeKind
from tracker.store.db import changes_table, deliveries_table

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots"
LANGUAGES = ("en", "de", "pl")
KINDS = ("alert", "digest")
WIDTH = 800
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@dataclass(frozen=True)
class Chosen:
    """One email of the demo to show: its kind and its HTML part."""

    kind: str
    html: str


def demo_emails(folder: Path, language: str) -> dict[str, Chosen]:
    """Run the demo in ``language`` into ``folder`` and choose its emails to show: the
    alert that says a deadline moved, and the digest with the most sections.

    The outbox (the demo's database) says what each email is; emails reach the SMTP
    stand-in in the order they were enqueued, so the n-th email delivery is the n-th
    ``.eml``, which is checked by subject wherever the row keeps its message.
    """
    report = run_demo(folder, language=language)
    assert report.ok, f"the demo in {language} did not deliver everything"
    engine = sa.create_engine(f"sqlite:///{folder / DATABASE_NAME}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(deliveries_table.c.kind, deliveries_table.c.message,
                          deliveries_table.c.call_id)
                .where(deliveries_table.c.channel == "email").order_by(deliveries_table.c.id)).all()
            moved = set(connection.execute(sa.select(changes_table.c.call_id).where(
                changes_table.c.kind == ChangeKind.DEADLINE_CHANGED.value)).scalars())
    finally:
        engine.dispose()
    emails = sorted((folder / "email").glob("*.eml"))
    assert len(emails) == len(rows), (len(emails), len(rows))
    alerts: list[str] = []
    digests: list[str] = []
    for (kind, stored, call_id), path in zip(rows, emails, strict=True):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body: dict[str, Any] = stored if isinstance(stored, dict) else json.loads(stored)
        if body.get("subject"):
            assert " ".join(str(message["Subject"]).split()) == " ".join(body["subject"].split())
        part = message.get_body(preferencelist=("html",))
        assert isinstance(part, EmailMessage)
        html = str(part.get_content())
        if kind == "alert" and call_id in moved:
            alerts.append(html)
        elif kind == "digest":
            digests.append(html)
    assert alerts and digests, "the demo no longer sends a deadline-moved alert and a digest"
    fullest = max(reversed(digests), key=lambda page: page.count("<h2"))
    return {"alert": Chosen("alert", alerts[-1]), "digest": Chosen("digest", fullest)}


def screenshots(out: Path, scratch: Path, languages: tuple[str, ...] = LANGUAGES) -> list[Path]:
    """``<kind>-<lang>.png`` for every kind and language, written into ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    # the demos first: sync Playwright runs an event loop in this thread, and the demo its own
    chosen = {language: demo_emails(scratch / f"demo-{language}", language) for language in languages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 600})
            for language in languages:
                for kind, email in chosen[language].items():
                    target = out / f"{kind}-{language}.png"
                    shoot(page, email.html, scratch / f"{kind}-{language}.html", target)
                    written.append(target)
        finally:
            browser.close()
    return written


def shoot(page: Page, html: str, source: Path, target: Path) -> None:
    """Open ``html`` (written to ``source``, a local file: nothing is fetched) in ``page``
    and save the whole page as the PNG ``target``."""
    source.write_text(html, encoding="utf-8")
    page.goto(source.as_uri())
    page.screenshot(path=str(target), full_page=True)


def main(argv: list[str]) -> int:
    """Write the screenshots into docs/screenshots/ (or the folder given)."""
    import tempfile

    out = Path(argv[0]) if argv else OUT
    with tempfile.TemporaryDirectory(prefix="callwatch-screenshots-") as scratch:
        for path in screenshots(out, Path(scratch)):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
