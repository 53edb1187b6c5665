"""A manager erases a member from the member's page (GDPR art. 17): CSRF, a ticked box, their
own tenant only, and the refusal for a member a subscriber file keeps (issue 17). The guard
on the route (not signed in, another tenant: 403) is test_web_manage.py's walk over every
manager route."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests import test_web_manage as manage_tests
from tests.web_support import OTHER_TENANT, TENANT
from tracker.store.db import channels_table, subscribers_table
from tracker.web.manage import manage_url

site = manage_tests.site
Client = manage_tests.Client


def member_ids(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {r.name: r.id for r in connection.execute(
            sa.select(subscribers_table.c.name, subscribers_table.c.id))}


def test_a_manager_erases_a_web_member_after_ticking_the_box(site: Engine) -> None:
    manage_tests._web_members(site, 1)
    ana = manage_tests._client(site, "ana@example.org")
    member = member_ids(site)["sme-000"]
    page_path = manage_url(TENANT, f"/members/{member}")
    page = ana.get(page_path)
    assert 'name="confirm"' in page.text
    path = manage_url(TENANT, f"/members/{member}/erase")
    token = manage_tests._token(ana, page_path)
    assert ana.post(path, data={}).status_code == 403  # no CSRF token
    assert ana.post(path, data={"csrf_token": "forged.x", "confirm": "yes"}).status_code == 403
    assert ana.post(path, data={"csrf_token": token}).status_code == 400  # box not ticked
    assert "sme-000" in member_ids(site)
    done = ana.post(path, data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 200 and "Member erased" in done.text
    assert "sme-000" not in member_ids(site)
    with site.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(channels_table).where(
            channels_table.c.address == "sme0@example.org")).scalar_one() == 0


def test_another_tenants_member_cannot_be_erased_by_guessing_its_id(site: Engine) -> None:
    ana = manage_tests._client(site, "ana@example.org")
    rita = member_ids(site)["rita"]
    token = manage_tests._token(ana, manage_url(TENANT, "/import"))
    mine = ana.post(manage_url(TENANT, f"/members/{rita}/erase"),
                    data={"csrf_token": token, "confirm": "yes"})
    assert mine.status_code == 404  # not this tenant's member
    theirs = ana.post(manage_url(OTHER_TENANT, f"/members/{rita}/erase"),
                      data={"csrf_token": token, "confirm": "yes"})
    assert theirs.status_code == 403
    assert "rita" in member_ids(site)


def test_a_member_from_a_subscriber_file_is_not_erased_on_the_web(site: Engine) -> None:
    ana = manage_tests._client(site, "ana@example.org")
    member = member_ids(site)["ana"]  # from a subscriber file (populate's sync)
    page_path = manage_url(TENANT, f"/members/{member}")
    page = ana.get(page_path)
    assert "comes from a subscriber file" in page.text and 'name="confirm"' not in page.text
    response = ana.post(manage_url(TENANT, f"/members/{member}/erase"),
                        data={"csrf_token": manage_tests._token(ana, manage_url(TENANT, "/import")),
                              "confirm": "yes"})
    assert response.status_code == 409 and "Remove them from the file first" in response.text
    assert "ana" in member_ids(site)
