"""The receipts service: a gateway's delivery event -> the SMS's delivery status on the ledger.

Events come at least once and out of order; the ledger's write is conditional (never backwards,
the first final status stays, never an item of its own), so a replayed or late event changes
nothing. An event that cannot be read, or that names no SMS Nudge sent, is counted and dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nudge.domain.delivery import (
    Receipt,
    ReceiptError,
    cloudwatch_log_messages,
    receipt_from_aliyun_report,
    receipt_from_eum_event,
    receipt_from_sns_delivery_log,
)
from nudge.services.ports import DeliveryLedger, ReceiptOutcome

__all__ = [
    "Counted",
    "ReceiptResult",
    "counted",
    "each_read",
    "emit",
    "is_cloudwatch_logs_event",
    "json_object",
    "record_aliyun_reports",
    "record_delivery_event",
    "record_sns_delivery_logs",
]


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    """What became of one delivery event. Safe to log: no phone number in it."""

    outcome: ReceiptOutcome | None  # None: the event could not be read
    receipt: Receipt | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Counted:
    """What a handler counts and logs for one receipt or reply (the same names in every function
    that takes them: the receipts, replies and ingest functions). Safe to log: no phone, no text."""

    name: str  # the outcome's name, as the handler reports it
    metrics: tuple[str, ...]  # one count each
    message: str  # the log line's message
    fields: dict[str, Any] = field(default_factory=dict)
    warning: bool = False


def emit(c: Counted, *, metrics: Any, logger: Any) -> str:
    """Count ``c`` on a handler's Powertools ``Metrics`` and log its line; its name."""
    for name in c.metrics:
        metrics.add_metric(name=name, unit="Count", value=1)
    (logger.warning if c.warning else logger.info)(c.message, extra=c.fields)
    return c.name


def counted(result: ReceiptResult) -> Counted:
    """``ReceiptUnreadable``, or ``Receipt_<outcome>`` plus ``Delivery_<status>`` when it changed an SMS."""
    if result.outcome is None:
        problem = {"problem": result.problem}
        return Counted(
            "unreadable", ("ReceiptUnreadable",), "delivery event not readable", problem, warning=True
        )
    metrics = [f"Receipt_{result.outcome.value}"]
    receipt = result.receipt
    if receipt is not None and result.outcome in (ReceiptOutcome.APPLIED, ReceiptOutcome.SETTLED):
        metrics.append(f"Delivery_{receipt.status.value}")
    fields: dict[str, Any] = {
        "outcome": result.outcome.value,
        "order_id": receipt.order_id if receipt else None,
        "attempt": receipt.attempt if receipt else None,
        "status": receipt.status.value if receipt else None,
        "code": receipt.code if receipt else None,
    }
    return Counted(result.outcome.value, tuple(metrics), "delivery receipt", fields)


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
    return [_applied(r, ledger) for r in each_read(messages, _sns_log_receipt)]


def record_aliyun_reports(items: Sequence[Any], ledger: DeliveryLedger) -> list[ReceiptResult]:
    """Apply every item of one Alibaba Cloud ``SmsReport`` push (its JSON array), each found by its
    ``out_id`` (order and reminder) and held to its ``biz_id`` by the ledger's condition. An item
    that cannot be read is one unreadable result (never repeated: it holds the phone number); a
    DynamoDB error raises, so the push is answered as failed and Alibaba Cloud pushes it again (a
    replayed item changes nothing)."""
    return [
        _applied(r, ledger)
        for r in each_read(items, lambda i: receipt_from_aliyun_report(json_object(i, "item")))
    ]


def each_read[T](items: Iterable[Any], read: Callable[[Any], T]) -> Iterator[T | ReceiptError]:
    """Each of a batch's items as ``read`` reads it, or the ReceiptError saying why it cannot be:
    one unreadable item never stops the others (receipts and replies alike)."""
    for item in items:
        try:
            yield read(item)
        except ReceiptError as exc:
            yield exc


def json_object(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` when it is a JSON object; else a ReceiptError naming ``what`` (never quoting it)."""
    if not isinstance(value, Mapping):
        raise ReceiptError(f"{what}: not a JSON object")
    return value


def _sns_log_receipt(line: str) -> Receipt:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError quotes the line; or nested too deep
        raise ReceiptError("log line: not JSON") from None
    return receipt_from_sns_delivery_log(json_object(record, "log line"))


def _applied(read: Receipt | ReceiptError, ledger: DeliveryLedger) -> ReceiptResult:
    if isinstance(read, ReceiptError):
        return ReceiptResult(None, problem=str(read))
    return ReceiptResult(ledger.apply_receipt(read), read)
