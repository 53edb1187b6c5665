"""The web app in a real browser: Debian's Chromium driven by Playwright's Python package.

The app runs under uvicorn on 127.0.0.1 (a free port) over a SQLite store filled by
``tests.web_support``. Chromium is ``/usr/bin/chromium`` (``apt-get install chromium``,
done by ``.ci/run``); Playwright's own browser download is never used. Without that
binary every test here is skipped, saying so.

A failing test leaves a screenshot of its page in ``tmp/artifacts/`` at the repository's
root (named after the test).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

from tests.web_support import HOSTILE_TITLE, NOW, TENANT, populate, running
from tracker.config import load_config
from tracker.store import db
from tracker.web import accounts
from tracker.web.app import call_url, calls_url, create_app
from tracker.web.security import CONTENT_SECURITY_POLICY
from tracker.web.serve import bind

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "tmp" / "artifacts"
NARROW = 390  # a phone's width, in CSS pixels
MANAGER, PASSWORD = "ana@example.org", "correct horse battery"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (as .ci/run does) to run "
           "the browser tests")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn in a thread, over a filled store; its ``http://127.0.0.1:PORT``."""
    directory = tmp_path_factory.mktemp("web")
    engine = db.make_engine(f"sqlite:///{directory / 'callwatch.db'}")
    db.upgrade(engine)
    populate(engine)
    accounts.add_user(engine, MANAGER, PASSWORD, tenant=TENANT, role="manager", now=NOW)
    with running(create_app(load_config(None, environ={}), engine, lambda: NOW),
                 bind("127.0.0.1", 0)) as url:
        yield url
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module (sync Playwright runs its own loop in this thread)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watch:
    """What a page did that a test must see: dialogs opened, console errors (a CSP
    violation is one)."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def _page(browser: Browser, request: pytest.FixtureRequest, **options: object) -> Iterator[Page]:
    """A page in a fresh context; a screenshot in ARTIFACTS when the test failed."""
    context = browser.new_context(**options)  # type: ignore[arg-type]  # Playwright's keywords
    page = context.new_page()
    page.set_default_timeout(15_000)
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:  # this test's call just failed
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::")[-1])
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(browser, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def phone(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(browser, request, viewport={"width": NARROW, "height": 844})


@pytest.fixture
def no_script(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    yield from _page(browser, request, java_script_enabled=False,
                     viewport={"width": 1280, "height": 900})


def _titles(page: Page) -> list[str]:
    return page.locator("ol.calls h2").all_inner_texts()


def test_browse_the_calls_page_by_page(page: Page, base_url: str) -> None:
    watch = Watch(page)
    page.goto(base_url + calls_url(TENANT))
    assert page.locator("h1").inner_text() == f"Funding calls for {TENANT}"
    first = _titles(page)
    assert len(first) == 25 and first[0] == "Electrolyser stacks for steel plants"
    page.get_by_role("link", name="Next page").click()
    page.wait_for_url(re.compile(r"page=2"))
    second = _titles(page)
    assert len(second) == 8 and not set(first) & set(second)
    assert watch.errors == [] and watch.dialogs == []


def test_filter_with_the_form_then_open_a_call_and_its_history(page: Page, base_url: str) -> None:
    watch = Watch(page)
    page.goto(base_url + calls_url(TENANT))
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Programme").select_option("Innovation Fund")
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="Show calls").click()
    page.wait_for_url(re.compile(r"programme=Innovation"))
    page.locator("ol.calls h2", has_text="Hydrogen valleys, second wave").wait_for()
    assert _titles(page) == ["Hydrogen valleys, second wave"]
    assert page.evaluate("window.notReloaded === true"), "htmx did not swap the results in place"
    page.goto(base_url + calls_url(TENANT))
    page.get_by_role("link", name="Electrolyser stacks for steel plants").click()
    page.wait_for_url(re.compile(re.escape(call_url(TENANT, "ft_portal:H2-SOON")) + "$"))
    assert page.locator("h1").inner_text() == "Electrolyser stacks for steel plants"
    assert page.locator("ol.timeline li").all_inner_texts() == [
        "23 Nov 2026 deadline 20 Dec → 1 Dec 2026",
        "15 Nov 2026 First seen by callwatch"]
    assert watch.errors == [] and watch.dialogs == []


def test_the_filters_work_without_javascript(no_script: Page, base_url: str) -> None:
    no_script.goto(base_url + calls_url(TENANT))
    no_script.get_by_label("Next deadline").select_option("7")
    no_script.get_by_role("button", name="Show calls").click()
    no_script.wait_for_url(re.compile(r"within=7"))
    assert _titles(no_script) == ["Electrolyser stacks for steel plants"]


def test_a_hostile_title_is_text_on_every_page(page: Page, base_url: str) -> None:
    watch = Watch(page)
    hostile = call_url(TENANT, "ft_portal:H2-HOSTILE")
    for path in (calls_url(TENANT), calls_url(TENANT, {"programme": "Single Market Programme"}),
                 hostile):
        page.goto(base_url + path)
        assert HOSTILE_TITLE in page.locator("main").inner_text()
        assert page.locator("main img").count() == 0, path
        assert page.evaluate("document.scripts.length") == 1, path  # htmx, nothing else
    assert page.locator("h1").inner_text() == HOSTILE_TITLE
    assert page.title() == f"{HOSTILE_TITLE} · callwatch"
    assert watch.dialogs == [], "a hostile title ran script"


def test_csp_is_sent_and_enforced(page: Page, base_url: str) -> None:
    watch = Watch(page)
    for path in ("/", calls_url(TENANT), call_url(TENANT, "ft_portal:H2-HOSTILE"), "/t/nobody/calls"):
        response = page.goto(base_url + path)
        assert response is not None
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert response.headers["x-frame-options"] == "DENY"
        inline = page.evaluate("[...document.scripts].filter(s => !s.src || s.text.trim()).length")
        assert inline == 0, f"inline script on {path}"
        assert page.locator("[style]").count() == 0, f"inline style on {path}"
    policy = [error for error in watch.errors if "Content Security Policy" in error]
    assert policy == [], "a page broke its own policy"
    page.evaluate("""() => { const s = document.createElement('script');
                             s.textContent = 'window.injected = true'; document.body.append(s); }""")
    assert page.evaluate("window.injected === undefined"), "an inline script ran despite the CSP"
    assert any("Content Security Policy" in error for error in watch.errors)


def test_a_manager_signs_in_and_out(page: Page, base_url: str) -> None:
    """The Secure cookies work on 127.0.0.1 over HTTP (a secure origin to browsers)."""
    watch = Watch(page)
    page.goto(base_url + "/account")
    page.wait_for_url(re.compile(r"/signin\?next=%2Faccount$"))
    page.get_by_label("Email").fill(MANAGER)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The email or the password is wrong."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/account")
    assert MANAGER in page.locator("main").inner_text()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["callwatch_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(base_url + "/")
    page.goto(base_url + "/account")
    page.wait_for_url(re.compile(r"/signin"))
    assert watch.dialogs == []


@pytest.mark.parametrize("path", ["/", "/signin", calls_url(TENANT), call_url(TENANT, "ft_portal:H2-HOSTILE"),
                                  call_url(TENANT, "ft_portal:H2-SOON"), "/t/nobody/calls"])
def test_readable_at_390_px(phone: Page, base_url: str, path: str) -> None:
    phone.goto(base_url + path)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW, f"{path} scrolls sideways at {NARROW} px ({width} px wide)"
    assert phone.locator("h1").is_visible()
