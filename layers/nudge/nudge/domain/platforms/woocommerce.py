"""WooCommerce ``order.*`` webhooks (the REST v3 order resource) -> order changes.

Status: pending / on-hold / checkout-draft: unpaid; processing / completed / refunded: paid;
cancelled / failed / trash: closed. Times come from the ``*_gmt`` fields (UTC without an offset;
the others are the site's wall clock, no offset). WooCommerce builds the body when it delivers,
so ``date_modified_gmt`` is the state's own time. The order is stored as ``woocommerce:<id>``. A
status Nudge does not know (shops add their own with plugins) is acknowledged (``Ignored``, reason
``unknown_status``), never refused: WooCommerce disables a webhook after five failures in a row.
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
from nudge.domain.webhooks import id_part, is_woocommerce_ping, verify_woocommerce

STATUS = {
    "pending": "unpaid",
    "on-hold": "unpaid",
    "checkout-draft": "unpaid",
    "processing": "paid",
    "completed": "paid",
    "refunded": "paid",
    "cancelled": "closed",
    "failed": "closed",
    "trash": "closed",
}
IGNORED_TOPICS = {"order.deleted"}  # the body is only {"id": N}


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _utc_iso(value: Any, name: str) -> str | None:
    at = aware(value, name, utc_if_naive=True)
    return at.isoformat() if at else None


def map_woocommerce(topic: str, payload: Any) -> OrderEvent | Ignored:
    if not topic.startswith("order.") or topic in IGNORED_TOPICS:
        return Ignored("topic", {"topic": topic})
    order = as_object(payload)
    order_id = platform_order_id("woocommerce", order.get("id"))
    raw_status = order.get("status")
    status = STATUS.get(raw_status) if isinstance(raw_status, str) else None
    if status is None:
        shown = f"{raw_status[:40]!r}" if isinstance(raw_status, str) else type(raw_status).__name__
        detail = {"order_id": order_id, "field": "status", "problem": f"unknown WooCommerce status {shown}"}
        return Ignored("unknown_status", detail)
    billing = _obj(order.get("billing"))
    shipping = _obj(order.get("shipping"))
    phone = first_phone(
        [(billing.get("phone"), billing.get("country")), (shipping.get("phone"), shipping.get("country"))]
    )
    if phone is None:
        return Ignored("no_phone", {"order_id": order_id})
    items = order.get("line_items") or [{}]
    first_item = _obj(items[0]) if isinstance(items, list) else {}
    customer = text(order.get("customer_id"))
    name = " ".join(p for p in (text(billing.get("first_name")), text(billing.get("last_name"))) if p)
    modified = aware(order.get("date_modified_gmt"), "date_modified_gmt", utc_if_naive=True)
    record = {
        "order_id": order_id,
        "buyer_id": customer if customer not in (None, "0") else phone,  # 0: a guest checkout
        "phone": phone,
        "status": status,
        "created_at": _utc_iso(order.get("date_created_gmt"), "date_created_gmt"),
        "paid_at": _utc_iso(order.get("date_paid_gmt"), "date_paid_gmt"),
        "amount": text(order.get("total")),
        "currency": text(order.get("currency")),
        "payment_method": "cod" if order.get("payment_method") == "cod" else "online",
        "buyer_name": name or None,
        "item_title": text(first_item.get("name")),
        "pay_url": text(order.get("payment_url")),
    }
    return OrderEvent(order_id, compact_record(record), full=True, updated_at=modified, kind=topic)


def _verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> datetime | None:
    verify_woocommerce(secret, headers, body)
    return None


PLATFORM = Platform(
    route="woocommerce",
    verify=_verify,
    map=lambda headers, payload: map_woocommerce(topic(headers, "x-wc-webhook-topic"), payload),
    # Its delivery id hashes the webhook and the second: neither stable nor unique. The topic only.
    delivery_id=lambda headers: id_part(headers.get("x-wc-webhook-topic", "")),
    secret_setting="woocommerce_webhook_secret_arn",
    stack_secret="WooCommerceWebhookSecret",
    is_ping=is_woocommerce_ping,
)
