"""Webhook requests as a Lambda Function URL delivers them (payload format 2.0), signed with test secrets.

Used by the tests, the bench and ``nudge demo``; ``python -m tests.webhook_events`` rewrites the
``events/function-url-*.json`` examples from the payload files next to them. The bodies are
compact JSON as the platforms send it (WooCommerce also escapes "/" as PHP's json_encode does).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nudge.domain.webhooks import sign_shopify, sign_standard, sign_woocommerce
from nudge_local.pipeline import function_url_event

EVENTS = Path(__file__).resolve().parents[1] / "events"

# Test secrets only (the events/ examples are signed with these). Never real ones.
STANDARD_SECRET = "whsec_" + base64.b64encode(b"nudge-test-standard-webhooks-key-32b!").decode()
SHOPIFY_SECRET = "shpss_test_client_secret_0123456789"
WOOCOMMERCE_SECRET = "wc_test_secret_0123456789"


def compact(obj: Any, *, php: bool = False) -> bytes:
    """JSON as senders put it on the wire; ``php``: WooCommerce's wp_json_encode escaping."""
    if php:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def standard_event(
    payload: Any,
    *,
    at: datetime,
    webhook_id: str | None = None,
    secret: str = STANDARD_SECRET,
    base64_body: bool = False,
) -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else compact(payload)
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    ts = int(at.timestamp())
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(secret, webhook_id, ts, body),
        "user-agent": "Svix-Webhooks/1.0",
    }
    return function_url_event("/webhooks/nudge", body, headers, base64_body=base64_body, at=at)


def shopify_event(
    payload: Any,
    topic: str,
    *,
    at: datetime,
    event_id: str | None = None,
    webhook_id: str | None = None,
    secret: str = SHOPIFY_SECRET,
) -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else compact(payload)
    headers = {
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": sign_shopify(secret, body),
        "x-shopify-shop-domain": "nudge-demo.myshopify.com",
        "x-shopify-api-version": "2025-01",
        "x-shopify-webhook-id": webhook_id or str(uuid.uuid4()),
        "x-shopify-event-id": event_id or str(uuid.uuid4()),
        "x-shopify-triggered-at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "user-agent": "Shopify-Captain-Hook",
    }
    return function_url_event("/webhooks/shopify", body, headers, at=at)


def woocommerce_event(
    payload: Any, topic: str, *, at: datetime, secret: str = WOOCOMMERCE_SECRET
) -> dict[str, Any]:
    body = payload if isinstance(payload, bytes) else compact(payload, php=True)
    resource, _, event = topic.partition(".")
    headers = {
        "x-wc-webhook-source": "https://shop.example.com/",
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-resource": resource,
        "x-wc-webhook-event": event,
        "x-wc-webhook-signature": sign_woocommerce(secret, body),
        "x-wc-webhook-id": "16",
        "x-wc-webhook-delivery-id": uuid.uuid4().hex,
        "user-agent": "WooCommerce/10.2.1 Hookshot (WordPress/6.8.3)",
    }
    return function_url_event("/webhooks/woocommerce", body, headers, at=at)


def woocommerce_ping_event(*, at: datetime, webhook_id: int = 16) -> dict[str, Any]:
    """The unsigned creation ping; Function URLs base64-encode form bodies."""
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "user-agent": "WooCommerce/10.2.1 Hookshot (WordPress/6.8.3)",
        "accept-encoding": "deflate, gzip, br",
    }
    body = f"webhook_id={webhook_id}".encode()
    return function_url_event("/webhooks/woocommerce", body, headers, base64_body=True, at=at)


def load(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


# The examples in events/: (file, builder). Fixed ids and times, so the files are stable.
def examples() -> dict[str, dict[str, Any]]:
    created = load("standard-order-created.json")
    paid = load("standard-order-paid.json")
    std_at = datetime.fromisoformat(created["timestamp"])
    std_paid_at = datetime.fromisoformat(paid["timestamp"])
    sh_create = datetime(2025, 3, 10, 14, 15, 4, tzinfo=UTC)
    return {
        "function-url-standard-order-created.json": standard_event(
            created, at=std_at, webhook_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        ),
        "function-url-standard-order-paid.json": standard_event(
            paid, at=std_paid_at, webhook_id="msg_2KWPBgLlAfxdpx2AI54pPJ85f5X"
        ),
        "function-url-shopify-orders-create.json": shopify_event(
            load("shopify-orders-create.json"),
            "orders/create",
            at=sh_create,
            webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            event_id="7b8c9d0a-1234-5678-90ab-cdef12345678",
        ),
        "function-url-shopify-orders-paid.json": shopify_event(
            load("shopify-orders-paid.json"),
            "orders/paid",
            at=datetime(2025, 3, 12, 20, 40, 12, tzinfo=UTC),
            webhook_id="0c9e2f7a-4c1d-4a55-9e0b-6f1d2c3b4a59",
            event_id="8c9d0a1b-2345-6789-01bc-def123456789",
        ),
        "function-url-shopify-orders-cancelled.json": shopify_event(
            load("shopify-orders-cancelled.json"),
            "orders/cancelled",
            at=datetime(2025, 3, 14, 1, 5, 0, tzinfo=UTC),
            webhook_id="5d4c3b2a-1f0e-4d9c-8b7a-695847362514",
            event_id="9d0a1b2c-3456-7890-12cd-ef1234567890",
        ),
        "function-url-woocommerce-order-created.json": woocommerce_event(
            load("woocommerce-order-created.json"),
            "order.created",
            at=datetime(2025, 3, 11, 1, 2, 48, tzinfo=UTC),
        ),
        "function-url-woocommerce-order-updated.json": woocommerce_event(
            load("woocommerce-order-updated.json"),
            "order.updated",
            at=datetime(2025, 3, 12, 6, 31, 10, tzinfo=UTC),
        ),
        "function-url-woocommerce-ping.json": woocommerce_ping_event(
            at=datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
        ),
    }


def _stable(event: dict[str, Any], name: str) -> dict[str, Any]:
    event["requestContext"]["requestId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    if "x-wc-webhook-delivery-id" in event["headers"]:
        event["headers"]["x-wc-webhook-delivery-id"] = uuid.uuid5(uuid.NAMESPACE_DNS, name).hex
    return event


if __name__ == "__main__":
    for name, event in examples().items():
        (EVENTS / name).write_text(json.dumps(_stable(event, name), indent=2) + "\n", encoding="utf-8")
        print(f"wrote events/{name}")
