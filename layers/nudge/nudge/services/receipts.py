"""The receipts service: a gateway's delivery event -> the SMS's delivery status on the ledger.

Events come at least once and out of order; the ledger's write is conditional (never backwards,
the first final status stays, never an item of its own), so a replayed or late event changes
nothing. An event that cannot be read, or that names no SMS Nudge sent, is counted and dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nudge.domain.delivery import Receipt, ReceiptError, receipt_from_eum_event
from nudge.services.ports import DeliveryLedger, ReceiptOutcome

__all__ = ["ReceiptResult", "record_delivery_event"]


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    """What became of one delivery event. Safe to log: no phone number in it."""

    outcome: ReceiptOutcome | None  # None: the event could not be read
    receipt: Receipt | None = None
    problem: str | None = None


def record_delivery_event(event: Mapping[str, Any], ledger: DeliveryLedger) -> ReceiptResult:
    """Apply one End User Messaging "Text Message Delivery Status Updated" event."""
    try:
        receipt = receipt_from_eum_event(event)
    except ReceiptError as exc:
        return ReceiptResult(None, problem=str(exc))
    return ReceiptResult(ledger.apply_receipt(receipt), receipt)
