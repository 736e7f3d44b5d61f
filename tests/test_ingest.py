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
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from nudge_cli.local import FakeClock, LocalPipeline
from tests import webhook_events as we

pytestmark = pytest.mark.aws

AT = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
ENV = {"LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "true"}
PII = ("+8613800138000", "13800138000", "0013 8000", "张三", "Zhang", "Jane", "+16135550142", "6135550142")


def order(order_id: str = "web-1", **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "buyer_id": "c-1",
        "phone": "+8613800138000",
        "status": "unpaid",
        "created_at": "2026-11-23T07:31:02+08:00",
        "amount": "199.00",
        "buyer_name": "张三",
        **extra,
    }


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
    # The delivery is its signed id and the digest of its signed body (DECISIONS 48).
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

    from nudge_cli.moto_env import evaluate, load_template

    template = load_template(Path(__file__).resolve().parents[1] / "template.yaml")
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

SH = ZoneInfo("Asia/Shanghai")
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
