"""What every AWS adapter shares: the error for calls that could not complete, and backoff."""

from __future__ import annotations

import random


class DalError(RuntimeError):
    """An AWS call could not be completed after bounded retries; nothing is silently lost."""


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Full-jitter exponential backoff."""
    return random.uniform(0, min(cap, base * 2**attempt))
