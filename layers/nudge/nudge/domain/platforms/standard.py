"""Standard Webhooks ``order.*`` events (any shop or tool) -> order changes.

Body: ``{"type": "order.created" | "order.updated" | "order.paid" | "order.closed", "timestamp": ISO-8601,
"data": <order record>}``. For ``order.paid`` and ``order.closed`` the data needs only ``order_id``
(and ``paid_at``); a whole record there is taken whole, with the event's status. The shop's own
order id is kept as it is (platform orders are ``<platform>:<id>``, see ``nudge.domain.platforms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nudge.domain.platforms import (
    MappingError,
    OrderEvent,
    Platform,
    as_object,
    aware,
    compact_record,
    shop_order_id,
    text,
)
from nudge.domain.webhooks import id_part, verify_standard

FULL_TYPES = {"order.created": None, "order.updated": None}
STATUS_TYPES = {"order.paid": "paid", "order.closed": "closed"}
_WHOLE = ("buyer_id", "phone", "created_at", "amount")  # a record with these is a whole one


def map_standard(payload: Any) -> OrderEvent:
    body = as_object(payload)
    kind = body.get("type")
    if kind not in FULL_TYPES and kind not in STATUS_TYPES:
        known = ", ".join([*FULL_TYPES, *STATUS_TYPES])
        raise MappingError("type", f"expected one of {known}, got {kind!r}")
    updated_at = aware(body.get("timestamp"), "timestamp")
    data = as_object(body.get("data"), "data")
    order_id = shop_order_id(data.get("order_id"), "data.order_id")
    record = compact_record(data)
    if kind in FULL_TYPES:
        return OrderEvent(order_id, record, full=True, updated_at=updated_at, kind=kind)
    status = STATUS_TYPES[kind]
    if all(text(data.get(k)) is not None for k in _WHOLE):
        return OrderEvent(order_id, {**record, "status": status}, full=True, updated_at=updated_at, kind=kind)
    change: dict[str, Any] = {"order_id": order_id, "status": status}
    paid_at = aware(data.get("paid_at"), "data.paid_at")
    if paid_at is not None:
        change["paid_at"] = data["paid_at"].strip()
    return OrderEvent(order_id, change, full=False, updated_at=updated_at, kind=kind)


def _verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> datetime | None:
    return verify_standard(secret, headers, body, now=now).sent_at


PLATFORM = Platform(
    route="nudge",
    verify=_verify,
    map=lambda headers, payload: map_standard(payload),
    delivery_id=lambda headers: id_part(headers.get("webhook-id", "")),  # signed
    secret_setting="standard_webhooks_secret_arn",
    stack_secret="StandardWebhooksSecret",
    secret_prefix="whsec_",
)
