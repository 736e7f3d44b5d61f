"""Reading shop orders and reminder history: validation against the rules contract's (docs/RULES.md) order record.

A record that breaks the contract becomes an ``InvalidOrder`` naming the field and the problem;
it is never fatal. Parsing is plain Python (no pydantic) because it runs for every order of a
window, 100k of them in the benchmark.

Values are bounded here so that no later arithmetic can fail on them: timestamps lie in the years
``YEARS`` (a date near year 9999 with a negative offset overflows when converted to UTC; one near
year 1 does when the expiry is subtracted), amounts are finite, not negative (not even ``-0``) and
at most ``MAX_AMOUNT`` (larger ones cannot be rounded to cents in Decimal's default precision),
currencies are three ASCII letters, and no text holds an unpaired surrogate (it cannot be encoded:
not as UTF-8 for a terminal, nor as UTF-16 for an SMS). Texts are bounded in UTF-8 bytes
(``MAX_BYTES``): ids stay far below DynamoDB's 2048-byte key limit (the order id is the key of the
orders and the ledger tables) and a whole record stays far below its 400 KB item limit, so a record
that passes here can always be stored. Webhooks and ``nudge import`` check their records with the
same function (and the same ``time_problem`` and ``load_json``), so one contract bounds them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from nudge.domain.models import ORDER_STATUSES, PAYMENT_METHODS, InvalidOrder, Order, SentReminder

YEARS = range(2000, 2200)  # the years a timestamp may name (see the module doc)
MAX_AMOUNT = Decimal(10) ** 12
MAX_DECIMALS = 12  # digits after the point (with MAX_AMOUNT: within DynamoDB's 38-digit numbers)
# UTF-8 bytes per text field; any other text field (names, titles, links) gets MAX_TEXT_BYTES.
MAX_BYTES = {"order_id": 1024, "buyer_id": 1024, "phone": 256}
MAX_TEXT_BYTES = 4096
MAX_FLAGS = 64  # buyer_flags entries, each at most MAX_FLAG_BYTES
MAX_FLAG_BYTES = 256
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class _Bad(Exception):
    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem


def text_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be the text of field ``name`` (too long, not valid Unicode), else None."""
    limit = MAX_BYTES.get(name, MAX_TEXT_BYTES)
    if len(value) > limit or (not value.isascii() and len(value.encode("utf-8", "surrogatepass")) > limit):
        return f"longer than {limit} bytes"
    if not value.isascii() and _SURROGATE.search(value):
        return "holds an unpaired surrogate (not valid Unicode text)"
    return None


def time_problem(parsed: datetime) -> str | None:
    """Why a parsed timestamp cannot be an order's time (no offset, a year outside YEARS), else None."""
    if parsed.tzinfo is None:
        return "needs a UTC offset"
    if parsed.year not in YEARS:
        return f"year {parsed.year} is outside {YEARS.start}-{YEARS.stop - 1}"
    return None


def _required_str(record: Mapping[str, Any], name: str) -> str:
    value = _optional_str(record, name)
    if value is None:
        raise _Bad(name, "missing")
    return value


def _optional_str(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Bad(name, f"must be a string, got {type(value).__name__}")
    problem = text_problem(name, value)
    if problem:
        raise _Bad(name, problem)
    return value


def _usable_id(value: Any) -> str | None:
    """The record's order_id for an InvalidOrder, when it is a clean string of a usable length."""
    if isinstance(value, str) and value and text_problem("order_id", value) is None:
        return value
    return None


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
        raise _Bad(name, f"not an ISO-8601 timestamp: {_short(value)}") from None
    if parsed.tzinfo is None:
        # Without an offset the shop-local day and the wait are guesses; refuse rather than guess.
        raise _Bad(name, f"needs a UTC offset, e.g. {value}+08:00")
    problem = time_problem(parsed)
    if problem:
        raise _Bad(name, problem)
    return parsed


def _amount(record: Mapping[str, Any]) -> Decimal:
    value = record.get("amount")
    if value is None or value == "":
        raise _Bad("amount", "missing")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _Bad("amount", f"must be a number, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):  # ValueError: an int too long to turn into text
        raise _Bad("amount", f"not a number: {_short(value)}") from None
    if not amount.is_finite():
        raise _Bad("amount", f"not a number: {_short(value)}")
    if amount.is_signed():  # negative, or -0 (which would print as "-0.00")
        raise _Bad("amount", f"must be >= 0, got {_short(amount)}")
    if amount > MAX_AMOUNT:
        raise _Bad("amount", f"must be at most {MAX_AMOUNT:,}, got {_short(amount)}")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
        raise _Bad("amount", f"more than {MAX_DECIMALS} digits after the point: {_short(amount)}")
    return amount


def _short(value: Any, limit: int = 40) -> str:
    """``repr`` of a bad value, cut so one line stays one line of sensible length."""
    try:
        text = str(value) if isinstance(value, int | float | Decimal) else repr(value)
    except ValueError:  # an int past the int-to-text digit limit
        return f"<a number of {value.bit_length()} bits>" if isinstance(value, int) else "<unprintable>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flags(record: Mapping[str, Any]) -> frozenset[str]:
    value = record.get("buyer_flags")
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise _Bad("buyer_flags", "must be a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise _Bad("buyer_flags", "must be a list of strings")
    if len(value) > MAX_FLAGS:
        raise _Bad("buyer_flags", f"more than {MAX_FLAGS} flags")
    if any(len(v.encode("utf-8", "surrogatepass")) > MAX_FLAG_BYTES for v in value):
        raise _Bad("buyer_flags", f"a flag is longer than {MAX_FLAG_BYTES} bytes")
    return frozenset(value)


def parse_order(record: Any, *, line: int | None = None) -> Order | InvalidOrder:
    """Validate one order record (a JSON object or a DynamoDB item)."""
    if not isinstance(record, Mapping):
        return InvalidOrder(None, "record", f"must be a JSON object, got {type(record).__name__}", line)
    order_id = _usable_id(record.get("order_id"))
    try:
        status = _required_str(record, "status")
        if status not in ORDER_STATUSES:
            raise _Bad(
                "status",
                f"unknown status {_short(status)}; expected one of {', '.join(sorted(ORDER_STATUSES))}",
            )
        payment_method = _optional_str(record, "payment_method") or "online"
        if payment_method not in PAYMENT_METHODS:
            raise _Bad("payment_method", f"unknown {_short(payment_method)}; expected online or cod")
        currency = _optional_str(record, "currency")
        if currency is not None and not _CURRENCY.fullmatch(currency):
            # str.isalpha() would let "ДЕН" or "元元元" through.
            raise _Bad("currency", f"expected an ISO 4217 code like CNY, got {_short(currency)}")
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


def read_orders_jsonl(lines: Iterable[str | bytes]) -> Iterator[Order | InvalidOrder]:
    """Orders from JSON Lines: blank lines are skipped, a bad line is an InvalidOrder.

    Lines may be text or raw bytes (a file opened in binary mode, split on b"\\n" only): a line
    that is not UTF-8 is then invalid on its own instead of stopping the whole file. A UTF-8 byte
    order mark before the first line is ignored.
    """
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                problem = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                yield InvalidOrder(None, "record", problem, number)
                continue
        else:
            text = raw.removeprefix("\ufeff") if number == 1 else raw
        if not text.strip():
            continue
        try:
            record = _json_line(text)
        except _Bad as bad:
            yield InvalidOrder(None, bad.field, bad.problem, number)
            continue
        yield parse_order(record, line=number)


class JsonProblem(ValueError):
    """Text that cannot be read as JSON; the message says why and is safe to show (no input in it)."""


def load_json(text: str) -> Any:
    """``json.loads`` that fails only with JsonProblem: bad syntax, too deep, or an integer over
    Python's int-from-text digit limit (a ValueError that is not a JSONDecodeError)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonProblem(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise JsonProblem("JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer over the int-from-text digit limit
        raise JsonProblem(f"not usable JSON ({str(exc).splitlines()[0][:80]})") from None


def _json_line(text: str) -> Any:
    try:
        return load_json(text)
    except JsonProblem as exc:
        raise _Bad("record", str(exc)) from None


class HistoryError(ValueError):
    """A `--history` line is unusable. History decides who may be texted, so it is not skipped."""


def read_history_jsonl(lines: Iterable[str]) -> list[SentReminder]:
    """Earlier reminders (order_id, buyer_id, phone, sent_at, attempt) from JSON Lines.

    ``lines`` must be split on "\\n" only: ``str.splitlines`` also splits at U+2028 and other
    separators that JSON allows inside a string.
    """
    out: list[SentReminder] = []
    for number, text in enumerate(lines, start=1):
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        try:
            record = _json_line(text)
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
        except _Bad as bad:
            raise HistoryError(f"history line {number}: {bad.field}: {bad.problem}") from None
    return out
