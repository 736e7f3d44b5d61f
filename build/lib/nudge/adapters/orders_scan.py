"""The orders table read whole, page by page: for the daily audit only, never for planning.

A Scan reads every item of the table, so it is kept off the hot path: the plan function Queries
the ``status-created_at`` index and has no ``dynamodb:Scan`` permission. The audit runs once a
day at a quiet hour, to find the orders that index can never return (see ``services/audit.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nudge.adapters.dynamodb import item_from_ddb

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
