"""Shopify ``orders/*`` webhooks (the REST Admin API order resource) -> order changes.

Status: ``cancelled_at`` set, or ``financial_status`` voided / expired: closed; pending /
authorized / partially_paid: unpaid; paid / partially_refunded / refunded: paid. The phone is
the order's, else the customer's, the billing or the shipping address's (a national number reads
with that address's country). Shopify does not promise delivery order: ``updated_at`` says which
state is newer. The order is stored as ``shopify:<id>``. A ``financial_status`` Nudge does not know
is acknowledged (``Ignored``, reason ``unknown_status``), never refused: Shopify removes a webhook
whose deliveries keep failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nudge.domain.platforms import (
    Ignored,
    OrderEvent,
    Platform,
    as_object,
    aware,
    compact_record,
    first_phone,
    platform_order_id,
    text,
    topic,
)
from nudge.domain.webhooks import id_part, verify_shopify

FINANCIAL_STATUS = {
    "pending": "unpaid",
    "authorized": "unpaid",
    "partially_paid": "unpaid",
    "paid": "paid",
    "partially_refunded": "paid",
    "refunded": "paid",
    "voided": "closed",
    "expired": "closed",  # payment terms ran out (newer API versions)
}
IGNORED_TOPICS = {"orders/delete", "orders/edited"}  # bodies without the order resource


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _unknown(value: Any) -> str:
    return f"unknown {str(value)[:40]!r}" if isinstance(value, str) else f"unknown {type(value).__name__}"


def _is_cod(order: Mapping[str, Any]) -> bool:
    names = [order.get("gateway"), *(order.get("payment_gateway_names") or [])]
    for name in names:
        low = (text(name) or "").lower()
        if low == "cod" or "cash on delivery" in low or "(cod)" in low:
            return True
    return False


def map_shopify(topic: str, payload: Any) -> OrderEvent | Ignored:
    if not topic.startswith("orders/") or topic in IGNORED_TOPICS:
        return Ignored("topic", {"topic": topic})
    order = as_object(payload)
    order_id = platform_order_id("shopify", order.get("id"))
    if text(order.get("cancelled_at")) is not None:
        status = "closed"
    else:
        financial = order.get("financial_status")
        if not isinstance(financial, str) or financial not in FINANCIAL_STATUS:
            detail = {"order_id": order_id, "field": "financial_status", "problem": _unknown(financial)}
            return Ignored("unknown_status", detail)
        status = FINANCIAL_STATUS[financial]
    customer = _obj(order.get("customer"))
    billing = _obj(order.get("billing_address"))
    shipping = _obj(order.get("shipping_address"))
    home = _obj(customer.get("default_address"))
    country = billing.get("country_code") or shipping.get("country_code") or home.get("country_code")
    phone = first_phone(
        [
            (order.get("phone"), country),
            (customer.get("phone"), country),
            (billing.get("phone"), billing.get("country_code")),
            (shipping.get("phone"), shipping.get("country_code")),
        ]
    )
    if phone is None:
        return Ignored("no_phone", {"order_id": order_id})
    updated_at = aware(order.get("updated_at"), "updated_at")
    items = order.get("line_items") or [{}]
    first_item = _obj(items[0]) if isinstance(items, list) else {}
    name = " ".join(p for p in (text(customer.get("first_name")), text(customer.get("last_name"))) if p)
    record = {
        "order_id": order_id,
        "buyer_id": text(customer.get("id")) or phone,
        "phone": phone,
        "status": status,
        "created_at": text(order.get("created_at")),
        "amount": text(order.get("total_price")),
        "currency": text(order.get("currency")),
        "payment_method": "cod" if _is_cod(order) else "online",
        "buyer_name": name or text(billing.get("name")),
        "item_title": text(first_item.get("title")) or text(first_item.get("name")),
        "pay_url": text(order.get("order_status_url")),
    }
    if topic == "orders/paid" and status == "paid" and updated_at is not None:
        record["paid_at"] = order["updated_at"]  # Shopify has no paid time; this topic fires on payment
    return OrderEvent(order_id, compact_record(record), full=True, updated_at=updated_at, kind=topic)


def _verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> datetime | None:
    verify_shopify(secret, headers, body)
    return None


def _delivery_id(headers: Mapping[str, str]) -> str:
    # The event id is shared by the deliveries of one merchant action across topics: with the topic.
    event_id = (
        headers.get("x-shopify-event-id", "").strip() or headers.get("x-shopify-webhook-id", "").strip()
    )
    return f"{id_part(headers.get('x-shopify-topic', ''))}#{id_part(event_id)}"


PLATFORM = Platform(
    route="shopify",
    verify=_verify,
    map=lambda headers, payload: map_shopify(topic(headers, "x-shopify-topic"), payload),
    delivery_id=_delivery_id,
    secret_setting="shopify_webhook_secret_arn",
    stack_secret="ShopifyWebhookSecret",
)
