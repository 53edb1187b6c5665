"""The profile query language: parsing, text normalization and plain evaluation.

Semantics, which README "Profiles and matching" repeats for users:

- A query is made of **terms** (``hydrogen``), **quoted phrases** (``"fuel cell"``) and
  the operators ``AND``, ``OR``, ``NOT`` with parentheses. Precedence is NOT over AND over
  OR; two operands side by side mean AND (``green hydrogen`` = ``green AND hydrogen``).
  Operators are recognised in any case (``and``, ``Or``) outside quotes; inside a phrase
  every word is just a word.
- Matching is **case- and accent-insensitive** and on **whole words**: both the query and
  the call text are split into words of letters and digits, case-folded and stripped of
  accents (``energia`` matches ``energía``, ``Ærø`` matches ``aero``), and a term matches
  a word only when they are equal, so ``art`` does not match ``artificial``.
- ``*`` at the end of a word is a **prefix wildcard**: ``electroly*`` matches
  ``electrolyser`` and ``electrolysis``; it works inside phrases too (``"fuel cell*"``).
  A term that holds punctuation is a phrase of its words (``fuel-cell`` = ``"fuel cell"``).
- A phrase matches consecutive words inside one field segment: the title, one keyword or
  tag, or the summary; it never runs from one keyword into the next.
- **Exclusions always win.** Every ``NOT`` that is not itself inside another ``NOT`` is an
  exclusion: a call in which the negated part matches is never matched, whatever the rest
  of the query says. For ordinary queries (``(a OR b) AND NOT c``) this is plain boolean
  logic; it only matters for ``a OR NOT c``, which can never match a call that mentions
  ``c``. Inside an exclusion, logic is boolean again, so ``NOT (space AND NOT satellite)``
  excludes calls about space unless they are about satellites.

Anything that is not a valid query raises :class:`QuerySyntaxError` with the 1-based
column of the problem; no other exception escapes :func:`parse_query` for any input text.

This module also tokenizes call text into a :class:`Document` and evaluates a query
against one document at a time (:meth:`Query.matches`): the plain, obviously-correct
evaluator. The fast matcher in ``tracker.rules.matcher`` evaluates the same AST over sets
and is property-tested against this one.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, KeysView
from dataclasses import dataclass, field
from typing import Literal

#: Deeper nesting than this is refused, so no input can exhaust the Python stack.
MAX_DEPTH = 50

_WORD = re.compile(r"[^\W_]+")
_WORD_OR_STAR = re.compile(r"[^\W_]+|\*")
_QUOTES = frozenset('"“”')
#: Letters NFKD does not decompose but every EU reader treats as their base letter.
_FOLD_TABLE = str.maketrans({
    "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "ı": "i", "þ": "th", "ħ": "h",
})


class QuerySyntaxError(ValueError):
    """A profile query that cannot be parsed; ``column`` is 1-based.

    A ValueError so that pydantic validators report it as a field error; the profile
    loader turns it into a ConfigError with file, line and field.
    """

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"{message} at column {column}")


# -- text normalization ----------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 16)  # call text repeats words: fold each one once
def fold(word: str) -> str:
    """Case-fold ``word`` and strip accents: ``Energía`` → ``energia``, ``Straße`` → ``strasse``."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.translate(_FOLD_TABLE)


def tokenize(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The folded words of ``text`` and, aligned with them, the words as written."""
    original = _WORD.findall(text)
    folded = [fold(word) for word in original]
    if "" in folded:  # a word made only of marks folds to nothing
        pairs = [(f, o) for f, o in zip(folded, original, strict=True) if f]
        return tuple(f for f, _ in pairs), tuple(o for _, o in pairs)
    return tuple(folded), tuple(original)


Position = tuple[int, int]  # (segment, word) in a FieldText


@dataclass(frozen=True)
class FieldText:
    """One searchable field of a call, as segments of folded words (and the words as written).

    ``first`` maps each folded word to its first occurrence as written, so a word is found
    with one lookup; ``positions`` (each folded word → where it occurs, in text order) and
    ``vocabulary`` (the words sorted) are built on first use, for phrases and prefixes.
    """

    name: str
    segments: tuple[tuple[str, ...], ...]
    originals: tuple[tuple[str, ...], ...]
    first: dict[str, str] = field(compare=False, repr=False)

    @classmethod
    def of(cls, name: str, texts: Iterable[str]) -> FieldText:
        segments: list[tuple[str, ...]] = []
        originals: list[tuple[str, ...]] = []
        for text in texts:
            folded, original = tokenize(text)
            if folded:
                segments.append(folded)
                originals.append(original)
        # built backwards so that the first occurrence of a word is the one kept
        first = dict(zip(reversed([w for s in segments for w in s]),
                         reversed([w for s in originals for w in s]), strict=True))
        return cls(name, tuple(segments), tuple(originals), first)

    @property
    def words(self) -> KeysView[str]:
        """The distinct folded words."""
        return self.first.keys()

    @functools.cached_property
    def positions(self) -> dict[str, list[Position]]:
        positions: dict[str, list[Position]] = {}
        for segment, folded in enumerate(self.segments):
            for index, word in enumerate(folded):
                positions.setdefault(word, []).append((segment, index))
        return positions

    @functools.cached_property
    def vocabulary(self) -> tuple[str, ...]:
        return tuple(sorted(self.words))

    def starting_with(self, prefix: str) -> list[str]:
        """The distinct words that start with ``prefix``, sorted."""
        vocabulary = self.vocabulary
        start = end = bisect.bisect_left(vocabulary, prefix)
        while end < len(vocabulary) and vocabulary[end].startswith(prefix):
            end += 1
        return list(vocabulary[start:end])

    def text_at(self, where: Position, size: int) -> str:
        segment, index = where
        return " ".join(self.originals[segment][index:index + size]).lower()


#: Field names in weight order; the score of a matched term is its best field's weight.
FIELD_WEIGHTS: dict[str, int] = {"title": 3, "keywords": 2, "summary": 1}


@dataclass(frozen=True)
class Document:
    """A call's searchable text, tokenized once: title, keywords and tags, summary."""

    title: FieldText
    keywords: FieldText
    summary: FieldText

    @classmethod
    def of(cls, title: str, keywords: Iterable[str], summary: str) -> Document:
        return cls(FieldText.of("title", [title]), FieldText.of("keywords", keywords),
                   FieldText.of("summary", [summary]))

    #: term key → (field name, words as written) of its best field, or None: each term is
    #: looked for once per call however many profiles use it
    found: dict[str, tuple[str, str] | None] = field(
        default_factory=dict, compare=False, repr=False)

    @property
    def fields(self) -> tuple[FieldText, FieldText, FieldText]:
        """The fields, highest weight first."""
        return (self.title, self.keywords, self.summary)

    def best(self, term: Term) -> tuple[str, str] | None:
        """The first field (by weight) where ``term`` occurs, with the words as written."""
        key = term.key
        if key in self.found:
            return self.found[key]
        result = None
        for text in self.fields:
            words = term.find(text)
            if words is not None:
                result = (text.name, words)
                break
        self.found[key] = result
        return result


def _occurrences(segments: tuple[tuple[str, ...], ...], word: str) -> Iterator[Position]:
    """Where ``word`` occurs, in text order (tuple.index searches at C speed)."""
    for segment, folded in enumerate(segments):
        start = 0
        while True:
            try:
                index = folded.index(word, start)
            except ValueError:
                break
            yield segment, index
            start = index + 1


# -- the syntax tree ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Word:
    """One folded word of a term; ``prefix`` when it ended with ``*``."""

    text: str
    prefix: bool = False

    def accepts(self, word: str) -> bool:
        return word.startswith(self.text) if self.prefix else word == self.text


@dataclass(frozen=True)
class Term:
    """A word or a phrase (several words that must be consecutive), as written at ``column``."""

    words: tuple[Word, ...]
    source: str = field(compare=False)
    column: int = field(compare=False)

    @functools.cached_property
    def key(self) -> str:
        """Identity of the term for caching: two terms with equal keys match the same words.

        A string (``fuel cell*``), whose hash Python computes once: it is looked up for
        every term of every match.
        """
        return " ".join(w.text + ("*" if w.prefix else "") for w in self.words)

    def find(self, text: FieldText) -> str | None:
        """An occurrence in ``text`` as written (lower case), or None.

        The first occurrence of a word or phrase; for a prefix, the first occurrence of the
        alphabetically first word that has it.
        """
        words = self.words
        for word in words:
            if not word.prefix and word.text not in text.first:
                return None
        first = words[0]
        if len(words) == 1:
            if not first.prefix:
                return text.first[first.text].lower()
            candidates = text.starting_with(first.text)
            return text.first[candidates[0]].lower() if candidates else None
        size = len(words)
        if first.prefix:
            positions = text.positions
            starts: Iterable[Position] = sorted(
                p for w in text.starting_with(first.text) for p in positions[w])
        else:
            starts = _occurrences(text.segments, first.text)
        for segment, index in starts:
            folded = text.segments[segment]
            if index + size <= len(folded) and all(
                word.accepts(folded[index + i]) for i, word in enumerate(words[1:], 1)
            ):
                return text.text_at((segment, index), size)
        return None

    def matches(self, document: Document) -> bool:
        return document.best(self) is not None


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Term | Not | And | Or


def evaluate(node: Node, document: Document) -> bool:
    """Plain boolean value of ``node`` for one document (exclusion rule not applied)."""
    if isinstance(node, Term):
        return node.matches(document)
    if isinstance(node, Not):
        return not evaluate(node.operand, document)
    if isinstance(node, And):
        return all(evaluate(o, document) for o in node.operands)
    return any(evaluate(o, document) for o in node.operands)


def _walk(node: Node, negated: bool) -> Iterator[tuple[Node, bool]]:
    yield node, negated
    if isinstance(node, Not):
        yield from _walk(node.operand, True)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from _walk(operand, negated)


def _outer_nots(node: Node) -> Iterator[Not]:
    if isinstance(node, Not):
        yield node
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from _outer_nots(operand)


@dataclass(frozen=True)
class Query:
    """A parsed query: its tree, the exclusions, and the terms that count towards the score."""

    text: str
    root: Node
    #: operands of every NOT not inside another NOT: when one matches, the call is out
    exclusions: tuple[Node, ...]
    #: terms outside any NOT, without duplicates, in query order
    positive_terms: tuple[Term, ...]

    def matches(self, document: Document) -> bool:
        """The plain evaluator: boolean value of the tree, and no exclusion matches."""
        return evaluate(self.root, document) and not any(
            evaluate(e, document) for e in self.exclusions
        )


# -- lexing and parsing ------------------------------------------------------------------------

TokenKind = Literal["word", "phrase", "(", ")", "AND", "OR", "NOT"]
_OPERATORS: dict[str, TokenKind] = {"AND": "AND", "OR": "OR", "NOT": "NOT"}


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str
    column: int


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(_Token("(" if char == "(" else ")", char, i + 1))
            i += 1
        elif char in _QUOTES:
            end = next((j for j in range(i + 1, size) if text[j] in _QUOTES), -1)
            if end < 0:
                raise QuerySyntaxError("unbalanced quote: this phrase is never closed", i + 1)
            tokens.append(_Token("phrase", text[i + 1:end], i + 1))
            i = end + 1
        else:
            start = i
            while i < size and not text[i].isspace() and text[i] not in "()" and text[i] not in _QUOTES:
                i += 1
            word = text[start:i]
            tokens.append(_Token(_OPERATORS.get(word.upper(), "word"), word, start + 1))
    return tokens


def _term(token: _Token) -> Term:
    """A Term from a word or phrase token: words of letters and digits, ``*`` only at word ends."""
    offset = token.column + (1 if token.kind == "phrase" else 0)
    words: list[Word] = []
    previous_end = -1
    for match in _WORD_OR_STAR.finditer(token.text):
        if match.group() == "*":
            if match.start() != previous_end or not words or words[-1].prefix:
                raise QuerySyntaxError("'*' must end a word (as in electroly*)",
                                       offset + match.start())
            words[-1] = Word(words[-1].text, prefix=True)
            previous_end = match.end()
            continue
        if words and words[-1].prefix and match.start() == previous_end:
            raise QuerySyntaxError("'*' must end a word (as in electroly*)", offset + match.start() - 1)
        folded = fold(match.group())
        if folded:
            words.append(Word(folded))
        previous_end = match.end()
    if not words:
        what = "phrase" if token.kind == "phrase" else "term"
        raise QuerySyntaxError(f"{what} {token.text!r} has no letters or digits", token.column)
    return Term(tuple(words), token.text, token.column)


class _Parser:
    """Recursive descent over the tokens: or := and (OR and)*; and := not (AND? not)*."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.position = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def end_column(self) -> int:
        return len(self.text) + 1

    def parse(self) -> Node:
        if not self.tokens:
            raise QuerySyntaxError("empty query", 1)
        node = self.parse_or()
        token = self.peek()
        if token is not None:  # only a stray ")" can stop the descent early
            raise QuerySyntaxError("unbalanced parenthesis: ')' without a matching '('", token.column)
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.position += 1
            operands.append(self.parse_and(after=token))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self, after: _Token | None = None) -> Node:
        operands = [self.parse_not(after)]
        while (token := self.peek()) is not None and token.kind not in (")", "OR"):
            if token.kind == "AND":
                self.position += 1
                operands.append(self.parse_not(after=token))
            else:
                operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self, after: _Token | None = None) -> Node:
        negations = 0
        while (token := self.peek()) is not None and token.kind == "NOT":
            self.position += 1
            negations += 1
            after = token
        node = self.parse_atom(after)
        # NOT NOT x is x: folding pairs keeps any number of NOTs from deepening the tree.
        return Not(node) if negations % 2 else node

    def parse_atom(self, after: _Token | None) -> Node:
        token = self.peek()
        if token is None:
            if after is None:
                raise QuerySyntaxError("a term is missing", self.end_column())
            raise QuerySyntaxError(f"a term is missing after {after.text!r}", after.column)
        if token.kind in ("AND", "OR"):
            where = f"after {after.text!r}" if after else "before it"
            raise QuerySyntaxError(f"{token.text!r} has no term {where}", token.column)
        if token.kind == ")":
            if after is not None and after.kind == "(":
                raise QuerySyntaxError("empty parentheses", after.column)
            if after is not None:
                raise QuerySyntaxError(f"a term is missing after {after.text!r}", after.column)
            raise QuerySyntaxError("unbalanced parenthesis: ')' without a matching '('", token.column)
        self.position += 1
        if token.kind == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QuerySyntaxError(f"parentheses nested deeper than {MAX_DEPTH}", token.column)
            node = self.parse_or_in(token)
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise QuerySyntaxError("unbalanced parenthesis: '(' is never closed", token.column)
            self.position += 1
            self.depth -= 1
            return node
        return _term(token)

    def parse_or_in(self, opening: _Token) -> Node:
        token = self.peek()
        if token is not None and token.kind == ")":
            raise QuerySyntaxError("empty parentheses", opening.column)
        if token is None:
            raise QuerySyntaxError("unbalanced parenthesis: '(' is never closed", opening.column)
        operands = [self.parse_and(after=opening)]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.position += 1
            operands.append(self.parse_and(after=token))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))


def parse_query(text: str) -> Query:
    """Parse ``text``; raise QuerySyntaxError (with a column) if it is not a valid query."""
    root = _Parser(text).parse()
    positive: dict[str, Term] = {}
    for node, negated in _walk(root, False):
        if isinstance(node, Term) and not negated:
            positive.setdefault(node.key, node)
    exclusions = tuple(n.operand for n in _outer_nots(root))
    return Query(text=text, root=root, exclusions=exclusions, positive_terms=tuple(positive.values()))


def iter_terms(node: Node) -> Iterator[Term]:
    """Every term in the tree, negated or not."""
    for child, _negated in _walk(node, False):
        if isinstance(child, Term):
            yield child
