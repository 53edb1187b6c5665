"""The profile editor in Chromium: a manager signs in, types a query, the live preview
(htmx) shows the matching calls, saves; the next cycle alerts the profile's followers.

Reuses the browser, page and screenshot-on-failure fixtures of ``tests.test_web_browser``
(a failing test leaves ``tmp/artifacts/<test>.png``); the app runs under uvicorn on
127.0.0.1 over a SQLite store, with profile and subscriber directories for the cycle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine

from tests.profile_support import cycle_alerts, follow, settings_in
from tests.test_web_browser import (  # noqa: F401 - fixtures, found by pytest by name
    CHROMIUM,
    MANAGER,
    PASSWORD,
    Watch,
    browser,
    no_script,
    page,
)
from tests.web_support import NOW, TENANT, populate, running
from tracker.config import Settings
from tracker.store import db
from tracker.web import accounts
from tracker.web.app import create_app
from tracker.web.manage_profiles import profiles_url
from tracker.web.serve import bind

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: "
                                "`apt-get install -y chromium` (as .ci/run does)")


@dataclass
class Site:
    url: str
    engine: Engine
    settings: Settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("profiles-web")
    settings = settings_in(directory)
    engine = db.make_engine(f"sqlite:///{directory / 'callwatch.db'}")
    db.upgrade(engine)
    populate(engine)
    accounts.add_user(engine, MANAGER, PASSWORD, tenant=TENANT, role="manager", now=NOW)
    with running(create_app(settings, engine, lambda: NOW), bind("127.0.0.1", 0)) as url:
        yield Site(url, engine, settings)
    engine.dispose()


def sign_in_to(tab: Page, site: Site, path: str) -> None:
    tab.goto(site.url + path)
    tab.wait_for_url(re.compile(r"/signin\?next="))
    tab.get_by_label("Email").fill(MANAGER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(site.url + path)


def test_a_manager_types_a_query_sees_the_preview_saves_and_the_cycle_alerts(
        page: Page, site: Site) -> None:  # noqa: F811 - the imported fixture, by name
    watch = Watch(page)
    sign_in_to(page, site, profiles_url(TENANT, "new"))
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Name").fill("h2-live")
    preview = page.locator("#preview")
    page.get_by_label("Query").press_sequentially("hydrogen storage", delay=30)
    expect(preview.locator("strong.total")).to_have_text("30")  # the 30 storage topics
    assert preview.locator("li.call").count() == 20
    page.get_by_label("Query").press_sequentially(" AND NOT topic OR electrolyser", delay=30)
    expect(preview.locator("strong.total")).to_have_text("1")
    expect(preview.locator("li.call h3")).to_have_text(["Electrolyser stacks for steel plants"])
    expect(preview.locator("li.call .why")).to_contain_text(["Why: title: electrolyser"])
    page.get_by_label("Query").press("End")
    page.get_by_label("Query").press_sequentially(" AND (", delay=30)
    expect(preview).to_contain_text("Not a valid profile yet")
    expect(preview).to_contain_text("'(' is never closed")
    for _ in range(len(" AND (")):
        page.get_by_label("Query").press("Backspace")
    expect(preview.locator("strong.total")).to_have_text("1")
    assert page.evaluate("window.notReloaded === true"), "the preview reloaded the page"
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(site.url + profiles_url(TENANT, "h2-live", "edit") + "?saved=1")
    expect(page.get_by_role("status").first).to_contain_text("Saved.")
    expect(page.get_by_label("Query")).to_have_value(
        "hydrogen storage AND NOT topic OR electrolyser")
    assert watch.errors == [] and watch.dialogs == []
    follow(site.settings, "mia", "h2-live", TENANT)  # a member joins the profile
    alerted = cycle_alerts(site.settings, site.engine, NOW + timedelta(minutes=5), "mia")
    assert alerted == {"ft_portal:H2-SOON"}


def test_the_preview_button_works_without_javascript(no_script: Page, site: Site) -> None:  # noqa: F811 - the imported fixture
    sign_in_to(no_script, site, profiles_url(TENANT, "new"))
    no_script.get_by_label("Name").fill("h2-plain")
    no_script.get_by_label("Query").fill("electrolyser")
    no_script.get_by_role("button", name="Preview").click()
    no_script.wait_for_url(site.url + profiles_url(TENANT, "preview"))
    expect(no_script.locator("#preview strong.total")).to_have_text("1")
    expect(no_script.get_by_label("Query")).to_have_value("electrolyser")
