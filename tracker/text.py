"""Turning scraped HTML and messy strings into clean plain text.

Scraped text is untrusted: it may hold tags, entities, scripts, odd whitespace and any
script of any EU language. Here it becomes plain text; non-ASCII is kept as it is.
"""

from __future__ import annotations

import re
import unicodedata
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

_BLOCK_TAGS = ("p", "div", "li", "br", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "ul", "ol", "table")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def html_to_text(markup: str | None) -> str:
    """Plain text of an HTML fragment: scripts and styles dropped, blocks on their own lines."""
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return normalize_space(markup)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(markup, "html.parser")
    for node in soup(["script", "style", "noscript", "template"]):
        node.decompose()
    for node in soup.find_all(_BLOCK_TAGS):
        node.insert_before("\n")
        node.insert_after("\n")
    return normalize_space(soup.get_text())


def normalize_space(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks, strip the ends, NFC-normalise."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str | None) -> str:
    """A single-line version (titles): all whitespace, newlines included, becomes one space."""
    if not text:
        return ""
    return " ".join(html_to_text(text).split())
