"""The cluster managers' pages over HTTP (httpx over ASGI, ``test_web_accounts.Browser``:
Starlette's Browser warns that it wants httpx2 with httpx): the one guard on every
route, members (search, pages, detail, export), the CSV import's dry run and apply, the
outbox with its resend, sources and charts."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.routing import Route

from tests.test_web_accounts import Browser
from tests.test_web_pages import _PageScan
from tests.web_support import HOSTILE_TITLE, NOW, OTHER_TENANT, TENANT, populate
from tracker.config import load_config
from tracker.delivery.outbox import DEAD, PENDING, SENT, sync_subscribers
from tracker.delivery.subscribers import Subscriber
from tracker.delivery.unsubscribe import unsubscribe
from tracker.rules.profiles import Profile
from tracker.rules.store import RulesStore
from tracker.store.db import deliveries_table, subscribers_table, subscriptions_table, users_table
from tracker.web import accounts
from tracker.web.app import SESSION_COOKIE, create_app
from tracker.web.manage import ADMIN_TENANTS, PREFIX, manage_url
from tracker.web.manage_members import PAGE_SIZE, save_members
from tracker.web.manage_tenants import TenantSummary, summarize
from tracker.web.security import CONTENT_SECURITY_POLICY, CSRF_COOKIE

SECRET = "s" * 40
SITE = "https://testserver"
HEADER = "name,email,language,profiles,mode\n"


@pytest.fixture
def site(engine: Engine) -> Engine:
    populate(engine)
    rules = RulesStore(engine)
    for name in ("h2", "agri"):
        rules.save_profile(Profile.model_validate({"name": name, "query": name}), NOW)
    with engine.begin() as connection:  # no password: these tests sign in by cookie (argon2 is slow)
        connection.execute(users_table.insert(), [
            {"email": email, "tenant": tenant, "role": role, "password_hash": "-",
             "password_changed_at": NOW, "created_at": NOW}
            for email, tenant, role in (("ana@example.org", TENANT, "manager"),
                                        ("rita@example.org", OTHER_TENANT, "manager"),
                                        ("root@example.org", None, "admin"))])
    return engine


class Client(Browser):
    def get(self, path: str, **options: object) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: object) -> httpx.Response:
        return self.request("POST", path, **options)


def _client(engine: Engine, email: str | None) -> Client:
    """A browser on the app, signed in as ``email`` (its session cookie, as sign-in sets it;
    the sign-in form itself is tested in test_web_accounts and the browser tests)."""
    client = Client(create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET))
    if email is not None:
        cookie = accounts.Sessions(SECRET).cookie(accounts.get_user(engine, email))
        client.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
    return client


@pytest.fixture
def ana(site: Engine) -> Client:
    return _client(site, "ana@example.org")


def _token(client: Client, path: str) -> str:
    page = client.request("GET", path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def _member_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(subscribers_table.c.id)
                                      .where(subscribers_table.c.name == name)).scalar_one())


# -- the guard, on every manager route ---------------------------------------------------------

def _manager_routes(engine: Engine) -> list[tuple[str, str]]:
    """Every (method, path template) of the app under the managers' prefix, whoever added it."""
    app = create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET)
    found = [(method, route.path) for route in app.routes
             if isinstance(route, Route) and route.path.startswith(PREFIX)
             for method in sorted(route.methods or ()) if method != "HEAD"]
    assert len(found) >= 10, found
    return found


def _fill(path: str, tenant: str, member_id: int) -> str:
    return path.replace("{tenant}", tenant).replace("{member_id:int}", str(member_id))


@pytest.mark.parametrize("who", [None, "ana@example.org"])
def test_every_manager_route_is_guarded(site: Engine, who: str | None) -> None:
    """Not signed in: to /signin and back; a manager of another tenant: 403, members,
    outbox, CSV and a member's detail alike (URL guessing), GET and POST."""
    theirs = _member_id(site, "rita")
    client = _client(site, who)
    token = _token(client, "/signin")
    for method, template in _manager_routes(site):
        path = _fill(template, OTHER_TENANT, theirs)
        response = client.request(method, path, data={"csrf_token": token})
        if who is None:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/signin?next=%2Ft%2F")
        else:
            assert response.status_code == 403, (method, path, response.status_code)
            assert "rita" not in response.text and "Not your cluster" in response.text
        assert response.headers["cache-control"] == "no-store"


#: the tenant's public pages: every other route under /t/{tenant} is for its managers
PUBLIC = {"/t/{tenant}", "/t/{tenant}/calls", "/t/{tenant}/calls/{call_id:path}",
          "/t/{tenant}/join", "/t/{tenant}/join/{token}"}


@pytest.mark.parametrize("who", [None, "ana@example.org"])
def test_every_tenant_route_but_the_public_ones_asks_the_one_guard(site: Engine,
                                                                   who: str | None) -> None:
    """The profile editor (and whatever is added under /t/{tenant} later) answers a stranger
    and another tenant's manager as ``manage.manager_of`` does, not only the /manage pages."""
    app = create_app(load_config(None, environ={}), site, lambda: NOW, secret=SECRET)
    found = [(method, route.path) for route in app.routes
             if isinstance(route, Route) and route.path.startswith("/t/{tenant}")
             and route.path not in PUBLIC for method in sorted(route.methods or ())
             if method != "HEAD"]
    assert any(path.startswith("/t/{tenant}/profiles") for _method, path in found), found
    client = _client(site, who)
    token = _token(client, "/signin")
    for method, template in found:
        path = re.sub(r"\{name[^}]*\}", "agri", _fill(template, OTHER_TENANT, _member_id(site, "rita")))
        assert "{" not in path, path
        response = client.request(method, path, data={"csrf_token": token})
        if who is None:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/signin?next=%2Ft%2F"), path
        else:
            assert response.status_code == 403 and "Not your cluster" in response.text, path


def test_only_an_admin_sees_every_tenant_with_its_counts(site: Engine) -> None:
    _deliveries(site)
    with site.begin() as connection:  # an account may name a cluster no member names yet
        connection.execute(users_table.insert().values(
            email="eve@example.org", tenant=HOSTILE_TITLE, role="manager", password_hash="-",
            password_changed_at=NOW, created_at=NOW))
    root = _client(site, "root@example.org")
    page = root.get(ADMIN_TENANTS)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    rows = {cells[0]: cells[1:] for cells in (
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", page.text, re.S))}
    # hydrogen-valley: ana; h2's open calls (SOON, HOSTILE and the 30 fillers: not the
    # closed, the forthcoming or the dismissed one); ana's sent delivery, in Brussels time
    assert rows[TENANT] == ["1", "1", "32", "25 Nov 2026 13:00"]
    assert rows[OTHER_TENANT] == ["1", "1", "1", "none yet"]
    assert f'href="{manage_url(TENANT, "/members")}"' in page.text
    assert HOSTILE_TITLE not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'href="/admin/tenants"' in root.get("/account").text
    ana = _client(site, "ana@example.org")
    refused = ana.get(ADMIN_TENANTS)
    assert refused.status_code == 403 and TENANT not in refused.text.split("</header>")[-1]
    assert 'href="/admin/tenants"' not in ana.get("/account").text
    stranger = _client(site, None).get(ADMIN_TENANTS)
    assert stranger.status_code == 303
    assert stranger.headers["location"] == "/signin?next=%2Fadmin%2Ftenants"


def test_a_tenants_summary_counts_a_call_once_and_names_every_tenant() -> None:
    summaries = summarize(["b", "a", "c"], {"a": 3, "b": 1},
                          [("a", "h2"), ("a", "fuel"), ("b", "agri")],
                          [("h2", "x"), ("fuel", "x"), ("fuel", "y"), ("agri", "z"), ("gone", "w")],
                          {"a": NOW})
    assert summaries == [TenantSummary("a", 3, 2, 2, NOW), TenantSummary("b", 1, 1, 1, None),
                         TenantSummary("c", 0, 0, 0, None)]


def test_a_manager_sees_their_tenant_and_an_admin_every_tenant(site: Engine) -> None:
    ana, root = _client(site, "ana@example.org"), _client(site, "root@example.org")
    assert "ana@example.org" in ana.get(manage_url(TENANT, "/members")).text
    for tenant, member in ((TENANT, "ana"), (OTHER_TENANT, "rita")):
        page = root.get(manage_url(tenant, "/members"))
        assert page.status_code == 200 and f">{member}</a>" in page.text
    # another tenant's member under my tenant's URL: not found there
    assert ana.get(manage_url(TENANT, f"/members/{_member_id(site, 'rita')}")).status_code == 404
    assert ana.get(manage_url(TENANT, f"/members/{_member_id(site, 'ana')}")).status_code == 200


# -- members ------------------------------------------------------------------------------------

def _web_members(engine: Engine, count: int) -> None:
    save_members(engine, TENANT, [Subscriber.model_validate({
        "name": f"sme-{n:03d}", "tenant": TENANT, "channels": {"email": f"sme{n}@example.org"},
        "subscriptions": [{"profile": "h2", "mode": "daily"}]}) for n in range(count)], NOW)


def test_members_are_searched_and_paged(site: Engine, ana: Client) -> None:
    _web_members(site, PAGE_SIZE + 10)
    first = ana.get(manage_url(TENANT, "/members"))
    assert f"{PAGE_SIZE + 11} members, page 1 of 2" in first.text
    assert first.text.count('href="/t/hydrogen-valley/manage/members/') == PAGE_SIZE
    second = ana.get(manage_url(TENANT, "/members", {"page": "2"}))
    assert second.text.count('href="/t/hydrogen-valley/manage/members/') == 11
    found = ana.get(manage_url(TENANT, "/members", {"q": "SME7@EXAMPLE"}))
    assert "1 member" in found.text and ">sme-007</a>" in found.text
    assert "0 members" in ana.get(manage_url(TENANT, "/members", {"q": "rita"})).text
    assert "0 members" in ana.get(manage_url(TENANT, "/members", {"q": "%"})).text


def test_the_export_is_the_tenants_members_as_csv(site: Engine, ana: Client) -> None:
    _web_members(site, 2)
    response = ana.get(manage_url(TENANT, "/members.csv"))
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="hydrogen-valley-members.csv"' in response.headers["content-disposition"]
    assert response.text.splitlines() == [
        "name,email,language,profiles,mode,timezone",
        "ana,ana@example.org,en,h2,instant,Europe/Brussels",
        "sme-000,sme0@example.org,en,h2,daily,Europe/Brussels",
        "sme-001,sme1@example.org,en,h2,daily,Europe/Brussels"]


# -- the import ---------------------------------------------------------------------------------

def _dry_run(client: Client, text: str) -> tuple[str, dict[str, str]]:
    token = _token(client, manage_url(TENANT, "/import"))
    page = client.post(manage_url(TENANT, "/import"), data={"csrf_token": token},
                       files={"file": ("crm.csv", text.encode(), "text/csv")})
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'name="(csrf_token|data|digest|plan)" value="([^"]*)"', page.text))
    return page.text, fields


def test_a_dry_run_shows_every_row_and_changes_nothing(site: Engine, ana: Client) -> None:
    page, fields = _dry_run(ana, HEADER + "new-one,n1@example.org,de,h2,daily\n"
                            "rita,r@example.org,en,h2,instant\n"
                            "bad,nope,en,h2,instant\n")
    assert "1 new, 0 updated, 0 unchanged, 2 invalid" in page
    assert "another cluster&#39;s member has this name" in page
    assert "&#39;nope&#39; is not an email address" in page
    assert set(fields) == {"csrf_token", "data", "digest", "plan"}
    with site.connect() as connection:
        assert connection.execute(sa.select(subscribers_table.c.id)
                                  .where(subscribers_table.c.name == "new-one")).first() is None


def test_apply_writes_the_valid_rows_and_they_survive_the_file_sync(site: Engine,
                                                                   ana: Client) -> None:
    _page, fields = _dry_run(ana, HEADER + "new-one,n1@example.org,de,h2 agri,daily\n"
                             "bad,nope,en,h2,instant\n")
    applied = ana.post(manage_url(TENANT, "/import/apply"), data=fields)
    assert applied.status_code == 303
    assert applied.headers["location"] == manage_url(TENANT, "/members", {"imported": "1-0-1"})
    assert "Imported: 1 new, 0 updated; 1 invalid row left out." in ana.get(applied.headers["location"]).text
    twice = ana.post(manage_url(TENANT, "/import/apply"), data=fields)  # a second click
    assert twice.status_code == 409 and "0 new, 0 updated, 1 unchanged, 1 invalid" in twice.text
    member = _member_id(site, "new-one")
    # the next cycle mirrors the files (ana's file only): the web member stays as imported
    sync_subscribers(site, [Subscriber.model_validate({
        "name": "ana", "tenant": TENANT, "channels": {"email": "ana@example.org"},
        "subscriptions": [{"profile": "h2"}]})], NOW + timedelta(hours=1))
    with site.connect() as connection:
        row = connection.execute(sa.select(subscribers_table)
                                 .where(subscribers_table.c.id == member)).one()
        follows = connection.execute(sa.select(subscriptions_table.c.profile, subscriptions_table.c.mode)
                                     .where(subscriptions_table.c.subscriber_id == member)).all()
    assert (row.origin, row.tenant, row.language) == ("web", TENANT, "de")
    assert sorted(follows) == [("agri", "daily"), ("h2", "daily")]
    again, _fields = _dry_run(ana, HEADER + "new-one,n1@example.org,de,h2 agri,daily\n")
    assert "0 new, 0 updated, 1 unchanged, 0 invalid" in again


def test_an_update_keeps_tokens_and_ended_subscriptions_ended(site: Engine) -> None:
    """Re-importing a member changes its modes in place (its links keep working) and does
    not bring back a profile its recipient ended with a link, as the file sync does not."""
    def member(mode: str) -> Subscriber:
        return Subscriber.model_validate({
            "name": "sme", "tenant": TENANT, "channels": {"email": "sme@example.org"},
            "subscriptions": [{"profile": "h2", "mode": mode}, {"profile": "agri", "mode": mode}]})

    def tokens() -> dict[str, tuple[str, str]]:
        with site.connect() as connection:
            return {p: (m, t) for p, m, t in connection.execute(sa.select(
                subscriptions_table.c.profile, subscriptions_table.c.mode, subscriptions_table.c.token)
                .where(subscriptions_table.c.subscriber_id == _member_id(site, "sme")))}

    assert save_members(site, TENANT, [member("instant")], NOW) == (1, 0)
    before = tokens()
    assert unsubscribe(site, before["agri"][1], NOW) is not None
    assert save_members(site, TENANT, [member("daily")], NOW + timedelta(hours=1)) == (0, 1)
    assert tokens() == {"h2": ("daily", before["h2"][1])}
    assert save_members(site, OTHER_TENANT, [member("weekly")], NOW) == (0, 0)  # not theirs


def test_a_file_of_more_than_a_megabyte_is_checked_and_applied(site: Engine, ana: Client) -> None:
    """Starlette caps a form field at 1 MB by default; the file rides back in one."""
    long = "x" * 85  # long rows: few of them make a megabyte
    rows = "".join(f"big-{n:05d}{long},big{n:05d}{long}@example.org,en,h2 agri,daily\n"
                   for n in range(5_500))
    assert len(rows) > 1024 * 1024
    page, fields = _dry_run(ana, HEADER + rows)
    assert "5500 new, 0 updated, 0 unchanged, 0 invalid" in page
    assert ana.post(manage_url(TENANT, "/import/apply"), data=fields).status_code == 303
    with site.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(subscribers_table)
                                  .where(subscribers_table.c.origin == "web")).scalar() == 5_500


def test_apply_changes_nothing_when_the_file_or_the_members_changed(site: Engine,
                                                                   ana: Client) -> None:
    text = HEADER + "new-one,n1@example.org,en,h2,daily\n"
    _page, fields = _dry_run(ana, text)
    edited = text + "new-two,n2@example.org,en,h2,\n"
    forged = {**fields, "data": base64.b64encode(edited.encode()).decode()}
    refused = ana.post(manage_url(TENANT, "/import/apply"), data=forged)
    assert refused.status_code == 400 and "not the file that was checked" in refused.text
    save_members(site, OTHER_TENANT, [Subscriber.model_validate({  # meanwhile, elsewhere
        "name": "new-one", "tenant": OTHER_TENANT, "channels": {"email": "x@example.org"},
        "subscriptions": [{"profile": "agri"}]})], NOW)
    changed = ana.post(manage_url(TENANT, "/import/apply"), data=fields)
    assert changed.status_code == 409 and "The members changed since" in changed.text
    assert "another cluster&#39;s member has this name" in changed.text
    with site.connect() as connection:
        assert connection.execute(sa.select(subscribers_table.c.tenant)
                                  .where(subscribers_table.c.name == "new-one")).scalar() == OTHER_TENANT


def test_import_and_resend_need_the_csrf_token(site: Engine, ana: Client) -> None:
    _token(ana, manage_url(TENANT, "/import"))  # the cookie is there, the field is not
    for path in ("/import", "/import/apply", "/outbox/resend"):
        response = ana.post(manage_url(TENANT, path), data={"data": "", "delivery": "1"},
                            headers={"origin": SITE})
        assert response.status_code == 403 and "Form expired" in response.text, path
    assert CSRF_COOKIE in ana.cookies


# -- the outbox, sources, charts ----------------------------------------------------------------

def _deliveries(engine: Engine) -> dict[str, int]:
    """A sent, a waiting and a dead delivery for ana, and a dead one for rita; their ids."""
    ids = {}
    with engine.begin() as connection:
        for key, name, status, error in (("sent", "ana", SENT, None),
                                         ("wait", "ana", PENDING, None),
                                         ("dead", "ana", DEAD, "550 mailbox unavailable"),
                                         ("theirs", "rita", DEAD, "550 no such user")):
            ids[key] = connection.execute(deliveries_table.insert().values(
                key=key, subscriber_id=_member_id(engine, name), channel="email", kind="alert",
                message={"text": "x"}, status=status, attempts=5 if status == DEAD else 1,
                next_attempt_at=NOW, last_error=error, created_at=NOW - timedelta(days=1),
                sent_at=NOW if status == SENT else None)).inserted_primary_key[0]
    return ids


def test_the_outbox_shows_the_tenants_deliveries_and_resends_a_dead_letter(
        site: Engine, ana: Client) -> None:
    ids = _deliveries(site)
    page = ana.get(manage_url(TENANT, "/outbox"))
    assert "Dead letters (1)" in page.text and "Sent (1)" in page.text and "Waiting (1)" in page.text
    assert "550 mailbox unavailable" in page.text and "550 no such user" not in page.text
    dead = ana.get(manage_url(TENANT, "/outbox", {"status": "dead"}))
    token = re.search(r'name="csrf_token" value="([^"]+)"', dead.text)
    assert token and dead.text.count(">Resend</button>") == 1
    theirs = ana.post(manage_url(TENANT, "/outbox/resend"),
                      data={"csrf_token": token.group(1), "delivery": str(ids["theirs"])})
    assert theirs.status_code == 404
    for expected in (1, 0):  # a second click finds nothing dead: the message goes once
        resent = ana.post(manage_url(TENANT, "/outbox/resend"),
                          data={"csrf_token": token.group(1), "delivery": str(ids["dead"])})
        if expected:
            assert resent.headers["location"] == manage_url(TENANT, "/outbox",
                                                            {"status": "dead", "resent": "1"})
        else:
            assert resent.status_code == 404
    with site.connect() as connection:
        rows = dict(connection.execute(sa.select(deliveries_table.c.key, deliveries_table.c.status)).all())
        attempts = connection.execute(sa.select(deliveries_table.c.attempts)
                                      .where(deliveries_table.c.id == ids["dead"])).scalar()
    assert rows == {"sent": SENT, "wait": PENDING, "dead": PENDING, "theirs": DEAD}
    assert attempts == 0
    assert ana.get(manage_url(TENANT, "/outbox", {"status": "nope"})).status_code == 400


def test_sources_show_the_one_source_status(site: Engine, ana: Client) -> None:
    page = ana.get(manage_url(TENANT, "/sources"))
    assert page.status_code == 200
    assert "ft_portal" in page.text and "The scheduler is not started yet." in page.text


def test_charts_are_svg_with_a_title_a_description_and_a_table(site: Engine, ana: Client) -> None:
    _deliveries(site)
    page = ana.get(manage_url(TENANT, "/charts")).text
    assert page.count("<svg") == 3 and page.count('role="img"') == 3
    assert "<title id=\"chart-1-title\">Calls per programme and month</title>" in page
    # h2's cut-offs ahead: H2-SOON (1 Dec) and H2-HOSTILE (1 Feb); the dismissed call, the
    # closed one, those after 12 weeks and the other tenant's profile (agri) are left out
    assert ('<desc id="chart-2-desc">2 deadlines in 12 bars, from 23 Nov to 08 Feb; the most, '
            "1, in 30 Nov.</desc>") in page
    assert re.search(r'<desc id="chart-3-desc">3 deliveries in 30 bars', page)
    assert page.count("<table class=\"chart-data\">") == 3
    assert '<th scope="col">Week of</th>' in page
    assert "style=" not in page and "<script>" not in page


# -- every manager page: headers, no inline script or style, labels, CSRF on every form ---------

def test_every_manager_page_is_safe_and_labelled(site: Engine, ana: Client) -> None:
    _deliveries(site)
    dry_run, _fields = _dry_run(ana, HEADER + "new-one,n1@example.org,de,h2,daily\nbad,x,en,h2,\n")
    pages = [(path, ana.get(manage_url(TENANT, path))) for path in (
        "/members", f"/members/{_member_id(site, 'ana')}", "/import", "/outbox", "/sources",
        "/charts")]
    for path, response in [*pages, ("dry run", None)]:
        text = dry_run if response is None else response.text
        if response is not None:
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
            assert response.headers["x-frame-options"] == "DENY"
        scan = _PageScan()
        scan.feed(text)
        assert scan.scripts == [{"src": "/static/htmx.min.js", "defer": None}], path
        assert scan.script_text == [] and scan.inline == [] and scan.external == [], path
        assert all(field in scan.labels for field in scan.fields), (path, scan.fields)
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", text, re.S)
        assert all('name="csrf_token"' in form for form in forms), path
    assert sum("<form" in response.text for _path, response in pages) >= 3  # search, import, resend


def test_a_hostile_member_name_or_error_is_text(site: Engine, ana: Client) -> None:
    hostile = '<img src=x onerror=alert(1)>'
    with site.begin() as connection:
        connection.execute(deliveries_table.insert().values(
            key="k", subscriber_id=_member_id(site, "ana"), channel="email", kind="alert",
            message={}, status=DEAD, next_attempt_at=NOW, last_error=hostile, created_at=NOW))
    page, _fields = _dry_run(ana, HEADER + f"{hostile},{hostile}@x.org,en,h2,\n")
    outbox = ana.get(manage_url(TENANT, "/outbox")).text
    for text in (page, outbox):
        assert hostile not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
