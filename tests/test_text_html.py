"""``html_to_text`` reads plain tags in one pass and gives what HTMLParser gives.

The text is defined by the tags as written (every block start and end tag a break), which
is what the HTMLParser subclass reads. ``_plain_tags_text`` reads markup made of plain
tags in one pass of a regular expression and leaves anything else to HTMLParser.
Hypothesis writes fragments from the pieces real descriptions are made of, well-formed or
not, with tags HTMLParser reads in its own ways (odd attributes, whitespace, raw text), and
the two readings must agree on every one, whichever path it takes.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracker.plaintext import (
    _head_text,
    _plain_tags_text,
    _TextExtractor,
    html_to_summary,
    html_to_text,
    normalize_space,
)

PIECES = [
    "<p>", "</p>", "<div>", "</div>", "<ul>", "</ul>", "<ol>", "</ol>", "<li>", "</li>",
    "<br>", "<br/>", "<br />", "</br>", "<hr>", "<span>", "</span>", "<strong>", "</strong>",
    "<b>", "</b>", "<i>", "</i>", '<a href="x">', "</a>", "<h2>", "</h2>", "<h3>", "</h3>",
    "<dl>", "<dd>", "</dd>", "<dt>", "</dt>", "<section>", "</section>", "<blockquote>",
    "</blockquote>", "<script>x<p>y</script>", "<style>p{}</style>", "<noscript>",
    "</noscript>", "<table>", "<tr>", "<td>", "</td>", "</tr>", "</table>", "<pre>", "</pre>",
    "<!-- c -->", "<p/>", "<div/>", '<SPAN class="k">', "</SPAN>", "<P>", "</P>",
    '<em title="a>b">', "</em>", "<img src=x>", "<img alt=don't>", "<", ">", "&", "&amp;",
    "&amp", "&nbsp;", "&lt;p&gt;", "&#128;", " ", "  ", "\n", "\t", "\r\n", "text", "é",
    "Scope:", "\u00a0",
    # tags HTMLParser reads in its own ways: the one pass must read them alike or leave them
    "<script>", "</script>", "</SCRIPT >", "<style>", "</style>", "<script/>", "<noscript/>",
    "<template>", "</template>", '<a b=c/>', '<a b=c />', "<a b />", '<p class="x"/>',
    "<p\u00a0x>", "<p\tclass=x>", "<br\n/>", "<a b=\"x\"c>", "<a b='x'>", "<a b==c>",
    "<a\u2003b>", "</p x>", "</ p>", "<p-x>", "<h2 id=a:b>", "<a b=c\u00a0d>", "&am", "p;",
    "<!doctype html>", "<?pi?>", "</>", "< p>", "<3", "\x00",
]


def old_html_to_text(markup: str) -> str:
    """The reading by the tags as written: the HTMLParser subclass."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return normalize_space("".join(extractor.parts))


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
@example("<p>a<p>b</p></p>c")
@example("<p>a</p>\n<SPAN>x</SPAN>:<p><p>b</p></p>\n")
@example("<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>")
@example("<p>a<script>x</p>y</script>b</p>")
@example("<style>p{}</STYLE >a<script>never closed<p>")
def test_one_pass_reads_what_htmlparser_reads(markup: str) -> None:
    assert html_to_text(markup) == old_html_to_text(markup)


TAGS = ["p", "p", "div", "ul", "li", "li", "span", "a", "h3", "dd"]
TEXTS = ["text", "Scope:", " ", "\n", "&amp;", "&nbsp;", "é", "<br>"] * 6 + [
    "<br/>", "<hr>", "</p>", "</li>", "<p>", "<li>", ""]


def _element(parts: tuple[str, list[str], bool]) -> str:
    tag, children, closed = parts
    return f"<{tag}>" + "".join(children) + (f"</{tag}>" if closed else "")


#: nested elements as descriptions are written, now and then one left open or a stray tag,
#: (which HTMLParser, unlike an HTML5 tree, reads as written)
FRAGMENTS = st.recursive(
    st.sampled_from(TEXTS),
    lambda children: st.tuples(st.sampled_from(TAGS), st.lists(children, max_size=3),
                               st.sampled_from([True] * 12 + [False])).map(_element),
    max_leaves=12,
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(FRAGMENTS, max_size=4).map("".join))
def test_one_pass_reads_what_htmlparser_reads_in_nested_fragments(markup: str) -> None:
    assert html_to_text(markup) == old_html_to_text(markup)


SHAPE_TAGS = ["p", "div", "ul", "ol", "li", "dd", "dt", "dl", "h2", "h3", "span", "strong", "a",
              "section", "blockquote", "button", "form", "table", "tr", "pre", "script",
              "noscript", "title", "custom-tag"]


def shapes() -> list[str]:
    """Every element in every other, closed, left open and stray."""
    found = []
    for outer in SHAPE_TAGS:
        for inner in [*SHAPE_TAGS, "br", "br/", "hr", "img"]:
            end = "" if inner in ("br", "br/", "hr", "img") else f"</{inner}>"
            found += [f"<{outer}>a<{inner}>b{end}c</{outer}>d", f"<{outer}><{inner}>b{end}</{outer}>",
                      f"<{outer}>a<{inner}>\nb{end}</{outer}>",
                      f"<{outer}>a<{inner}>b", f"<{outer}>a</{inner}>b</{outer}>",
                      f"<{outer}></{outer}></{inner}>a", f"a<{outer}>b</{inner}>c</{outer}>"]
    return found


def test_one_pass_reads_what_htmlparser_reads_in_every_shape() -> None:
    different = [m for m in shapes() if html_to_text(m) != old_html_to_text(m)]
    assert different == []
    assert sum(_plain_tags_text(m) is not None for m in shapes()) > 1000  # the pass is met


def test_the_portal_descriptions_shape_takes_the_one_pass() -> None:
    description = ('<SPAN class="topicdescriptionkind">Scope</SPAN>:<p>Projects <strong>will'
                   '</strong> &amp; may:</p><ul><li>one</li><li>two<br>lines</li></ul>'
                   '<p><p>nested</p></p>\n<script>alert(1)</script>')
    assert _plain_tags_text(description) is not None
    assert html_to_text(description) == "Scope:\nProjects will & may:\n\none\n\ntwo\nlines" \
        "\n\nnested"


def test_markup_the_pattern_does_not_read_takes_htmlparser() -> None:
    for markup in ("<!-- x --><p>a</p>", "a < b<p>", "<a b=c/>x", "<p\u00a0x>a", "</p x>a",
                   "<my-tag>a", "a\x00<p>"):
        assert _plain_tags_text(markup) is None, markup
    assert html_to_text("<!-- x --><p>a</p>") == "a"
    assert html_to_text("a<br>b<br/>c") == "a\nb\n\nc"


def cut_text(markup: str, limit: int) -> str:
    """The summary as cut before ``html_to_summary``: the whole text, then the cut."""
    text = html_to_text(markup)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@settings(max_examples=1500, deadline=None)
@given(st.lists(FRAGMENTS | st.sampled_from(PIECES), min_size=10, max_size=60).map("".join),
       st.integers(min_value=2, max_value=60))
def test_a_summary_reads_only_a_head_and_gives_the_cut_text(markup: str, limit: int) -> None:
    assert html_to_summary(markup, limit) == cut_text(markup, limit)


def test_a_summary_of_every_fixture_is_the_cut_text() -> None:
    from tests.test_text_golden import cases

    markups = [markup for _where, markup in cases()]
    heads = 0
    for limit in (40, 300, 4000):
        for markup in markups:
            assert html_to_summary(markup, limit) == cut_text(markup, limit), markup[:200]
            heads += len(markup) > 2 * limit and _head_text(markup, limit) is not None
    assert heads > 100  # the head is read for many of them
