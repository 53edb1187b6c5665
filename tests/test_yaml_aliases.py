"""Profile and subscriber files refuse YAML aliases: a 300-byte "billion laughs" is an error
naming the file and line, not gigabytes of memory.

The commands run as a user runs them, in a subprocess whose address space is capped at
1 GiB (well above the ~300 MiB they need), so a regression fails with MemoryError instead
of taking the machine's memory (before the fix `profiles check` took 9 GB and ran for
minutes on this file).
"""

from __future__ import annotations

import os
import resource
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.test_cli import CALLWATCH
from tracker.config import PACKAGED_DEFAULTS
from tracker.yamlfiles import parse_yaml

MEMORY_CAP = 1 << 30  # bytes of address space for the command


def billion_laughs(first_line: str) -> str:
    """Nine levels of nine aliases each: 9**9 (387 million) items once expanded."""
    lines = [first_line, 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, below in zip("bcdefghi", "abcdefgh", strict=True):
        lines.append(f"{level}: &{level} [" + ",".join([f"*{below}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CALLWATCH_")}
    return subprocess.run(  # noqa: S603 - our own console script
        [CALLWATCH, "--db", f"sqlite:///{cwd / 'callwatch.db'}", *args], cwd=cwd,
        env=environment, capture_output=True, text=True, timeout=120, check=False,
        preexec_fn=_cap_memory,
    )


def test_the_bomb_is_small() -> None:
    assert len(billion_laughs("name: bomb")) < 400


def test_profiles_check_refuses_an_alias_bomb_naming_file_and_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs("name: bomb"), encoding="utf-8")
    result = run_capped("profiles", "check", str(bomb), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"{bomb}:3: aliases (*a) are not allowed in profile and subscriber files" in output
    assert "Traceback" not in output


def test_subscribers_check_refuses_an_alias_bomb_naming_file_and_line(tmp_path: Path) -> None:
    bomb = tmp_path / "ana.yaml"
    bomb.write_text(billion_laughs("name: ana"), encoding="utf-8")
    result = run_capped("subscribers", "check", str(bomb), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{bomb}:3: aliases (*a) are not allowed" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_refuses_to_start_with_an_alias_bomb_in_the_profiles_directory(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    bomb = tmp_path / "profiles" / "bomb.yaml"
    bomb.write_text(billion_laughs("name: bomb"), encoding="utf-8")
    # every source off: the command must stop at the profiles, and never go online
    built_in = tomllib.loads(PACKAGED_DEFAULTS.read_text(encoding="utf-8"))["sources"]
    sources = "".join(f"[sources.{name}]\nenabled = false\n" for name in built_in)
    (tmp_path / "callwatch.toml").write_text(
        f'[profiles]\ndirectory = "profiles"\n{sources}', encoding="utf-8")
    result = run_capped("--config", str(tmp_path / "callwatch.toml"), "run", "--once", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "configuration error" in result.stderr
    assert f"{bomb}:3: aliases (*a) are not allowed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "line", "anchor"), [
    ("name: p\nquery: &q hydrogen\ndescription: *q\n", 3, "q"),
    ("name: p\nbase: &base {query: wind}\nextra:\n  <<: *base\n", 4, "base"),  # a merge key
])
def test_any_alias_is_refused_at_its_line(text: str, line: int, anchor: str) -> None:
    data, lines, problems = parse_yaml(text, "p.yaml")
    assert data is None and lines == {}
    assert [str(p) for p in problems] == [
        f"p.yaml:{line}: aliases (*{anchor}) are not allowed in profile and subscriber files: "
        "write the value out in full"]


def test_an_anchor_without_an_alias_is_harmless() -> None:
    data, _lines, problems = parse_yaml("name: p\nquery: &q hydrogen\n", "p.yaml")
    assert problems == [] and data == {"name": "p", "query": "hydrogen"}
