"""Outcomes: did a payment follow a reminder? Pure attribution, no I/O.

An order is *recovered* when it is paid after Nudge texted it and within the attribution window
after the last SMS before the payment (``outcomes.attribution_hours``, default 72); the payment is
credited to that last SMS. A payment before any SMS, after the window, or for an order never
texted is not recovered. A held-out order (no SMS on purpose, see ``rules.holdout_percent``) that
pays within the same window after its last hold-out decision is recorded too, with ``holdout``
set: comparing the two groups' paid rates gives the lift the reminders cause.

The window's start is included and its end excluded, like a sending window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

__all__ = [
    "HOLDOUT_BUCKETS",
    "HOLDOUT_SALT",
    "HoldoutMark",
    "Outcome",
    "Payment",
    "SmsSent",
    "attribute_payment",
    "holdout_bucket",
    "in_holdout",
]

# Fixed, so that an order lands in the same group in every run, every window and every redeploy.
# Changing it re-draws every order's group: never change it while a holdout is running.
HOLDOUT_SALT = "nudge-holdout-v1"
HOLDOUT_BUCKETS = 10_000  # percent * 100 buckets are held out: 0.01 % resolution


def holdout_bucket(order_id: str) -> int:
    """The order's bucket in 0..9999: uniform, stable across processes (not Python's ``hash``)."""
    digest = hashlib.sha256(f"{HOLDOUT_SALT}:{order_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HOLDOUT_BUCKETS


def in_holdout(order_id: str, percent: float) -> bool:
    """Whether the order belongs to a holdout of ``percent`` % (0 = off)."""
    return percent > 0 and holdout_bucket(order_id) < round(percent * HOLDOUT_BUCKETS / 100)


@dataclass(frozen=True, slots=True)
class SmsSent:
    """One reminder the ledger recorded as sent."""

    order_id: str
    attempt: int
    sent_at: datetime
    window: str  # "09:50-10:40"; "" when the ledger entry predates per-attempt details
    segments: int
    variant: str | None = None  # the text's variant (messages.variants); None without variants
    delivery: str | None = None  # its delivery status from the gateway's receipts (None: no receipt)
    delivery_code: str | None = None  # the provider's code with it


@dataclass(frozen=True, slots=True)
class HoldoutMark:
    """An order held out on purpose: when it was first and last held out instead of texted."""

    order_id: str
    first_at: datetime
    last_at: datetime
    window: str


@dataclass(frozen=True, slots=True)
class Payment:
    """An order that became ``paid`` (from the orders table's stream)."""

    order_id: str
    paid_at: datetime
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One order's recorded result, written once per order."""

    order_id: str
    holdout: bool
    attempt: int | None  # the reminder credited (None for a held-out order)
    sms_at: datetime | None  # that reminder's send time (for a held-out order: its last hold-out)
    paid_at: datetime
    minutes_to_pay: float
    amount: Decimal
    currency: str
    window: str
    attribution_hours: int
    variant: str | None = None  # the credited reminder's text variant (None: held out, or no variants)


def attribute_payment(
    payment: Payment,
    sends: Sequence[SmsSent],
    holdout: HoldoutMark | None,
    *,
    attribution_hours: int,
) -> Outcome | None:
    """The outcome to record for this payment, or None when Nudge cannot claim it.

    Analysed as assigned: an order once held out belongs to the holdout group for good. If it is
    texted later (the share lowered or set to 0), its payment is still measured as the holdout's
    (from its latest hold-out mark or later SMS), never credited to those SMS: counting it in both
    groups, or moving it to the reminded one, would make the lift grow for everything held out
    before the switch.
    """
    window = timedelta(hours=attribution_hours)
    paid_at = payment.paid_at
    if sends and holdout is None:
        before = [s for s in sends if s.sent_at <= paid_at]
        if not before:
            return None  # paid before the first SMS: the SMS did not cause it
        last = max(before, key=lambda s: (s.sent_at, s.attempt))
        if paid_at - last.sent_at >= window:
            return None  # too late to credit a reminder
        return Outcome(
            order_id=payment.order_id,
            holdout=False,
            attempt=last.attempt,
            sms_at=last.sent_at,
            paid_at=paid_at,
            minutes_to_pay=_minutes(paid_at - last.sent_at),
            amount=payment.amount,
            currency=payment.currency,
            window=last.window,
            attribution_hours=attribution_hours,
            variant=last.variant,
        )
    if holdout is None or holdout.first_at > paid_at:
        return None  # never texted, never held out (or paid before it would have been texted)
    reference = holdout.last_at if holdout.last_at <= paid_at else holdout.first_at
    # Texted after the holdout was switched off: each later SMS stands where the hold-out decision
    # it replaced stood, so the window runs from the latest of them (the payment stays the
    # holdout's; measured from the marks alone, a payment after a late SMS would be dropped from
    # the holdout group's paid count and inflate the lift).
    reference = max([reference, *(s.sent_at for s in sends if s.sent_at <= paid_at)])
    if paid_at - reference >= window:
        return None
    return Outcome(
        order_id=payment.order_id,
        holdout=True,
        attempt=None,
        sms_at=reference,
        paid_at=paid_at,
        minutes_to_pay=_minutes(paid_at - reference),
        amount=payment.amount,
        currency=payment.currency,
        window=holdout.window,
        attribution_hours=attribution_hours,
    )


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)
