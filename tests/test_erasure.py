"""Erasure (GDPR art. 17) in the store, on SQLite and PostgreSQL: after it no row of any table
names the person, and other subscribers keep every row (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from tracker.delivery import erasure
from tracker.delivery.unsubscribe import end_subscriptions
from tracker.store.db import (
    channels_table,
    deliveries_table,
    pacing_table,
    subscribers_table,
    subscriptions_table,
)
from tracker.web import members

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TENANT = "hydrogen-valley"


def member(engine: Engine, name: str, email: str, chat: str) -> int:
    """A web member with a consent, two subscriptions (one ended), a Telegram chat, a sent
    and a pending outbox row, and the chat's pacing row; their subscriber id."""
    sign_up = members.SignUp(tenant=TENANT, name=name, email=email, language="en",
                             timezone="UTC", profiles=("h2", "other"), mode="instant",
                             signed_up_at=NOW, signed_up_from="192.0.2.7",
                             consent_text=members.consent_text(TENANT, "en"))
    token = members.confirm(engine, sign_up, NOW, "192.0.2.8")
    assert token is not None
    with engine.begin() as connection:
        subscriber_id = int(connection.execute(sa.select(subscriptions_table.c.subscriber_id)
                                               .where(subscriptions_table.c.token == token)).scalar_one())
        connection.execute(channels_table.insert().values(
            subscriber_id=subscriber_id, channel="telegram", address=chat,
            configured_address=chat, webhook_format="generic", active=True))
        ended = connection.execute(sa.select(subscriptions_table.c.id).where(
            subscriptions_table.c.subscriber_id == subscriber_id,
            subscriptions_table.c.profile == "other")).scalar_one()
        end_subscriptions(connection, [ended], NOW)
        for status in ("sent", "pending"):
            connection.execute(deliveries_table.insert().values(
                key=f"alert|{subscriber_id}|email|C-1|{status}", subscriber_id=subscriber_id,
                channel="email", kind="alert", call_id=None, status=status,
                message={"subject": f"For {name}", "to": email}, next_attempt_at=NOW,
                created_at=NOW, sent_at=NOW if status == "sent" else None))
        connection.execute(pacing_table.insert().values(key=chat, next_at=1.0))
    return subscriber_id


def every_row(engine: Engine) -> list[str]:
    """Every row of every table, as text (JSON columns included)."""
    with engine.connect() as connection:
        return [f"{table.name}: {tuple(row)}" for table in SQLModel.metadata.sorted_tables
                for row in connection.execute(sa.select(table))]


def test_erasure_leaves_no_row_naming_the_person(engine: Engine) -> None:
    mira = member(engine, "Mira Nowak", "mira@example.org", "-100777")
    kept = member(engine, "Ana Silva", "ana@example.org", "-100888")
    before = every_row(engine)
    assert any("Mira Nowak" in row for row in before) and any("-100777" in row for row in before)
    with engine.connect() as connection:
        found = erasure.find_by_email(connection, TENANT, " MIRA@example.org")
    assert [f.subscriber_id for f in found] == [mira]

    erased = erasure.erase_subscriber(engine, mira)

    assert erased == erasure.Erased(subscriber_id=mira, tenant=TENANT, channels=2,
                                    subscriptions=1, opt_outs=1, deliveries=2, consents=1)
    after = every_row(engine)
    for trace in ("Mira Nowak", "mira@example.org", "-100777", f"|{mira}|"):
        assert not [row for row in after if trace in row], trace
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            if "subscriber_id" in table.c:
                assert connection.execute(sa.select(sa.func.count()).select_from(table).where(
                    table.c.subscriber_id == mira)).scalar_one() == 0, table.name
        assert connection.execute(sa.select(sa.func.count()).select_from(subscribers_table)
                                  .where(subscribers_table.c.id == mira)).scalar_one() == 0
    # the other member keeps everything
    assert [row for row in before if "Ana Silva" in row or "-100888" in row or f"|{kept}|" in row] \
        == [row for row in after if "Ana Silva" in row or "-100888" in row or f"|{kept}|" in row]
    assert erasure.erase_subscriber(engine, mira) is None  # erased already


@pytest.mark.parametrize(("origin", "in_files", "expected"), [
    ("web", False, True), ("bot", True, True), ("file", False, True), ("file", True, False)])
def test_a_subscriber_a_file_still_lists_is_not_erasable(origin: str, in_files: bool,
                                                          expected: bool) -> None:
    assert erasure.erasable(origin, in_files) is expected
