"""``html_to_text`` reads HTML with lexbor only where that gives what the tags say.

The text is defined by the tags as written (every block start and end tag a break), which
is what the HTMLParser subclass reads; lexbor builds an HTML5 tree, which closes and moves
elements. ``_tree_keeps_tags`` sends a fragment to lexbor only when its tree keeps the
written tags. Hypothesis writes fragments from the pieces real descriptions are made of,
well-formed or not, and the two readings must agree on every one, whichever path it takes.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tracker.plaintext import _TextExtractor, _tree_keeps_tags, html_to_text, normalize_space

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
def test_lexbor_reads_what_the_tags_say(markup: str) -> None:
    assert html_to_text(markup) == old_html_to_text(markup)


TAGS = ["p", "p", "div", "ul", "li", "li", "span", "a", "h3", "dd"]
TEXTS = ["text", "Scope:", " ", "\n", "&amp;", "&nbsp;", "é", "<br>"] * 6 + [
    "<br/>", "<hr>", "</p>", "</li>", "<p>", "<li>", ""]


def _element(parts: tuple[str, list[str], bool]) -> str:
    tag, children, closed = parts
    return f"<{tag}>" + "".join(children) + (f"</{tag}>" if closed else "")


#: nested elements as descriptions are written, now and then one left open or a stray tag,
#: so that many fragments take lexbor and many sit at the edge of what it may take
FRAGMENTS = st.recursive(
    st.sampled_from(TEXTS),
    lambda children: st.tuples(st.sampled_from(TAGS), st.lists(children, max_size=3),
                               st.sampled_from([True] * 12 + [False])).map(_element),
    max_leaves=12,
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(FRAGMENTS, max_size=4).map("".join))
def test_lexbor_reads_what_the_tags_say_in_nested_fragments(markup: str) -> None:
    assert html_to_text(markup) == old_html_to_text(markup)


SHAPE_TAGS = ["p", "div", "ul", "ol", "li", "dd", "dt", "dl", "h2", "h3", "span", "strong", "a",
              "section", "blockquote", "button", "form", "table", "tr", "pre", "script",
              "noscript", "title", "custom-tag"]


def shapes() -> list[str]:
    """Every element in every other, closed, left open and stray: each rule of
    ``_tree_keeps_tags`` is met by some of them."""
    found = []
    for outer in SHAPE_TAGS:
        for inner in [*SHAPE_TAGS, "br", "br/", "hr", "img"]:
            end = "" if inner in ("br", "br/", "hr", "img") else f"</{inner}>"
            found += [f"<{outer}>a<{inner}>b{end}c</{outer}>d", f"<{outer}><{inner}>b{end}</{outer}>",
                      f"<{outer}>a<{inner}>\nb{end}</{outer}>",
                      f"<{outer}>a<{inner}>b", f"<{outer}>a</{inner}>b</{outer}>",
                      f"<{outer}></{outer}></{inner}>a", f"a<{outer}>b</{inner}>c</{outer}>"]
    return found


def test_lexbor_reads_what_the_tags_say_in_every_shape() -> None:
    different = [m for m in shapes() if html_to_text(m) != old_html_to_text(m)]
    assert different == []
    assert sum(_tree_keeps_tags(m) is not None for m in shapes()) > 1000  # both paths are met


def test_the_portal_descriptions_shape_takes_lexbor() -> None:
    description = ('<SPAN class="topicdescriptionkind">Scope</SPAN>:<p>Projects <strong>will'
                   '</strong> &amp; may:</p><ul><li>one</li><li>two<br>lines</li></ul>'
                   '<p><p>nested</p></p>\n')
    assert _tree_keeps_tags(description) == "\n"
    assert html_to_text(description) == "Scope:\nProjects will & may:\n\none\n\ntwo\nlines" \
        "\n\nnested"


def test_a_fragment_a_tree_would_rearrange_takes_htmlparser() -> None:
    for markup in ("<li>a<li>b", "<p>a<div>b</div></p>", "<table><tr><td>a</td></tr></table>",
                   "a<br>b<br/>c", "<!-- x --><p>a</p>", "<p>a</p></li>", "<div/>a"):
        assert _tree_keeps_tags(markup) is None, markup
    assert html_to_text("<li>a<li>b") == "a\nb"
    assert html_to_text("a<br>b<br/>c") == "a\nb\n\nc"
