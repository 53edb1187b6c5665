"""Amounts of euros as people read them, one way in every message, listing and export."""

from __future__ import annotations


def format_eur(amount: int | None) -> str:
    """EUR 4.0 M, EUR 250 k, EUR 900, or an empty string when unknown."""
    if amount is None:
        return ""
    if amount >= 1_000_000:
        return f"EUR {amount / 1_000_000:.1f} M"
    if amount >= 10_000:
        return f"EUR {amount / 1_000:.0f} k"
    return f"EUR {amount}"
