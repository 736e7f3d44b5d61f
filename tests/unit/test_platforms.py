"""Platform payloads -> order records (nudge.domain.platforms), on the documented payloads in events/."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from nudge.domain.models import Order
from nudge.domain.orders import parse_order
from nudge.domain.platforms import Ignored, MappingError, OrderEvent
from nudge.domain.platforms.shopify import map_shopify
from nudge.domain.platforms.standard import map_standard
from nudge.domain.platforms.woocommerce import map_woocommerce

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def valid(event: OrderEvent) -> Order:
    order = parse_order(event.record)
    assert isinstance(order, Order), order
    return order


# ---------------------------------------------------------------------------------------- Shopify


def test_shopify_orders_create():
    event = map_shopify("orders/create", load("shopify-orders-create.json"))
    assert isinstance(event, OrderEvent) and event.full
    assert event.record == {
        "order_id": "shopify:5921873412345",  # kept apart by source (DECISIONS: order ids by source)
        "buyer_id": "7390116528370",
        "phone": "+16135550142",
        "status": "unpaid",
        "created_at": "2025-03-10T10:15:02-04:00",
        "amount": "408.00",
        "currency": "CAD",
        "payment_method": "online",
        "buyer_name": "Jane Doe",
        "item_title": "Ceramic Teapot",
        "pay_url": "https://nudge-demo.myshopify.com/60231123456/orders/f4e3d2c1b0a99887766554433221100f/authenticate?key=0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }
    assert event.updated_at == datetime(2025, 3, 10, 10, 15, 4, tzinfo=timezone(timedelta(hours=-4)))
    assert valid(event).status == "unpaid"


def test_shopify_orders_paid_is_paid_with_its_time_and_newer():
    created = map_shopify("orders/create", load("shopify-orders-create.json"))
    paid = map_shopify("orders/paid", load("shopify-orders-paid.json"))
    assert paid.record["status"] == "paid" and paid.record["paid_at"] == "2025-03-12T16:40:11-04:00"
    assert paid.updated_at > created.updated_at
    assert valid(paid).paid_at is not None


def test_shopify_orders_cancelled_is_closed_and_cash_on_delivery():
    event = map_shopify("orders/cancelled", load("shopify-orders-cancelled.json"))
    assert event.record["status"] == "closed"
    assert event.record["payment_method"] == "cod"
    assert event.record["phone"] == "+8613800138000" and event.record["currency"] == "CNY"
    valid(event)


@pytest.mark.parametrize(
    ("financial", "status"),
    [
        ("pending", "unpaid"),
        ("authorized", "unpaid"),
        ("partially_paid", "unpaid"),
        ("paid", "paid"),
        ("partially_refunded", "paid"),
        ("refunded", "paid"),
        ("voided", "closed"),
    ],
)
def test_shopify_financial_status(financial, status):
    payload = load("shopify-orders-create.json") | {"financial_status": financial}
    assert map_shopify("orders/updated", payload).record["status"] == status


def test_shopify_cancelled_at_wins_over_a_paid_status():
    payload = load("shopify-orders-paid.json") | {"cancelled_at": "2025-03-13T10:00:00-04:00"}
    assert map_shopify("orders/updated", payload).record["status"] == "closed"


def test_shopify_unknown_financial_status_is_acknowledged_naming_the_field():
    # Not refused: Shopify removes a webhook whose deliveries keep failing (DECISIONS: unknown status).
    payload = load("shopify-orders-create.json") | {"financial_status": "mystery"}
    assert map_shopify("orders/updated", payload) == Ignored(
        "unknown_status",
        {"order_id": "shopify:5921873412345", "field": "financial_status", "problem": "unknown 'mystery'"},
    )
    assert map_shopify("orders/updated", payload | {"financial_status": None}).reason == "unknown_status"


def test_shopify_phone_falls_back_and_reads_national_numbers_with_the_address_country():
    payload = copy.deepcopy(load("shopify-orders-create.json"))
    payload["phone"] = None
    payload["customer"]["phone"] = None
    payload["billing_address"]["phone"] = "(613) 555-0199"
    assert map_shopify("orders/create", payload).record["phone"] == "+16135550199"
    payload["billing_address"]["phone"] = ""
    payload["shipping_address"] = payload["shipping_address"] | {
        "phone": "138 0013 8000",
        "country_code": "CN",
    }
    assert map_shopify("orders/create", payload).record["phone"] == "+8613800138000"
    payload["shipping_address"]["phone"] = None
    ignored = map_shopify("orders/create", payload)
    assert isinstance(ignored, Ignored) and ignored.reason == "no_phone"


def test_shopify_order_phone_first_and_buyer_id_falls_back_to_the_phone():
    payload = copy.deepcopy(load("shopify-orders-create.json"))
    payload["phone"] = "+16135550100"
    payload["customer"] = None
    record = map_shopify("orders/create", payload).record
    assert record["phone"] == "+16135550100" and record["buyer_id"] == "+16135550100"
    assert record["buyer_name"] == "Jane Doe"  # from the billing address


def test_shopify_other_topics_are_acknowledged_not_stored():
    assert isinstance(map_shopify("products/update", {"id": 1}), Ignored)
    assert isinstance(map_shopify("orders/delete", {"id": 1}), Ignored)


def test_shopify_body_that_is_not_an_object():
    with pytest.raises(MappingError) as exc:
        map_shopify("orders/create", [1, 2])
    assert exc.value.field == "record"


# ------------------------------------------------------------------------------------ WooCommerce


def test_woocommerce_order_created():
    event = map_woocommerce("order.created", load("woocommerce-order-created.json"))
    assert event.record == {
        "order_id": "woocommerce:4217",
        "buyer_id": "57",
        "phone": "+8613800138000",
        "status": "unpaid",
        "created_at": "2025-03-11T01:02:45+00:00",
        "amount": "408.00",
        "currency": "CNY",
        "payment_method": "online",
        "buyer_name": "Wei Zhang",
        "item_title": "Ceramic Teapot",
        "pay_url": "https://shop.example.com/checkout/order-pay/4217/?pay_for_order=true&key=wc_order_Qm7pX2rT9bLzK",
    }
    assert event.updated_at == datetime(2025, 3, 11, 1, 2, 47, tzinfo=UTC)
    valid(event)


def test_woocommerce_order_updated_is_paid_and_newer():
    created = map_woocommerce("order.created", load("woocommerce-order-created.json"))
    updated = map_woocommerce("order.updated", load("woocommerce-order-updated.json"))
    assert updated.record["status"] == "paid"
    assert updated.record["paid_at"] == "2025-03-12T06:31:08+00:00"
    assert updated.updated_at > created.updated_at
    valid(updated)


@pytest.mark.parametrize(
    ("wc", "status"),
    [
        ("pending", "unpaid"),
        ("on-hold", "unpaid"),
        ("checkout-draft", "unpaid"),
        ("processing", "paid"),
        ("completed", "paid"),
        ("refunded", "paid"),
        ("cancelled", "closed"),
        ("failed", "closed"),
        ("trash", "closed"),
    ],
)
def test_woocommerce_status(wc, status):
    payload = load("woocommerce-order-created.json") | {"status": wc}
    assert map_woocommerce("order.updated", payload).record["status"] == status


def test_woocommerce_guest_cod_and_national_phone():
    payload = copy.deepcopy(load("woocommerce-order-created.json"))
    payload["customer_id"] = 0
    payload["payment_method"] = "cod"
    payload["billing"]["phone"] = "138 0013 8000"
    record = map_woocommerce("order.created", payload).record
    assert record["phone"] == "+8613800138000"
    assert record["buyer_id"] == "+8613800138000"
    assert record["payment_method"] == "cod"


def test_woocommerce_refusals_name_the_field():
    # A status of the shop's own (a plugin's) is acknowledged, not refused (DECISIONS: unknown status).
    custom = map_woocommerce(
        "order.updated", load("woocommerce-order-created.json") | {"status": "wc-custom"}
    )
    assert isinstance(custom, Ignored) and custom.reason == "unknown_status"
    assert custom.detail["field"] == "status" and custom.detail["order_id"] == "woocommerce:4217"
    with pytest.raises(MappingError) as exc:
        map_woocommerce(
            "order.updated", load("woocommerce-order-created.json") | {"date_modified_gmt": "soon"}
        )
    assert exc.value.field == "date_modified_gmt"
    event = map_woocommerce(
        "order.updated", load("woocommerce-order-created.json") | {"date_created_gmt": None}
    )
    assert parse_order(event.record).field == "created_at"  # the shared validator names it


def test_woocommerce_deleted_and_no_phone_are_acknowledged():
    assert isinstance(map_woocommerce("order.deleted", {"id": 4217}), Ignored)
    payload = copy.deepcopy(load("woocommerce-order-created.json"))
    payload["billing"]["phone"] = ""
    assert map_woocommerce("order.created", payload) == Ignored("no_phone", {"order_id": "woocommerce:4217"})


# ------------------------------------------------------------------------------ Standard Webhooks


def test_standard_order_created_is_the_record_itself():
    body = load("standard-order-created.json")
    event = map_standard(body)
    assert event.full and event.record == body["data"]
    assert event.updated_at == datetime.fromisoformat(body["timestamp"])
    valid(event)


def test_standard_order_paid_needs_only_the_id():
    event = map_standard(load("standard-order-paid.json"))
    assert not event.full
    assert event.record == {"order_id": "web-1001", "status": "paid", "paid_at": "2026-11-23T10:02:40+08:00"}
    closed = map_standard(
        {"type": "order.closed", "timestamp": "2026-11-23T10:00:00Z", "data": {"order_id": "x"}}
    )
    assert closed.record == {"order_id": "x", "status": "closed"}


def test_standard_paid_with_a_whole_record_takes_it_whole_with_the_events_status():
    body = load("standard-order-created.json")
    event = map_standard({**body, "type": "order.paid", "data": body["data"]})
    assert event.full and event.record["status"] == "paid" and event.record["buyer_id"] == "c-2001"


def test_standard_drops_fields_that_are_not_in_the_order_record():
    body = load("standard-order-created.json")
    body["data"]["injected"] = "x" * 1000
    assert "injected" not in map_standard(body).record


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "order.shipped", "data": {"order_id": "x"}}, "type"),
        ({"data": {"order_id": "x"}}, "type"),
        ({"type": "order.paid", "data": {}}, "data.order_id"),
        ({"type": "order.paid", "data": {"order_id": 7}}, "data.order_id"),
        ({"type": "order.paid"}, "data"),
        ({"type": "order.paid", "timestamp": "yesterday", "data": {"order_id": "x"}}, "timestamp"),
        ({"type": "order.paid", "timestamp": "2026-11-23T10:00:00", "data": {"order_id": "x"}}, "timestamp"),
        ({"type": "order.paid", "data": {"order_id": "x", "paid_at": "2026-11-23"}}, "data.paid_at"),
        ([], "record"),
    ],
)
def test_standard_refusals_name_the_field(body, field):
    with pytest.raises(MappingError) as exc:
        map_standard(body)
    assert exc.value.field == field


def test_standard_record_breaking_the_contract_is_named_by_the_shared_validator():
    body = load("standard-order-created.json")
    body["data"]["amount"] = "-3"
    assert parse_order(map_standard(body).record).field == "amount"


def test_shopify_passes_over_a_landline_for_a_mobile_further_down():
    payload = copy.deepcopy(load("shopify-orders-create.json"))
    payload["phone"] = None
    payload["customer"]["phone"] = None
    payload["billing_address"] = payload["billing_address"] | {"phone": "010 6552 9988", "country_code": "CN"}
    payload["shipping_address"] = payload["shipping_address"] | {
        "phone": "138 0013 8000",
        "country_code": "CN",
    }
    assert map_shopify("orders/create", payload).record["phone"] == "+8613800138000"
    payload["shipping_address"]["phone"] = (
        None  # only the landline: kept, the planner says why it is not texted
    )
    assert map_shopify("orders/create", payload).record["phone"] == "+861065529988"
