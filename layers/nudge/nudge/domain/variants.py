"""Text experiments: which variant of a reminder an order gets. Pure, no I/O.

A shop lists variants per reminder in ``messages.variants`` (docs/RULES.md). Together they form
the test's *arms*: arm k is the k-th variant of each reminder that has variants (config loading
makes both lists carry the same names in the same order), and an order gets one arm for good:

- from its order id alone, by a salted SHA-256 like the holdout's but with its own salt, so the
  two draws are independent (the holdout's share is the same in every arm, and each arm's share
  the same inside and outside the holdout);
- in equal shares (the hash modulo the number of arms);
- for both reminders: reminder 2 uses the same position, and when only one reminder has
  variants the other keeps its own text but its SMS still carries the order's arm, so a payment
  credited to either reminder counts for the arm the order was assigned.

A variant changes only the words: who is texted, when, and in which order is decided before and
without it (``nudge.domain.rules``). Changing the list (adding, removing or reordering
variants) re-draws the arms: start a new test instead of editing a running one.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from nudge.domain.config import MessagesConfig

__all__ = ["VARIANT_SALT", "Assignment", "arm_names", "assign_variant", "variant_hash"]

# Fixed, so that an order gets the same arm in every run and every redeploy; not the holdout's
# salt (nudge.domain.outcomes.HOLDOUT_SALT), so the two assignments are independent.
VARIANT_SALT = "nudge-variant-v1"


class Assignment(NamedTuple):
    position: int  # in each reminder's list of variants
    name: str


def variant_hash(order_id: str) -> int:
    """A uniform 64-bit number from the order id, stable across processes (not Python's ``hash``)."""
    digest = hashlib.sha256(f"{VARIANT_SALT}:{order_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def arm_names(messages: MessagesConfig) -> tuple[str, ...]:
    """The names of the test's arms, in order; empty when no variants are configured."""
    listed = messages.variants.get("1") or messages.variants.get("2") or ()
    return tuple(v.name for v in listed)


def assign_variant(order_id: str, messages: MessagesConfig) -> Assignment | None:
    """The order's arm, or None when no variants are configured (the texts are then unchanged)."""
    names = arm_names(messages)
    if not names:
        return None
    position = variant_hash(order_id) % len(names)  # 2**64 % n / 2**64 of bias: nothing measurable
    return Assignment(position, names[position])
