"""The packages are ours, not the unrelated PyPI projects that share their names."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["tracker", "scrapers", "notifiers"])
def test_packages_import_from_this_repository(package: str) -> None:
    module = importlib.import_module(package)
    assert Path(module.__file__ or "").resolve().parent == REPO / package


def test_config_is_data_not_a_package() -> None:
    assert not (REPO / "config" / "__init__.py").exists()


def test_every_module_has_a_docstring() -> None:
    for package in ("tracker", "scrapers", "notifiers"):
        for path in (REPO / package).rglob("*.py"):
            if "versions" in path.parts or (path.name == "__init__.py" and path.stat().st_size == 0):
                continue
            text = path.read_text(encoding="utf-8").lstrip()
            assert text.startswith('"""'), f"{path} has no module docstring"
