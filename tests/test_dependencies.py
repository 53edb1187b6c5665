"""Dependencies point one way: the adapters (``scrapers``, ``notifiers``) import the core
(``tracker``), never each other, and the core imports no adapter.

The core still has a few imports of adapters, listed in ``KNOWN`` with why; they are the
debt issue 14 point 3 pays off (a ``notifiers/telegram/`` package for the bot and its
pacing, one composition layer for the wiring). The test is a ratchet: a new core→adapter
import fails it, and so does a listed one that is gone (take it off the list).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADAPTERS = ("scrapers", "notifiers")

#: (core module, adapter module it imports): the wiring and the Telegram bot, still in the core
KNOWN = {
    ("tracker/pipeline.py", "notifiers"): "composition root: builds the channels",
    ("tracker/pipeline.py", "notifiers.console"): "composition root: the console channel",
    ("tracker/pipeline.py", "notifiers.telegram"): "composition root: Telegram pacing",
    ("tracker/pipeline.py", "scrapers._http"): "composition root: the shared HTTP client",
    ("tracker/demo.py", "notifiers.telegram"): "the demo wires its fake Bot API",
    ("tracker/bot.py", "notifiers.telegram"): "the bot lives in the core until it moves",
    ("tracker/pacing.py", "notifiers.telegram"): "Telegram pacing lives in the core until it moves",
    ("tracker/subscribers.py", "notifiers.apprise"): "apprise addresses are checked on load",
}


def imports(package: str) -> Iterator[tuple[str, str]]:
    """(file, imported module) for every import in ``package``, nested ones included."""
    for path in sorted((REPO / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        name = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield name, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield name, node.module


def top(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_core_imports_no_adapter_beyond_the_known_ones() -> None:
    found = {(path, module) for path, module in imports("tracker") if top(module) in ADAPTERS}
    assert sorted(found - set(KNOWN)) == [], "the core must not import an adapter"
    assert sorted(set(KNOWN) - found) == [], "gone: take these off KNOWN"


def test_adapters_never_import_each_other() -> None:
    for package in ADAPTERS:
        others = {a for a in ADAPTERS if a != package}
        crossing = [(path, module) for path, module in imports(package) if top(module) in others]
        assert crossing == [], f"{package} imports another adapter"


def test_the_checker_sees_nested_imports() -> None:
    """The pipeline's Telegram import sits inside a function: a checker that read only the
    top of each file would miss it (and this whole test would be weaker than it looks)."""
    assert ("tracker/pipeline.py", "notifiers.telegram") in set(imports("tracker"))
