"""The rules commands, run as a user would: the installed `callwatch` script in a subprocess."""

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
REPO = Path(__file__).resolve().parent.parent
NOW = datetime.now(UTC)  # the CLI reads the real clock; calls are placed relative to it


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    return subprocess.run(  # noqa: S603 - our own console script
        [CALLWATCH, *args], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=60, check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path, database_url: str) -> Path:
    """A config whose profiles directory holds one profile, and a store with three calls."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "h2.yaml").write_text(
        "name: h2\nquery: (hydrogen OR electroly*) AND NOT aviation\n", encoding="utf-8")
    (tmp_path / "callwatch.toml").write_text(
        f'[database]\nurl = "{database_url}"\n[profiles]\ndirectory = "profiles"\n')
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    deadline = (NOW + timedelta(days=60, hours=-1),)
    Store(engine).record_run("ft_portal", ScrapeResult(records=[
        make_call("H2-A", deadlines=deadline),
        make_call("H2-B", title="Hydrogen storage in salt caverns", keywords=("storage",),
                  summary="Caverns for hydrogen.", deadlines=deadline),
        make_call("AIR", title="Hydrogen for aviation", deadlines=deadline),
    ]), started_at=NOW, now=NOW - timedelta(minutes=5))
    engine.dispose()
    return tmp_path


def cw(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("--config", str(workdir / "callwatch.toml"), *args, cwd=workdir)


def test_profiles_check_accepts_the_examples(tmp_path: Path) -> None:
    result = run("profiles", "check", str(REPO / "config" / "profiles"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 profiles OK" in result.stdout


def test_profiles_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nquery: 'hydrogen AND \"fuel cell'\nprogrammes: [Horizn Europe]\n"
                   "deadline: {min_days: 30, max_days: 7}\ncolor: red\n")
    other = tmp_path / "other.yml"
    other.write_text("name: other\nstatus: [opn]\n")
    result = run("profiles", "check", str(bad), str(other), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines == [
        f"{bad}:2: query: unbalanced quote: this phrase is never closed at column 14",
        f"{bad}:3: programmes[0]: unknown programme 'Horizn Europe'; did you mean 'Horizon Europe'?",
        f"{bad}:4: deadline: min_days 30 is above max_days 7",
        f"{bad}:5: color: unknown field",
        f"{other}:2: status[0]: Input should be 'forthcoming', 'open' or 'closed', got 'opn'",
    ]
    assert "5 problems found" in result.stderr
    assert "Traceback" not in result.stderr


def test_match_prints_ranked_json_and_then_only_changes(workdir: Path) -> None:
    result = cw(workdir, "match", "--format", "json")
    assert result.returncode == 0, result.stderr
    matches = json.loads(result.stdout)
    assert [m["call_id"] for m in matches] == ["ft_portal:H2-A", "ft_portal:H2-B"]
    first = matches[0]
    assert set(first) == {"profile", "call_id", "score", "reasons", "title", "status",
                          "programme", "next_deadline", "url"}
    assert first["profile"] == "h2" and first["programme"] == "Horizon Europe"
    assert first["reasons"][:3] == [
        "title: hydrogen, electrolysers", "Horizon Europe", "next deadline in 59 days"]
    assert first["score"] > matches[1]["score"]

    assert json.loads(cw(workdir, "match", "--format", "json").stdout) == []  # nothing changed
    again = json.loads(cw(workdir, "match", "--all", "--format", "json", "--profile", "h2").stdout)
    assert [m["call_id"] for m in again] == ["ft_portal:H2-A", "ft_portal:H2-B"]

    table = cw(workdir, "match", "--all")
    assert table.returncode == 0 and "ft_portal:H2-A" in table.stdout and "title:" in table.stdout


def test_dismissed_calls_never_come_back_and_feed_suggestions(workdir: Path) -> None:
    assert cw(workdir, "profiles", "suggest", "h2").stdout.startswith("no calls dismissed for h2")
    assert cw(workdir, "match", "--all").returncode == 0
    result = cw(workdir, "dismiss", "h2", "ft_portal:H2-B")
    assert result.returncode == 0 and "dismissed ft_portal:H2-B for h2" in result.stdout
    assert "already dismissed" in cw(workdir, "dismiss", "h2", "ft_portal:H2-B").stdout
    matches = json.loads(cw(workdir, "match", "--all", "--format", "json").stdout)
    assert [m["call_id"] for m in matches] == ["ft_portal:H2-A"]

    suggest = cw(workdir, "profiles", "suggest", "h2")
    assert suggest.returncode == 0, suggest.stderr
    assert "AND NOT caverns" in suggest.stdout and "AND NOT salt" in suggest.stdout
    assert "AND NOT storage" in suggest.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (("dismiss", "nope", "ft_portal:H2-A"), 1, "no profile named 'nope'"),
    (("dismiss", "h2", "ft_portal:nope"), 1, "no call with id 'ft_portal:nope'"),
    (("match", "--profile", "nope"), 1, "no profile named 'nope' (profiles: h2)"),
])
def test_unknown_names_exit_1(workdir: Path, args: tuple[str, ...], code: int, message: str) -> None:
    result = cw(workdir, *args)
    assert result.returncode == code
    assert message in result.stderr


def test_an_invalid_profile_stops_match_with_exit_2(workdir: Path) -> None:
    (workdir / "profiles" / "broken.yaml").write_text("name: broken\nquery: (x\n")
    result = cw(workdir, "match")
    assert result.returncode == 2
    assert "broken.yaml:2: query: unbalanced parenthesis" in result.stderr


def test_profiles_list_shows_origin(workdir: Path) -> None:
    result = cw(workdir, "profiles", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    [listed] = json.loads(result.stdout)
    assert listed["name"] == "h2" and listed["origin"] == str(workdir / "profiles" / "h2.yaml")
    assert listed["status"] == ["open", "forthcoming"]


@pytest.mark.parametrize("args", [("run",), ("run", "--once")])
def test_the_daemon_refuses_to_start_with_an_invalid_profile(workdir: Path, args: tuple[str, ...]) -> None:
    # every source off: even if the check regressed, nothing would leave the machine
    config = workdir / "callwatch.toml"
    config.write_text(config.read_text() + "".join(
        f"[sources.{name}]\nenabled = false\n"
        for name in ("ft_portal", "eccp", "eismea", "hadea", "eit", "cascade_hub")))
    (workdir / "profiles" / "broken.yaml").write_text("name: broken\nquery: (x\n")
    result = cw(workdir, *args)
    assert result.returncode == 2, result.stderr
    assert "broken.yaml:2: query: unbalanced parenthesis" in result.stderr
    assert "Traceback" not in result.stderr
