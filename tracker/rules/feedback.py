"""Learning from dismissals: exclusion terms frequent in dismissed calls and rare in kept ones.

``callwatch profiles suggest NAME`` compares the calls dismissed for a profile with the
calls it matched and kept. A word is proposed as ``AND NOT word`` when it appears in at
least two dismissed calls (one if only one was dismissed), in at most 10 % of the kept
ones, and is not already a word of the query. Words are counted once per call, on the
same folded words the matcher uses (title, keywords and tags, summary); short words,
numbers and common function words are skipped. Suggestions are ranked by how much more
often they occur in dismissed calls than in kept ones. Pure: data in, data out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tracker.models import CallRecord
from tracker.rules.profiles import Profile
from tracker.rules.query import Document, iter_terms

#: Most a suggested word may appear in kept calls, as a share of them.
MAX_KEPT_SHARE = 0.10

_STOPWORDS = frozenset([
    "about", "above", "after", "again", "against", "also", "among", "and", "any", "are", "based",
    "been", "before", "being", "between", "both", "but", "call", "calls", "can", "could",
    "development", "during", "each", "eligible", "for", "from", "further", "has", "have", "into",
    "its", "may", "more", "most", "new", "not", "other", "over", "project", "projects", "proposal",
    "proposals", "should", "such", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "through", "topic", "under", "use", "using", "was", "were", "what",
    "when", "where", "which", "while", "will", "with", "within", "would", "del", "della", "des",
    "die", "das", "der", "den", "une", "les", "pour", "par", "avec", "sur", "los", "las", "con",
    "por", "para", "und",
])


@dataclass(frozen=True)
class Suggestion:
    """A word to exclude, with how often it occurs on each side."""

    word: str
    dismissed: int
    dismissed_total: int
    kept: int
    kept_total: int

    @property
    def clause(self) -> str:
        """What to add to the profile's query."""
        return f"AND NOT {self.word}"


def _words(call: CallRecord) -> set[str]:
    document = Document.of(call.title, (*call.keywords, *call.tags), call.summary)
    return {
        word for text in document.fields for word in text.words
        if len(word) >= 3 and not word.isdigit() and word not in _STOPWORDS
    }


def suggest_exclusions(
    profile: Profile,
    dismissed: Sequence[CallRecord],
    kept: Sequence[CallRecord],
    limit: int = 10,
) -> list[Suggestion]:
    """Exclusion words for ``profile`` from its dismissed and kept calls, best first."""
    if not dismissed:
        return []
    query = profile.parsed_query
    own = {w.text for t in iter_terms(query.root) for w in t.words} if query is not None else set()
    in_dismissed = Counter(w for call in dismissed for w in _words(call))
    in_kept = Counter(w for call in kept for w in _words(call))
    needed = 2 if len(dismissed) >= 2 else 1
    suggestions = [
        Suggestion(word, count, len(dismissed), in_kept[word], len(kept))
        for word, count in in_dismissed.items()
        if count >= needed and word not in own
        and (not kept or in_kept[word] / len(kept) <= MAX_KEPT_SHARE)
    ]
    suggestions.sort(key=lambda s: (
        -(s.dismissed / s.dismissed_total - (s.kept / s.kept_total if s.kept_total else 0.0)),
        -s.dismissed, s.word,
    ))
    return suggestions[:limit]
