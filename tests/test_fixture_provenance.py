"""Every fixture and every page the demo serves is listed as recorded (with its origin) or written.

"Recorded" means a real response of the site. tests/fixtures/README.md holds one table of
every file under tests/fixtures/ and tracker/demo/fakes/recordings/; this test keeps it complete
and true to the folders, so a page written for the tests is never passed off as a recording
and a new fixture cannot be added without saying which it is.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tracker.demo.fakes import RECORDINGS

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
README = FIXTURES / "README.md"
KINDS = {"recorded", "written"}
#: a recorded row names a repository path or a URL, and a year (or says the date is unknown)
_ORIGIN = re.compile(r"`[^`]+`|https?://")
_DATE = re.compile(r"\b(?:19|20)\d{2}\b|date unknown")


def table_rows() -> list[tuple[str, str, str]]:
    """(file, kind, origin) of every row of the README's table."""
    rows = []
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and (path := re.fullmatch(r"`([^`]+)`", cells[0])):
            rows.append((path.group(1), cells[1], cells[2]))
    return rows


def fixture_files() -> set[str]:
    """Every file in the two folders except their READMEs, as repository paths."""
    found = set()
    for folder in (FIXTURES, RECORDINGS):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix != ".md" and "__pycache__" not in path.parts:
                found.add(path.resolve().relative_to(REPO).as_posix())
    return found


def test_every_fixture_and_bundled_page_is_listed_once_as_recorded_or_written() -> None:
    rows = table_rows()
    listed = Counter(path for path, _, _ in rows)
    assert [p for p, n in listed.items() if n > 1] == [], "listed twice"
    files = fixture_files()
    assert sorted(files - set(listed)) == [], \
        "not in tests/fixtures/README.md: say whether each is recorded (with origin) or written"
    assert sorted(set(listed) - files) == [], "listed in tests/fixtures/README.md but missing"
    bad_kind = [(path, kind) for path, kind, _ in rows if kind not in KINDS]
    assert bad_kind == []


def test_a_recorded_fixture_names_its_origin_and_date_and_a_written_one_none() -> None:
    rows = table_rows()
    recorded = [(path, origin) for path, kind, origin in rows if kind == "recorded"]
    assert recorded, "the table has real recordings"
    assert [p for p, origin in recorded if not (_ORIGIN.search(origin) and _DATE.search(origin))] == []
    assert [p for p, kind, origin in rows if kind == "written" and origin] == []


def test_the_demo_serves_pages_of_both_kinds_and_says_so() -> None:
    """The bundled pages are listed, and their own README does not call them all recordings."""
    kinds = {kind for path, kind, _ in table_rows() if path.startswith("tracker/demo/fakes/recordings/")}
    assert kinds == KINDS
    bundled_readme = (RECORDINGS / "README.md").read_text(encoding="utf-8")
    assert "written" in bundled_readme and "tests/fixtures/README.md" in bundled_readme
