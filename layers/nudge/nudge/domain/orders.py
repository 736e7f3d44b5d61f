"""Reading shop orders and reminder history: validation against DESIGN.md's order record.

A record that breaks the contract becomes an ``InvalidOrder`` naming the field and the problem;
it is never fatal. Parsing is plain Python (no pydantic) because it runs for every order of a
window, 100k of them in the benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from nudge.domain.models import ORDER_STATUSES, PAYMENT_METHODS, InvalidOrder, Order, SentReminder


class _Bad(Exception):
    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem


def _required_str(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None or value == "":
        raise _Bad(name, "missing")
    if not isinstance(value, str):
        raise _Bad(name, f"must be a string, got {type(value).__name__}")
    return value


def _optional_str(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Bad(name, f"must be a string, got {type(value).__name__}")
    return value


def _timestamp(record: Mapping[str, Any], name: str) -> datetime:
    parsed = _optional_timestamp(record, name)
    if parsed is None:
        raise _Bad(name, "missing")
    return parsed


def _optional_timestamp(record: Mapping[str, Any], name: str) -> datetime | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Bad(name, "must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(name, f"not an ISO-8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        # Without an offset the shop-local day and the wait are guesses; refuse rather than guess.
        raise _Bad(name, f"needs a UTC offset, e.g. {value}+08:00")
    return parsed


def _amount(record: Mapping[str, Any]) -> Decimal:
    value = record.get("amount")
    if value is None or value == "":
        raise _Bad("amount", "missing")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _Bad("amount", f"must be a number, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise _Bad("amount", f"not a number: {value!r}") from None
    if not amount.is_finite():
        raise _Bad("amount", f"not a number: {value!r}")
    if amount < 0:
        raise _Bad("amount", f"must be >= 0, got {value}")
    return amount


def _flags(record: Mapping[str, Any]) -> frozenset[str]:
    value = record.get("buyer_flags")
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise _Bad("buyer_flags", "must be a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise _Bad("buyer_flags", "must be a list of strings")
    return frozenset(value)


def parse_order(record: Any, *, line: int | None = None) -> Order | InvalidOrder:
    """Validate one order record (a JSON object or a DynamoDB item)."""
    if not isinstance(record, Mapping):
        return InvalidOrder(None, "record", f"must be a JSON object, got {type(record).__name__}", line)
    raw_id = record.get("order_id")
    order_id = raw_id if isinstance(raw_id, str) and raw_id else None
    try:
        status = _required_str(record, "status")
        if status not in ORDER_STATUSES:
            raise _Bad(
                "status", f"unknown status {status!r}; expected one of {', '.join(sorted(ORDER_STATUSES))}"
            )
        payment_method = _optional_str(record, "payment_method") or "online"
        if payment_method not in PAYMENT_METHODS:
            raise _Bad("payment_method", f"unknown {payment_method!r}; expected online or cod")
        currency = _optional_str(record, "currency")
        if currency is not None and (len(currency) != 3 or not currency.isalpha()):
            raise _Bad("currency", f"expected an ISO 4217 code like CNY, got {currency!r}")
        return Order(
            order_id=_required_str(record, "order_id"),
            buyer_id=_required_str(record, "buyer_id"),
            phone=_required_str(record, "phone").strip(),
            status=status,
            created_at=_timestamp(record, "created_at"),
            amount=_amount(record),
            currency=currency.upper() if currency else None,
            channel=_optional_str(record, "channel") or "direct",
            payment_method=payment_method,
            paid_at=_optional_timestamp(record, "paid_at"),
            closes_at=_optional_timestamp(record, "closes_at"),
            buyer_flags=_flags(record),
            buyer_name=_optional_str(record, "buyer_name"),
            item_title=_optional_str(record, "item_title"),
            pay_url=_optional_str(record, "pay_url"),
        )
    except _Bad as bad:
        return InvalidOrder(order_id, bad.field, bad.problem, line)


def read_orders_jsonl(lines: Iterable[str]) -> Iterator[Order | InvalidOrder]:
    """Orders from JSON Lines: blank lines are skipped, a bad line is an InvalidOrder."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            yield InvalidOrder(None, "record", f"not valid JSON ({exc.msg} at column {exc.colno})", number)
            continue
        yield parse_order(record, line=number)


class HistoryError(ValueError):
    """A `--history` line is unusable. History decides who may be texted, so it is not skipped."""


def read_history_jsonl(lines: Iterable[str]) -> list[SentReminder]:
    """Earlier reminders (order_id, buyer_id, phone, sent_at, attempt) from JSON Lines."""
    out: list[SentReminder] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise _Bad("record", "must be a JSON object")
            sent_at = _timestamp(record, "sent_at")
            attempt = record.get("attempt")
            if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
                raise _Bad("attempt", "must be a whole number >= 1")
            out.append(
                SentReminder(
                    order_id=_required_str(record, "order_id"),
                    buyer_id=_required_str(record, "buyer_id"),
                    phone=_required_str(record, "phone"),
                    sent_at=sent_at,
                    attempt=attempt,
                )
            )
        except json.JSONDecodeError as exc:
            raise HistoryError(f"history line {number}: not valid JSON ({exc.msg})") from None
        except _Bad as bad:
            raise HistoryError(f"history line {number}: {bad.field}: {bad.problem}") from None
    return out
