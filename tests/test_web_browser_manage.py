"""The managers' pages in Chromium (issue 17's flows 2 and 3, the members part): a manager
of tenant A signs in, imports a 200-row CSV with 3 bad rows (the dry run shows exactly
those, with why), applies it and finds the new members; and gets 403 for tenant B's
members and member pages, reached by typing their URLs.

Chromium, the fixtures and the screenshot on failure are ``tests.test_web_browser``'s.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page

from tests import test_web_browser
from tests.test_web_browser import Watch, browser, page, phone  # noqa: F401 - fixtures used by name
from tests.web_support import NOW, OTHER_TENANT, TENANT, populate
from tracker.config import load_config
from tracker.rules.profiles import Profile
from tracker.rules.store import RulesStore
from tracker.store import db
from tracker.web import accounts
from tracker.web.app import create_app
from tracker.web.manage import manage_url
from tracker.web.serve import bind, server

pytestmark = test_web_browser.pytestmark
MANAGER, PASSWORD = "ana@example.org", "correct horse battery"
#: the rows that must be refused, and the words the dry run must give for each
BAD = {"sme-050": "is not an email address", "sme-100": "unknown profile 'hydrogen-x'",
       "sme-150": "callwatch does not write in 'xx'"}


def crm_export(profiles: str | None = None, mode: str | None = None) -> bytes:
    """200 members as a CRM writes them (BOM, semicolons, capitalised header), 3 of them bad
    (``BAD``); the good rows follow ``profiles`` in ``mode`` when given, else a mix."""
    lines = ["Name;Email;Language;Profiles;Mode"]
    for n in range(200):
        name = f"sme-{n:03d}"
        email = "not-an-address" if name == "sme-050" else f"{name}@example.org"
        follows = profiles or ("h2|agri" if n % 2 else "h2")
        follows = "hydrogen-x" if name == "sme-100" else follows
        language = "xx" if name == "sme-150" else ("de" if n % 3 else "en")
        lines.append(f"{name};{email};{language};{follows};"
                     f"{mode or ('daily' if n % 4 else 'weekly')}")
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n"


def dry_run(tab: Page, data: bytes) -> dict[str, str]:
    """Upload ``data`` on the import page (open in ``tab``) and check it: the dry run's
    invalid rows, name → why, as the page shows them."""
    tab.get_by_label("CSV file").set_input_files(
        {"name": "crm-export.csv", "mimeType": "text/csv", "buffer": data})
    tab.get_by_role("button", name="Check the file").click()
    tab.locator("#summary").wait_for()
    invalid = tab.locator("table.invalid tbody tr")
    return {invalid.nth(n).locator("td").nth(1).inner_text():
            invalid.nth(n).locator("td").nth(3).inner_text() for n in range(invalid.count())}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, db.Engine]]:
    """The app under uvicorn on 127.0.0.1 over a filled store, with profiles and a manager of
    tenant A; (its base URL, its engine)."""
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('manage') / 'callwatch.db'}")
    db.upgrade(engine)
    populate(engine)
    for name in ("h2", "agri"):
        RulesStore(engine).save_profile(Profile.model_validate({"name": name, "query": name}), NOW)
    accounts.add_user(engine, MANAGER, PASSWORD, tenant=TENANT, role="manager", now=NOW)
    sock = bind("127.0.0.1", 0)
    uvicorn = server(create_app(load_config(None, environ={}), engine, lambda: NOW))
    runner = threading.Thread(target=uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
    runner.start()
    waited = 0.0
    while not uvicorn.started and runner.is_alive() and waited < 30:
        time.sleep(0.05)
        waited += 0.05
    assert uvicorn.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", engine
    finally:
        uvicorn.should_exit = True
        runner.join(timeout=15)
        sock.close()
        engine.dispose()


def _sign_in(tab: Page, base: str, path: str) -> None:
    tab.goto(base + path)
    tab.wait_for_url(re.compile(r"/signin\?next="))
    tab.get_by_label("Email").fill(MANAGER)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(base + path)


def test_a_manager_imports_a_crm_export_after_its_dry_run(page: Page,  # noqa: F811
                                                          site: tuple[str, db.Engine]) -> None:
    base, _engine = site
    watch = Watch(page)
    _sign_in(page, base, manage_url(TENANT, "/members"))
    assert page.locator("p.count").inner_text().startswith("1 member")
    page.get_by_role("link", name="Import a CSV").click()
    shown = dry_run(page, crm_export())
    assert page.locator("#summary").inner_text() == \
        "197 new, 0 updated, 0 unchanged, 3 invalid (left out)."
    assert set(shown) == set(BAD)
    for name, words in BAD.items():
        assert words in shown[name], (name, shown[name])
    assert page.locator("table.all tbody tr").count() == 200
    page.get_by_role("button", name="Apply: 197 new, 0 updated").click()
    page.wait_for_url(re.compile(re.escape(manage_url(TENANT, "/members")) + r"\?imported="))
    assert page.get_by_role("status").inner_text() == \
        "Imported: 197 new, 0 updated; 3 invalid rows left out."
    assert page.locator("p.count").inner_text().startswith("198 members, page 1 of 4")
    page.get_by_label("Name or email contains").fill("sme-199")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="sme-199").click()
    assert page.locator("h1").inner_text() == "sme-199"
    assert "h2, daily" in page.locator("main").inner_text()
    page.goto(base + manage_url(TENANT, "/members", {"q": "sme-050"}))
    assert page.locator("p.count").inner_text().startswith("0 members")
    assert watch.errors == [] and watch.dialogs == []


def test_a_manager_gets_403_for_another_tenant_by_url_guessing(page: Page,  # noqa: F811
                                                               site: tuple[str, db.Engine]) -> None:
    base, engine = site
    _sign_in(page, base, manage_url(TENANT, "/members"))
    with engine.connect() as connection:
        rita = connection.execute(sa.select(db.subscribers_table.c.id)
                                  .where(db.subscribers_table.c.name == "rita")).scalar_one()
    for path in ("/members", f"/members/{rita}", "/members.csv", "/outbox", "/import"):
        response = page.goto(base + manage_url(OTHER_TENANT, path))
        assert response is not None and response.status == 403, path
        assert page.locator("h1").inner_text() == "Not your cluster"
        assert "rita" not in page.locator("main").inner_text()


def test_the_manager_pages_are_readable_at_390_px(phone: Page,  # noqa: F811
                                                  site: tuple[str, db.Engine]) -> None:
    base, _engine = site
    _sign_in(phone, base, manage_url(TENANT, "/members"))
    for path in ("/members", "/import", "/outbox", "/sources", "/charts"):
        phone.goto(base + manage_url(TENANT, path))
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= test_web_browser.NARROW, f"{path} scrolls sideways ({width} px wide)"
        assert phone.locator("h1").is_visible()
    phone.goto(base + manage_url(TENANT, "/import"))
    dry_run(phone, crm_export())
    assert phone.evaluate("document.documentElement.scrollWidth") <= test_web_browser.NARROW
