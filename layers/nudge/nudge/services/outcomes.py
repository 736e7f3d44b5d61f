"""The outcomes service: for each order that became paid, record at most one outcome, once.

Fed by the orders table's stream (``functions/outcomes``). Stream records arrive at least once and
an order can be paid, refunded and paid again: the store's write is conditional on the order
having no outcome yet, so each order counts once, whatever arrives. The attribution itself is the
pure ``nudge.domain.outcomes.attribute_payment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from nudge.domain.outcomes import Outcome, Payment, attribute_payment
from nudge.services.ports import OrderTouches, OutcomeStore

__all__ = [
    "BadPaymentError",
    "OrderTouches",
    "OutcomeRecorder",
    "OutcomeResult",
    "OutcomeStore",
    "payment_from_change",
]


class BadPaymentError(ValueError):
    """A stream record that cannot be read as a payment; retrying will not help."""


class OutcomeResult(StrEnum):
    RECOVERED = "recovered"  # paid within the window after an SMS: credited to it
    HOLDOUT_PAID = "holdout_paid"  # a held-out order paid (the control group's payments)
    NOT_ATTRIBUTED = "not_attributed"  # never texted, paid before any SMS, or after the window
    ALREADY_COUNTED = "already_counted"  # a redelivered record, or paid again after a refund


def payment_from_change(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    *,
    changed_at: datetime,
    default_currency: str,
) -> Payment | None:
    """The payment a stream record shows (``new``/``old``: the deserialized images), or None
    when the record is not a change to ``paid`` (the event filter should not let those through;
    this check keeps the function right if the filter is wrong).

    The order's own ``paid_at`` is the payment time when it is a valid timestamp; else the time
    DynamoDB saw the change (``changed_at``).
    """
    if new.get("status") != "paid" or (old or {}).get("status") == "paid":
        return None
    order_id = new.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise BadPaymentError("order_id: missing")
    paid_at = changed_at
    raw = new.get("paid_at")
    if isinstance(raw, str) and raw:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            paid_at = parsed
    try:
        amount = Decimal(str(new.get("amount", "0")))
    except InvalidOperation:
        raise BadPaymentError(f"amount: not a number: {new.get('amount')!r}") from None
    if not amount.is_finite() or amount < 0:
        raise BadPaymentError(f"amount: must be >= 0, got {amount}")
    currency = new.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        currency = default_currency
    return Payment(
        order_id=order_id, paid_at=paid_at.astimezone(UTC), amount=amount, currency=currency.upper()
    )


@dataclass(frozen=True, slots=True)
class OutcomeRecorder:
    """Records stream batches of payments: one batched ledger read per batch, one conditional
    write per order Nudge texted or held out (orders it never saw cost no write)."""

    store: OutcomeStore
    attribution_hours: int

    def start_batch(self, payments: Sequence[Payment]) -> OutcomeBatch:
        """Read the ledger for the whole batch at once (its records then read nothing more).

        The batch's state lives in the returned object, for this invocation only: a warm
        container must never trust what an earlier batch read.
        """
        ids = list(dict.fromkeys(p.order_id for p in payments))
        return OutcomeBatch(self, self.store.touches(ids), set(ids))


@dataclass(slots=True)
class OutcomeBatch:
    recorder: OutcomeRecorder
    _touches: dict[str, OrderTouches]
    _read: set[str]  # the ids the batch read asked for (found or not)

    def record(self, payment: Payment, now: datetime) -> tuple[OutcomeResult, Outcome | None]:
        store = self.recorder.store
        if payment.order_id not in self._read:
            # Not in this batch's read (its record could not be read up front): read it alone.
            self._touches.update(store.touches([payment.order_id]))
            self._read.add(payment.order_id)
        touches = self._touches.get(payment.order_id)
        if touches is None:
            return OutcomeResult.NOT_ATTRIBUTED, None
        if touches.recorded:
            return OutcomeResult.ALREADY_COUNTED, None
        outcome = attribute_payment(
            payment, touches.sends, touches.holdout, attribution_hours=self.recorder.attribution_hours
        )
        if outcome is None:
            return OutcomeResult.NOT_ATTRIBUTED, None
        if not store.record_outcome(outcome, now):
            return OutcomeResult.ALREADY_COUNTED, None
        # Paid again in this same batch after a refund: the second record finds it recorded.
        self._touches[payment.order_id] = OrderTouches(
            touches.sends, touches.holdout, recorded=True, phone=touches.phone
        )
        return (OutcomeResult.HOLDOUT_PAID if outcome.holdout else OutcomeResult.RECOVERED), outcome
