"""What the DynamoDB adapters share: batched reads with bounded retries, paging, typed values.

Every name here is public: the per-table modules (``orders``, ``ledger``, ``outcomes``, ``staff``)
and the operator CLI use them; none reaches into another module's private names.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from nudge.services.ports import DalError

BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem: at most 100 keys per request
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailed"
_IDEMPOTENCY_NS = uuid.UUID("7d0c3f59-8d8e-4c59-9a53-3c6e5b1b7a11")


def backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Full-jitter exponential backoff."""
    return random.uniform(0, min(cap, base * 2**attempt))


def epoch(at: datetime) -> int:
    return int(at.timestamp())


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))  # BatchGetItem refuses duplicate keys


_DESERIALIZER = TypeDeserializer()


def attr(value: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value -> Python (numbers as Decimal, like boto3's resource API).

    A hand-written fast path for what order records hold (strings, then numbers): about 4x faster
    than ``TypeDeserializer`` on 100k orders. Other types fall back to it.
    """
    s = value.get("S")
    if s is not None:
        return s
    n = value.get("N")
    if n is not None:
        return Decimal(n)
    for kind, raw in value.items():
        if kind == "BOOL":
            return raw
        if kind == "NULL":
            return None
        if kind == "L":
            return [attr(v) for v in raw]
        if kind == "M":
            return item_from_ddb(raw)
        if kind == "SS":
            return set(raw)
        break
    return _DESERIALIZER.deserialize(value)


def item_from_ddb(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A low-level client item -> plain dict (what the resource API would give, only faster)."""
    out = {}
    for k, v in item.items():
        s = v.get("S")
        out[k] = s if s is not None else attr(v)
    return out


def batch_get(
    client: Any,
    table_name: str,
    ids: Sequence[str],
    *,
    projection: str,
    names: dict[str, str] | None = None,
    consistent: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    max_retries: int = 8,
) -> Iterator[dict[str, Any]]:
    """BatchGetItem in chunks of 100, retrying UnprocessedKeys with bounded backoff."""
    for chunk in chunks(unique(ids), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": [{"order_id": {"S": oid}} for oid in chunk],
            "ProjectionExpression": projection,
            "ConsistentRead": consistent,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        pending: dict[str, Any] = {table_name: request}
        for attempt in range(max_retries + 1):
            resp = client.batch_get_item(RequestItems=pending)
            for item in resp.get("Responses", {}).get(table_name, []):
                yield item_from_ddb(item)
            pending = resp.get("UnprocessedKeys") or {}
            if not pending:
                break
            if attempt == max_retries:
                left = len(pending[table_name]["Keys"])
                raise DalError(f"BatchGetItem on {table_name}: {left} keys still unprocessed")
            sleep(backoff(attempt))


def query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """All pages of one Query, raw items."""
    while True:
        resp = client.query(**kwargs)
        yield from resp.get("Items", [])
        last = resp.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


def transaction_token(*parts: object) -> str:
    """A ClientRequestToken (<= 36 chars) for one logical TransactWriteItems call.

    botocore retries a transaction whose response was lost; with the same token DynamoDB answers
    the retry with the first outcome instead of failing our own condition (a claim we hold would
    otherwise come back as held by someone and its SMS would never go out).
    """
    return str(uuid.uuid5(_IDEMPOTENCY_NS, "|".join(str(p) for p in parts)))


def n_value(value: int) -> dict[str, str]:
    return {"N": str(value)}


def s_value(value: str) -> dict[str, str]:
    return {"S": value}


def cancellation_codes(reasons: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r.get("Code") or "None") for r in reasons]
