"""The profile query language: precedence, phrases, wildcards, accents, whole words, negation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.rules.query import Document, QuerySyntaxError, fold, parse_query


def doc(title: str = "", keywords: tuple[str, ...] = (), summary: str = "") -> Document:
    return Document.of(title, keywords, summary)


MATCHES = [
    # precedence: NOT over AND over OR; adjacency is AND
    ("a OR b AND c", doc("a"), True),
    ("a OR b AND c", doc("b"), False),
    ("a OR b AND c", doc("b c"), True),
    ("(a OR b) AND c", doc("a"), False),
    ("(a OR b) AND c", doc("a c"), True),
    ("NOT a AND b", doc("b"), True),
    ("NOT a AND b", doc("a b"), False),
    ("a b", doc("a"), False),
    ("a b", doc("b x a"), True),
    ("a b OR c", doc("c"), True),
    ("a (b OR c)", doc("a c"), True),
    ("a or b", doc("b"), True),  # operators in any case
    ("a and b", doc("a"), False),
    ('"a and b"', doc("a and b"), True),  # inside quotes, "and" is a word
    ('"a and b"', doc("a b"), False),
    # phrases: consecutive words, inside one segment
    ('"fuel cell"', doc("Fuel cell systems"), True),
    ('"fuel cell"', doc("cell fuel"), False),
    ('"fuel cell"', doc("fuel and cell"), False),
    ('"fuel cell"', doc("Fuel-Cell stacks"), True),
    ('"fuel cell"', doc(keywords=("fuel", "cell")), False),
    ('"fuel cell"', doc(keywords=("hydrogen", "fuel cell")), True),
    ("fuel-cell", doc("fuel cell"), True),
    ("“fuel cell”", doc("fuel cell"), True),  # typographic quotes
    # wildcards: a prefix, at the end of a word
    ("electroly*", doc("Next-generation electrolysers"), True),
    ("electroly*", doc("solid electrolyte"), True),
    ("electroly*", doc("electric"), False),
    ('"fuel cell*"', doc("fuel cells for trucks"), True),
    ('"fuel* cell"', doc("fuelled cell"), True),
    ("fuel-cell*", doc("fuel cells"), True),
    ("hydro*", doc("hydrogen"), True),
    ("hydro*", doc("the hydro plant"), True),
    ("hydro*", doc("anhydrous ammonia"), False),  # a wildcard still starts at a word
    ("art*", doc("smart grids"), False),
    ("energ*", doc("Énergie solaire"), True),  # wildcards fold accents too
    # case and accents
    ("energia", doc("Energía limpia"), True),
    ("ENERGÍA", doc("energia"), True),
    ("énergie", doc("ENERGIE"), True),
    ("strasse", doc("Straße"), True),
    ("aero", doc("Ærø"), True),
    ("lodz", doc("Łódź"), True),
    ("hidrógeno", doc("HIDROGENO verde"), True),
    ('"energía limpia"', doc("ENERGIA LIMPIA para todos"), True),  # phrases fold accents
    # whole words only
    ("art", doc("Artificial intelligence"), False),
    ("art", doc("State of the art."), True),
    ("ai", doc("The call said so"), False),
    ("ai", doc("AI-based tools"), True),
    ("cell", doc("cells"), False),
    # negation and the exclusion rule
    ("hydrogen AND NOT aviation", doc("hydrogen aviation"), False),
    ("hydrogen AND NOT aviation", doc("hydrogen"), True),
    ("hydrogen NOT aviation", doc("hydrogen trucks"), True),
    ("hydrogen OR NOT aviation", doc("hydrogen aviation"), False),  # exclusions always win
    ("hydrogen OR NOT aviation", doc("ships"), True),
    ("(hydrogen AND NOT aviation) OR airport", doc("airport aviation"), False),
    ("NOT (space AND NOT satellite)", doc("space satellite"), True),
    ("NOT (space AND NOT satellite)", doc("space"), False),
    ("NOT NOT space", doc("space"), True),
    ("NOT NOT space", doc("sea"), False),
    ("NOT aviation", doc("ships"), True),
    # every field counts
    ("hydrogen", doc(summary="Produce renewable hydrogen."), True),
    ("hydrogen", doc(keywords=("Hydrogen",)), True),
    ("hydrogen", doc("Fuel cells", ("trucks",), "Buses and ships."), False),
]


@pytest.mark.parametrize(("query", "document", "expected"), MATCHES)
def test_query_semantics(query: str, document: Document, expected: bool) -> None:
    assert parse_query(query).matches(document) is expected


ERRORS = [
    ("", 1, "empty query"),
    ("   ", 1, "empty query"),
    ('hydrogen AND "fuel cell', 14, "unbalanced quote"),
    ("(hydrogen OR fuel", 1, "'(' is never closed"),
    ("hydrogen)", 9, "')' without a matching '('"),
    ("a AND (b OR c))", 15, "')' without a matching '('"),
    ("()", 1, "empty parentheses"),
    ("hydrogen AND", 10, "a term is missing after 'AND'"),
    ("hydrogen NOT", 10, "a term is missing after 'NOT'"),
    ("OR hydrogen", 1, "'OR' has no term before it"),
    ("a OR OR b", 6, "'OR' has no term after 'OR'"),
    ("a AND ) b", 3, "a term is missing after 'AND'"),
    ("*", 1, "'*' must end a word"),
    ("*gen", 1, "'*' must end a word"),
    ("hy*gen", 3, "'*' must end a word"),
    ("hy**", 4, "'*' must end a word"),
    ('"fuel *"', 7, "'*' must end a word"),
    ("++", 1, "has no letters or digits"),
    ('""', 1, "has no letters or digits"),
    ("(" * 60 + "a" + ")" * 60, 51, "nested deeper than"),
]


@pytest.mark.parametrize(("query", "column", "message"), ERRORS)
def test_syntax_errors_say_what_and_where(query: str, column: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query)
    assert message in caught.value.message
    assert caught.value.column == column
    assert str(caught.value).endswith(f"at column {column}")


def test_positive_terms_and_exclusions_are_separated() -> None:
    query = parse_query('(hydrogen OR "fuel cell*" OR hydrogen) AND NOT (aviation OR space)')
    assert [t.source for t in query.positive_terms] == ["hydrogen", "fuel cell*"]
    assert len(query.exclusions) == 1


def test_fold_is_case_and_accent_insensitive() -> None:
    assert fold("Energía") == fold("ENERGIA") == "energia"


QUERY_ALPHABET = st.sampled_from(
    ["a", "b", "é", " ", "(", ")", '"', "“", "*", "-", "AND", "OR", "NOT", "and", "ı", "ß", "\t"]
)


@settings(max_examples=500)
@given(st.one_of(st.text(), st.lists(QUERY_ALPHABET, max_size=30).map("".join)))
def test_the_parser_never_crashes(text: str) -> None:
    try:
        query = parse_query(text)
    except QuerySyntaxError as exc:
        assert 1 <= exc.column <= len(text) + 1
        assert exc.message
    else:
        assert query.text == text
        query.matches(doc("a b é", ("a",), "b"))  # and what parses also evaluates
