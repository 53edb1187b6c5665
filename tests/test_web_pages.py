"""The web app's public pages, in process (httpx over ASGI): a tenant's calls, filters and
paging, a call's page and history, escaping, security headers, and `callwatch web`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from tests.web_support import FILLERS, HOSTILE_TITLE, NOW, OTHER_TENANT, TENANT, populate
from tracker.config import load_config
from tracker.errors import ConfigError
from tracker.web.app import call_url, calls_url, create_app
from tracker.web.browse import PAGE_SIZE, BadFilter, CallFilters
from tracker.web.security import CONTENT_SECURITY_POLICY

REPO = Path(__file__).resolve().parent.parent
STATIC = REPO / "tracker" / "web" / "static"


# -- filters (pure) --------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ({}, CallFilters()),
    ({"status": "", "programme": "", "within": "", "page": ""}, CallFilters()),
    ({"status": "closed", "programme": "  Horizon   Europe ", "within": "30", "page": "3"},
     CallFilters(status="closed", programme="Horizon Europe", within_days=30, page=3)),
    ({"budget": "1000000", "source": " eccp ", "country": "el", "q": "  green   steel "},
     CallFilters(budget_eur=1_000_000, source="eccp", country="GR", search="green steel")),
])
def test_filters_read_from_the_query(query: dict[str, str], expected: CallFilters) -> None:
    assert CallFilters.parse(query) == expected


@pytest.mark.parametrize(("query", "named"), [
    ({"status": "pending"}, "status"),
    ({"within": "8"}, "within"),
    ({"within": "-7"}, "within"),
    ({"page": "0"}, "page"),
    ({"page": "two"}, "page"),
    ({"page": "9999999"}, "page"),
    ({"budget": "123"}, "budget"),
    ({"country": "PRT"}, "country"),
    ({"country": "1x"}, "country"),
])
def test_a_filter_the_page_does_not_offer_is_named(query: dict[str, str], named: str) -> None:
    with pytest.raises(BadFilter, match=f"^{named} must be"):
        CallFilters.parse(query)


def test_filters_round_trip_through_their_query() -> None:
    filters = CallFilters(status="all", programme="Interreg", within_days=90, page=2,
                          budget_eur=500_000, source="eccp", country="PT", search="soil")
    assert CallFilters.parse(filters.query()) == filters
    assert CallFilters().query() == {}
    assert CallFilters(page=4).query(page=1) == {}


# -- the pages ---------------------------------------------------------------------------------

@pytest.fixture
def app(tmp_path: Path, engine: Engine) -> Starlette:
    populate(engine)
    return create_app(load_config(None, environ={}), engine, lambda: NOW)


def fetch(app: Starlette, *paths: str) -> list[httpx.Response]:
    """GET each path from ``app`` in process."""
    async def work() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(path) for path in paths]
    return asyncio.run(work())


def get(app: Starlette, path: str) -> httpx.Response:
    return fetch(app, path)[0]


def titles(response: httpx.Response) -> list[str]:
    """The call titles listed on a calls page, unescaped."""
    import html

    return [html.unescape(t) for t in re.findall(r'<h2><a href="[^"]+">(.*?)</a></h2>',
                                                 response.text)]


def test_the_tenants_current_calls_soonest_deadline_first_in_pages(app: Starlette) -> None:
    first, second = fetch(app, calls_url(TENANT), calls_url(TENANT, {"page": "2"}))
    assert first.status_code == second.status_code == 200
    listed = titles(first) + titles(second)
    current = FILLERS + 3  # H2-SOON, H2-HOSTILE, H2-LATER: open or forthcoming
    assert len(titles(first)) == PAGE_SIZE and len(listed) == current
    assert f"{current} calls, page 1 of 2" in first.text
    assert listed[0] == "Electrolyser stacks for steel plants"  # its deadline moved to 1 Dec
    assert listed[1] == HOSTILE_TITLE
    assert "Fuel cells for buses (closed)" not in listed  # closed: not current
    assert "Hydrogen aviation (dismissed)" not in listed  # dismissed for the tenant's profile
    assert "Irrigation for olive groves" not in listed  # the other tenant's
    assert 'rel="next"' in first.text and 'rel="prev"' in second.text
    assert re.search(r'rel="next" href="/t/[^"]+/calls\?[^"]*page=2"', first.text)
    assert re.search(r'rel="prev" href="/t/[^"?]+/calls"', second.text)  # page 1: no query
    assert "Page 1 of 2" in first.text and "Page 2 of 2" in second.text
    assert 'rel="next"' not in second.text and 'rel="prev"' not in first.text


@pytest.mark.parametrize(("query", "expected"), [
    ({"status": "closed"}, ["Fuel cells for buses (closed)"]),
    ({"status": "forthcoming"}, ["Hydrogen valleys, second wave"]),
    ({"programme": "innovation fund"}, ["Hydrogen valleys, second wave"]),
    ({"programme": "Single Market Programme"}, [HOSTILE_TITLE]),
    ({"within": "7"}, ["Electrolyser stacks for steel plants"]),
    ({"within": "90", "programme": "Innovation Fund"}, []),
])
def test_filters_narrow_the_list(app: Starlette, query: dict[str, str], expected: list[str]) -> None:
    response = get(app, calls_url(TENANT, query))
    assert response.status_code == 200
    assert titles(response) == expected
    if not expected:
        assert "No call matches these filters." in response.text


def test_the_programme_choices_are_the_tenants(app: Starlette) -> None:
    page = get(app, calls_url(TENANT)).text
    options = re.findall(r'<option value="([^"]*)"', page.split('id="programme"')[1].split("</select>")[0])
    assert options == ["", "Horizon Europe", "Innovation Fund", "Single Market Programme"]


def test_a_call_page_shows_its_history_newest_first(app: Starlette) -> None:
    response = get(app, call_url(TENANT, "ft_portal:H2-SOON"))
    assert response.status_code == 200
    timeline = response.text.split('class="timeline"')[1].split("</ol>")[0]
    lines = re.findall(r"<span>(.*?)</span>", timeline)
    assert lines == ["deadline 20 Dec → 1 Dec 2026", "First seen by callwatch"]
    assert '<time datetime="2026-11-23T12:00:00Z">23 Nov 2026</time>' in timeline
    assert 'keyword &#34;hydrogen&#34; in title' in response.text  # why it is listed


def test_what_is_not_the_tenants_is_not_found_alike(app: Starlette) -> None:
    unknown_tenant, others_call, no_call, listed_for_other = fetch(
        app, calls_url("no-such-cluster"), call_url(TENANT, "ft_portal:AGRI-1"),
        call_url(TENANT, "ft_portal:NOPE"), call_url(OTHER_TENANT, "ft_portal:AGRI-1"))
    assert unknown_tenant.status_code == others_call.status_code == no_call.status_code == 404
    assert unknown_tenant.text == others_call.text == no_call.text
    assert "Irrigation" not in others_call.text
    assert listed_for_other.status_code == 200  # the call is there, for its own tenant


def test_a_bad_filter_is_a_400_that_names_it_escaped(app: Starlette) -> None:
    response = get(app, calls_url(TENANT, {"status": "<b>x</b>"}))
    assert response.status_code == 400
    assert "status must be one of" in response.text
    assert "<b>x</b>" not in response.text and "&lt;b&gt;x&lt;/b&gt;" in response.text


def test_the_tenant_address_leads_to_its_calls(app: Starlette) -> None:
    response = get(app, f"/t/{TENANT}")
    assert response.status_code == 302
    assert response.headers["location"] == calls_url(TENANT)


def test_a_hostile_title_is_text_on_every_page(app: Starlette) -> None:
    pages = fetch(app, calls_url(TENANT), calls_url(TENANT, {"programme": "Single Market Programme"}),
                  call_url(TENANT, "ft_portal:H2-HOSTILE"))
    for page in pages:
        assert page.status_code == 200
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    call_page = pages[-1].text
    assert "javascript:" not in call_page  # a scraped javascript: link is never a link
    assert "&lt;img src=x onerror=alert(5)&gt;" in call_page  # a document's title too


class _PageScan(HTMLParser):
    """Scripts, event-handler and style attributes, and form fields with their labels."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.script_text: list[str] = []
        self.inline: list[str] = []
        self.fields: list[str | None] = []
        self.labels: set[str] = set()
        self.external: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.inline += [f"{tag} {name}" for name, _ in attrs
                        if name.startswith("on") or name == "style"]
        if tag == "style":
            self.inline.append("style element")
        if tag == "script":
            self.scripts.append(values)
            self._in_script = True
        if tag in ("input", "select", "textarea") and values.get("type") != "hidden":
            self.fields.append(values.get("id"))
        if tag == "label" and values.get("for"):
            self.labels.add(str(values["for"]))
        for name in ("src", "href"):
            if tag in ("script", "link", "img") and (values.get(name) or "").startswith("http"):
                self.external.append(str(values[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


def test_every_page_has_the_security_headers_and_no_inline_script(app: Starlette) -> None:
    paths = ["/", calls_url(TENANT), call_url(TENANT, "ft_portal:H2-HOSTILE"),
             calls_url("nobody"), calls_url(TENANT, {"within": "3"}), "/static/callwatch.css"]
    for path, response in zip(paths, fetch(app, *paths), strict=True):
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        assert "unsafe" not in CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-content-type-options"] == "nosniff"
        if path.startswith("/static"):
            continue
        scan = _PageScan()
        scan.feed(response.text)
        assert scan.scripts == [{"src": "/static/htmx.min.js", "defer": None}], path
        assert scan.script_text == [] and scan.inline == [], path
        assert scan.external == [], path  # no CDN: every asset from the package
        assert all(field in scan.labels for field in scan.fields), (path, scan.fields)


def test_the_calls_form_labels_every_field(app: Starlette) -> None:
    scan = _PageScan()
    scan.feed(get(app, calls_url(TENANT)).text)
    assert scan.fields == ["q", "status", "programme", "within", "budget", "source", "country"]
    assert set(scan.fields) <= scan.labels


def test_static_assets_come_from_the_package(app: Starlette) -> None:
    htmx, css, missing = fetch(app, "/static/htmx.min.js", "/static/callwatch.css",
                               "/static/../app.py")
    assert htmx.status_code == 200 and "javascript" in htmx.headers["content-type"]
    assert htmx.content == (STATIC / "htmx.min.js").read_bytes()
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


def test_the_vendored_htmx_version_is_the_documented_one() -> None:
    version = re.search(r"version='([0-9.]+)'|version=\"([0-9.]+)\"",
                        (STATIC / "htmx.min.js").read_text(encoding="utf-8"))
    assert version, "htmx.min.js names no version"
    found = version.group(1) or version.group(2)
    docs = (REPO / "docs" / "web.md").read_text(encoding="utf-8")
    assert f"htmx {found}" in docs, f"docs/web.md does not record the vendored htmx {found}"
    assert "BSD-0-Clause" in docs and (STATIC / "htmx.LICENSE.txt").is_file()


# -- `callwatch web` ---------------------------------------------------------------------------

def test_web_settings_default_to_loopback_and_check_their_values() -> None:
    web = load_config(None, environ={}).web
    assert web.address() == ("127.0.0.1", 8080)
    assert web.base_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    web = load_config(None, environ={"CALLWATCH_WEB__LISTEN": " [::1]:9000 ",
                                     "CALLWATCH_WEB__PUBLIC_URL": "https://calls.example.org/"}).web
    assert web.address() == ("::1", 9000)
    assert web.base_url("::1", 9000) == "https://calls.example.org"
    for key, value in (("LISTEN", "8080"), ("PUBLIC_URL", "calls.example.org")):
        with pytest.raises(ConfigError, match=f"web.{key.lower()}"):
            load_config(None, environ={f"CALLWATCH_WEB__{key}": value})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "callwatch.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "web.db"}"\n', encoding="utf-8")
    yield path


def _web(config: Path, listen: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CALLWATCH_WEB__LISTEN": listen, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "tracker", "--config", str(config), "web"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_callwatch_web_serves_until_stopped(config: Path) -> None:
    port = _free_port()
    process = _web(config, f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response is not None, process.communicate(timeout=10)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "server" not in response.headers
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert f"listening on 127.0.0.1:{port}, open http://127.0.0.1:{port}/" in stderr


def test_callwatch_web_on_a_taken_address_is_a_configuration_error(config: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = _web(config, f"127.0.0.1:{port}")
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "web.listen" in stderr and f"cannot listen on 127.0.0.1:{port}" in stderr
