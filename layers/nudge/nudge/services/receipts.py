"""The receipts service: a gateway's delivery event -> the SMS's delivery status on the ledger.

Events come at least once and out of order; the ledger's write is conditional (never backwards,
the first final status stays, never an item of its own), so a replayed or late event changes
nothing. An event that cannot be read, or that names no SMS Nudge sent, is counted and dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nudge.domain.delivery import (
    Receipt,
    ReceiptError,
    cloudwatch_log_messages,
    receipt_from_eum_event,
    receipt_from_sns_delivery_log,
)
from nudge.services.ports import DeliveryLedger, ReceiptOutcome

__all__ = ["ReceiptResult", "is_cloudwatch_logs_event", "record_delivery_event", "record_sns_delivery_logs"]


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


def is_cloudwatch_logs_event(event: Mapping[str, Any]) -> bool:
    """Whether the event is a CloudWatch Logs subscription's (SNS SMS delivery-status logs)."""
    return "awslogs" in event


def record_sns_delivery_logs(event: Mapping[str, Any], ledger: DeliveryLedger) -> list[ReceiptResult]:
    """Apply every line of a CloudWatch Logs subscription event from SNS's SMS delivery-status log
    groups: one receipt per line, found by its SNS message id (the ledger's pointer to the SMS).
    A line that cannot be read is one unreadable result (its text, which holds the phone number,
    is never repeated); a DynamoDB error raises, so Lambda retries the whole event (a replayed
    line changes nothing)."""
    try:
        messages = cloudwatch_log_messages(event)
    except ReceiptError as exc:
        return [ReceiptResult(None, problem=str(exc))]
    results: list[ReceiptResult] = []
    for message in messages:
        try:
            record = json.loads(message)
            if not isinstance(record, Mapping):
                raise ReceiptError("log line: not a JSON object")
            receipt = receipt_from_sns_delivery_log(record)
        except ReceiptError as exc:
            results.append(ReceiptResult(None, problem=str(exc)))
            continue
        except (ValueError, RecursionError):  # JSONDecodeError quotes the line; or nested too deep
            results.append(ReceiptResult(None, problem="log line: not JSON"))
            continue
        results.append(ReceiptResult(ledger.apply_receipt(receipt), receipt))
    return results
