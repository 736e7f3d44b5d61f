"""The orders table in DynamoDB: the planner's and sender's reads (``OrderRepository``), the
webhook's and `nudge import`'s never-backwards writes (``OrdersStore``), and the audit's Scan.

Reads. The planner Queries the ``status-created_at`` index (never Scan); the sender re-reads the
orders it is about to text with one strongly consistent BatchGetItem.

Writes.

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

The audit. ``scan_order_items`` reads the whole table, page by page, for the daily audit only:
the plan function has no ``dynamodb:Scan`` permission (see ``services/audit.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from nudge.adapters.dynamo_io import backoff, batch_get, item_from_ddb, query_all
from nudge.domain.models import InvalidOrder, Order
from nudge.domain.order_changes import OrderChange
from nudge.domain.platforms import ORDER_RECORD_FIELDS
from nudge.services.ports import DalError, OrderNow, WriteOutcome

# Orders of these statuses are read for planning: unpaid ones are reminded, paid ones feed the
# "buyer paid another order that same day" rule. Closed orders are never needed.
PLANNING_STATUSES = ("unpaid", "paid")

# UTC offsets in use range from -12:00 to +14:00. ``created_at`` is stored as the shop wrote it
# (wall-clock time plus offset), and the index sorts those strings, not instants. The wall clock of
# an order created at instant t is t + offset >= t - 12 h, so every order created at or after
# ``since`` has a wall-clock string >= (since in UTC - 12 h). Only negative offsets push a string
# below its instant; +14:00 pushes it above, which can only let in a few older orders (the port
# allows that: the rules judge each order's age).
MAX_NEGATIVE_OFFSET = timedelta(hours=12)


def planning_lower_bound(since: datetime) -> str:
    """The ``created_at >= :lower`` string bound that misses no order created at or after ``since``.

    ``since`` minus the largest negative offset, in UTC, floored to the minute: any ISO-8601
    string whose wall clock is at or after that instant starts with a 16-character prefix
    ``YYYY-MM-DDTHH:MM`` that is >= the bound (and a longer string with an equal prefix sorts after
    it). Assumes the ``T`` separator of ISO 8601 (a space-separated time on the bound's date would
    sort before it).
    """
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return (since.astimezone(UTC) - MAX_NEGATIVE_OFFSET).strftime("%Y-%m-%dT%H:%M")


def _when(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed


def order_now(item: Mapping[str, Any]) -> OrderNow:
    """An order record as the sender re-reads it (shared with the in-memory fake)."""
    status = item.get("status") if isinstance(item.get("status"), str) else None
    try:
        created_at = _when(item.get("created_at"))
    except ValueError:
        return OrderNow(status, invalid_field="created_at")
    closes_at = None
    if item.get("closes_at") not in (None, ""):
        try:
            closes_at = _when(item["closes_at"])
        except ValueError:
            return OrderNow(status, created_at, invalid_field="closes_at")
    return OrderNow(status, created_at, closes_at)


class DynamoOrderRepository:
    """Orders the shop writes, read through the ``status-created_at`` index (Query, never Scan)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        status_index: str = "status-created_at",
        *,
        page_size: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._table = table_name
        self._index = status_index
        self._page_size = page_size  # Limit per Query page; None = DynamoDB's 1 MB pages
        self._sleep = sleep

    def orders_for_planning(self, since: datetime) -> Iterator[Order | InvalidOrder]:
        from nudge.domain.orders import parse_order

        lower = planning_lower_bound(since)
        for status in PLANNING_STATUSES:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": self._index,
                "KeyConditionExpression": "#s = :s AND created_at >= :lower",
                "ExpressionAttributeNames": {"#s": "status"},  # `status` is a reserved word
                "ExpressionAttributeValues": {":s": {"S": status}, ":lower": {"S": lower}},
            }
            if self._page_size:
                kwargs["Limit"] = self._page_size
            for item in query_all(self._client, **kwargs):
                yield parse_order(item_from_ddb(item))

    def current(self, order_ids: Sequence[str]) -> dict[str, OrderNow]:
        # Strongly consistent: this is the send-time "paid, closed or aged out meanwhile?" check.
        items = batch_get(
            self._client,
            self._table,
            order_ids,
            projection="order_id, #s, created_at, closes_at",
            names={"#s": "status"},
            consistent=True,
            sleep=self._sleep,
        )
        return {i["order_id"]: order_now(i) for i in items}


# Senders retry for up to: Shopify 48 h (4 h for newer subscriptions), Stripe-style senders 3 days.
DELIVERY_TTL = timedelta(days=7)
# Never removed by a newer whole record: a payment time, once known, stays known.
KEEP_ON_REWRITE = frozenset({"order_id", "status", "paid_at"})
VERSION_ATTR = "source_updated_at"
HASH_ATTR = "source_hash"


ORDER_TTL = timedelta(days=90)  # after the order's last change: long past any reminder or report


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
        """Store one change; ``delivery`` (``nudge.services.ingest.delivery_key``) dedupes webhook deliveries.

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


# What the order contract has: the audit validates these and nothing else of a shop's own items.
ORDER_FIELDS = (
    "order_id", "buyer_id", "phone", "status", "created_at", "amount", "currency", "channel",
    "payment_method", "paid_at", "closes_at", "buyer_flags", "buyer_name", "item_title", "pay_url",
)  # fmt: skip


def scan_order_items(
    client: Any, table_name: str, *, page_size: int | None = None
) -> Iterator[dict[str, Any]]:
    """Every item of the orders table, with only the contract's fields (one Scan page at a time).

    Pages are read as they are consumed, so memory holds one page (at most 1 MB), whatever the
    table's size. boto3's retries cover throttling between pages.
    """
    names = {f"#f{i}": name for i, name in enumerate(ORDER_FIELDS)}  # several are reserved words
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    if page_size:
        kwargs["Limit"] = page_size
    while True:
        resp = client.scan(**kwargs)
        for raw in resp.get("Items", []):
            yield item_from_ddb(raw)
        last = resp.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last
