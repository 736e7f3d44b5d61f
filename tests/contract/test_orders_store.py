"""Contract tests of the orders store (nudge.adapters.orders on moto) and its fake (tests/fakes_ingest.py).

Never backwards, one write per delivery, stubs filled by late whole records: both implementations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from nudge.adapters.dynamo_io import item_from_ddb
from nudge.adapters.orders import DELIVERY_TTL, DynamoOrdersStore
from nudge.domain.order_changes import OrderChange, order_change
from nudge.domain.orders import parse_order
from nudge.services.ingest import delivery_key
from nudge.services.ports import DalError, WriteOutcome
from nudge_local.moto_env import provision
from tests.fakes_ingest import FakeOrdersStore

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
W = WriteOutcome


def record(order_id: str = "o-1", status: str = "unpaid", **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "buyer_id": "b-1",
        "phone": "+8613800138000",
        "status": status,
        "created_at": "2026-11-23T07:31:02+08:00",
        "amount": "199.00",
        "currency": "CNY",
        "pay_url": "https://shop.example.com/pay/o-1",
        **extra,
    }


def full(at: datetime, **kw: Any) -> OrderChange:
    return order_change(record(**kw), full=True, version=at)


def status_only(order_id: str, status: str, at: datetime, **extra: Any) -> OrderChange:
    return order_change({"order_id": order_id, "status": status, **extra}, full=False, version=at)


class DynamoEnv:
    def __init__(self) -> None:
        stack = provision(TEMPLATE, stack_name="ingest-test")
        self.client = boto3.client("dynamodb", region_name="us-east-1")
        self.orders = stack.orders_table
        self.deliveries = stack.idempotency_table
        self.store = DynamoOrdersStore(self.client, self.orders, self.deliveries)
        self.calls: Counter[str] = Counter()
        self.client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def item(self, order_id: str) -> dict[str, Any] | None:
        raw = self.client.get_item(TableName=self.orders, Key={"order_id": {"S": order_id}}).get("Item")
        self.calls["GetItem"] -= 1  # the test's own read
        return item_from_ddb(raw) if raw else None

    def put_raw(self, item: dict[str, Any]) -> None:
        boto3.resource("dynamodb", region_name="us-east-1").Table(self.orders).put_item(Item=item)


class FakeEnv:
    def __init__(self) -> None:
        self.store = FakeOrdersStore()
        self.calls: Counter[str] = Counter()

    def item(self, order_id: str) -> dict[str, Any] | None:
        return self.store.item(order_id)

    def put_raw(self, item: dict[str, Any]) -> None:
        self.store.items[item["order_id"]] = dict(item)


@pytest.fixture(params=["fake", "dynamo"])
def env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeEnv()
        return
    for k, v in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield DynamoEnv()


def apply(env: Any, change: OrderChange, delivery: str | None = None, now: datetime = T0) -> WriteOutcome:
    return env.store.apply(change, delivery=delivery, now=now if delivery else None)


def test_a_new_order_is_written_and_reads_back_as_a_valid_order(env):
    assert apply(env, full(T0)) is W.WRITTEN
    item = env.item("o-1")
    assert item["status"] == "unpaid" and Decimal(str(item["amount"])) == Decimal("199.00")
    assert item["source_updated_at"] == "2026-11-23T01:00:00.000+00:00"
    assert parse_order(item).order_id == "o-1"
    # Personal data expires: 90 days after the state stored (DynamoDB TTL on the orders table).
    assert int(item["expires_at"]) == int((T0 + timedelta(days=90)).timestamp())


def test_the_same_change_twice_changes_nothing(env):
    assert apply(env, full(T0)) is W.WRITTEN
    assert apply(env, full(T0)) is W.UNCHANGED


def test_the_same_delivery_twice_is_one_write(env):
    key = delivery_key("shopify", "evt-1")
    assert apply(env, full(T0), key) is W.WRITTEN
    assert (
        apply(env, full(T0 + timedelta(seconds=1), amount="1"), key, now=T0 + timedelta(hours=47))
        is W.DUPLICATE
    )
    assert env.item("o-1")["amount"] in ("199.00", Decimal("199.00"))


def test_paid_before_created_ends_paid_with_the_created_fields_filled_in(env):
    assert (
        apply(env, status_only("o-1", "paid", T0 + timedelta(hours=2), paid_at="2026-11-23T11:00:00+08:00"))
        is W.WRITTEN
    )
    stub = env.item("o-1")
    assert stub["status"] == "paid" and "created_at" not in stub  # invisible to the planner's index
    assert apply(env, full(T0), delivery_key("nudge", "m-1")) is W.FILLED
    item = env.item("o-1")
    assert item["status"] == "paid" and item["created_at"] == "2026-11-23T07:31:02+08:00"
    assert item["paid_at"] == "2026-11-23T11:00:00+08:00" and item["buyer_id"] == "b-1"
    assert apply(env, full(T0)) is W.UNCHANGED  # filled once; again changes nothing


def test_an_old_update_after_paid_stays_paid(env):
    apply(env, full(T0))
    assert apply(env, status_only("o-1", "paid", T0 + timedelta(hours=2))) is W.WRITTEN
    assert apply(env, full(T0 + timedelta(hours=1), amount="150")) is W.UNCHANGED
    item = env.item("o-1")
    assert item["status"] == "paid" and str(item["amount"]) == "199.00"


@pytest.mark.parametrize("done", ["paid", "closed"])
def test_paid_and_closed_never_return_to_unpaid_even_when_newer(env, done):
    apply(env, full(T0, status=done))
    assert apply(env, full(T0 + timedelta(days=1))) is W.UNCHANGED
    assert env.item("o-1")["status"] == done


def test_closed_after_paid_and_paid_after_closed_follow_time(env):
    apply(env, full(T0, status="paid"))
    assert apply(env, status_only("o-1", "closed", T0 + timedelta(hours=1))) is W.WRITTEN
    assert apply(env, status_only("o-1", "paid", T0 + timedelta(minutes=30))) is W.UNCHANGED
    assert apply(env, status_only("o-1", "paid", T0 + timedelta(hours=2))) is W.WRITTEN
    assert env.item("o-1")["status"] == "paid"


def test_a_stale_delivery_is_not_marked_so_its_redelivery_gives_the_same_answer(env):
    apply(env, full(T0 + timedelta(hours=1)))
    key = delivery_key("woocommerce", "4217#old")
    assert apply(env, full(T0), key) is W.UNCHANGED
    assert apply(env, full(T0), key) is W.UNCHANGED


def test_an_equal_time_with_other_content_is_written(env):
    apply(env, full(T0))
    assert apply(env, full(T0, status="paid")) is W.WRITTEN
    assert env.item("o-1")["status"] == "paid"


def test_a_newer_whole_record_drops_fields_it_no_longer_has_but_keeps_other_attributes(env):
    env.put_raw({**record(), "shop_note": "kept", "paid_at": "2026-11-23T08:00:00+08:00"})
    assert (
        apply(env, order_change({k: v for k, v in record().items() if k != "pay_url"}, full=True, version=T0))
        is W.WRITTEN
    )
    item = env.item("o-1")
    assert "pay_url" not in item and item["shop_note"] == "kept"
    assert item["paid_at"] == "2026-11-23T08:00:00+08:00"  # a known payment time stays


def test_an_order_the_shop_wrote_before_nudge_had_versions_is_updated(env):
    env.put_raw({**record(), "status": "unpaid"})
    assert apply(env, full(T0, status="paid")) is W.WRITTEN


def test_one_conditional_request_per_order_never_a_read(env):
    apply(env, full(T0))
    apply(env, full(T0))  # unchanged
    apply(env, full(T0 + timedelta(hours=1)), delivery_key("nudge", "m-2"))
    apply(env, full(T0 + timedelta(hours=1)), delivery_key("nudge", "m-2"))  # duplicate
    if isinstance(env, FakeEnv):
        assert env.store.writes == 2
    else:
        assert env.calls == Counter({"UpdateItem": 2, "TransactWriteItems": 2})


def test_the_delivery_marker_outlives_every_senders_retries(env):
    if isinstance(env, FakeEnv):
        assert timedelta(days=3) < DELIVERY_TTL
        return
    apply(env, full(T0), delivery_key("nudge", "m-9"))
    marker = env.client.get_item(TableName=env.deliveries, Key={"id": {"S": "ingest#nudge#m-9"}})["Item"]
    expires = datetime.fromtimestamp(int(marker["expiration"]["N"]), tz=UTC)
    assert expires - T0 > timedelta(days=3)  # Stripe-style senders retry for 3 days, Shopify 48 h


def test_a_storage_failure_is_a_dal_error_and_marks_nothing(env):
    if isinstance(env, FakeEnv):
        env.store.fail_next = 1
        with pytest.raises(DalError):
            apply(env, full(T0), delivery_key("nudge", "m-3"))
        assert apply(env, full(T0), delivery_key("nudge", "m-3")) is W.WRITTEN
        return

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")

    env.client.meta.events.register_first("before-call.dynamodb.TransactWriteItems", throttle, unique_id="t")
    with pytest.raises(DalError) as exc:
        apply(env, full(T0), delivery_key("nudge", "m-3"))
    assert "ProvisionedThroughputExceeded" in str(exc.value)
    env.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="t")
    assert apply(env, full(T0), delivery_key("nudge", "m-3")) is W.WRITTEN  # the retry is not a "duplicate"
