"""Renaming and deleting a profile in the web editor (issue 17): managers of the profile's
tenant only, CSRF on each POST, a rename moves the subscriptions, a delete asks first and
says how many subscriptions end, and a profile a YAML file defines (or a subscriber file
follows) is refused with what to do."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from tests import test_web_profiles as profile_tests
from tests.profile_support import settings_in
from tests.web_support import NOW, OTHER_TENANT, TENANT
from tracker.delivery.subscribers import Subscriber
from tracker.rules.profiles import Profile
from tracker.rules.service import load_profiles
from tracker.rules.sources import import_files, save_web_profile, stored_profiles
from tracker.store.db import matches_table, opt_outs_table, subscriptions_table
from tracker.web.manage_members import save_members
from tracker.web.manage_profiles import profiles_url

app = profile_tests.app
signed_in = profile_tests.signed_in
MANAGER, OTHER, ADMIN = profile_tests.MANAGER, profile_tests.OTHER, profile_tests.ADMIN


def solar(engine: Engine, followers: int = 2) -> dict[str, str]:
    """The tenant's web profile "solar", followed by ``followers`` web members, with one
    recorded match; their tokens by member."""
    save_web_profile(engine, Profile.model_validate({"name": "solar", "query": "solar"}),
                     tenant=TENANT, by=MANAGER, now=NOW)
    save_members(engine, TENANT, [Subscriber.model_validate({
        "name": f"sme-{n}", "tenant": TENANT, "channels": {"email": f"sme{n}@example.org"},
        "subscriptions": [{"profile": "solar", "mode": "daily"}]}) for n in range(followers)], NOW)
    with engine.begin() as connection:
        connection.execute(matches_table.insert().values(
            profile="solar", call_id=_a_call(connection), score=1, reasons=["solar"],
            first_matched=NOW, last_matched=NOW))
    return tokens(engine, "solar")


def _a_call(connection: sa.Connection) -> str:
    from tracker.store.db import calls_table

    return str(connection.execute(sa.select(calls_table.c.id).limit(1)).scalar_one())


def tokens(engine: Engine, profile: str) -> dict[str, str]:
    with engine.connect() as connection:
        return {str(r.subscriber_id): r.token for r in connection.execute(
            sa.select(subscriptions_table).where(subscriptions_table.c.profile == profile))}


def post(browser: profile_tests.Browser, path: str, **fields: str) -> int:
    token = browser.token(profiles_url(TENANT, "new"))
    return browser.request("POST", path, data={"csrf_token": token, **fields}).status_code


def test_a_rename_moves_the_subscriptions_and_keeps_their_links(app: Starlette,
                                                               engine: Engine) -> None:
    before = solar(engine)
    browser = signed_in(app)
    page = browser.request("GET", profiles_url(TENANT, "solar", "edit")).text
    assert 'name="new_name"' in page and profiles_url(TENANT, "solar", "delete") in page
    path = profiles_url(TENANT, "solar", "rename")
    assert browser.request("POST", path, data={"new_name": "sun"}).status_code == 403  # CSRF
    assert browser.request("POST", path, data={"new_name": "sun", "csrf_token": "forged.x"}
                           ).status_code == 403
    assert tokens(engine, "solar") == before
    response = browser.request("POST", path, data={
        "new_name": "sun", "csrf_token": browser.token(profiles_url(TENANT, "new"))})
    assert response.status_code == 303
    assert response.headers["location"] == profiles_url(TENANT, "sun", "edit") + "?saved=1"
    assert tokens(engine, "sun") == before and tokens(engine, "solar") == {}
    [row] = stored_profiles(engine, ["sun"])
    assert (row.tenant, row.definition["name"], row.definition["query"]) == (TENANT, "sun", "solar")
    assert stored_profiles(engine, ["solar"]) == []
    with engine.connect() as connection:
        moved = sa.select(matches_table.c.profile).where(matches_table.c.profile.in_(["sun", "solar"]))
        assert connection.execute(moved).scalars().all() == ["sun"]


def test_a_rename_to_a_taken_or_invalid_name_changes_nothing(app: Starlette,
                                                             engine: Engine) -> None:
    solar(engine)
    browser = signed_in(app)
    path = profiles_url(TENANT, "solar", "rename")
    assert post(browser, path, new_name="h2") == 409  # taken
    assert post(browser, path, new_name="") == 400
    assert post(browser, path, new_name="solar") == 400
    assert post(browser, path, new_name="x" * 101) == 400
    assert [p.name for p in stored_profiles(engine)] == ["h2", "solar"]


def test_a_delete_asks_first_says_how_many_subscriptions_end_then_ends_them(
        app: Starlette, engine: Engine) -> None:
    before = solar(engine, followers=3)
    browser = signed_in(app)
    ask = browser.request("GET", profiles_url(TENANT, "solar", "delete"))
    assert ask.status_code == 200 and "3 subscriptions end" in ask.text
    assert stored_profiles(engine, ["solar"])  # asking deletes nothing
    path = profiles_url(TENANT, "solar", "delete")
    assert browser.request("POST", path, data={}).status_code == 403  # CSRF
    assert stored_profiles(engine, ["solar"])
    response = browser.request("POST", path, data={"csrf_token": browser.token(path)})
    assert response.status_code == 303 and response.headers["location"] == profiles_url(TENANT)
    assert stored_profiles(engine, ["solar"]) == [] and tokens(engine, "solar") == {}
    with engine.connect() as connection:
        ended = set(connection.execute(sa.select(opt_outs_table.c.token)
                                       .where(opt_outs_table.c.profile == "solar")).scalars())
        assert connection.execute(sa.select(sa.func.count()).select_from(matches_table).where(
            matches_table.c.profile == "solar")).scalar_one() == 0
    assert ended == set(before.values())  # their links keep answering "unsubscribed"


def test_only_the_tenants_managers_rename_or_delete(app: Starlette, engine: Engine) -> None:
    solar(engine)
    other = signed_in(app, OTHER)
    token = other.token("/account")
    for method, path in (("POST", profiles_url(TENANT, "solar", "rename")),
                         ("GET", profiles_url(TENANT, "solar", "delete")),
                         ("POST", profiles_url(TENANT, "solar", "delete"))):
        refused = other.request(method, path, data={"csrf_token": token, "new_name": "mine"})
        assert refused.status_code == 403 and "Not your cluster" in refused.text
        guessed = other.request(method, path.replace(TENANT, OTHER_TENANT),
                                data={"csrf_token": token, "new_name": "mine"})
        assert guessed.status_code == 404  # not among the other tenant's profiles
    assert [p.name for p in stored_profiles(engine)] == ["h2", "solar"]
    admin = signed_in(app, ADMIN)
    assert admin.request("GET", profiles_url(TENANT, "solar", "delete")).status_code == 200


def test_a_profile_from_a_yaml_file_or_followed_from_a_file_is_refused(
        app: Starlette, engine: Engine, tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    (Path(settings.profiles.directory) / "wind.yaml").write_text("name: wind\nquery: wind\n",
                                                                 encoding="utf-8")
    import_files(engine, load_profiles(settings, engine), NOW)
    browser = signed_in(app, ADMIN)
    page = browser.request("GET", profiles_url(TENANT, "wind", "edit")).text
    assert "cannot rename or delete it" in page and 'name="new_name"' not in page
    for path in (profiles_url(TENANT, "wind", "rename"), profiles_url(TENANT, "wind", "delete")):
        response = browser.request("POST", path, data={
            "csrf_token": browser.token(profiles_url(TENANT, "new")), "new_name": "gust"})
        assert response.status_code == 409 and "rename or delete the file" in response.text
    assert browser.request("GET", profiles_url(TENANT, "wind", "delete")).status_code == 409
    # h2 is followed by ana and rita, members from subscriber files (web_support.populate)
    manager = signed_in(app)
    refused = manager.request("POST", profiles_url(TENANT, "h2", "rename"), data={
        "csrf_token": manager.token(profiles_url(TENANT, "new")), "new_name": "hydrogen"})
    assert refused.status_code == 409 and "change those files first" in refused.text
    assert [p.name for p in stored_profiles(engine)] == ["h2", "wind"]
