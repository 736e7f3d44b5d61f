"""The ingest function through Function URL events, on moto (stack from template.yaml).

Signatures before parsing, 401/400/413/5xx as promised, one write per delivery, never backwards,
and no phone or name in the logs, even on errors.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError

from nudge.domain.webhooks import sign_standard
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests import webhook_events as we
from tests.builders import SHANGHAI, order_record

pytestmark = pytest.mark.aws

AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
ENV = {"LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "true"}
PII = ("+8613800138000", "13800138000", "0013 8000", "张三", "Zhang", "Jane", "+16135550142", "6135550142")


def order(order_id: str = "web-1", **extra: Any) -> dict[str, Any]:
    fields = {
        "buyer_id": "c-1",
        "created_at": "2026-11-23T07:31:02+08:00",
        "amount": "199.00",
        "buyer_name": "张三",
    }
    return order_record(order_id=order_id, **{**fields, **extra})


def created(order_id: str = "web-1", at: datetime = AT, **extra: Any) -> dict[str, Any]:
    return {"type": "order.created", "timestamp": at.isoformat(), "data": order(order_id, **extra)}


def paid(order_id: str = "web-1", at: datetime = AT) -> dict[str, Any]:
    return {"type": "order.paid", "timestamp": at.isoformat(), "data": {"order_id": order_id}}


class Stack:
    def __init__(self, p: LocalPipeline):
        self.p = p
        p.set_webhook_secret("shopify", we.SHOPIFY_SECRET)
        p.set_webhook_secret("woocommerce", we.WOOCOMMERCE_SECRET)
        self.secret = p.webhook_secret("nudge")

    def send(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = self.p.ingest(event)
        return response["statusCode"], json.loads(response["body"] or "{}")

    def standard(self, payload: Any, *, at: datetime | None = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        if isinstance(payload, bytes) and not payload.isascii():
            kw["base64_body"] = True  # Function URLs base64-encode what is not text
        return self.send(we.standard_event(payload, at=at or self.p.clock.now(), secret=self.secret, **kw))

    def orders(self) -> dict[str, dict[str, Any]]:
        table = self.p.dynamodb.Table(self.p.resources.orders_table)
        return {i["order_id"]: i for i in table.scan(ConsistentRead=True)["Items"]}

    def markers(self) -> list[str]:
        table = self.p.dynamodb.Table(self.p.resources.idempotency_table)
        return [i["id"] for i in table.scan(ConsistentRead=True)["Items"] if i["id"].startswith("ingest#")]


@pytest.fixture
def stack():
    with LocalPipeline(clock=FakeClock(AT), env=ENV) as p:
        yield Stack(p)


class Logs:
    """What the functions log, as the JSON lines Powertools writes (its own formatter)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger("nudge")  # Powertools' logger for service "nudge"
        formatter = self.logger.handlers[0].formatter if self.logger.handlers else None
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter)
        self.logger.addHandler(self.handler)
        # One process runs every test: an earlier stack may have left the shared logger at ERROR.
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.startswith("{")]


@pytest.fixture
def logs(stack):
    captured = Logs()
    yield captured
    captured.close()


def log_lines(logs: Logs) -> list[dict[str, Any]]:
    return logs.lines()


# ------------------------------------------------------------------------------------------ 401


def refusals(s: Stack) -> dict[str, dict[str, Any]]:
    body = we.compact(created())
    now = s.p.clock.now()
    good = we.standard_event(body, at=now, secret=s.secret)
    forged = copy.deepcopy(good)
    forged["headers"]["webhook-signature"] = "v1," + base64.b64encode(b"z" * 32).decode()
    wrong_secret = we.standard_event(body, at=now, secret="whsec_" + base64.b64encode(b"w" * 32).decode())
    missing = copy.deepcopy(good)
    del missing["headers"]["webhook-signature"]
    old = we.standard_event(body, at=now - timedelta(minutes=6), secret=s.secret)
    future = we.standard_event(body, at=now + timedelta(minutes=6), secret=s.secret)
    changed = copy.deepcopy(good)
    changed["body"] = changed["body"].replace("199.00", "1.00")
    shopify_forged = we.shopify_event(
        we.load("shopify-orders-create.json"), "orders/create", at=now, secret="x"
    )
    woo_unsigned = we.woocommerce_event(we.load("woocommerce-order-created.json"), "order.created", at=now)
    del woo_unsigned["headers"]["x-wc-webhook-signature"]
    return {
        "bad_signature/forged": forged,
        "bad_signature/wrong_secret": wrong_secret,
        "missing_headers/standard": missing,
        "timestamp_too_old/6 minutes": old,
        "timestamp_in_future/6 minutes": future,
        "bad_signature/body changed": changed,
        "bad_signature/shopify": shopify_forged,
        "missing_headers/woocommerce": woo_unsigned,
    }


def test_unauthentic_requests_get_401_write_nothing_and_log_only_route_and_reason(stack, logs):
    logs.clear()
    for name, event in refusals(stack).items():
        status, body = stack.send(event)
        assert status == 401, name
        assert body == {"result": "unauthorized", "error": "signature missing, wrong or stale"}, name
    assert stack.orders() == {} and stack.markers() == []
    logs = [line for line in log_lines(logs) if line.get("message") == "webhook"]
    assert [f"{line['reason']}" for line in logs] == [name.split("/")[0] for name in refusals(stack)]
    for line in logs:
        assert line["answer"] == "unauthorized" and line["route"] in ("nudge", "shopify", "woocommerce")
        assert "order_id" not in line and "field" not in line


def test_a_replayed_request_is_refused_once_its_five_minutes_are_over(stack):
    event = we.standard_event(we.compact(created()), at=AT, secret=stack.secret)
    assert stack.send(event)[0] == 200
    stack.p.clock.advance(6 * 60)
    assert stack.send(event) == (
        401,
        {"result": "unauthorized", "error": "signature missing, wrong or stale"},
    )


def test_a_route_whose_secret_is_not_set_answers_401():
    with LocalPipeline(clock=FakeClock(AT), env=ENV) as p:
        event = we.shopify_event(we.load("shopify-orders-create.json"), "orders/create", at=AT)
        logs = Logs()
        try:
            assert p.ingest(event)["statusCode"] == 401
            assert [line["reason"] for line in logs.lines() if line.get("message") == "webhook"] == [
                "secret_not_set"
            ]
        finally:
            logs.close()
        p.set_webhook_secret("shopify", we.SHOPIFY_SECRET)
        assert p.ingest(event)["statusCode"] == 200


# ------------------------------------------------------------------------------------- accepted


def test_a_signed_order_is_stored_and_the_same_delivery_twice_is_one_write(stack):
    body = we.compact(created())
    event = we.standard_event(body, at=AT, secret=stack.secret, webhook_id="msg_1")
    writes = []
    client = stack.p.ingest_app.store._client if hasattr(stack.p, "ingest_app") else None
    assert client is None  # loaded on the first request
    assert stack.send(event) == (200, {"result": "accepted", "order_id": "web-1"})
    stack.p.ingest_app.store._client.meta.events.register(
        "after-call.dynamodb", lambda http_response, **_: writes.append(http_response.status_code)
    )
    assert stack.send(event) == (200, {"result": "duplicate", "order_id": "web-1"})
    assert writes == [400]  # the duplicate's transaction was cancelled: nothing written
    item = stack.orders()["web-1"]
    assert item["status"] == "unpaid" and item["phone"] == "+8613800138000"
    # A delivery is its signed id and its signed body's digest (DECISIONS: deliveries are what they carry).
    assert stack.markers() == ["ingest#nudge#msg_1#" + hashlib.sha256(body).hexdigest()[:32]]


def test_base64_bodies_are_decoded_before_the_signature_check(stack):
    assert stack.standard(created(), base64_body=True) == (200, {"result": "accepted", "order_id": "web-1"})


def test_paid_before_created_ends_paid(stack):
    assert stack.standard(paid(at=AT + timedelta(minutes=1)))[1]["result"] == "accepted"
    assert stack.standard(created(at=AT))[1]["result"] == "accepted"  # fills the missing fields
    item = stack.orders()["web-1"]
    assert item["status"] == "paid" and item["created_at"] == "2026-11-23T07:31:02+08:00"


def test_an_old_update_after_paid_is_still_paid(stack):
    stack.standard(created(at=AT - timedelta(minutes=3)))
    stack.standard(paid(at=AT - timedelta(minutes=1)))
    update = {**created(at=AT - timedelta(minutes=2), amount="150.00"), "type": "order.updated"}
    assert stack.standard(update) == (200, {"result": "unchanged", "order_id": "web-1"})
    item = stack.orders()["web-1"]
    assert item["status"] == "paid" and item["amount"] == 199


def test_shopify_events_from_the_docs_reordered_end_paid(stack):
    paid_event = we.load("function-url-shopify-orders-paid.json")
    create_event = we.load("function-url-shopify-orders-create.json")
    assert stack.send(paid_event) == (200, {"result": "accepted", "order_id": "shopify:5921873412345"})
    assert stack.send(create_event) == (200, {"result": "unchanged", "order_id": "shopify:5921873412345"})
    item = stack.orders()["shopify:5921873412345"]
    assert item["status"] == "paid" and item["phone"] == "+16135550142" and item["created_at"]
    cancelled = we.load("function-url-shopify-orders-cancelled.json")
    assert stack.send(cancelled)[0] == 200
    assert stack.orders()["shopify:5921873499999"]["status"] == "closed"


def test_woocommerce_ping_created_and_updated(stack):
    assert stack.send(we.load("function-url-woocommerce-ping.json")) == (200, {"result": "ping"})
    assert stack.send(we.load("function-url-woocommerce-order-updated.json"))[1]["result"] == "accepted"
    assert stack.send(we.load("function-url-woocommerce-order-created.json"))[1]["result"] == "unchanged"
    item = stack.orders()["woocommerce:4217"]
    assert item["status"] == "paid" and item["created_at"] == "2025-03-11T01:02:45+00:00"
    # WooCommerce has no stable delivery id: the same signed body again is the same delivery.
    assert stack.send(we.load("function-url-woocommerce-order-updated.json"))[1]["result"] == "duplicate"


def test_the_woocommerce_ping_needs_no_secret():
    with LocalPipeline(clock=FakeClock(AT), env=ENV) as p:
        assert p.ingest(we.load("function-url-woocommerce-ping.json"))["statusCode"] == 200


def test_an_order_without_a_phone_is_acknowledged_not_stored(stack):
    payload = we.load("woocommerce-order-created.json")
    payload["billing"]["phone"] = ""
    status, body = stack.send(we.woocommerce_event(payload, "order.created", at=AT))
    assert (status, body) == (
        200,
        {"result": "ignored", "order_id": "woocommerce:4217", "reason": "no_phone"},
    )
    assert stack.orders() == {}


# ------------------------------------------------------------------------------------------ 4xx


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"type": "order.created", "data": ', "body"),
        (b"\xff\xfe not utf-8", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
        ({"type": "order.shipped", "data": {"order_id": "x"}}, "type"),
        (created(amount="-5"), "amount"),
        (created(phone=None), "phone"),
        (created(created_at="2026-11-23T07:31:02"), "created_at"),
        (created(status="pending"), "status"),
        ({"type": "order.paid", "data": {"order_id": "web-1", "paid_at": "noon"}}, "data.paid_at"),
    ],
)
def test_bad_bodies_get_400_naming_the_field_and_write_nothing(stack, payload, field):
    status, body = stack.standard(payload)
    assert status == 400 and body["result"] == "invalid" and body["field"] == field
    assert body["error"].startswith(f"{field}: ")
    assert "Traceback" not in json.dumps(body)
    assert stack.orders() == {} and stack.markers() == []


def test_a_two_megabyte_body_gets_413_and_writes_nothing(stack):
    big = created(item_title="x" * (2 * 1024 * 1024))
    for event in (
        we.standard_event(big, at=AT, secret=stack.secret),
        we.standard_event(big, at=AT, secret=stack.secret, base64_body=True),
    ):
        assert stack.send(event) == (413, {"result": "too_large", "error": "body over 1048576 bytes"})
    assert stack.orders() == {}


def test_other_paths_and_methods_are_not_found(stack):
    event = we.standard_event(created(), at=AT, secret=stack.secret)
    assert stack.send({**event, "rawPath": "/webhooks/other"})[0] == 404
    get = copy.deepcopy(event)
    get["requestContext"]["http"]["method"] = "GET"
    assert stack.send(get)[0] in (404, 405)
    assert stack.orders() == {}


# ------------------------------------------------------------------------------------------ 5xx


def test_5xx_only_when_storing_failed_and_the_retry_is_stored(stack):
    stack.standard(paid("warm-up"))  # loads the function
    client = stack.p.ingest_app.store._client

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "TransactWriteItems")

    client.meta.events.register_first("before-call.dynamodb.TransactWriteItems", throttle, unique_id="t")
    event = we.standard_event(created(), at=AT, secret=stack.secret, webhook_id="msg_retry")
    status, body = stack.send(event)
    assert status == 503 and body["result"] == "unavailable" and "Traceback" not in json.dumps(body)
    client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="t")
    assert stack.send(event) == (200, {"result": "accepted", "order_id": "web-1"})


def test_an_unexpected_error_is_a_500_without_details_or_order_data_in_the_logs(stack, logs, monkeypatch):
    stack.standard(paid("warm-up"))

    def boom(*_: Any, **__: Any) -> None:
        raise KeyError("+8613800138000 张三")

    monkeypatch.setattr(stack.p.ingest_app.store, "apply", boom)
    logs.clear()
    status, body = stack.standard(created())
    assert (status, body) == (500, {"result": "error", "error": "internal error; retry"})
    out = logs.text()
    assert "KeyError" in out and not any(p in out for p in PII)


# ------------------------------------------------------------------------------------------ logs


def test_phones_and_names_never_reach_the_logs(stack, logs):
    logs.clear()
    stack.standard(created())
    stack.standard(created(amount="-1"))
    stack.standard(created(buyer_name=["张三"]))
    stack.standard(created(phone=13800138000))
    stack.send(we.load("function-url-shopify-orders-create.json"))
    stack.send(we.load("function-url-woocommerce-order-created.json"))
    for event in refusals(stack).values():
        stack.send(event)
    out = logs.text()
    assert '"message":"webhook"' in out.replace(" ", "")
    assert not any(p in out for p in PII), [p for p in PII if p in out]


# ------------------------------------------------------------------------------------ template


def test_template_ingest_function_is_public_capped_and_least_privilege():
    from pathlib import Path

    from nudge_local.moto_env import evaluate, load_template

    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    fn = template["Resources"]["IngestFunction"]["Properties"]
    assert fn["FunctionUrlConfig"] == {"AuthType": "NONE"}
    assert fn["Timeout"] <= 10  # Shopify waits 5 s
    physical = {"OrdersTable": {"Ref": "orders"}, "IdempotencyTable": {"Ref": "idem", "Arn": "arn:idem"}}
    for lid in ("StandardWebhooksSecret", "ShopifyWebhookSecret", "WooCommerceWebhookSecret"):
        physical[lid] = {"Ref": f"arn:secret:{lid}"}
    assert evaluate(template, fn["ReservedConcurrentExecutions"], physical=physical) == "5"
    capped_off = evaluate(
        template,
        fn["ReservedConcurrentExecutions"],
        parameters={"IngestReservedConcurrency": "0"},
        physical=physical,
    )
    assert capped_off is not None and not isinstance(capped_off, str | int)  # AWS::NoValue: no reservation
    statements = evaluate(template, fn["Policies"], physical=physical)[0]["Statement"]
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"dynamodb:UpdateItem", "dynamodb:PutItem", "secretsmanager:GetSecretValue"}
    assert all("*" not in str(s["Resource"]) for s in statements)
    generated = template["Resources"]["StandardWebhooksSecret"]["Properties"]["GenerateSecretString"]
    assert generated["ExcludePunctuation"] is True  # letters and digits: all base64, so whsec_ + value works
    for lid in ("ShopifyWebhookSecret", "WooCommerceWebhookSecret"):
        props = template["Resources"][lid]["Properties"]
        assert "SecretString" not in props and "GenerateSecretString" not in props  # 401 until pasted


# ---------------------------------------------------------------------- end to end, with the planner

SH = SHANGHAI
MORNING = "09:50-10:40@11:00"
WINDOW_AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday, the morning window opens
PHONE = "+8613800138000"


@pytest.fixture
def pipeline():
    quiet = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalPipeline(clock=FakeClock(datetime(2026, 11, 23, 7, 31, 5, tzinfo=SH)), env=quiet) as p:
        yield Stack(p)


def shop_order_created(s: Stack, order_id: str = "web-1001") -> tuple[int, dict[str, Any]]:
    body = created(order_id, at=s.p.clock.now(), created_at="2026-11-23T07:31:02+08:00")
    return s.standard(body, webhook_id=f"msg_created_{order_id}")


def test_a_signed_order_created_is_texted_in_the_next_window(pipeline):
    assert shop_order_created(pipeline) == (200, {"result": "accepted", "order_id": "web-1001"})
    summary = pipeline.p.fire_window(MORNING, WINDOW_AT)
    assert summary["enqueued"] == 1
    pipeline.p.drain_queue()
    assert [phone for phone, _ in pipeline.p.sent_sms()] == [PHONE]


def test_an_order_paid_webhook_between_plan_and_send_stops_the_sms(pipeline):
    shop_order_created(pipeline)
    assert pipeline.p.fire_window(MORNING, WINDOW_AT)["enqueued"] == 1
    pipeline.p.clock.advance(20)  # the buyer pays before the send function gets the message
    assert pipeline.standard(paid("web-1001", at=pipeline.p.clock.now()))[1]["result"] == "accepted"
    pipeline.p.drain_queue()
    assert pipeline.p.sent_sms() == []
    assert pipeline.orders()["web-1001"]["status"] == "paid"


def test_forged_replayed_and_stale_requests_write_nothing_and_text_nobody(pipeline):
    now = pipeline.p.clock.now()
    body = we.compact(created("web-1", at=now))
    forged = we.standard_event(body, at=now, secret="whsec_" + base64.b64encode(b"f" * 32).decode())
    stale = we.standard_event(body, at=now - timedelta(minutes=6), secret=pipeline.secret)
    captured = we.standard_event(body, at=now, secret=pipeline.secret)  # signed, but only replayed later
    for event in (forged, stale):
        assert pipeline.send(event)[0] == 401
    pipeline.p.clock.advance(10 * 60)
    assert pipeline.send(captured)[0] == 401  # the replay is past its 5 minutes
    assert pipeline.orders() == {}
    assert pipeline.p.fire_window(MORNING, WINDOW_AT)["enqueued"] == 0
    pipeline.p.drain_queue()
    assert pipeline.p.sent_sms() == []


# ------------------------------------------------------------- hostile requests: 4xx, never 5xx


def _standard_with_timestamp(s: Stack, timestamp: str) -> dict[str, Any]:
    """A Standard Webhooks request correctly signed over a webhook-timestamp of any text."""
    body = we.compact(created())
    event = we.standard_event(body, at=AT, secret=s.secret, webhook_id="msg_ts")
    event["headers"]["webhook-timestamp"] = timestamp
    event["headers"]["webhook-signature"] = sign_standard(
        s.secret, "msg_ts", timestamp, body
    )  # any text, as sent
    return event


# Arabic-Indic digits spelling the current time: int() reads them, the Standard Webhooks spec does not.
NOW_IN_ARABIC_INDIC = str(int(AT.timestamp())).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


@pytest.mark.parametrize("timestamp", ["253402300800", "999999999999", "²³", NOW_IN_ARABIC_INDIC])
def test_a_webhook_timestamp_past_year_9999_or_not_ascii_digits_is_401(stack, timestamp):
    status, body = stack.send(_standard_with_timestamp(stack, timestamp))
    assert (status, body["result"]) == (401, "unauthorized")
    assert stack.orders() == {} and stack.markers() == []


def _signed(s: Stack, route: str, body: bytes, topic: str = "") -> dict[str, Any]:
    if route == "nudge":
        return we.standard_event(body, at=AT, secret=s.secret)
    if route == "shopify":
        return we.shopify_event(body, topic or "orders/create", at=AT)
    return we.woocommerce_event(body, topic or "order.created", at=AT)


@pytest.mark.parametrize("route", ["nudge", "shopify", "woocommerce"])
def test_a_signed_body_with_an_integer_too_long_to_read_is_400_on_every_route(stack, route):
    body = b'{"type":"order.created","id":' + b"7" * 5000 + b"}"  # over Python's 4300-digit limit
    status, answer = stack.send(_signed(stack, route, body))
    assert (status, answer["result"], answer["field"]) == (400, "invalid", "body")
    assert "Traceback" not in json.dumps(answer)
    assert stack.orders() == {} and stack.markers() == []


def _shopify(**change: Any) -> dict[str, Any]:
    return we.load("shopify-orders-create.json") | change


def _woo(**change: Any) -> dict[str, Any]:
    return we.load("woocommerce-order-created.json") | change


@pytest.mark.parametrize(
    ("route", "payload", "field"),
    [
        (
            "nudge",
            created(at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=5)))),
            "timestamp",
        ),
        ("nudge", created(at=datetime(9999, 12, 30, tzinfo=UTC)), "timestamp"),  # +90 days TTL overflows
        (
            "nudge",
            {**paid(), "data": {"order_id": "web-1", "paid_at": "9999-12-31T23:59:59-05:00"}},
            "data.paid_at",
        ),
        ("shopify", _shopify(updated_at="9999-12-31T23:59:59-05:00"), "updated_at"),
        ("woocommerce", _woo(date_modified_gmt="9999-12-30T00:00:00"), "date_modified_gmt"),
    ],
)
def test_an_event_time_near_year_9999_is_400_naming_the_field(stack, route, payload, field):
    body = we.compact(payload, php=route == "woocommerce")
    status, answer = stack.send(_signed(stack, route, body))
    assert (status, answer["result"], answer["field"]) == (400, "invalid", field)
    assert "year 9999" in answer["error"]
    assert stack.orders() == {} and stack.markers() == []


@pytest.mark.parametrize(
    ("route", "payload", "field"),
    [
        ("nudge", created("x" * 3000), "data.order_id"),  # over DynamoDB's 2048-byte key limit
        ("nudge", paid("訂" * 700), "data.order_id"),  # 2100 bytes in UTF-8
        ("shopify", _shopify(id=int("9" * 2100)), "id"),
        ("woocommerce", _woo(id="1" * 2100), "id"),
        ("nudge", created(item_title="x" * 500_000), "item_title"),  # over the 400 KB item limit
        ("nudge", created(buyer_name="名" * 150_000), "buyer_name"),
        ("nudge", created(buyer_flags=[f"flag-{i:06d}" for i in range(40_000)]), "buyer_flags"),
        ("nudge", created(amount="1." + "1" * 40), "amount"),  # over DynamoDB's 38 digits
        ("shopify", _shopify(line_items=[{"title": "t" * 600_000}]), "item_title"),
        ("woocommerce", _woo(payment_url="https://shop.example.com/" + "p" * 600_000), "pay_url"),
    ],
)
def test_values_dynamodb_cannot_store_are_400_naming_the_field(stack, route, payload, field):
    body = we.compact(payload, php=route == "woocommerce")
    assert len(body) < 1024 * 1024  # under the body limit: it is the item that would be too large
    status, answer = stack.send(_signed(stack, route, body))
    assert (status, answer["result"], answer["field"]) == (400, "invalid", field), answer
    assert stack.orders() == {} and stack.markers() == []


# ------------------------------------------------------------ only signed data orders the writes


@pytest.mark.parametrize("route", ["shopify", "woocommerce"])
def test_an_unsigned_triggered_at_header_never_decides_the_order_of_writes(stack, route):
    """A replayer sets X-Shopify-Triggered-At to 2199 on a signed body without its updated time:
    the later genuine payment must still win."""
    if route == "shopify":
        first = {k: v for k, v in _shopify().items() if k != "updated_at"}
        replay = we.shopify_event(first, "orders/create", at=AT)
        payment = we.load("function-url-shopify-orders-paid.json")
        order_id = "shopify:5921873412345"
    else:
        first = {k: v for k, v in _woo().items() if k != "date_modified_gmt"}
        replay = we.woocommerce_event(first, "order.created", at=AT)
        payment = we.load("function-url-woocommerce-order-updated.json")
        order_id = "woocommerce:4217"
    replay["headers"]["x-shopify-triggered-at"] = "2199-12-31T00:00:00.000Z"
    assert stack.send(replay) == (200, {"result": "accepted", "order_id": order_id})
    assert stack.send(payment) == (200, {"result": "accepted", "order_id": order_id})
    assert stack.orders()[order_id]["status"] == "paid"
    # Without a signed updated time, the created time is the version (DECISIONS: only signed data).
    assert stack.orders()[order_id]["source_updated_at"] < "2026"


# ------------------------------------------------------------------- no payment taken for a duplicate


def _woo_state(status: str, *, at: datetime, **change: Any) -> dict[str, Any]:
    created_gmt = (at - timedelta(seconds=2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    modified_gmt = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    paid = {"date_paid_gmt": modified_gmt} if status == "processing" else {}
    return _woo(status=status, date_created_gmt=created_gmt, date_modified_gmt=modified_gmt, **paid, **change)


def test_woocommerce_on_hold_then_processing_in_the_same_second_ends_paid_and_is_not_reminded(pipeline):
    at = pipeline.p.clock.now()
    on_hold = we.woocommerce_event(_woo_state("on-hold", at=at), "order.created", at=at)
    processing = we.woocommerce_event(_woo_state("processing", at=at), "order.updated", at=at)
    assert pipeline.send(on_hold) == (200, {"result": "accepted", "order_id": "woocommerce:4217"})
    assert pipeline.send(processing) == (200, {"result": "accepted", "order_id": "woocommerce:4217"})
    assert pipeline.send(processing) == (200, {"result": "duplicate", "order_id": "woocommerce:4217"})
    assert pipeline.orders()["woocommerce:4217"]["status"] == "paid"
    summary = pipeline.p.fire_window(MORNING, WINDOW_AT)
    (decision,) = [d for d in summary["decisions"] if d["order_id"] == "woocommerce:4217"]
    assert (decision["action"], decision["reason"]) == ("skip", "not_unpaid")
    pipeline.p.drain_queue()
    assert pipeline.p.sent_sms() == []


def test_the_same_woocommerce_state_unpaid_in_the_same_second_would_be_reminded(pipeline):
    """The control for the test above: the order on hold alone is texted in that window."""
    at = pipeline.p.clock.now()
    pipeline.send(we.woocommerce_event(_woo_state("on-hold", at=at), "order.created", at=at))
    assert pipeline.p.fire_window(MORNING, WINDOW_AT)["enqueued"] == 1


def test_a_delivery_id_reused_with_other_signed_content_is_not_a_duplicate(stack):
    """Shopify's event id is not signed: a replayed body under the id of a payment's delivery must
    not make the payment a duplicate. A Standard sender reusing a webhook-id is handled the same."""
    created_event = we.load("function-url-shopify-orders-create.json")
    paid_event = we.load("function-url-shopify-orders-paid.json")
    for name in ("x-shopify-event-id", "x-shopify-webhook-id"):
        created_event["headers"][name] = paid_event["headers"][name]
    created_event["headers"]["x-shopify-topic"] = "orders/paid"
    assert stack.send(created_event)[1]["result"] == "accepted"
    assert stack.send(paid_event) == (200, {"result": "accepted", "order_id": "shopify:5921873412345"})
    assert stack.send(paid_event)[1]["result"] == "duplicate"  # its own retry still is one
    assert stack.orders()["shopify:5921873412345"]["status"] == "paid"

    assert stack.standard(created("web-7"), webhook_id="msg_same")[1]["result"] == "accepted"
    assert stack.standard(paid("web-7", at=AT + timedelta(seconds=1)), webhook_id="msg_same") == (
        200,
        {"result": "accepted", "order_id": "web-7"},
    )
    assert stack.orders()["web-7"]["status"] == "paid"


# ------------------------------------------------------------------ sources never merge their ids


def test_woocommerce_order_1001_and_a_shops_own_order_1001_are_two_orders(stack):
    assert stack.standard(created("1001")) == (200, {"result": "accepted", "order_id": "1001"})
    woo = we.woocommerce_event(_woo(id=1001, status="processing"), "order.updated", at=AT)
    assert stack.send(woo) == (200, {"result": "accepted", "order_id": "woocommerce:1001"})
    shop = we.shopify_event(_shopify(id=1001, financial_status="paid"), "orders/paid", at=AT)
    assert stack.send(shop) == (200, {"result": "accepted", "order_id": "shopify:1001"})
    orders = stack.orders()
    assert {k: v["status"] for k, v in orders.items()} == {
        "1001": "unpaid",  # the shop's own order is not paid by another source's order 1001
        "woocommerce:1001": "paid",
        "shopify:1001": "paid",
    }
    assert orders["1001"]["phone"] == "+8613800138000" and orders["shopify:1001"]["phone"] == "+16135550142"


# ------------------------------------------------------- a platform never disables the webhook


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (
            lambda: we.shopify_event(_shopify(financial_status="on_hold_custom"), "orders/updated", at=AT),
            "financial_status",
        ),
        (lambda: we.woocommerce_event(_woo(status="awaiting-shipment"), "order.updated", at=AT), "status"),
    ],
)
def test_an_unknown_platform_status_is_200_ignored_counted_and_logged(stack, logs, event, field):
    stack.standard(paid("warm-up"))  # loads the function, so its metrics can be watched
    counted: list[str] = []
    module = stack.p.ingest_module
    original = module.metrics.add_metric
    module.metrics.add_metric = lambda name, **kw: (counted.append(name), original(name=name, **kw))[1]
    try:
        logs.clear()
        status, body = stack.send(event())
    finally:
        module.metrics.add_metric = original
    assert status == 200 and body["result"] == "ignored" and body["reason"] == "unknown_status"
    assert body["field"] == field and body["order_id"].endswith(
        ":5921873412345" if field != "status" else ":4217"
    )
    assert "Webhook_ignored_unknown_status" in counted and "Webhook_ignored" in counted
    (line,) = [line for line in logs.lines() if line.get("message") == "webhook"]
    assert (line["answer"], line["reason"], line["field"]) == ("ignored", "unknown_status", field)
    assert not any(p in logs.text() for p in PII)
    assert set(stack.orders()) == {"warm-up"}


def test_a_woocommerce_secret_holding_html_entities_is_read_as_wordpress_signs_with_it(stack):
    # WordPress keeps "&" as "&#038;" (or "&amp;") and signs with wp_specialchars_decode(secret).
    stored, signing = "wc_s3cret&#038;more&amp;&#60;", "wc_s3cret&more&<"
    stack.p.set_webhook_secret("woocommerce", stored)
    event = we.woocommerce_event(_woo(), "order.created", at=AT, secret=signing)
    assert stack.send(event) == (200, {"result": "accepted", "order_id": "woocommerce:4217"})
    # The secret pasted as the admin page shows it (already decoded) works as well.
    stack.p.set_webhook_secret("woocommerce", signing)
    update = we.woocommerce_event(_woo(status="processing"), "order.updated", at=AT, secret=signing)
    assert stack.send(update)[1]["result"] == "accepted"


def test_the_migration_in_the_docs_moves_open_platform_orders_to_their_new_ids(stack):
    """CONNECT.md's upgrade snippet: open orders stored under bare Shopify ids move to shopify:<id>,
    whose payment webhook then pays them; the old ids are closed (never reminded)."""
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "CONNECT.md").read_text(encoding="utf-8")
    code = re.search(r"### Upgrading.*?```python\n(.*?)```", docs, re.S).group(1)
    table = stack.p.dynamodb.Table(stack.p.resources.orders_table)
    old = {k: v for k, v in order("5921873412345").items() if v is not None}
    table.put_item(Item=old)
    table.put_item(Item={**old, "order_id": "5921873499999", "status": "paid"})
    exec(code.replace("<OrdersTableName>", stack.p.resources.orders_table), {})
    exec(code.replace("<OrdersTableName>", stack.p.resources.orders_table), {})  # twice: harmless
    orders = stack.orders()
    assert {k: v["status"] for k, v in orders.items()} == {
        "5921873412345": "closed",
        "shopify:5921873412345": "unpaid",
        "5921873499999": "paid",
    }
    assert stack.send(we.load("function-url-shopify-orders-paid.json"))[1]["result"] == "accepted"
    assert stack.orders()["shopify:5921873412345"]["status"] == "paid"
