"""A database or configuration file that cannot be used is one line on stderr, not a traceback.

Each case is a real one: a SQLite file held locked by a second process, a read-only
database (SQLite opened ``mode=ro``, which holds as root too; PostgreSQL with
``default_transaction_read_only``), a file that is not a database, a path that cannot be
created, PostgreSQL on a closed loopback port, a Latin-1 config file. The installed
``callwatch`` script runs in a subprocess, as a user runs it. Exit codes: 3 for the
database, 2 for the configuration (tracker/cli/app.py).

A locked or read-only database is found before anything is fetched: the portal replay
server, the only source enabled, must see no request.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.test_cli import run
from tracker.config import PACKAGED_DEFAULTS
from tracker.demo.fakes.portal import PortalReplayServer
from tracker.store import db

DATABASE_EXIT = 3
CONFIG_EXIT = 2

#: holds a write transaction on the SQLite file argv[1] until a line arrives on stdin
LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
"""


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a command that failed with ``code`` (asserted)."""
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callwatch: "), result.stderr
    return lines[0]


@pytest.fixture
def portal() -> Iterator[PortalReplayServer]:
    with PortalReplayServer() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, portal: PortalReplayServer) -> Path:
    """The portal replay server as the only enabled source: nothing goes online."""
    built_in = tomllib.loads(PACKAGED_DEFAULTS.read_text(encoding="utf-8"))["sources"]
    disabled = "".join(f"[sources.{name}]\nenabled = false\n" for name in built_in
                       if name != "ft_portal")
    path = tmp_path / "callwatch.toml"
    path.write_text(f"""
[http]
delay = 0
[sources.ft_portal]
search_url = "{portal.search_url}"
bulk_url = "{portal.bulk_url}"
{disabled}""", encoding="utf-8")
    return path


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A current callwatch database on SQLite (in WAL mode, as callwatch leaves it)."""
    path = tmp_path / "callwatch.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def locked(sqlite_file: Path) -> Iterator[Path]:
    """``sqlite_file`` with a second process holding its write lock until the test ends."""
    with subprocess.Popen(  # noqa: S603 - this interpreter, our own script
            [sys.executable, "-c", LOCK_HOLDER, str(sqlite_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:  # closes its pipes
        assert holder.stdout is not None and holder.stdin is not None
        try:
            assert holder.stdout.readline().strip() == "locked"
            yield sqlite_file
        finally:
            holder.stdin.write("done\n")
            holder.stdin.close()
            holder.wait(timeout=30)


COMMANDS = [("scrape", "ft_portal"), ("run", "--once")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_locked_sqlite_file_is_reported_before_anything_is_fetched(
        tmp_path: Path, config: Path, portal: PortalReplayServer, locked: Path,
        command: tuple[str, ...]) -> None:
    url = f"sqlite:///{locked}"
    result = run("--config", str(config), "--db", url, *command, cwd=tmp_path)
    line = one_line_error(result, DATABASE_EXIT)
    assert f"the database {url} is locked by another process" in line
    assert "try again when it has finished" in line
    assert portal.requests == []


def read_only(database_url: str, path: Path) -> str:
    """The same database, opened read-only: SQLite's ``mode=ro`` (chmod does not stop
    root), PostgreSQL's ``default_transaction_read_only``."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    url = sa.engine.make_url(db.normalize_url(database_url))
    options = f"{url.query['options']} -cdefault_transaction_read_only=on"
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_read_only_database_is_reported_before_anything_is_fetched(
        tmp_path: Path, config: Path, portal: PortalReplayServer, engine: Engine,
        database_url: str, command: tuple[str, ...]) -> None:
    url = read_only(database_url, tmp_path / "callwatch.db")  # the engine fixture's database
    result = run("--config", str(config), "--db", url, *command, cwd=tmp_path)
    line = one_line_error(result, DATABASE_EXIT)
    assert f"the database {db.display_url(url)} is read-only" in line
    assert "callwatch must write to it" in line
    assert portal.requests == []
    assert not (tmp_path / "file:").exists()  # a `file:` URI is not a path to create


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: p.write_bytes(bytes(range(256)) * 20), "is not a usable SQLite database"),
    (lambda p: p.mkdir(), "cannot open the database"),
], ids=["garbage", "directory"])
def test_a_path_that_is_not_a_database_file_is_one_line(
        tmp_path: Path, make: object, expected: str) -> None:
    path = tmp_path / "callwatch.db"
    make(path)  # type: ignore[operator]  # one of the two lambdas above
    url = f"sqlite:///{path}"
    line = one_line_error(run("--db", url, "calls", "list", cwd=tmp_path), DATABASE_EXIT)
    assert f"{url}" in line and expected in line and "database.url (or --db)" in line


def test_a_database_path_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a directory", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'plain-file' / 'data' / 'callwatch.db'}"
    line = one_line_error(run("--db", url, "calls", "list", cwd=tmp_path), DATABASE_EXIT)
    assert f"cannot create the directory {tmp_path / 'plain-file' / 'data'}" in line
    assert url in line and "Not a directory" in line


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [("calls", "list"), ("scrape", "ft_portal")], ids=" ".join)
def test_postgresql_down_is_one_line_with_the_password_masked(
        tmp_path: Path, config: Path, portal: PortalReplayServer,
        command: tuple[str, ...]) -> None:
    port = closed_port()
    url = f"postgresql://callwatch:s3cret-pw@127.0.0.1:{port}/callwatch"
    result = run("--config", str(config), "--db", url, *command, cwd=tmp_path)
    line = one_line_error(result, DATABASE_EXIT)
    assert f"cannot connect to the database postgresql://callwatch:***@127.0.0.1:{port}/callwatch" \
        in line
    assert "check that PostgreSQL is running" in line
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert portal.requests == []


def test_a_postgresql_server_that_never_answers_is_reported_after_the_connect_timeout(
        tmp_path: Path) -> None:
    """A host that takes the connection and says nothing (a hung server, a middlebox) is
    "cannot connect" after db.CONNECT_TIMEOUT, not a wait as long as the TCP connection."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = int(silent.getsockname()[1])
        url = f"postgresql://callwatch@127.0.0.1:{port}/callwatch"
        result = run("--db", url, "calls", "list", cwd=tmp_path)  # run() gives up after 60 s
    line = one_line_error(result, DATABASE_EXIT)
    assert f"cannot connect to the database {url}" in line


def test_a_config_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[http]\nuser_agent = "callwatch für Düsseldorf"\n'.encode("latin-1"))
    line = one_line_error(run("--config", str(path), "calls", "list", cwd=tmp_path), CONFIG_EXIT)
    assert line == (f"callwatch: configuration error: {path}: not UTF-8: byte 0xfc on line 2 "
                    "cannot be read; save the file as UTF-8")


def test_a_bug_is_not_disguised_as_an_unusable_database(engine: Engine) -> None:
    """A broken statement or constraint keeps its traceback: database_problem says None."""
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as connection:
        connection.execute(sa.text("SELECT no_such_column FROM calls"))
    assert db.database_problem(caught.value, engine.url) is None
