"""Issue 17's flow 2 end to end in Chromium: a manager signs in, imports a 200-row CRM export
with 3 bad rows (the dry run shows exactly those, with why), applies it, edits the profile
the new members follow with the live preview (htmx, as they type), saves it, and the next
cycle (``run_once``: sync, match, notify, send through the real email channel to the
aiosmtpd sink) alerts each new member once, about the call the edited profile matches.

On the way it makes the README's two screenshots of the web app: a tenant's public calls
page and the profile editor with its live preview, 1000 CSS pixels wide, checked here
(a PNG of that width, not blank, its heading on the page). They go into a temporary folder,
or into ``docs/screenshots/`` with ``CALLWATCH_WRITE_SCREENSHOTS=1``::

    CALLWATCH_WRITE_SCREENSHOTS=1 python -m pytest tests/test_web_browser_flow.py -p no:randomly

Chromium, the browser fixture and the screenshot on failure (``tmp/artifacts/``) are
``tests.test_web_browser``'s; the world with email to the SMTP sink is
``tests.members_support``'s; the CRM export and the dry run's reading are
``tests.test_web_browser_manage``'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.members_support import mails_to, member_settings, plain, run_cycle, sync_files
from tests.message_screenshots import OUT
from tests.test_message_screenshots import png_size
from tests.test_web_browser import CHROMIUM, Watch, _page, browser  # noqa: F401 - the fixture, by name
from tests.test_web_browser_manage import BAD, MANAGER, PASSWORD, _sign_in, crm_export, dry_run
from tests.web_support import NOW, TENANT, populate, running
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.rules.profiles import Profile
from tracker.rules.sources import save_web_profile
from tracker.store import db
from tracker.web import accounts
from tracker.web.app import calls_url, create_app
from tracker.web.manage import manage_url
from tracker.web.manage_profiles import profiles_url
from tracker.web.serve import bind

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: "
                                "`apt-get install -y chromium` (as .ci/run does)")

#: the screenshots' width in CSS pixels (and in the PNG: the device scale is 1)
WIDTH = 1000
#: the README's screenshots of the web app, in docs/screenshots/
SCREENSHOTS = {"calls": "web-calls.png", "preview": "web-profile-preview.png"}
#: the web profile the imported members follow; before the manager's edit it matches nothing
PROFILE = "electrolysers"
MATCHED = ("ft_portal:H2-SOON", "Electrolyser stacks for steel plants")
#: read at import: tests/conftest.py takes every CALLWATCH_ variable out of each test's environment
WRITE_SCREENSHOTS = os.environ.get("CALLWATCH_WRITE_SCREENSHOTS") == "1"


@pytest.fixture
def wide(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:  # noqa: F811
    yield from _page(browser, request, viewport={"width": WIDTH, "height": 800})


def screenshot_folder(tmp_path: Path) -> Path:
    """docs/screenshots/ when asked (``CALLWATCH_WRITE_SCREENSHOTS=1``), else a temporary one."""
    return OUT if WRITE_SCREENSHOTS else tmp_path


def shoot(tab: Page, heading: str, target: Path, *, full_page: bool) -> None:
    """The page (its first screen, or all of it) as the PNG ``target``, once its heading is
    there; checked to be a real picture of the page, not a blank one."""
    expect(tab.get_by_role("heading", level=1)).to_have_text(heading)
    tab.screenshot(path=str(target), full_page=full_page)
    width, height = png_size(target)
    assert width == WIDTH and 600 <= height <= 1_600, (target, width, height)
    assert target.stat().st_size > 20_000, f"{target} is nearly blank"


def test_a_manager_imports_members_edits_a_profile_and_the_next_cycle_alerts_them(
        wide: Page, tmp_path: Path) -> None:
    page, shots = wide, screenshot_folder(tmp_path)
    watch = Watch(page)
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SmtpSink() as smtp:
        settings = member_settings(tmp_path, smtp, public_url=base)
        engine = db.make_engine(f"sqlite:///{tmp_path / 'callwatch.db'}")
        db.upgrade(engine)
        populate(engine)
        sync_files(settings, engine, NOW)
        save_web_profile(engine, Profile.model_validate({"name": PROFILE, "query": "ammonia"}),
                         tenant=TENANT, by=MANAGER, now=NOW)
        accounts.add_user(engine, MANAGER, PASSWORD, tenant=TENANT, role="manager", now=NOW)
        with running(create_app(settings, engine, lambda: NOW), sock):
            # what members see, for the README (one programme: the tests' hostile title stays out)
            page.goto(base + calls_url(TENANT, {"programme": "Horizon Europe"}))
            shoot(page, f"Funding calls for {TENANT}", shots / SCREENSHOTS["calls"],
                  full_page=False)  # the filters and the first calls: 33 make a long page

            _sign_in(page, base, manage_url(TENANT, "/import"))
            shown = dry_run(page, crm_export(profiles=PROFILE, mode="instant"))
            assert page.locator("#summary").inner_text() == \
                "197 new, 0 updated, 0 unchanged, 3 invalid (left out)."
            assert set(shown) == set(BAD)
            for name, words in BAD.items():
                assert words in shown[name], (name, shown[name])
            page.get_by_role("button", name="Apply: 197 new, 0 updated").click()
            page.wait_for_url(re.compile(re.escape(manage_url(TENANT, "/members")) + r"\?imported="))
            assert page.get_by_role("status").inner_text() == \
                "Imported: 197 new, 0 updated; 3 invalid rows left out."

            page.goto(base + profiles_url(TENANT, PROFILE, "edit"))
            page.evaluate("window.notReloaded = true")
            query, preview = page.get_by_label("Query"), page.locator("#preview")
            query.fill("")
            query.press_sequentially("storage", delay=30)
            expect(preview.locator("strong.total")).to_have_text("30")  # the storage topics
            query.press("Control+A")
            query.press_sequentially("electrolyser", delay=30)
            expect(preview.locator("strong.total")).to_have_text("1")
            expect(preview.locator("li.call h3")).to_have_text([MATCHED[1]])
            expect(preview.locator("li.call .why")).to_contain_text(["Why: title: electrolyser"])
            assert page.evaluate("window.notReloaded === true"), "the preview reloaded the page"
            page.locator("summary", has_text="The query language").click()  # the help folds away
            shoot(page, f"Edit profile {PROFILE}", shots / SCREENSHOTS["preview"], full_page=True)
            page.get_by_role("button", name="Save").click()
            page.wait_for_url(base + profiles_url(TENANT, PROFILE, "edit") + "?saved=1")
            expect(page.get_by_role("status").first).to_contain_text("Saved.")

            run_cycle(settings, engine, NOW + timedelta(minutes=5))
        engine.dispose()
    imported = [f"sme-{n:03d}" for n in range(200) if f"sme-{n:03d}" not in BAD]
    for name in imported:
        mails = mails_to(smtp, f"{name}@example.org")
        assert len(mails) == 1, (name, len(mails))
        body = plain(mails[0])
        assert MATCHED[1] in body and MATCHED[0].split(":")[1] in body, (name, body)
    for name in BAD:
        assert mails_to(smtp, f"{name}@example.org") == [], f"{name} was left out, yet alerted"
    assert watch.errors == [] and watch.dialogs == []


def test_the_committed_web_screenshots_are_there_and_linked() -> None:
    """docs/screenshots/ holds both, made by the flow above at its width, and README.md
    links them."""
    readme = (OUT.parent.parent / "README.md").read_text(encoding="utf-8")
    for name in SCREENSHOTS.values():
        path = OUT / name
        assert path.is_file(), f"CALLWATCH_WRITE_SCREENSHOTS=1 on {__name__} makes {path}"
        assert png_size(path)[0] == WIDTH
        assert f"docs/screenshots/{name}" in readme
