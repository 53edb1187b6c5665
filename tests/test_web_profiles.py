"""The managers' profile editor over HTTP: the guard, CSRF, validation like `profiles check`,
saving, the live preview, which wins between a YAML file and the web, the export round
trip, and a cycle that alerts on a profile made on the web."""

from __future__ import annotations

import gc
import re
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from tests.profile_support import cycle_alerts, follow, settings_in
from tests.test_web_accounts import PASSWORD, SECRET, Browser
from tests.web_support import NOW, OTHER_TENANT, TENANT, populate
from tracker.cli import cli
from tracker.config import load_config
from tracker.rules.preview import PreviewCalls
from tracker.rules.profiles import Profile, read_profiles
from tracker.rules.service import load_profiles
from tracker.rules.sources import import_files, save_web_profile, stored_profiles
from tracker.store.db import profiles_table
from tracker.web import accounts, manage_profiles
from tracker.web.app import create_app
from tracker.web.manage_profiles import profiles_url

MANAGER, OTHER, ADMIN = "ana@example.org", "rita@example.org", "root@example.org"
QUERY = "electrolyser OR (storage AND NOT topic)"


@pytest.fixture
def app(engine: Engine) -> Iterator[Starlette]:
    populate(engine)
    accounts.add_user(engine, MANAGER, PASSWORD, tenant=TENANT, role="manager", now=NOW)
    accounts.add_user(engine, OTHER, PASSWORD, tenant=OTHER_TENANT, role="manager", now=NOW)
    accounts.add_user(engine, ADMIN, PASSWORD, tenant=None, role="admin", now=NOW)
    save_web_profile(engine, Profile.model_validate({"name": "h2", "query": "hydrogen"}),
                     tenant=TENANT, by=MANAGER, now=NOW)  # the one web_support's members follow
    yield create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET)


def signed_in(app: Starlette, email: str = MANAGER) -> Browser:
    browser = Browser(app)
    assert browser.sign_in(email, PASSWORD).status_code == 303
    return browser


def post(browser: Browser, path: str, *, htmx: bool = False, **fields: str) -> httpx.Response:
    token = browser.token(profiles_url(TENANT, "new"))
    headers = {"HX-Request": "true"} if htmx else {}
    return browser.request("POST", path, data={"csrf_token": token, **fields}, headers=headers)


def save(browser: Browser, name: str = "h2-web", query: str = QUERY,
         **fields: str) -> httpx.Response:
    return post(browser, profiles_url(TENANT), htmx=False, name=name, query=query, **fields)


def stored(engine: Engine) -> dict[str, tuple[str | None, str | None, str | None]]:
    with engine.connect() as connection:
        return {r.name: (r.tenant, r.source, r.updated_by) for r in connection.execute(
            sa.select(profiles_table))}


# -- the guard ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", profiles_url(TENANT)), ("GET", profiles_url(TENANT, "new")),
    ("GET", profiles_url(TENANT, "h2", "edit")), ("POST", profiles_url(TENANT)),
    ("POST", profiles_url(TENANT, "preview"))])
def test_only_the_tenants_manager_or_an_admin_gets_in(app: Starlette, method: str, path: str) -> None:
    anonymous = Browser(app).request(method, path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/signin?next=%2Ft%2Fhydrogen-valley%2Fprofiles")
    other = signed_in(app, OTHER)
    refused = other.request(method, path, data={"csrf_token": other.token("/account")})
    assert refused.status_code == 403 and "Not your cluster" in refused.text
    if method == "GET":
        for email in (MANAGER, ADMIN):
            assert signed_in(app, email).request(method, path).status_code == 200


def test_a_manager_sees_the_profiles_their_members_follow(app: Starlette, engine: Engine) -> None:
    browser = signed_in(app)
    assert 'href="/t/hydrogen-valley/profiles">its profiles</a>' in browser.request(
        "GET", "/account").text
    page = browser.request("GET", profiles_url(TENANT)).text
    assert 'href="/t/hydrogen-valley/profiles/new"' in page
    assert save(signed_in(app)).status_code == 303
    listed = signed_in(app).request("GET", profiles_url(TENANT)).text
    assert ">h2-web</a>" in listed and "edited on the web by ana@example.org" in listed
    assert ">h2-web</a>" not in signed_in(app, OTHER).request(
        "GET", profiles_url(OTHER_TENANT)).text  # another tenant's profile, not followed there


# -- CSRF, validation, saving -----------------------------------------------------------------

def test_saving_needs_the_csrf_token_from_this_site(app: Starlette, engine: Engine) -> None:
    browser = signed_in(app)
    fields = {"name": "h2-web", "query": QUERY}
    missing = browser.request("POST", profiles_url(TENANT), data=fields)
    token = browser.token(profiles_url(TENANT, "new"))
    foreign = browser.request("POST", profiles_url(TENANT), data={"csrf_token": token, **fields},
                              headers={"origin": "https://evil.example"})
    preview = browser.request("POST", profiles_url(TENANT, "preview"), data=fields)
    for response in (missing, foreign, preview):
        assert response.status_code == 403 and "Form expired" in response.text
    assert "h2-web" not in stored(engine)
    assert save(browser).status_code == 303 and "h2-web" in stored(engine)


def test_an_invalid_profile_is_not_saved_and_each_problem_is_next_to_its_field(
        app: Starlette, engine: Engine) -> None:
    response = save(signed_in(app), name="bad name!", query="hydrogen\nAND (fuel",
                    filters="deadline:\n  max_days: -3\ncountrys: [ES]\n")
    assert response.status_code == 400
    page = response.text
    assert "The profile was not saved" in page
    query_problem = re.search(r'<p class="problem" id="query-problem">([^<]*)</p>', page)
    assert query_problem and query_problem.group(1) == (
        "line 2, column 5: unbalanced parenthesis: &#39;(&#39; is never closed")
    assert 'aria-describedby="query-problem"' in page and 'id="name-problem"' in page
    filters = re.findall(r'<p class="problem" id="filters-problem">([^<]*)</p>', page)
    assert filters == ["line 2: deadline.max_days: Input should be greater than or equal to 0, got -3",
                       "line 3: countrys: unknown field; did you mean &#39;countries&#39;?"]
    assert "hydrogen\nAND (fuel</textarea>" in page  # what was typed is kept
    assert stored(engine).keys() == {"h2"}


def test_a_saved_profile_is_the_tenants_and_counts_in_matching(app: Starlette, engine: Engine,
                                                               tmp_path: Path) -> None:
    browser = signed_in(app)
    response = save(browser, description="Electrolysers", filters="deadline:\n  max_days: 400\n")
    assert response.status_code == 303
    assert response.headers["location"] == "/t/hydrogen-valley/profiles/h2-web/edit?saved=1"
    assert stored(engine)["h2-web"] == (TENANT, None, MANAGER)
    [_, profile] = load_profiles(settings_in(tmp_path), engine)
    assert (profile.name, profile.query, profile.origin) == ("h2-web", QUERY, "database")
    assert profile.deadline is not None and profile.deadline.max_days == 400
    page = browser.request("GET", response.headers["location"]).text
    assert "Saved." in page and f">{QUERY}</textarea>" in page and "max_days: 400" in page
    edited = save(browser, query="electrolyser", original="h2-web")
    assert edited.status_code == 303
    assert load_profiles(settings_in(tmp_path), engine)[1].query == "electrolyser"
    again = save(browser, query="wind")  # a new profile with a name in use
    renamed = save(browser, name="h2-other", query="wind", original="h2-web")
    assert again.status_code == renamed.status_code == 400
    assert "a profile called &#39;h2-web&#39; already exists" in again.text
    assert "a profile&#39;s name does not change" in renamed.text


# -- the preview --------------------------------------------------------------------------------

def test_the_preview_is_a_fragment_for_htmx_and_a_page_without_javascript(app: Starlette) -> None:
    browser = signed_in(app)
    fragment = post(browser, profiles_url(TENANT, "preview"), htmx=True, name="h2-web", query=QUERY)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    text = fragment.text
    assert "Electrolyser stacks for steel plants" in text and "Why: title: electrolyser" in text
    # H2-SOON (title) and the 30 "Hydrogen storage topic" calls are out: NOT topic wins
    assert re.search(r'<strong class="total">1</strong> of \d+ stored calls? matches', text)
    page = post(browser, profiles_url(TENANT, "preview"), name="h2-web", query="hydrogen storage")
    assert "<html" in page.text and 'id="preview"' in page.text
    assert re.search(r'<strong class="total">30</strong>', page.text)
    assert page.text.count('<li class="call">') == 20
    hostile = post(browser, profiles_url(TENANT, "preview"), htmx=True, name="h2", query="valleys")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Hydrogen" in hostile.text
    assert "<script>" not in hostile.text and "<img" not in hostile.text
    broken = post(browser, profiles_url(TENANT, "preview"), htmx=True, name="h2", query="AND")
    assert "Not a valid profile yet" in broken.text
    assert "column 1: &#39;AND&#39; has no term before it" in broken.text


def test_the_editor_shows_the_query_languages_help_and_labels_every_input(app: Starlette) -> None:
    page = signed_in(app).request("GET", profiles_url(TENANT, "new")).text
    assert "Exclusions always win." in page and "<code>electroly*</code>" in page
    assert 'hx-trigger="keyup changed delay:400ms"' in page
    assert 'hx-post="/t/hydrogen-valley/profiles/preview"' in page
    ids = re.findall(r'<(?:input|textarea)(?![^>]*type="hidden")[^>]*id="([^"]+)"', page)
    assert ids == ["name", "description", "query", "filters"]
    assert all(f'<label for="{i}">' in page for i in ids)
    assert "<script>" not in page and " style=" not in page


# -- YAML files and the database ---------------------------------------------------------------

def test_a_file_wins_and_is_read_only_on_the_web(app: Starlette, engine: Engine,
                                                 tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    browser = signed_in(app)
    assert save(browser, name="h2-git", query="wind").status_code == 303  # made on the web first
    file = Path(settings.profiles.directory) / "h2-git.yaml"
    file.write_text("name: h2-git\nquery: hydrogen\n", encoding="utf-8")
    profile = next(p for p in load_profiles(settings, engine) if p.name == "h2-git")
    assert (profile.query, profile.origin) == ("hydrogen", str(file))  # the file wins
    report = import_files(engine, load_profiles(settings, engine), NOW)
    assert report.taken_over == ("h2-git",)
    assert stored(engine)["h2-git"][1] == str(file)
    page = browser.request("GET", profiles_url(TENANT, "h2-git", "edit")).text
    assert f"Managed in git: <code>{file}</code>" in page and "<textarea" not in page
    assert "query: &#34;hydrogen&#34;" in page
    refused = save(browser, name="h2-git", query="wind", original="h2-git")
    assert refused.status_code == 400 and f"managed in git: {file}" in refused.text
    assert stored_profiles(engine, ["h2-git"])[0].definition["query"] == "hydrogen"
    file.unlink()  # the file is gone: so is its mirror
    assert import_files(engine, load_profiles(settings, engine), NOW).removed == ("h2-git",)
    assert [p.name for p in stored_profiles(engine)] == ["h2"]


def test_export_writes_files_that_profiles_check_accepts(app: Starlette, engine: Engine,
                                                         database_url: str, tmp_path: Path) -> None:
    browser = signed_in(app)
    assert save(browser, description="Électrolyse: \"PEM\"", query="électrolys* AND NOT nuclear",
                filters="programmes: [Horizon Europe]\ncountries: [ES, EL]\n"
                        "deadline:\n  min_days: 7\n").status_code == 303
    assert save(browser, name="h2-plain", query="hydrogen").status_code == 303
    out = tmp_path / "exported"
    result = CliRunner().invoke(cli, ["--db", database_url, "profiles", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["h2-plain.yaml", "h2-web.yaml", "h2.yaml"]
    check = CliRunner().invoke(cli, ["--db", database_url, "profiles", "check", str(out)])
    assert check.exit_code == 0 and "3 profiles OK: h2-plain, h2-web, h2" in check.output
    from_files, problems = read_profiles([out])
    assert problems == []
    settings = settings_in(tmp_path / "none")
    assert [p.as_mapping() for p in sorted(from_files, key=lambda p: p.name)] == [
        p.as_mapping() for p in load_profiles(settings, engine)]


def test_a_cycle_alerts_the_followers_of_a_profile_made_on_the_web(
        app: Starlette, engine: Engine, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    browser = signed_in(app)
    assert save(browser, query="electrolyser").status_code == 303
    follow(settings, "mia", "h2-web", TENANT)
    assert cycle_alerts(settings, engine, NOW + timedelta(minutes=5), "mia") == {
        "ft_portal:H2-SOON"}



# -- the preview's index: built once, at start ----------------------------------------------------

class SlowIndex:
    """Stands for ``PreviewCalls.of``: counts its builds, each takes ``seconds`` (the real
    one takes tens of seconds at 50,000 calls), the first ``failures`` raise."""

    def __init__(self, seconds: float = 0.3, failures: int = 0) -> None:
        self.seconds, self.failures, self.builds = seconds, failures, 0
        self.lock = threading.Lock()

    def __call__(self, calls: object, now: datetime) -> PreviewCalls:
        with self.lock:
            self.builds += 1
            fail = self.builds <= self.failures
        time.sleep(self.seconds)
        if fail:
            raise RuntimeError("the database went away")
        return INDEX_OF([], now)


INDEX_OF = PreviewCalls.of  # the real one, before a test replaces it


def test_requests_during_the_first_build_wait_for_it_rather_than_build_their_own(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    index = SlowIndex()
    monkeypatch.setattr(manage_profiles.PreviewCalls, "of", index)
    cache = manage_profiles.PreviewCache(engine)
    warming = cache.warm(lambda: NOW)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: cache.get(NOW), range(8)))
    warming.join(5)
    assert index.builds == 1
    assert len({id(answer) for answer in answers}) == 1


def test_a_failed_build_at_start_is_tried_again_by_the_next_request(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    index = SlowIndex(seconds=0.05, failures=1)
    monkeypatch.setattr(manage_profiles.PreviewCalls, "of", index)
    cache = manage_profiles.PreviewCache(engine)
    cache.warm(lambda: NOW).join(5)
    assert index.builds == 1
    assert cache.get(NOW).built_at == NOW
    assert index.builds == 2


def test_callwatch_web_starts_the_preview_index_before_any_request(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    index = SlowIndex(seconds=0)
    monkeypatch.setattr(manage_profiles.PreviewCalls, "of", index)
    create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET)
    assert index.builds == 0  # tests and the daemon: on the first preview only
    create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET, warm_preview=True)
    deadline = time.monotonic() + 5
    while index.builds == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert index.builds == 1


def test_the_web_command_asks_for_the_warm_start(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import tracker.web.app
    import tracker.web.serve

    asked: dict[str, object] = {}
    monkeypatch.setattr(tracker.web.app, "create_app", lambda *a, **k: asked.update(k))
    monkeypatch.setattr(tracker.web.serve, "serve", lambda app, sock: sock.close())
    settings_in(tmp_path)
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "callwatch.toml"), "web"],
                                env={"CALLWATCH_WEB__LISTEN": "127.0.0.1:0",
                                     "CALLWATCH_DATABASE__URL": f"sqlite:///{tmp_path / 'cw.db'}"})
    assert result.exit_code == 0, result.output
    assert asked.get("warm_preview") is True


def test_a_preview_asks_whether_the_calls_changed_only_once_the_index_is_min_age_old(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = manage_profiles.PreviewCache(engine, min_age=timedelta(minutes=15))
    asked: list[object] = []
    ask = cache._current_signature
    monkeypatch.setattr(cache, "_current_signature", lambda: asked.append(1) or ask())
    first = cache.get(NOW)
    assert len(asked) == 1  # the first build
    assert cache.get(NOW + timedelta(minutes=14)) is first
    assert len(asked) == 1  # younger than min_age: the database is not asked
    assert cache.get(NOW + timedelta(minutes=16)) is first  # unchanged calls: kept
    assert len(asked) == 2


# -- the preview's index out of the garbage collector's sight (callwatch web) ---------------------

class Loop:
    """A reference cycle: only the cyclic collector frees it."""

    def __init__(self, held: object = None) -> None:
        self.me, self.held = self, held


@pytest.fixture
def thawed() -> Iterator[None]:
    """The test process's freeze undone afterwards (a freeze is the whole process's)."""
    yield
    gc.unfreeze()


def _tracked(thing: object) -> bool:
    return any(o is thing for o in gc.get_objects())


def _rebuilt(cache: manage_profiles.PreviewCache) -> None:
    """Ask with an index already stale (``max_age`` 0), then wait for its rebuild aside."""
    cache.get(NOW)
    for thread in threading.enumerate():
        if thread.name == "callwatch-preview-index":
            thread.join(5)


def test_the_web_commands_index_is_frozen_out_of_the_collectors_sight(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, thawed: None) -> None:
    monkeypatch.setattr(manage_profiles.PreviewCache, "warm", lambda self, clock: None)
    assert _tracked(manage_profiles.PreviewCache(engine).get(NOW).index)  # tests, the daemon
    calls = manage_profiles.PreviewCache(engine, freeze=True).get(NOW)
    assert not _tracked(calls.index)
    assert gc.get_freeze_count() > 0
    assert profile_editor(engine, warm=True).cache.freeze
    assert not profile_editor(engine, warm=False).cache.freeze


def profile_editor(engine: Engine, *, warm: bool) -> manage_profiles.ProfileEditor:
    """The ProfileEditor that ``create_app`` builds (its preview route's handler's owner)."""
    app = create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET,
                     warm_preview=warm)
    route = next(r for r in app.routes if getattr(r, "name", "") == "profile_preview")
    editor = route.endpoint.__self__  # type: ignore[attr-defined]  # a bound method
    assert isinstance(editor, manage_profiles.ProfileEditor)
    return editor


def test_a_freeze_pins_no_garbage_cycle_alive_when_it_froze(engine: Engine, thawed: None) -> None:
    gc.disable()  # the cycle waits for a collection, as it may between two automatic ones
    try:
        garbage = weakref.ref(Loop())
        manage_profiles.PreviewCache(engine, freeze=True).get(NOW)
    finally:
        gc.enable()
    gc.collect()
    assert garbage() is None


def test_after_a_rebuild_the_old_index_is_not_pinned_even_if_cyclic(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, thawed: None) -> None:
    def cyclic(calls: object, now: datetime) -> PreviewCalls:
        built = INDEX_OF([], now)
        built.index.keep = Loop(built)  # type: ignore[attr-defined]  # index → loop → index
        return built

    monkeypatch.setattr(manage_profiles.PreviewCalls, "of", cyclic)
    cache = manage_profiles.PreviewCache(engine, max_age=timedelta(0), freeze=True)
    old = weakref.ref(cache.get(NOW))
    _rebuilt(cache)  # may freeze the old one again, if a request (here: get) still holds it
    _rebuilt(cache)  # which it does not by now: thawed and collected
    gc.collect()
    assert old() is None
