"""The command line, run as a user would: the installed `callwatch` script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.factories import make_call
from tracker.models import ScrapeResult
from tracker.store import db
from tracker.store.calls import Store

CALLWATCH = shutil.which("callwatch") or str(Path(sys.executable).with_name("callwatch"))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    environment.update(env or {})
    return subprocess.run(  # noqa: S603 - our own console script
        [CALLWATCH, *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=60, check=False,
    )


def test_calls_list_on_a_new_store_prints_an_empty_array(tmp_path: Path, database_url: str) -> None:
    if database_url.startswith("postgresql"):
        assert run("--db", database_url, "db", "upgrade", cwd=tmp_path).returncode == 0
    result = run("--db", database_url, "calls", "list", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_embedded_default_lives_in_the_user_data_directory(tmp_path: Path) -> None:
    result = run("calls", "list", "--format", "json", cwd=tmp_path,
                 env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "callwatch" / "callwatch.db").is_file()


def test_postgres_refuses_an_old_schema(tmp_path: Path, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite upgrades itself")
    result = run("--db", database_url, "calls", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "callwatch db upgrade" in result.stderr


def test_history_shows_one_deadline_change(tmp_path: Path, database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    store = Store(engine)
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    first = make_call("HORIZON-CL5-2026-D3-01-01")
    moved = make_call("HORIZON-CL5-2026-D3-01-01",
                      deadlines=(datetime(2027, 4, 30, 15, 0, tzinfo=UTC),))
    store.record_run("ft_portal", ScrapeResult(records=[first]), started_at=now, now=now)
    store.record_run("ft_portal", ScrapeResult(records=[first]), started_at=now,
                     now=now + timedelta(hours=6))
    store.record_run("ft_portal", ScrapeResult(records=[moved]), started_at=now,
                     now=now + timedelta(hours=12))
    engine.dispose()

    result = run("--db", database_url, "calls", "history", "ft_portal:HORIZON-CL5-2026-D3-01-01",
                 "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    history = json.loads(result.stdout)
    assert [h["kind"] for h in history] == ["new", "deadline_changed"]
    assert history[1] == {
        "at": "2026-11-26T00:00:00Z", "kind": "deadline_changed", "field": "deadlines",
        "old": ["2027-04-16T15:00:00Z"], "new": ["2027-04-30T15:00:00Z"],
    }
    table = run("--db", database_url, "calls", "history", "ft_portal:HORIZON-CL5-2026-D3-01-01",
                cwd=tmp_path)
    assert "deadline_changed" in table.stdout and "2027-04-30T15:00:00Z" in table.stdout

    listed = json.loads(run("--db", database_url, "calls", "list", "--format", "json",
                            cwd=tmp_path).stdout)
    assert [c["id"] for c in listed] == ["ft_portal:HORIZON-CL5-2026-D3-01-01"]
    keys = {"id", "source", "programme", "call_identifier", "topic_identifier", "title", "status",
            "opening_date", "deadlines", "next_deadline", "budget_eur", "url", "keywords",
            "first_seen", "last_changed"}
    assert keys <= set(listed[0])
    assert listed[0]["deadlines"] == ["2027-04-30T15:00:00Z"]


def test_unknown_call_exits_1(tmp_path: Path) -> None:
    result = run("--db", f"sqlite:///{tmp_path / 'x.db'}", "calls", "show", "ft_portal:nope",
                 cwd=tmp_path)
    assert result.returncode == 1
    assert "no call with id 'ft_portal:nope'" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[http\n", "not valid TOML"),
        ("[http]\nuser_agnet = 'x'\n", "http.user_agnet: unknown key"),
    ],
)
def test_bad_config_exits_2_with_a_clear_message(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run("--config", str(path), "calls", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert str(path) in result.stderr
    assert "Traceback" not in result.stderr


def test_sources_lists_configured_sources(tmp_path: Path) -> None:
    result = run("--db", f"sqlite:///{tmp_path / 'x.db'}", "sources", "--format", "json",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    portal = next(r for r in rows if r["name"] == "ft_portal")
    assert portal["kind"] == "ft_portal" and portal["interval"] == "6h"
    assert portal["last_run"] is None and portal["consecutive_failures"] == 0


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0 and "callwatch" in result.stdout


def test_command_modules_import_only_the_shared_module() -> None:
    """No import cycle in tracker/cli/: each command module takes App and the helpers from
    tracker/cli/app.py, which imports none of them; only __init__.py imports the commands."""
    import ast

    package = Path(__file__).resolve().parent.parent / "tracker" / "cli"
    modules = {path.stem for path in package.glob("*.py")} - {"__init__"}
    assert {"app", "calls", "sources", "status"} <= modules
    for path in sorted(package.glob("*.py")):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        inside = {m for m in imported if m == "tracker.cli" or m.startswith("tracker.cli.")}
        assert inside <= ({"tracker.cli.app"} if path.stem != "app" else set()), path.name
