"""README is the reference: every setting, dependency, command and source is in it.

These tests read the real files (pyproject.toml, tracker/defaults.toml, the click command
tree, the registered source plugins), so a key, package or command added without its line
in README fails here instead of going undocumented.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from tracker.cli import cli
from tracker.plugins import source_plugins

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
DEFAULTS = tomllib.loads((REPO / "tracker" / "defaults.toml").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _section(heading: str) -> str:
    """The README text under ``## heading`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def _keys(table: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _keys(value, f"{path}.")
        else:
            yield path


def _documented(path: str, text: str) -> bool:
    """`a.b.c` literally, or in a grouped row (`a.b.x`, `.c`), or as `sources.<name>.c`."""
    if f"`{path}`" in text:
        return True
    parent, _, leaf = path.rpartition(".")
    for line in text.splitlines():
        if f"`{parent}." in line and f"`.{leaf}`" in line:
            return True
    if path.startswith("sources."):
        return f"`sources.<name>.{leaf}`" in text or any(
            "`sources.<name>." in line and f"`.{leaf}`" in line for line in text.splitlines())
    return False


SETTINGS = sorted(_keys(DEFAULTS))


@pytest.mark.parametrize("path", SETTINGS)
def test_every_setting_is_in_the_configuration_reference(path: str) -> None:
    assert _documented(path, _section("Configuration reference")), (
        f"{path} (tracker/defaults.toml) is missing from README's configuration reference")


def test_the_reference_check_can_fail() -> None:
    assert not _documented("http.no_such_key", _section("Configuration reference"))
    assert _documented("http.timeout", "| `http.timeout` | 30 |")
    assert _documented("notifiers.email.port", "| `notifiers.email.host`, `.port` | x |")


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
    return name.lower()


DEPENDENCIES = sorted({_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]} | {
    _requirement_name(r) for extra in PYPROJECT["project"]["optional-dependencies"].values()
    for r in extra})


@pytest.mark.parametrize("name", DEPENDENCIES)
def test_every_dependency_is_listed_with_its_reason(name: str) -> None:
    table = _section("Dependencies").lower()
    assert re.search(rf"(^\|[^|\n]*|[ ,:]){re.escape(name)}\b", table, re.M), (
        f"{name} (pyproject.toml) is missing from README's Dependencies table")


def _commands(group: click.Group, prefix: str = "callwatch") -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path


def _mentions(command: str, text: str) -> bool:
    """`callwatch export atom` is mentioned by a code span `callwatch export ical|atom ...`."""
    words = command.split()
    for span in re.findall(r"`(callwatch [^`]*)`", text):
        tokens = span.replace("\\|", "|").split()
        if len(tokens) >= len(words) and all(
                word in token.split("|") for word, token in zip(words, tokens, strict=False)):
            return True
    return False


def test_the_command_check_can_fail() -> None:
    assert _mentions("callwatch export atom", "| `callwatch export ical\\|atom --profile NAME` |")
    assert not _mentions("callwatch export atom", "`callwatch export ical`")


@pytest.mark.parametrize("command", sorted(_commands(cli)))
def test_every_command_is_in_readme(command: str) -> None:
    assert _mentions(command, README), f"`{command}` is not documented in README"


@pytest.mark.parametrize("source", sorted(source_plugins()))
def test_every_source_is_in_readme(source: str) -> None:
    assert f"`{source}`" in _section("Sources"), f"source {source} is not in README's Sources"
