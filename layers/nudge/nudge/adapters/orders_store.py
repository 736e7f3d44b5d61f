"""Writing orders that arrive by webhook or `nudge import` into the orders table, never backwards.

One conditional write per order (no read-then-write): the condition lets a change in only when it
is newer than what is stored and never turns ``paid`` / ``closed`` back into ``unpaid``. Attributes
kept beside the order record::

    source_updated_at  S  UTC ISO (ms) of the state stored: the platform's updated time, else the
                          delivery's time (fixed width, so strings compare like instants)
    source_hash        S  digest of the change: an equal time with the same content is "unchanged"
    expires_at         N  TTL: ORDER_TTL (90 days) after that state, epoch seconds

Webhook deliveries are also deduplicated: the order's write and a marker item
``ingest#<route>#<key>`` in the idempotency table (TTL ``expiration``, longer than any sender's
retry period) go in ONE TransactWriteItems, so a delivery is either stored and marked, or neither,
and a retry after a failure is never mistaken for a duplicate.

Out of order: a status-only change (``order.paid`` before ``order.created``) makes an order known
only by its status; it has no ``created_at``, so the planner's index never sees it. The older
whole record that comes later fills in its missing fields (``if_not_exists``), never its status.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from nudge.adapters.common import DalError, backoff
from nudge.adapters.dynamodb import utc_iso
from nudge.domain.platforms import ORDER_RECORD_FIELDS

__all__ = [
    "DELIVERY_TTL",
    "DynamoOrdersStore",
    "OrderChange",
    "WriteOutcome",
    "delivery_key",
    "order_change",
]

# Senders retry for up to: Shopify 48 h (4 h for newer subscriptions), Stripe-style senders 3 days.
DELIVERY_TTL = timedelta(days=7)
# Never removed by a newer whole record: a payment time, once known, stays known.
KEEP_ON_REWRITE = frozenset({"order_id", "status", "paid_at"})
VERSION_ATTR = "source_updated_at"
HASH_ATTR = "source_hash"


class WriteOutcome(StrEnum):
    WRITTEN = "written"  # the order now holds this change
    FILLED = "filled"  # an older whole record completed an order known only by its status
    UNCHANGED = "unchanged"  # stale, the same, or it would have gone backwards: nothing changed
    DUPLICATE = "duplicate"  # this delivery was stored before


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One order's new state (whole record, or status only) and the time it is the state of."""

    order_id: str
    attributes: dict[str, Any]  # order-record fields to set, without order_id
    full: bool
    version: str  # UTC ISO, see VERSION_ATTR
    digest: str

    @property
    def status(self) -> str:
        return self.attributes["status"]


def _value(name: str, value: Any) -> Any:
    if name == "amount":
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:  # parse_order has refused such records before they get here
            raise ValueError(f"amount: not a number: {value!r}") from None
    if name == "buyer_flags":
        return sorted(str(v) for v in value)
    return value.strip() if isinstance(value, str) else value


def order_change(record: Mapping[str, Any], *, full: bool, version: datetime) -> OrderChange:
    """An ``OrderChange`` from a record that passed ``parse_order`` (or a status-only change)."""
    attrs = {
        k: _value(k, record[k])
        for k in ORDER_RECORD_FIELDS
        if k != "order_id" and record.get(k) not in (None, "", [])
    }
    if attrs.get("status") not in ("unpaid", "paid", "closed"):
        raise ValueError("status: unpaid, paid or closed")
    canonical = json.dumps([full, attrs], sort_keys=True, default=str, ensure_ascii=False)
    return OrderChange(
        order_id=str(record["order_id"]),
        attributes=attrs,
        full=full,
        version=utc_iso(version),
        digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32],
    )


ORDER_TTL = timedelta(days=90)  # after the order's last change: long past any reminder or report


def delivery_key(route: str, key: str) -> str:
    return f"ingest#{route}#{key}"


def _av(value: Any) -> dict[str, Any]:
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [{"S": str(v)} for v in value]}
    return {"S": str(value)}


def _write_request(table: str, change: OrderChange) -> dict[str, Any]:
    """The conditional UpdateItem of one change (shared by the plain and the transactional write)."""
    names = {"#v": VERSION_ATTR, "#h": HASH_ATTR}
    values: dict[str, Any] = {":v": {"S": change.version}, ":h": {"S": change.digest}}
    sets = ["#v = :v", "#h = :h"]
    for i, (name, value) in enumerate(sorted(change.attributes.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = _av(value)
        sets.append(f"#a{i} = :a{i}")
    # Orders hold phones and names: the table Nudge creates deletes each one ORDER_TTL after the
    # state it stores (DynamoDB TTL on expires_at), so it holds nothing for ever.
    names["#x"] = "expires_at"
    values[":x"] = {"N": str(int((datetime.fromisoformat(change.version) + ORDER_TTL).timestamp()))}
    sets.append("#x = :x")
    expression = "SET " + ", ".join(sets)
    if change.full:
        gone = [f for f in ORDER_RECORD_FIELDS if f not in change.attributes and f not in KEEP_ON_REWRITE]
        for i, name in enumerate(gone):
            names[f"#r{i}"] = name
        if gone:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(gone)))
    # Newer, or as new with other content; and never from paid/closed back to unpaid.
    condition = "(attribute_not_exists(#v) OR #v < :v OR (#v = :v AND #h <> :h))"
    if change.status == "unpaid":
        condition += " AND (attribute_not_exists(#s) OR #s = :unpaid)"
        names["#s"] = "status"
        values[":unpaid"] = {"S": "unpaid"}
    return {
        "TableName": table,
        "Key": {"order_id": {"S": change.order_id}},
        "UpdateExpression": expression,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        # A refused write hands back the stored item: a stub to fill is told apart without a read.
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _fill_request(table: str, change: OrderChange) -> dict[str, Any] | None:
    """Complete an order known only by its status with an older whole record: its status stays."""
    fields = {k: v for k, v in change.attributes.items() if k != "status"}
    if not change.full or not fields:
        return None
    names = {"#c": "created_at"}
    values: dict[str, Any] = {}
    sets = []
    for i, (name, value) in enumerate(sorted(fields.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = _av(value)
        sets.append(f"#a{i} = if_not_exists(#a{i}, :a{i})")
    return {
        "TableName": table,
        "Key": {"order_id": {"S": change.order_id}},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(order_id) AND attribute_not_exists(#c)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class DynamoOrdersStore:
    """The orders table as webhooks and imports write it (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        orders_table: str,
        deliveries_table: str | None = None,
        *,
        delivery_ttl: timedelta = DELIVERY_TTL,
        sleep: Callable[[float], None] = time.sleep,
        max_conflict_retries: int = 5,
    ):
        self._client = client
        self._orders = orders_table
        self._deliveries = deliveries_table
        self._ttl = delivery_ttl
        self._sleep = sleep
        self._max_conflict_retries = max_conflict_retries

    def apply(
        self, change: OrderChange, *, delivery: str | None = None, now: datetime | None = None
    ) -> WriteOutcome:
        """Store one change; ``delivery`` (a ``delivery_key``) dedupes webhook deliveries.

        Raises DalError when the change could not be stored (the caller answers 5xx: retry).
        """
        try:
            if delivery is None:
                return self._apply_plain(change)
            if self._deliveries is None or now is None:
                raise ValueError("a delivery key needs the deliveries table and now")
            return self._apply_delivery(change, delivery, now)
        except (ClientError, BotoCoreError) as exc:
            code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise DalError(f"storing order failed ({code})") from exc

    def _apply_plain(self, change: OrderChange) -> WriteOutcome:
        try:
            self._client.update_item(**_write_request(self._orders, change))
            return WriteOutcome.WRITTEN
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return self._fill(change, exc.response.get("Item"))

    def _apply_delivery(self, change: OrderChange, delivery: str, now: datetime) -> WriteOutcome:
        marker = {
            "Put": {
                "TableName": self._deliveries,
                "Item": {
                    "id": {"S": delivery},
                    "expiration": {"N": str(int((now + self._ttl).timestamp()))},
                },
                "ConditionExpression": "attribute_not_exists(id)",
            }
        }
        items = [marker, {"Update": _write_request(self._orders, change)}]
        for attempt in range(self._max_conflict_retries + 1):
            try:
                self._client.transact_write_items(TransactItems=items)
                return WriteOutcome.WRITTEN
            except ClientError as exc:
                if _code(exc) != "TransactionCanceledException":
                    raise
                reasons = [
                    str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons") or []
                ]
                if len(reasons) != 2:
                    raise
                if reasons[0] == "ConditionalCheckFailed":
                    return WriteOutcome.DUPLICATE
                if reasons[1] == "ConditionalCheckFailed":
                    # Not newer: nothing to mark either; a redelivery comes to the same answer.
                    return self._fill(change, (exc.response["CancellationReasons"][1] or {}).get("Item"))
                if "TransactionConflict" not in reasons or attempt == self._max_conflict_retries:
                    raise
                self._sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def _fill(self, change: OrderChange, stored: Mapping[str, Any] | None) -> WriteOutcome:
        if stored is None or "created_at" in stored:
            return WriteOutcome.UNCHANGED  # a whole order is there: the refused change was stale
        request = _fill_request(self._orders, change)
        if request is None:
            return WriteOutcome.UNCHANGED
        try:
            self._client.update_item(**request)
            return WriteOutcome.FILLED
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
        return WriteOutcome.UNCHANGED
