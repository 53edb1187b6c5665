"""`callwatch subscribers erase EMAIL --tenant T` (GDPR art. 17), as an operator types it: a web
member goes entirely, a subscriber that a file still lists stays until the file is edited."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from tests.members_support import TENANT, member_settings, sync_files
from tests.test_erasure import NOW, every_row, member
from tracker.cli import cli
from tracker.demo.fakes.smtp_sink import SmtpSink
from tracker.store.db import subscribers_table

Erase = tuple[Path, Callable[..., Result]]


@pytest.fixture
def erase(tmp_path: Path, engine: Engine, database_url: str,
          smtp: SmtpSink) -> Iterator[Erase]:
    settings = member_settings(tmp_path, smtp)
    sync_files(settings, engine, NOW)  # ana, from the manager's subscriber file
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the commands set up logging on stderr

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(tmp_path / "callwatch.toml"), "--db",
                                        database_url, "subscribers", "erase", *args],
                                  catch_exceptions=False)

    try:
        yield tmp_path, run
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def names(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(subscribers_table.c.name)).scalars())


def test_erase_a_web_member_by_address(erase: Erase, engine: Engine) -> None:
    _directory, run = erase
    member(engine, "Mira Nowak", "mira@example.org", "-100777")
    result = run("MIRA@example.org", "--tenant", TENANT)
    assert result.exit_code == 0, result.output
    assert "erased subscriber web-" in result.output and "1 consent record(s)" in result.output
    assert names(engine) == ["ana"]
    assert not [row for row in every_row(engine) if "mira@example.org" in row or "Mira" in row]


def test_a_file_subscriber_is_erased_only_once_its_file_is_edited(
        erase: Erase, engine: Engine) -> None:
    directory, run = erase
    result = run("ana@example.org", "--tenant", TENANT)
    assert result.exit_code == 1 and "remove subscriber 'ana' from its file" in result.output
    assert names(engine) == ["ana"]
    (directory / "subscribers" / "ana.yaml").unlink()
    result = run("ana@example.org", "--tenant", TENANT)
    assert result.exit_code == 0, result.output
    assert names(engine) == []


def test_an_address_no_member_has(erase: Erase) -> None:
    _directory, run = erase
    result = run("nobody@example.org", "--tenant", TENANT)
    assert result.exit_code == 1 and "no member of hydrogen-valley" in result.output
    result = run("ana@example.org", "--tenant", "alentejo")
    assert result.exit_code == 1
