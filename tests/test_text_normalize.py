"""``normalize_space`` gives exactly what the per-line regex it replaced gave (issue 15).

The old implementation is kept here as the oracle; hypothesis draws texts rich in every
kind of whitespace Python or ``_SPACES`` knows, line breaks of all three kinds, and text
that NFC changes.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.plaintext import normalize_space

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def old_normalize_space(text: str) -> str:
    """The implementation before issue 15, unchanged."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\u200b\ufeff"
PIECES = st.text(alphabet=WHITESPACE + "ab é\u0301e\u0301\u00e9\n\r", max_size=60)


@settings(max_examples=3000, deadline=None)
@given(PIECES)
def test_normalize_space_is_the_old_per_line_regex(text: str) -> None:
    assert normalize_space(text) == old_normalize_space(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_normalize_space_is_the_old_per_line_regex_on_any_text(text: str) -> None:
    assert normalize_space(text) == old_normalize_space(text)


def test_the_odd_spaces_take_the_regex() -> None:
    assert normalize_space("a\u200b\u200bb \x0c c\u2028d\n\n\n e ") == "a b \x0c c\u2028d\n\ne"
