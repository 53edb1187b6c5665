"""A member SME's whole path in Chromium (issue 17, flow 1): sign up on the tenant's page,
confirm from the email the SMTP sink caught, receive an alert from a cycle, open the
preferences page from the alert's footer, switch email to weekly, then unsubscribe with one
click from the alert's footer; and a member who moves to a new address, confirmed from the
new mailbox, then erases their data.

The app runs under uvicorn on 127.0.0.1 with ``web.public_url`` set to its own address, so
the links in the emails lead back to it; the cycle is ``run_once`` over a recorded call
(``tests.members_support``). Skipped without ``/usr/bin/chromium``; a failure leaves a
screenshot in ``tmp/artifacts/`` (``tests.test_web_browser._page``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.members_support import PROFILE, TENANT, cycle, mails_to, member_settings, plain, sync_files
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS, Watch, _page
from tests.web_support import NOW, running
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store import db
from tracker.store.db import channels_table, subscribers_table, subscriptions_table
from tracker.web.app import create_app
from tracker.web.serve import bind

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")
EMAIL = "mira@example.org"


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(chromium, request, viewport={"width": 390, "height": 844})


def fits(page: Page) -> bool:
    """Whether the page reads at 390 px without scrolling sideways."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def link(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found, text
    return found.group(0)


def sign_up_and_confirm(page: Page, base: str, smtp: SmtpSink) -> None:
    """Sign up as Mira on the tenant's page and confirm from the email: on her preferences."""
    page.goto(f"{base}/t/{TENANT}/join")
    assert fits(page)
    page.get_by_label("Your name").fill("Mira Nowak")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label(PROFILE, exact=True).check()
    page.get_by_label("How often").select_option("instant")
    page.get_by_label("Time zone").select_option("Europe/Warsaw")
    page.locator("#consent").check()
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    [confirmation] = mails_to(smtp, EMAIL)
    page.goto(link(plain(confirmation), rf"{re.escape(base)}/t/{TENANT}/join/\S+"))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed up")


def test_an_sme_signs_up_confirms_is_alerted_changes_and_leaves(
        page: Page, tmp_path: Path) -> None:
    watch = Watch(page)
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SmtpSink() as smtp:
        settings = member_settings(tmp_path, smtp, public_url=base)
        engine = db.make_engine(f"sqlite:///{tmp_path / 'callwatch.db'}")
        db.upgrade(engine)
        sync_files(settings, engine, NOW)
        with running(create_app(settings, engine, lambda: NOW), sock):
            sign_up_and_confirm(page, base, smtp)

            cycle(settings, engine, NOW + timedelta(hours=1))
            [alert] = [m for m in mails_to(smtp, EMAIL) if "H2-NEW" in plain(m)]
            page.goto(link(plain(alert), rf"{re.escape(base)}/manage/\S+"))
            assert fits(page)
            page.get_by_label("On email").select_option("weekly")
            page.get_by_role("button", name="Save").click()
            expect(page.get_by_role("status")).to_have_text("Saved.")
            with engine.connect() as connection:
                member = connection.execute(sa.select(subscribers_table.c.id)
                                            .where(subscribers_table.c.origin == "web")).scalar_one()
                modes = connection.execute(sa.select(subscriptions_table.c.mode).where(
                    subscriptions_table.c.subscriber_id == member)).scalars().all()
            assert modes == ["weekly"]

            page.goto(link(plain(alert), rf"{re.escape(base)}/unsubscribe/\S+"))
            page.get_by_role("button", name="Unsubscribe").click()
            expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
            with engine.connect() as connection:
                left = connection.execute(sa.select(sa.func.count()).select_from(
                    subscriptions_table).where(subscriptions_table.c.subscriber_id == member)
                ).scalar()
            assert left == 0
        engine.dispose()
    assert watch.errors == [] and watch.dialogs == []  # no CSP violation on the way


def test_an_sme_moves_to_a_new_address_confirmed_from_its_mailbox_then_erases_their_data(
        page: Page, tmp_path: Path) -> None:
    """Change of address: asked on the preferences page, nothing changes until the new
    mailbox's link is confirmed, the old address is told; then "Erase my data"."""
    watch = Watch(page)
    moved = "mira.nowak@example.net"
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SmtpSink() as smtp:
        settings = member_settings(tmp_path, smtp, public_url=base)
        engine = db.make_engine(f"sqlite:///{tmp_path / 'callwatch.db'}")
        db.upgrade(engine)
        sync_files(settings, engine, NOW)

        def address() -> str:
            with engine.connect() as connection:
                return str(connection.execute(sa.select(channels_table.c.address).join(
                    subscribers_table, subscribers_table.c.id == channels_table.c.subscriber_id)
                    .where(subscribers_table.c.origin == "web")).scalar_one())

        with running(create_app(settings, engine, lambda: NOW), sock):
            sign_up_and_confirm(page, base, smtp)
            preferences = page.url.split("?")[0]
            page.get_by_label("New email address").fill(moved)
            page.get_by_role("button", name="Change my email address").click()
            expect(page.get_by_role("heading", name="Check your new mailbox")).to_be_visible()
            assert address() == EMAIL  # nothing changes before the new mailbox confirms

            [request] = mails_to(smtp, moved)
            page.goto(link(plain(request), rf"{re.escape(base)}/email-change/\S+"))
            expect(page.get_by_text(moved)).to_be_visible()
            assert fits(page)
            page.get_by_role("button", name="Confirm").click()
            expect(page.get_by_role("status")).to_have_text("Your email address is changed.")
            assert page.url.split("?")[0] == preferences and address() == moved
            assert moved in plain(mails_to(smtp, EMAIL)[-1])  # the old address is told

            page.get_by_role("link", name="Erase my data").click()
            page.get_by_role("button", name="Erase my data now").click()
            expect(page.get_by_role("heading", name="Your data is erased")).to_be_visible()
            with engine.connect() as connection:
                assert connection.execute(sa.select(sa.func.count()).select_from(
                    subscribers_table).where(subscribers_table.c.origin == "web")).scalar() == 0
        engine.dispose()
    assert watch.errors == [] and watch.dialogs == []  # no CSP violation on the way
