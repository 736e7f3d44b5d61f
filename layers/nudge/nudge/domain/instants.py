"""Instants as Nudge stores them: fixed-width UTC ISO-8601 text that sorts like the instants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utc_iso(at: datetime) -> str:
    """Fixed-width UTC ISO-8601 (millisecond precision) so that strings sort like instants."""
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def stored_instant(text: Any) -> datetime | None:
    """A stored UTC ISO time, or None when absent or unreadable (a hand-edited item)."""
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None
