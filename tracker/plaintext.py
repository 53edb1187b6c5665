"""Turning scraped HTML and messy strings into clean plain text.

Scraped text is untrusted: it may hold tags, entities, scripts, odd whitespace and any
script of any EU language. Here it becomes plain text; non-ASCII is kept as it is.

HTML is read by lexbor (selectolax), an HTML5 parser in C: a portal run converts thousands
of multi-kilobyte descriptions, and the standard library's HTMLParser, tokenizing in
Python, was a fifth of ``callwatch scrape ft_portal`` (issue 15; lxml was measured too and
is slower here, building its tree through libxml2's HTML parser). The text is defined by
the tags as written, though: every block start tag and every block end tag in the markup
is a line break, so ``a<br>b`` is one break and ``<li>a<li>b`` too. An HTML5 tree closes
elements the markup left open, which would add breaks, so a fragment whose tags a tree
would rearrange (``_tree_keeps_tags``: an unclosed or misnested block, a raw-text element
other than script and style, a comment) is read by the HTMLParser subclass below, which
gives that definition directly. The real portal descriptions are well-formed and take the
fast path; tests/test_text_golden.py holds both paths to the text the old code gave for
every HTML input in the fixtures.
"""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

from selectolax.lexbor import LexborHTMLParser

_BLOCK_TAGS = frozenset({
    "p", "div", "li", "br", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "ul", "ol", "table",
    "section", "article", "header", "footer", "blockquote", "pre", "hr", "dd", "dt",
})
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template"})
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    """Collects the text of a fragment: blocks on their own lines, scripts and styles dropped.

    The standard library's tolerant parser is enough here and about five times faster than
    building a BeautifulSoup tree, which matters for thousands of portal descriptions a run.
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
    breaks = _tree_keeps_tags(markup)
    if breaks is None:
        extractor = _TextExtractor()
        extractor.feed(markup)
        extractor.close()
        return normalize_space("".join(extractor.parts))
    tree = LexborHTMLParser(markup)
    for node in tree.css("script, style"):
        node.decompose()
    for node in tree.css(_BLOCK_SELECTOR):
        if node.tag in _VOID_BLOCKS:
            node.insert_before(breaks)
        else:
            node.insert_before("\n")
            node.insert_after("\n")
    root = tree.root
    return normalize_space(root.text(deep=True) if root is not None else "")


_BLOCK_SELECTOR = ", ".join(sorted(_BLOCK_TAGS))
_VOID_BLOCKS = frozenset({"br", "hr"})
#: elements that never have an end tag (HTML5 "void elements")
_VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
})
#: start tags that close an open <p> in an HTML5 tree (and li, dd, dt, which close their own)
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu",
    "nav", "ol", "p", "search", "section", "summary", "ul", "h1", "h2", "h3", "h4", "h5", "h6",
    "form", "hr", "li", "dd", "dt",
})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
#: tags a tree builder moves, renames, reads as raw text or parses otherwise than HTMLParser
_REARRANGED = frozenset({
    "noscript", "template", "pre", "textarea", "listing", "plaintext", "xmp", "title",
    "iframe", "noembed", "noframes", "table", "caption", "colgroup", "col", "thead", "tbody",
    "tfoot", "tr", "td", "th", "select", "option", "optgroup", "svg", "math", "image",
    "isindex", "frameset", "frame", "html", "head", "body", "ruby", "rb", "rp", "rt", "rtc",
})
#: elements a tree builder will not nest in themselves (it closes or drops the inner one)
_NOT_NESTED = frozenset({"a", "nobr", "button", "form"})
_LISTS = frozenset({"ul", "ol", "dl", "menu", "dir"})
_ITEMS = frozenset({"li", "dd", "dt"})
#: a tag as written: its name, then attributes whose quoted values may hold ">" (a tag
#: with a stray quote does not match, so its element is not seen: see _tree_keeps_tags)
_TAG = re.compile(r"""<(/?)([a-zA-Z][^\t\n\r\f />\x00]*)((?:[^>"'=]|=\s*"[^"]*"|=\s*'[^']*'|=)*)>""")
#: a comment, doctype, CDATA or processing instruction, or "</" that starts no end tag
#: (one literal "<" first, so the regex engine jumps from "<" to "<")
_NOT_A_TAG = re.compile(r"<(?:[!?]|/(?![a-zA-Z]))")


def _start_rules() -> dict[str, int]:
    rules: dict[str, int] = {}
    for names, rule in ((_CLOSES_P, _CLOSES_A_P), (_HEADINGS, _HEADING), (_ITEMS, _ITEM),
                        (_NOT_NESTED, _ONCE), (_VOID, _EMPTY),
                        (("script", "style"), _RAW), (_REARRANGED, _MOVED)):
        for name in names:
            rules[name] = rules.get(name, 0) | rule
    return rules


_CLOSES_A_P, _HEADING, _ITEM, _ONCE, _EMPTY, _RAW, _MOVED = (1 << n for n in range(7))
#: what each special start tag asks of the check; a tag not here is a plain element
_START_RULES = _start_rules()


def _tree_keeps_tags(markup: str) -> str | None:
    """The break a ``<br>`` stands for ("\\n", or "\\n\\n" when written ``<br/>``, which
    HTMLParser reads as a start and an end tag) when an HTML5 tree of ``markup`` has
    exactly the elements its tags write, in their order; None when a tree would close,
    move or reread any of them, so that only the tags themselves tell the text.

    Checked on the tags as written: every end tag closes the element opened last; no start
    tag is one an HTML5 tree builder closes an open <p>, list item or heading for, or will
    not nest (<a> in <a>); no table, raw-text element other than script and style, foreign
    content or comment; every ``<`` of a tag is closed. Elements still open at the end are
    fine: closing them adds breaks only after the last text. One pass, one dict look-up
    for most tags: this runs on every description.
    """
    if "\x00" in markup or _NOT_A_TAG.search(markup) or markup.rfind("<") > markup.rfind(">"):
        return None
    open_tags: list[str] = []
    paragraphs = 0  # open <p> elements
    breaks: set[str] = set()
    raw_text = ""
    after_block = False  # nothing but whitespace and tags since the last block tag
    last = 0
    for match in _TAG.finditer(markup):
        if after_block and markup[last:match.start()].strip():
            after_block = False
        last = match.end()
        slash, written, attributes = match.groups()
        name = written.lower()
        if raw_text:  # inside script or style only their own end tag may follow
            if not slash or name != raw_text:
                return None
            raw_text = ""
        if slash:
            if open_tags and open_tags[-1] == name:
                paragraphs -= open_tags.pop() == "p"
            elif not (name == "p" and not paragraphs and after_block):
                return None  # (a stray </p> next to a block tag: a tree's empty <p> adds a
                             # break where there is one already)
        else:
            rule = _START_RULES.get(name, 0)
            if rule:
                if rule & _CLOSES_A_P and paragraphs:
                    # <p><p> (the portal writes it): a tree closes the empty <p>, which adds
                    # a break where there are two already; any other closing is refused
                    if not (after_block and name in _BLOCK_TAGS and open_tags[-1] == "p"):
                        return None
                    open_tags.pop()
                    paragraphs -= 1
                if rule & _MOVED or (rule & _ITEM and _item_open(open_tags)) \
                        or (rule & _ONCE and name in open_tags) \
                        or (rule & _HEADING and open_tags and open_tags[-1] in _HEADINGS):
                    return None
                paragraphs += name == "p"
                if rule & _RAW:
                    raw_text = name
            if rule & _EMPTY:
                if name in _VOID_BLOCKS:
                    breaks.add("\n\n" if attributes.endswith("/") else "\n")
            elif attributes.endswith("/"):  # <div/>: a start and an end tag to HTMLParser,
                return None                 # an open div to a tree
            else:
                open_tags.append(name)
        after_block = after_block or name in _BLOCK_TAGS
    if raw_text or len(breaks) > 1:
        return None
    return breaks.pop() if breaks else "\n"


def _item_open(open_tags: list[str]) -> bool:
    """Whether a list item is open in the innermost list: a new item would close it."""
    for name in reversed(open_tags):
        if name in _ITEMS:
            return True
        if name in _LISTS:
            return False
    return False


#: whitespace on which ``str.split`` and ``_SPACES`` disagree: ``str.split`` splits on these
#: (``_SPACES`` keeps them inside a line) but not on U+200B (``_SPACES`` collapses it)
_ODD_SPACES = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u1680", "\u2028",
               "\u2029", "\u200b")


def normalize_space(text: str) -> str:
    """Collapse runs of spaces, keep paragraph breaks, strip the ends, NFC-normalise.

    Each line becomes ``" ".join(line.split())``: C-speed, where the ``_SPACES`` regex spent
    about half of a portal description's conversion stepping through every character
    (issue 15). The two agree except on the rare characters in ``_ODD_SPACES``; a text that
    holds one takes the regex, so the output is the same for every text.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    if any(odd in text for odd in _ODD_SPACES):
        lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    else:
        lines = [" ".join(line.split()) for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str | None) -> str:
    """A single-line version (titles): all whitespace, newlines included, becomes one space."""
    if not text:
        return ""
    return " ".join(html_to_text(text).split())
