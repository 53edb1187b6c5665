"""Turning scraped HTML and messy strings into clean plain text.

Scraped text is untrusted: it may hold tags, entities, scripts, odd whitespace and any
script of any EU language. Here it becomes plain text; non-ASCII is kept as it is.

The text is defined by the tags as written: every block start tag and every block end tag
in the markup is a line break (``a<br>b`` is one break, ``<li>a<li>b`` too), the text of
script, style, noscript and template elements is dropped, and character references are
read as ``html.unescape`` reads them. The standard library's HTMLParser gives exactly that
(``_TextExtractor``), but tokenizing in Python it was a fifth of ``callwatch scrape
ft_portal`` (issue 15). Most real markup (every portal description) is made of plain
tags only: names of letters and digits, attributes separated by spaces, no comment, no
``<`` in the text. Such markup is read in one pass of one regular expression
(``_plain_tags_text``), which gives what HTMLParser gives for it; anything else (a comment,
a script, a stray ``<``, a tag HTMLParser would read otherwise) is read by HTMLParser.
An HTML5 tree (lexbor, lxml) was measured and dropped: it is no faster than the one pass,
and it closes and moves elements, so it needed a check of its own that the tags stay as
written. tests/test_text_golden.py holds the text to what the old code gave for every HTML
input in the fixtures, and tests/test_text_html.py the two readings to each other.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset({
    "p", "div", "li", "br", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "ul", "ol", "table",
    "section", "article", "header", "footer", "blockquote", "pre", "hr", "dd", "dt",
})
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template"})
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    """Collects the text of a fragment: blocks on their own lines, scripts and styles dropped.

    The definition of the text (see the module): every fragment the one pass
    (``_plain_tags_text``) cannot read is read here.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(markup: str | None) -> str:
    """Plain text of an HTML fragment: scripts and styles dropped, blocks on their own lines."""
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        return normalize_space(markup)
    text = _plain_tags_text(markup)
    if text is None:
        extractor = _TextExtractor()
        extractor.feed(markup)
        extractor.close()
        text = "".join(extractor.parts)
    return normalize_space(text)


def html_to_summary(markup: str | None, limit: int) -> str:
    """``html_to_text(markup)``, cut to ``limit`` characters (the last one "…") when longer.

    A long fragment is read only as far as the cut keeps (``_head_text``): a portal
    description is often twice the summary it gives, and reading it was a quarter of
    ``callwatch scrape ft_portal`` (issue 15).
    """
    text = _head_text(markup, limit) if markup and len(markup) > 2 * limit else None
    if text is None:
        text = html_to_text(markup)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _head_text(markup: str, limit: int) -> str | None:
    """The text of a head of ``markup`` that ends with a block tag, when it is longer than
    ``limit``; None when no such head is found (then the whole is read).

    The head ends after a plain block tag (``_PLAIN_TAG``) past ``limit`` × 1.5 characters,
    and is read only when it is made of plain tags: then its last tag is a tag to HTMLParser
    too (a ``<p>`` inside a comment or an attribute value leaves a ``<`` in the text, and
    inside a script the text before the script is what both give), so HTMLParser reads the
    head as the start of the whole, and the head's text ends with a whole line, a break:
    ``normalize_space`` gives a start of the whole's text (lines are normalized alone, NFC
    composes nothing across a line break).
    """
    position = limit * 3 // 2
    while (match := _PLAIN_TAG.search(markup, position)) is not None:
        if (match.group(1) or match.group(2)).lower() in _BLOCK_TAGS:
            break
        position = match.end()
    if match is None:
        return None
    raw = _plain_tags_text(markup[: match.end()])
    if raw is None or not raw.endswith("\n"):
        return None
    text = normalize_space(raw)
    return text if len(text) > limit else None


#: whitespace as HTMLParser's tag name ends at it (ASCII only: its ``\s`` elsewhere is
#: Unicode, so a tag with other whitespace in it is left to HTMLParser)
_WS = r"[ \t\n\r\f]"
#: a plain tag: an end tag ``</name>``, or a start tag ``<name attr attr="v" attr=v>`` or
#: ``<name .../>``, the name of ASCII letters and digits, each attribute after whitespace,
#: a bare value followed by whitespace or ">" (``<a b=c/>`` is left to HTMLParser, which
#: reads the "/" as part of the value). Every such tag is one tag to HTMLParser, read alike:
#: same name, same end, a start and an end tag when written with "/>".
_PLAIN_TAG = re.compile(
    rf"""<(?:/([a-zA-Z][a-zA-Z0-9]*){_WS}*"""
    rf"""|([a-zA-Z][a-zA-Z0-9]*)(?:{_WS}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"""
    rf"""(?:{_WS}*={_WS}*(?:"[^"]*"|'[^']*'|[^\s"'=<>`/]+(?=[ \t\n\r\f>])))?)*{_WS}*(/?))>""")
#: elements whose content HTMLParser reads as raw text, and the end tag that ends it there
#: (``HTMLParser.set_cdata_mode``)
_RAW_TEXT_END = {name: re.compile(rf"</\s*{name}\s*>", re.IGNORECASE)
                 for name in ("script", "style")}


def _plain_tags_text(markup: str) -> str | None:
    """The text HTMLParser's reading (``_TextExtractor``) gives, before ``normalize_space``,
    when ``markup`` is made of plain tags (``_PLAIN_TAG``) and text without ``<``; None
    otherwise (a comment, a doctype, a NUL, a ``<`` that starts no plain tag), for
    HTMLParser to read.

    Between two tags HTMLParser hands on the text unescaped, whole, as here; a ``<`` in it
    would be a tag or a comment to HTMLParser which the pattern does not read, so it sends
    the markup there. After a script or style start tag HTMLParser reads raw text up to the
    element's own end tag (``_RAW_TEXT_END``), or to the end: both dropped.
    """
    if "\x00" in markup:
        return None
    pieces = _PLAIN_TAG.split(markup)  # text, then each tag's three groups, then text...
    texts = pieces[::4]
    if any("<" in text for text in texts):
        return None
    opened = pieces[2::4]
    names = [(end or start).lower() for end, start in zip(pieces[1::4], opened, strict=True)]
    if not _SKIPPED_TAGS.isdisjoint(names):
        return _plain_tags_text_skipping(markup)
    # no element whose text is dropped: the text is each text unescaped, each block tag a
    # break (two for a block written <br/>, a start and an end tag to HTMLParser)
    joined: list[str] = [""] * (2 * len(names) + 1)
    joined[::2] = [unescape(text) if "&" in text else text for text in texts]
    joined[1::2] = [("\n\n" if start is not None and slash else "\n")
                    if name in _BLOCK_TAGS else ""
                    for name, start, slash in zip(names, opened, pieces[3::4], strict=True)]
    return "".join(joined)


def _plain_tags_text_skipping(markup: str) -> str | None:
    """``_plain_tags_text`` of markup with an element whose text is dropped: tag by tag."""
    parts: list[str] = []
    skipping = 0
    last = 0
    search = _PLAIN_TAG.search
    while (match := search(markup, last)) is not None:
        start = match.start()
        if start > last:
            data = markup[last:start]
            if "<" in data:
                return None
            if not skipping:
                parts.append(unescape(data) if "&" in data else data)
        last = match.end()
        closed, opened, self_closing = match.groups()
        name = (closed or opened).lower()
        if opened is not None:
            if name in _SKIPPED_TAGS:
                skipping += 1
                if name in _RAW_TEXT_END and not self_closing:
                    end = _RAW_TEXT_END[name].search(markup, last)
                    if end is None:  # raw text to the end, dropped
                        return "".join(parts)
                    last = end.end()
                    skipping = max(0, skipping - 1)
                    continue
            elif name in _BLOCK_TAGS:
                parts.append("\n")
            if not self_closing:
                continue
        if name in _SKIPPED_TAGS:
            skipping = max(0, skipping - 1)
        elif name in _BLOCK_TAGS:
            parts.append("\n")
    data = markup[last:]
    if "<" in data:
        return None
    if data and not skipping:
        parts.append(unescape(data) if "&" in data else data)
    return "".join(parts)


#: whitespace on which ``str.split`` and ``_SPACES`` disagree: ``str.split`` splits on these
#: (``_SPACES`` keeps them inside a line) but not on U+200B (``_SPACES`` collapses it)
_ODD_SPACES = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u1680", "\u2028",
               "\u2029", "\u200b")


#: the other whitespace ``str.split`` splits on where ``_ODD_SPACES`` are absent (after NFC,
#: U+2000 and U+2001 are U+2002 and U+2003)
_OTHER_SPACES = ("\t", "\xa0", *(chr(c) for c in range(0x2002, 0x200b)), "\u202f", "\u205f",
                 "\u3000")


def normalize_space(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks, strip the ends, NFC-normalise.

    Each line becomes ``" ".join(line.split())``: C-speed, where the ``_SPACES`` regex spent
    about half of a portal description's conversion stepping through every character
    (issue 15). The two agree except on the rare characters in ``_ODD_SPACES``; a text that
    holds one takes the regex, so the output is the same for every text. Splitting and
    joining every line was still most of the time (a word at a time), so each other space
    present is first replaced by " " (one ``str.replace``), and only lines with two spaces
    in a row or a space at an end are split: the others are what the split would give.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    if any(odd in text for odd in _ODD_SPACES):
        lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
        text = "\n".join(lines)
    else:
        for space in _OTHER_SPACES:
            if space in text:
                text = text.replace(space, " ")
        if "  " in text or " \n" in text or "\n " in text:
            text = "\n".join([
                " ".join(line.split()) if "  " in line or line[:1] == " " or line[-1:] == " "
                else line for line in text.split("\n")])
    return _BLANK_LINES.sub("\n\n", text).strip()


def one_line(text: str | None) -> str:
    """A single-line version (titles): all whitespace, newlines included, becomes one space."""
    if not text:
        return ""
    return " ".join(html_to_text(text).split())
