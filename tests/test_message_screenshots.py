"""Screenshots of an alert and a digest in English, German and Polish, from the demo's
emails in headless Chromium (tests/message_screenshots.py makes them).

Made here into a temporary folder and checked: each PNG is a real image 800 pixels wide,
and its page is in its language (``<html lang>``, the translated headings). The committed
copies in docs/screenshots/ (linked from README.md) are written by
``python -m tests.message_screenshots``. Without /usr/bin/chromium this is skipped, saying
so, as tests/test_web_browser.py is.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.message_screenshots import (
    CHROMIUM,
    CHROMIUM_ARGS,
    KINDS,
    LANGUAGES,
    OUT,
    WIDTH,
    Chosen,
    demo_emails,
    shoot,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (as .ci/run does) to run "
           "the browser tests")

#: what each page must show in its language: the alert's heading (what changed) and its
#: deadline label; the digest's section headings
EXPECTED = {
    "en": {"alert": ("Deadline 20 Jan → 3 Feb 2027", "Deadline"),
           "digest": ("New calls (1)", "Changed (1)")},
    "de": {"alert": ("Frist 20. Jan. → 3. Feb. 2027", "Frist"),
           "digest": ("Neue Aufrufe (1)", "Geändert (1)")},
    "pl": {"alert": ("Termin 20 sty → 3 lut 2027", "Termin"),
           "digest": ("Nowe nabory (1)", "Zmienione (1)")},
}


@pytest.fixture(scope="module")
def emails(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Chosen]]:
    """The chosen emails of the demo run once in each language."""
    scratch = tmp_path_factory.mktemp("demos")
    return {lang: demo_emails(scratch / lang, lang) for lang in LANGUAGES}


@pytest.fixture(scope="module")
def page(emails: dict[str, dict[str, Chosen]]) -> Iterator[Page]:
    """One Chromium page, started after the demos (sync Playwright runs an event loop in
    this thread, which the demo's own ``asyncio.run`` may not share)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": WIDTH, "height": 600})
        browser.close()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_screenshot_of_the_demo_email_in_its_language(
        emails: dict[str, dict[str, Chosen]], page: Page, tmp_path: Path, lang: str, kind: str) -> None:
    target = tmp_path / f"{kind}-{lang}.png"
    shoot(page, emails[lang][kind].html, tmp_path / f"{kind}-{lang}.html", target)
    width, height = png_size(target)
    assert width == WIDTH and 300 < height < 20_000
    assert target.stat().st_size > 10_000  # a page with text, not a blank image
    assert page.locator("html").get_attribute("lang") == lang
    first, second = EXPECTED[lang][kind]
    if kind == "alert":
        assert page.locator("h1").inner_text().startswith(first)
        assert second in page.locator("td").all_inner_texts()
    else:
        assert {first, second} <= set(page.locator("h2").all_inner_texts())


def test_the_committed_screenshots_are_there_and_linked() -> None:
    """docs/screenshots/ holds the six, each a PNG of the width made above, and README.md
    links every one."""
    readme = (OUT.parent.parent / "README.md").read_text(encoding="utf-8")
    for lang in LANGUAGES:
        for kind in KINDS:
            path = OUT / f"{kind}-{lang}.png"
            assert path.is_file(), f"run `python -m tests.message_screenshots` to make {path}"
            assert png_size(path)[0] == WIDTH
            assert f"docs/screenshots/{kind}-{lang}.png" in readme
