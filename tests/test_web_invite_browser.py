"""A manager's invitation in Chromium (issue 17, "Invitations send the double opt-in
mail"): the manager signs in, invites an address from the members page, the SMTP sink
(``tests/conftest.py``'s ``smtp``) catches the email, the invitee confirms from it in a
browser of their own, in their language, and is a member, with a consent naming the manager.

Chromium, its launch arguments, ``Watch`` and the screenshot on failure are
``tests.test_web_browser``'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from tests.members_support import PROFILE, TENANT, mails_to, member_settings, plain, sync_files
from tests.test_web_browser import CHROMIUM, Watch, _page
from tests.test_web_members_browser import chromium  # noqa: F401 - the fixture, used by name
from tests.web_support import NOW, running
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store import db
from tracker.store.db import consents_table, subscribers_table
from tracker.web import accounts
from tracker.web.app import create_app
from tracker.web.manage import manage_url
from tracker.web.serve import bind

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")
MANAGER, PASSWORD = "boss@example.org", "correct horse battery"
INVITEE = "ola@example.org"


@pytest.fixture
def page(chromium: Browser,  # noqa: F811 - the imported fixture
         request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(chromium, request)


@pytest.fixture
def invitee_page(chromium: Browser,  # noqa: F811 - the imported fixture
                 request: pytest.FixtureRequest) -> Iterator[Page]:
    """The invitee's own browser: another context, no manager's session in it."""
    yield from _page(chromium, request, viewport={"width": 390, "height": 844})


def test_a_manager_invites_and_the_invitee_confirms_from_the_email(
        page: Page, invitee_page: Page, tmp_path: Path, smtp: SmtpSink) -> None:
    watch, invitee_watch = Watch(page), Watch(invitee_page)
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = member_settings(tmp_path, smtp, public_url=base)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'callwatch.db'}")
    db.upgrade(engine)
    sync_files(settings, engine, NOW)
    accounts.add_user(engine, MANAGER, PASSWORD, tenant=TENANT, role="manager", now=NOW)
    members = base + manage_url(TENANT, "/members")
    with running(create_app(settings, engine, lambda: NOW), sock):
        page.goto(members)
        page.wait_for_url(re.compile(r"/signin\?next="))
        page.get_by_label("Email").fill(MANAGER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(members)
        assert page.locator("p.count").inner_text().startswith("1 member")

        page.get_by_label("Addresses, one a line").fill(f"{INVITEE}, Ola Kowalska, pl\nnot-an-address")
        page.locator("#invite-profile-1").check()  # h2, the first topic offered
        page.get_by_label("How often").select_option("weekly")
        page.get_by_role("button", name="Send invitations").click()
        expect(page.get_by_role("status")).to_contain_text("Invitation sent to 1 address")
        expect(page.locator("table.refused")).to_contain_text("not a valid email address")
        with engine.connect() as connection:  # nothing stored before the invitee confirms
            assert connection.execute(sa.select(sa.func.count()).select_from(consents_table)
                                      ).scalar() == 0

        [invitation] = mails_to(smtp, INVITEE)
        assert invitation["Subject"] == f"{TENANT} zaprasza Cię do powiadomień callwatch"
        found = re.search(rf"{re.escape(base)}/t/{TENANT}/join/\S+", plain(invitation))
        assert found, plain(invitation)
        invitee_page.goto(found.group(0))
        invitee_page.get_by_role("button", name="Potwierdź").click()
        expect(invitee_page.get_by_role("status")).to_contain_text("Zapisano Cię")

        page.goto(members)
        assert page.locator("p.count").inner_text().startswith("2 members")
        expect(page.locator("table.members")).to_contain_text(f"{PROFILE} (weekly)")
        with engine.connect() as connection:
            consent = connection.execute(sa.select(consents_table)).one()
            member = connection.execute(sa.select(subscribers_table).where(
                subscribers_table.c.id == consent.subscriber_id)).one()
        assert (consent.invited_by, consent.person_name, consent.email) == (
            MANAGER, "Ola Kowalska", INVITEE)
        assert (member.tenant, member.language, member.origin) == (TENANT, "pl", "web")
    engine.dispose()
    assert watch.errors == [] and watch.dialogs == [] and invitee_watch.errors == []
