"""Web accounts and their security points: argon2 passwords, signed sessions that a new
password ends, CSRF on every form, secure cookies, the sign-in rate limit, no open redirect
after sign-in, and `callwatch users`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from tracker.cli import cli
from tracker.config import load_config
from tracker.errors import ConfigError, NotFoundError
from tracker.store.db import users_table
from tracker.web import accounts
from tracker.web.app import SESSION_COOKIE, create_app
from tracker.web.security import CSRF_COOKIE, Csrf, SignInLimiter, local_path

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET = "s" * 40
PASSWORD = "correct horse battery"
SITE = "https://testserver"


# -- pure rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/account", "/t/hydrogen-valley/calls?status=all", "/"])
def test_a_local_path_is_where_sign_in_leads(target: str) -> None:
    assert local_path(target) == target


@pytest.mark.parametrize("target", [
    None, "", "account", "https://evil.example/", "//evil.example/", "///evil.example",
    "/\\evil.example", "\\\\evil.example", "javascript:alert(1)", "http:/evil.example",
    "/\x00x", "/\tx", " /account", "/%0a", "HTTPS://evil.example",
])
def test_anything_else_leads_to_the_account_page(target: str | None) -> None:
    expected = "/%0a" if target == "/%0a" else "/account"  # an encoded newline stays a path
    assert local_path(target) == expected


def test_the_limiter_blocks_after_five_failures_for_the_window() -> None:
    limiter = SignInLimiter(attempts=5, window=timedelta(minutes=15))
    keys = ["address:127.0.0.1", "email:ana@example.org"]
    for minute in range(5):
        assert limiter.retry_after(keys, NOW + timedelta(minutes=minute)) is None
        limiter.failed(keys, NOW + timedelta(minutes=minute))
    assert limiter.retry_after(keys, NOW + timedelta(minutes=5)) == 10 * 60 + 1
    assert limiter.retry_after(["email:other@example.org"], NOW) is None
    limiter.succeeded("email:ana@example.org")  # the address keeps its count
    assert limiter.retry_after(["address:127.0.0.1"], NOW + timedelta(minutes=5)) is not None
    assert limiter.retry_after(["email:ana@example.org"], NOW + timedelta(minutes=5)) is None
    assert limiter.retry_after(keys, NOW + timedelta(minutes=15, seconds=1)) is None  # the
    # oldest failure has left the window


def test_the_limiter_forgets_its_quietest_keys_when_full() -> None:
    limiter = SignInLimiter(attempts=1, max_keys=3)
    for n in range(10):
        limiter.failed([f"address:{n}"], NOW)
    assert limiter.retry_after(["address:9"], NOW) is not None
    assert limiter.retry_after(["address:0"], NOW) is None


def test_csrf_needs_the_same_signed_token_twice_from_this_site() -> None:
    csrf = Csrf(SECRET)
    token = csrf.new_token()
    assert csrf.valid(token, token, None, SITE)
    assert csrf.valid(token, token, SITE, SITE)
    assert not csrf.valid(token, token, "https://evil.example", SITE)
    assert not csrf.valid(token, token, "null", SITE)
    assert not csrf.valid(None, token, None, SITE)
    assert not csrf.valid(token, None, None, SITE)
    assert not csrf.valid(token, csrf.new_token(), None, SITE)
    forged = Csrf("another secret of enough length....").new_token()
    assert not csrf.valid(forged, forged, None, SITE)


# -- accounts ----------------------------------------------------------------------------------

def test_a_password_is_stored_as_argon2id_only(engine: Engine) -> None:
    accounts.add_user(engine, " Ana@Example.org ", PASSWORD, tenant="hydrogen-valley",
                      role="manager", now=NOW)
    with engine.connect() as connection:
        row = connection.execute(sa.select(users_table)).one()
    assert row.email == "ana@example.org"
    assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    assert accounts.authenticate(engine, "ana@example.org", PASSWORD, NOW) is not None
    assert accounts.authenticate(engine, "ana@example.org", PASSWORD + "x", NOW) is None
    assert accounts.authenticate(engine, "nobody@example.org", PASSWORD, NOW) is None


def test_an_unknown_email_is_checked_at_the_cost_of_a_real_password() -> None:
    """The dummy hash is written in the source: it must keep the hasher's parameters
    (memory, time, lanes), or an unknown email would answer faster than a known one."""
    dummy = accounts._DUMMY_HASH
    assert dummy.startswith("$argon2id$")
    assert not accounts._HASHER.check_needs_rehash(dummy)


@pytest.mark.parametrize(("email", "password", "tenant", "role", "problem"), [
    ("ana@example.org", PASSWORD, None, "manager", "a manager needs a tenant"),
    ("ana@example.org", "short", "t", "manager", "at least 12 characters"),
    ("not an address", PASSWORD, "t", "manager", "not an email address"),
    ("ana@example.org", PASSWORD, None, "owner", "role must be one of"),
])
def test_an_account_that_cannot_be_is_refused(engine: Engine, email: str, password: str,
                                              tenant: str | None, role: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        accounts.add_user(engine, email, password, tenant=tenant, role=role, now=NOW)  # type: ignore[arg-type]


def test_an_email_has_one_account(engine: Engine) -> None:
    accounts.add_user(engine, "root@example.org", PASSWORD, tenant=None, role="admin", now=NOW)
    with pytest.raises(ConfigError, match="already has an account"):
        accounts.add_user(engine, "ROOT@example.org", PASSWORD, tenant=None, role="admin", now=NOW)


def test_a_new_password_ends_the_sessions_signed_in_before(engine: Engine) -> None:
    user = accounts.add_user(engine, "ana@example.org", PASSWORD, tenant="t", role="manager",
                             now=NOW)
    sessions = accounts.Sessions(SECRET)
    cookie = sessions.cookie(user)
    assert sessions.user(engine, cookie) == user
    assert sessions.user(engine, cookie[:-2] + "xx") is None  # tampered
    assert accounts.Sessions("x" * 40).user(engine, cookie) is None  # another secret
    accounts.set_password(engine, "ana@example.org", "another long password", NOW + timedelta(hours=1))
    assert sessions.user(engine, cookie) is None
    with pytest.raises(NotFoundError):
        accounts.set_password(engine, "ghost@example.org", PASSWORD, NOW)


def test_the_web_secret_comes_from_the_environment_only() -> None:
    assert accounts.web_secret({accounts.SECRET_ENV: SECRET}) == SECRET
    with pytest.raises(ConfigError, match="at least 32 characters"):
        accounts.web_secret({accounts.SECRET_ENV: "short"})
    assert accounts.web_secret({}) != accounts.web_secret({})  # made per process when unset


# -- the sign-in flow over HTTP ----------------------------------------------------------------

class Browser:
    """An httpx client over the app at https://testserver (so Secure cookies are kept)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.cookies = httpx.Cookies()

    def request(self, method: str, path: str, **options: object) -> httpx.Response:
        async def work() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=SITE,
                                         cookies=self.cookies) as client:
                response = await client.request(method, path, **options)  # type: ignore[arg-type]
                self.cookies = client.cookies
                return response
        return asyncio.run(work())

    def token(self, path: str = "/signin") -> str:
        page = self.request("GET", path)
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, page.text
        return match.group(1)

    def sign_in(self, email: str, password: str, next_path: str = "/account",
                **headers: str) -> httpx.Response:
        token = self.token()
        return self.request("POST", "/signin", headers=headers, data={
            "csrf_token": token, "email": email, "password": password, "next": next_path})


@pytest.fixture
def app(engine: Engine) -> Iterator[Starlette]:
    accounts.add_user(engine, "ana@example.org", PASSWORD, tenant="hydrogen-valley",
                      role="manager", now=NOW)
    yield create_app(load_config(None, environ={}), engine, lambda: NOW, secret=SECRET)


def _set_cookie(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert found, f"no {name} cookie set"
    return found[0]


def test_sign_in_sets_a_secure_session_and_goes_to_a_local_page(app: Starlette) -> None:
    browser = Browser(app)
    form = browser.request("GET", "/signin?next=/t/hydrogen-valley/calls")
    csrf_cookie = _set_cookie(form, CSRF_COOKIE).lower()
    assert "httponly" in csrf_cookie and "secure" in csrf_cookie and "samesite=strict" in csrf_cookie
    assert form.headers["cache-control"] == "no-store"
    response = browser.sign_in("Ana@example.org", PASSWORD, "/t/hydrogen-valley/calls")
    assert response.status_code == 303
    assert response.headers["location"] == "/t/hydrogen-valley/calls"
    session = _set_cookie(response, SESSION_COOKIE).lower()
    assert "httponly" in session and "secure" in session and "samesite=lax" in session
    account = browser.request("GET", "/account")
    assert account.status_code == 200 and "ana@example.org" in account.text
    assert "Cluster manager" in account.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example"])
def test_no_open_redirect_after_sign_in(app: Starlette, target: str) -> None:
    response = Browser(app).sign_in("ana@example.org", PASSWORD, target)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"


def test_sign_in_without_the_csrf_token_or_from_another_site_is_refused(app: Starlette) -> None:
    browser = Browser(app)
    token = browser.token()
    data = {"email": "ana@example.org", "password": PASSWORD, "next": "/account"}
    missing = browser.request("POST", "/signin", data=data)
    wrong = browser.request("POST", "/signin", data={**data, "csrf_token": token[:-3] + "abc"})
    foreign = browser.sign_in("ana@example.org", PASSWORD, origin="https://evil.example")
    fresh = Browser(app)  # a token from another browser's page, without its cookie
    stolen = fresh.request("POST", "/signin", data={**data, "csrf_token": token})
    for response in (missing, wrong, foreign, stolen):
        assert response.status_code == 403
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert browser.sign_in("ana@example.org", PASSWORD, origin=SITE).status_code == 303


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(app: Starlette) -> None:
    wrong = Browser(app).sign_in("ana@example.org", "not the password!")
    unknown = Browser(app).sign_in("nobody@example.org", "not the password!")
    assert wrong.status_code == unknown.status_code == 401
    problem = "The email or the password is wrong."
    assert problem in wrong.text and problem in unknown.text


def test_sign_in_is_rate_limited(app: Starlette) -> None:
    browser = Browser(app)
    for _ in range(5):
        assert browser.sign_in("ana@example.org", "guess guess guess").status_code == 401
    blocked = browser.sign_in("ana@example.org", PASSWORD)  # even the right password now
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many failed attempts" in blocked.text
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")


def test_sign_out_needs_its_form_and_ends_the_session(app: Starlette) -> None:
    browser = Browser(app)
    browser.sign_in("ana@example.org", PASSWORD)
    refused = browser.request("POST", "/signout", data={})
    assert refused.status_code == 403
    assert browser.request("GET", "/account").status_code == 200
    token = browser.token("/account")
    out = browser.request("POST", "/signout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/"
    again = browser.request("GET", "/account")
    assert again.status_code == 303 and again.headers["location"] == "/signin?next=%2Faccount"


def test_every_form_carries_a_csrf_token(app: Starlette) -> None:
    browser = Browser(app)
    browser.sign_in("ana@example.org", PASSWORD)
    for path in ("/signin", "/account"):
        page = browser.request("GET", path).text
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", page, re.S)
        assert forms, path
        assert all('name="csrf_token"' in form for form in forms), path


# -- `callwatch users` -------------------------------------------------------------------------

def test_users_add_passwd_and_list(tmp_path: Path, database_url: str, engine: Engine) -> None:
    """On an upgraded store (PostgreSQL is upgraded by `callwatch upgrade`, not by a command)."""
    def run(*args: str, stdin: str = "") -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--db", database_url, "users", *args], input=stdin)
        return result.exit_code, result.output

    code, out = run("add", "ana@example.org", "--tenant", "hydrogen-valley", "--role", "manager",
                    "--password-stdin", stdin=PASSWORD + "\n")
    assert (code, out) == (0, "added ana@example.org (manager, tenant hydrogen-valley)\n")
    code, out = run("add", "bob@example.org", "--role", "manager", "--password-stdin",
                    stdin=PASSWORD + "\n")
    assert code == 2 and "a manager needs a tenant" in out
    code, out = run("passwd", "ana@example.org", "--password-stdin", stdin="a brand new password\n")
    assert code == 0 and "its sessions are ended" in out
    code, out = run("passwd", "ghost@example.org", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 1 and "no account for 'ghost@example.org'" in out
    code, out = run("list")
    assert (code, out) == (0, "ana@example.org\tmanager\thydrogen-valley\n")
