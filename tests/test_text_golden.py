"""Golden file: ``html_to_text`` gives the same text as before on every real HTML input we hold.

The converter was a hand-written ``html.parser.HTMLParser`` subclass until issue 15 moved it
to a faster parser. ``tests/golden/html_to_text.json`` holds the text the old code gave for
every HTML input the fixtures hold (``cases``): each string of every JSON fixture (the
portal's descriptions, update notes and titles, doubly encoded JSON decoded), each feed
entry's summary and content, every HTML page whole and each of its block elements (the
fragments ``html_list`` converts). Any difference, even one blank line, fails here.

The file was written by the old code (``PYTHONPATH=<old checkout> python
tests/test_text_golden.py --write``). A new fixture has no golden text yet: this test names
it, and the same command (with the current code, once the new text has been read and found
right) adds it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
from bs4 import BeautifulSoup

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # run as a script: import tracker from PYTHONPATH, not tests/
    sys.path.remove(str(Path(__file__).resolve().parent))

from tracker.plaintext import html_to_text  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "html_to_text.json"
FOLDERS = (REPO / "tests" / "fixtures", REPO / "tracker" / "demo" / "fakes" / "recordings")
#: block elements whose markup becomes a case of its own (what a CSS selector picks)
FRAGMENT_TAGS = ("p", "li", "div", "td", "article", "section", "dd", "span", "a", "h2", "h3")
FRAGMENT_LIMIT = 20_000


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside a decoded JSON value, JSON inside a string decoded too."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}/{index}")
    elif isinstance(value, str) and value.strip():
        yield where, value
        if value.lstrip().startswith(("[", "{")):
            try:
                inner = json.loads(value)
            except ValueError:
                return
            yield from _strings(inner, f"{where}/~json")


def cases() -> Iterator[tuple[str, str]]:
    """(where, markup) of every HTML input in the fixtures, in a stable order."""
    for folder in FOLDERS:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(REPO).as_posix()
            if path.suffix == ".json":
                yield from _strings(json.loads(path.read_text(encoding="utf-8")), name + "#")
            elif path.suffix in (".atom", ".xml"):
                feed = feedparser.parse(path.read_bytes())
                for index, entry in enumerate(feed.entries):
                    for key in ("title", "summary"):
                        if entry.get(key):
                            yield f"{name}#entry{index}/{key}", str(entry[key])
                    for part, content in enumerate(entry.get("content") or []):
                        yield f"{name}#entry{index}/content{part}", str(content.get("value", ""))
            elif path.suffix == ".html":
                markup = path.read_text(encoding="utf-8", errors="replace")
                yield name, markup
                soup = BeautifulSoup(markup, "html.parser")
                for index, node in enumerate(soup.find_all(FRAGMENT_TAGS)):
                    fragment = str(node)
                    if len(fragment) <= FRAGMENT_LIMIT:
                        yield f"{name}#{node.name}{index}", fragment


def _digest(markup: str) -> str:
    return hashlib.sha256(markup.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def test_html_to_text_gives_the_golden_text_for_every_fixture_input() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    missing: list[str] = []
    different: list[str] = []
    for where, markup in cases():
        key = _digest(markup)
        if key not in golden:
            missing.append(where)
        elif html_to_text(markup) != golden[key]:
            different.append(where)
    assert different == []
    assert missing == [], "new fixture inputs: add their golden text (see the module docstring)"
    assert len(golden) > 1000  # the corpus really was read


def write() -> None:
    golden = {_digest(markup): html_to_text(markup) for _where, markup in cases()}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), ensure_ascii=False, indent=0)
                      + "\n", encoding="utf-8")
    print(f"{len(golden)} golden texts written to {GOLDEN.relative_to(REPO)}")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    write()
