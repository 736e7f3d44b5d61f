"""Contract tests of the AWS adapters (``nudge.adapters``, on moto) and their fakes (``tests/fakes.py``).

Most tests are parametrized over both implementations: the fakes the services' unit tests use
must behave like the adapters that run in Lambda.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from nudge.adapters.dynamo_io import item_from_ddb
from nudge.adapters.ledger import ClaimNotHeldError, DynamoReminderLedger, contact_keys, quota_key
from nudge.adapters.orders import DynamoOrderRepository, planning_lower_bound
from nudge.adapters.sns import SnsSmsGateway
from nudge.adapters.sqs import EnqueueError, SqsSendQueue
from nudge.domain.instants import utc_iso
from nudge.domain.models import InvalidOrder, Order, ReminderState, SentReminder
from nudge.services.ports import (
    CLAIM_IN_FLIGHT_LIMIT,
    ClaimOutcome,
    DalError,
    OrderNow,
    PermanentSendError,
    SendRequest,
    TransientSendError,
)
from nudge_local.moto_env import StackResources, provision
from nudge_local.pipeline import moto_sent_sms
from tests.builders import order_record, outgoing
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSmsGateway

REGION = "us-east-1"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
STACK = "nudge-test"
ORDERS = f"{STACK}-OrdersTable"
LEDGER = f"{STACK}-LedgerTable"
STATUS_INDEX = "status-created_at"
DAY_INDEX = "sent_day-last_sent_at"
CST = timezone(timedelta(hours=8))
DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=CST)

_ser = TypeSerializer()


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def stack() -> Iterator[StackResources]:
    """Tables and queues built from template.yaml itself (``nudge_local.moto_env``): no drift possible."""
    with mock_aws():
        resources = provision(TEMPLATE, stack_name=STACK)
        env = resources.env
        assert (env["ORDERS_TABLE"], env["ORDERS_STATUS_INDEX"]) == (ORDERS, STATUS_INDEX)
        assert (env["LEDGER_TABLE"], env["LEDGER_DAY_INDEX"]) == (LEDGER, DAY_INDEX)
        yield resources


@pytest.fixture
def ddb(stack: StackResources) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


class CallCounter:
    """Counts the API operations a boto3 client makes (a botocore event hook)."""

    def __init__(self, client: Any, service: str):
        self.ops: Counter[str] = Counter()
        client.meta.events.register(f"before-call.{service}", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.ops[model.name] += 1

    def writes(self) -> int:
        return sum(
            n
            for op, n in self.ops.items()
            if op in {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
        )


def put_orders(ddb: Any, records: list[dict[str, Any]]) -> None:
    for r in records:
        ddb.put_item(TableName=ORDERS, Item={k: _ser.serialize(v) for k, v in r.items()})


def record(order_id: str, created_at: str, status: str = "unpaid", **extra: Any) -> dict[str, Any]:
    fields = {
        "buyer_id": f"b-{order_id}",
        "created_at": created_at,
        "status": status,
        "amount": Decimal("88.50"),
    }
    return order_record(order_id=order_id, **{**fields, **extra})


def request(
    order_id: str = "o1",
    attempt: int = 1,
    *,
    day: date = DAY,
    buyer: str = "b1",
    phone: str = "+8613800138000",
    text: str = "【小店】您的订单还未付款",
) -> SendRequest:
    return SendRequest(
        order_id=order_id,
        buyer_id=buyer,
        phone=phone,
        attempt=attempt,
        text=text,
        segments=1,
        not_after=NOW + timedelta(minutes=40),
        day=day,
        window="09:50-10:40",
        planned_at=NOW,
    )


# --- orders: fake or dynamo -------------------------------------------------------------------


class OrdersEnv:
    def __init__(self, kind: str, ddb: Any | None):
        self.kind = kind
        self.ddb = ddb
        self.calls = CallCounter(ddb, "dynamodb") if ddb else None
        self.fake = FakeOrderRepository() if kind == "fake" else None

    def put(self, records: list[dict[str, Any]]) -> None:
        if self.fake is not None:
            self.fake.put(*records)
        else:
            put_orders(self.ddb, records)

    def repo(self, **kwargs: Any) -> Any:
        if self.fake is not None:
            return self.fake
        return DynamoOrderRepository(self.ddb, ORDERS, STATUS_INDEX, **kwargs)


@pytest.fixture(params=["fake", "dynamo"])
def orders_env(request: pytest.FixtureRequest) -> Iterator[OrdersEnv]:
    if request.param == "fake":
        yield OrdersEnv("fake", None)
    else:
        yield OrdersEnv("dynamo", request.getfixturevalue("ddb"))


# --- ledger: fake or dynamo -------------------------------------------------------------------


class LedgerEnv:
    def __init__(self, kind: str, ddb: Any | None, *, message_pointers: bool = False):
        self.kind = kind
        self.ddb = ddb
        self.calls = CallCounter(ddb, "dynamodb") if ddb else None
        self.ledger: Any = (
            FakeReminderLedger(message_pointers=message_pointers)
            if kind == "fake"
            else DynamoReminderLedger(ddb, LEDGER, DAY_INDEX, ttl_days=30, message_pointers=message_pointers)
        )

    def item(self, key: str) -> dict[str, Any]:
        if self.kind == "fake":
            if key.startswith("#quota#"):
                day = date.fromisoformat(key.removeprefix("#quota#"))
                return {"sms_claimed": self.ledger.quota[day]} if day in self.ledger.quota else {}
            return dict(self.ledger.items.get(key, {}))
        resp = self.ddb.get_item(TableName=LEDGER, Key={"order_id": {"S": key}}, ConsistentRead=True)
        return item_from_ddb(resp.get("Item", {}))

    def put(self, order_id: str, **attrs: Any) -> None:
        """Write a ledger item directly (e.g. one an operator imported from an older system)."""
        if self.kind == "fake":
            self.ledger.items[order_id] = {"order_id": order_id, **attrs}
        else:
            item = {"order_id": order_id, **attrs}
            self.ddb.put_item(TableName=LEDGER, Item={k: _ser.serialize(v) for k, v in item.items()})


@pytest.fixture(params=["fake", "dynamo"])
def ledger_env(request: pytest.FixtureRequest) -> Iterator[LedgerEnv]:
    if request.param == "fake":
        yield LedgerEnv("fake", None)
    else:
        yield LedgerEnv("dynamo", request.getfixturevalue("ddb"))


# ---------------------------------------------------------------------------------------------
# orders_for_planning / statuses

SINCE = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def test_orders_for_planning_sees_every_offset_and_only_unpaid_and_paid(orders_env: OrdersEnv) -> None:
    orders_env.put(
        [
            record("cst", "2026-11-23T08:10:00+08:00"),  # 00:10Z
            record(
                "utc-paid", "2026-11-23T00:30:00+00:00", status="paid", paid_at="2026-11-23T00:40:00+00:00"
            ),
            # 00:30Z on the 23rd, but its wall-clock string is on the 22nd: a naive bound misses it.
            record("est", "2026-11-22T19:30:00-05:00"),
            # exactly at `since`, in the most negative offset there is
            record("baker", "2026-11-22T12:00:00-12:00"),
            record("closed", "2026-11-23T01:00:00+00:00", status="closed"),
            record("old", "2026-11-21T10:00:00+00:00"),
            record("old-est", "2026-11-22T06:00:00-05:00"),  # 11:00Z on the 22nd
            record("bad", "2026-11-23T09:00:00+08:00", amount=Decimal(-1)),
        ]
    )
    got = list(orders_env.repo().orders_for_planning(SINCE))
    orders = {o.order_id: o for o in got if isinstance(o, Order)}
    invalid = [o for o in got if isinstance(o, InvalidOrder)]

    assert {"cst", "utc-paid", "est", "baker"} <= set(orders)
    assert not {"closed", "old", "old-est"} & set(orders)
    assert [(i.order_id, i.field) for i in invalid] == [("bad", "amount")]
    assert orders["est"].created_at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert orders["cst"].amount == Decimal("88.50")
    assert orders["utc-paid"].status == "paid"
    if orders_env.calls:
        assert orders_env.calls.ops["Scan"] == 0
        assert orders_env.calls.ops["Query"] == 2  # one per status, one page each


def test_orders_for_planning_paginates_and_never_scans(ddb: Any) -> None:
    start = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    put_orders(
        ddb,
        [record(f"u{i:03}", (start + timedelta(minutes=i)).isoformat()) for i in range(120)]
        + [record(f"p{i:03}", (start + timedelta(minutes=i)).isoformat(), status="paid") for i in range(30)],
    )
    calls = CallCounter(ddb, "dynamodb")
    repo = DynamoOrderRepository(ddb, ORDERS, STATUS_INDEX, page_size=25)

    got = list(repo.orders_for_planning(start))

    assert len(got) == 150 and all(isinstance(o, Order) for o in got)
    assert len({o.order_id for o in got}) == 150
    assert calls.ops["Scan"] == 0
    assert calls.ops["Query"] >= 5 + 2  # 120/25 -> 5+ pages, 30/25 -> 2 pages


def test_orders_for_planning_reads_one_megabyte_pages(ddb: Any) -> None:
    """Without a Limit, DynamoDB stops a page at 1 MB: the adapter must follow LastEvaluatedKey."""
    blob = "x" * 100_000
    put_orders(
        ddb, [record(f"big{i:02}", f"2026-11-23T0{i % 10}:00:00+08:00", item_title=blob) for i in range(15)]
    )
    calls = CallCounter(ddb, "dynamodb")
    got = list(
        DynamoOrderRepository(ddb, ORDERS, STATUS_INDEX).orders_for_planning(SINCE - timedelta(days=1))
    )
    assert len(got) == 15
    assert calls.ops["Query"] >= 3  # unpaid needs 2+ pages, paid 1


def test_current_reads_in_batches_of_100(orders_env: OrdersEnv) -> None:
    orders_env.put(
        [
            record(f"o{i:03}", "2026-11-23T08:00:00+08:00", status="paid" if i % 2 else "unpaid")
            for i in range(240)
        ]
    )
    ids = [f"o{i:03}" for i in range(250)]  # 10 do not exist
    got = orders_env.repo().current(ids + ids[:5])  # duplicates are fine
    assert len(got) == 240
    assert got["o001"].status == "paid" and got["o002"].status == "unpaid"
    assert got["o002"].created_at == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    if orders_env.calls:
        assert orders_env.calls.ops["BatchGetItem"] == 3


@given(
    since_minutes=st.integers(0, 60 * 24 * 365),
    after_seconds=st.integers(0, 3 * 24 * 3600),
    offset_quarters=st.integers(-12 * 4, 14 * 4),
)
def test_planning_lower_bound_never_misses_an_order(
    since_minutes: int, after_seconds: int, offset_quarters: int
) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=since_minutes, seconds=7)
    created = (since + timedelta(seconds=after_seconds)).astimezone(
        timezone(timedelta(minutes=15 * offset_quarters))
    )
    assert created.isoformat() >= planning_lower_bound(since)


def test_item_from_ddb_matches_boto3s_deserializer() -> None:
    record = {
        "s": "x", "empty": "", "n": Decimal("1.50"), "int": 7, "t": True, "f": False, "none": None,
        "l": [1, "a", [True], {"k": "v"}], "m": {"a": {"b": Decimal(2)}}, "ss": {"a", "b"},
        "ns": {Decimal(1)}, "bin": Binary(b"x"), "bs": {Binary(b"y")}, "el": [], "em": {},
    }  # fmt: skip
    item = {k: _ser.serialize(v) for k, v in record.items()}
    assert item_from_ddb(item) == TypeDeserializer().deserialize({"M": item})


def test_planning_lower_bound_is_within_a_day() -> None:
    assert planning_lower_bound(datetime(2026, 11, 23, 10, 0, tzinfo=CST)) == "2026-11-22T14:00"
    with pytest.raises(ValueError):
        planning_lower_bound(datetime(2026, 11, 23, 10, 0))


class FlakyBatchGet:
    """A client whose BatchGetItem leaves keys unprocessed for the first ``n`` calls.

    It serves ``serve`` keys per call meanwhile (0: a table throttled to a standstill).
    """

    def __init__(self, client: Any, n: int, serve: int = 1):
        self._client = client
        self._n = n
        self._serve = serve
        self.calls = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls > self._n:
            return self._client.batch_get_item(RequestItems=RequestItems)
        ((table, req),) = RequestItems.items()
        keys, serve = req["Keys"], self._serve
        resp = (
            self._client.batch_get_item(RequestItems={table: {**req, "Keys": keys[:serve]}})
            if serve
            else {"Responses": {table: []}}
        )
        resp["UnprocessedKeys"] = {table: {**req, "Keys": keys[serve:]}} if keys[serve:] else {}
        return resp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_current_retries_unprocessed_keys(ddb: Any) -> None:
    put_orders(ddb, [record(f"o{i}", "2026-11-23T08:00:00+08:00") for i in range(4)])
    client = FlakyBatchGet(ddb, n=2)
    sleeps: list[float] = []
    got = DynamoOrderRepository(client, ORDERS, STATUS_INDEX, sleep=sleeps.append).current(
        [f"o{i}" for i in range(4)]
    )
    assert {oid: o.status for oid, o in got.items()} == {f"o{i}": "unpaid" for i in range(4)}
    assert client.calls == 3 and len(sleeps) == 2


def test_states_gives_up_on_unprocessed_keys_loudly(ddb: Any) -> None:
    ledger = DynamoReminderLedger(FlakyBatchGet(ddb, n=100, serve=0), LEDGER, DAY_INDEX, sleep=lambda _: None)
    with pytest.raises(DalError, match="unprocessed"):
        ledger.states(["a", "b", "c"])


# ---------------------------------------------------------------------------------------------
# the ledger: claim / release / record


def test_claim_is_once_per_order_and_attempt(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    assert led.claim(request(), "t1", 500, NOW) == ClaimOutcome.CLAIMED
    # held and not recorded yet: its sender may be publishing right now
    assert led.claim(request(), "t2", 500, NOW) == ClaimOutcome.IN_FLIGHT
    assert led.claim(request(), "t1", 500, NOW + timedelta(seconds=1)) == ClaimOutcome.IN_FLIGHT
    assert led.sent_on(DAY) == 1
    item = ledger_env.item("o1")
    assert (item["claimed_attempt"], item["claim_token"], item["buyer_id"]) == (1, "t1", "b1")


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's conditional writes atomic, as DynamoDB's are.

    moto checks a condition and then writes, with no lock: two threads can both pass the check
    (seen here: 2 of 12 claims won). DynamoDB serializes writes to an item, so the test serializes
    moto's write operations; what it proves is that our conditions admit exactly one winner.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "update_item", "put_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.mark.usefixtures("atomic_moto")
def test_concurrent_claims_let_exactly_one_through(ledger_env: LedgerEnv) -> None:
    n = 12
    barrier = threading.Barrier(n)
    outcomes: list[ClaimOutcome] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        outcome = ledger_env.ledger.claim(request(), f"token-{i}", 500, NOW)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == {ClaimOutcome.CLAIMED: 1, ClaimOutcome.IN_FLIGHT: n - 1}
    assert ledger_env.ledger.sent_on(DAY) == 1


def test_a_sent_attempt_stays_taken_and_the_next_one_is_free(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    assert led.claim(request(attempt=1), "t1", 500, NOW) == ClaimOutcome.CLAIMED
    led.record_sent(request(attempt=1), "t1", "msg-1", NOW)
    assert led.claim(request(attempt=1), "t9", 500, NOW) == ClaimOutcome.ALREADY_CLAIMED
    assert led.claim(request(attempt=2), "t2", 500, NOW) == ClaimOutcome.CLAIMED
    assert led.claim(request(attempt=2), "t3", 500, NOW) == ClaimOutcome.IN_FLIGHT
    assert led.sent_on(DAY) == 2


def test_a_sent_reminder_blocks_its_attempt_even_without_a_claim(ledger_env: LedgerEnv) -> None:
    # e.g. history imported from before Nudge: reminders_sent without claimed_attempt
    ledger_env.put(
        "o1", reminders_sent=1, last_sent_at="2026-11-22T02:00:00.000+00:00", sent_day="2026-11-22"
    )
    assert ledger_env.ledger.claim(request(attempt=1), "t1", 500, NOW) == ClaimOutcome.ALREADY_CLAIMED
    assert ledger_env.ledger.claim(request(attempt=2), "t2", 500, NOW) == ClaimOutcome.CLAIMED


def test_daily_cap(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    assert led.claim(request("a"), "ta", 2, NOW) == ClaimOutcome.CLAIMED
    assert led.claim(request("b"), "tb", 2, NOW) == ClaimOutcome.CLAIMED
    assert led.claim(request("c"), "tc", 2, NOW) == ClaimOutcome.DAILY_LIMIT
    assert led.sent_on(DAY) == 2
    # the cancelled transaction left order c untouched: it can go out tomorrow
    assert "claimed_attempt" not in ledger_env.item("c")
    assert led.claim(request("c", day=DAY + timedelta(days=1)), "tc", 2, NOW) == ClaimOutcome.CLAIMED
    # a duplicate on a full day is reported as a duplicate (of a claim in flight), not a cap hit
    assert led.claim(request("a"), "tz", 2, NOW) == ClaimOutcome.IN_FLIGHT
    # a raised cap lets more through the same day
    assert led.claim(request("d"), "td", 3, NOW) == ClaimOutcome.CLAIMED


def test_a_zero_cap_sends_nothing(ledger_env: LedgerEnv) -> None:
    assert ledger_env.ledger.claim(request(), "t", 0, NOW) == ClaimOutcome.DAILY_LIMIT
    assert ledger_env.ledger.sent_on(DAY) == 0


def test_release_frees_the_attempt_and_the_quota(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    assert led.claim(request(), "t1", 1, NOW) == ClaimOutcome.CLAIMED
    led.release(request(), "wrong")  # not ours: nothing happens
    assert led.sent_on(DAY) == 1
    led.release(request(), "t1")
    assert led.sent_on(DAY) == 0
    led.release(request(), "t1")  # twice is harmless
    assert led.sent_on(DAY) == 0
    assert led.claim(request(), "t2", 1, NOW) == ClaimOutcome.CLAIMED


def test_release_of_attempt_2_keeps_attempt_1_taken(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request(attempt=1), "t1", 500, NOW)
    led.record_sent(request(attempt=1), "t1", "m1", NOW)
    assert led.claim(request(attempt=2), "t2", 500, NOW) == ClaimOutcome.CLAIMED
    led.release(request(attempt=2), "t2")
    assert ledger_env.item("o1")["claimed_attempt"] == 1
    assert led.claim(request(attempt=1), "t3", 500, NOW) == ClaimOutcome.ALREADY_CLAIMED
    assert led.claim(request(attempt=2), "t4", 500, NOW) == ClaimOutcome.CLAIMED


def test_a_recorded_send_cannot_be_released(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    led.release(request(), "t1")
    assert led.sent_on(DAY) == 1
    assert led.claim(request(), "t2", 500, NOW) == ClaimOutcome.ALREADY_CLAIMED


def test_record_sent_needs_the_claim(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    with pytest.raises(ClaimNotHeldError):
        led.record_sent(request(), "t1", "m1", NOW)  # never claimed
    led.claim(request(), "t1", 500, NOW)
    with pytest.raises(ClaimNotHeldError):
        led.record_sent(request(), "someone-else", "m1", NOW)
    with pytest.raises(ClaimNotHeldError):
        led.record_sent(request(attempt=2), "t1", "m1", NOW)
    # claimed, not recorded: the planner counts the attempt as taken all the same
    assert led.states(["o1"]) == {"o1": ReminderState("o1", 1, False)}
    led.record_sent(request(), "t1", "m1", NOW)
    led.record_sent(request(), "t1", "m1", NOW)  # a retried record is idempotent
    assert led.states(["o1"]) == {"o1": ReminderState("o1", 1, False)}
    assert ledger_env.item("o1")["message_id_1"] == "m1"


def test_record_sent_keeps_the_variant_per_attempt_only_when_there_is_one(ledger_env: LedgerEnv) -> None:
    from dataclasses import replace

    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)  # no messages.variants: no attribute at all
    assert not [k for k in ledger_env.item("o1") if k.startswith("variant")]
    second = replace(request(attempt=2), variant="urgent")
    led.claim(second, "t2", 500, NOW)
    led.record_sent(second, "t2", "m2", NOW)
    item = ledger_env.item("o1")
    assert item["variant_2"] == "urgent" and "variant_1" not in item and item["message_id_2"] == "m2"


def test_one_sms_costs_exactly_two_ledger_writes(ddb: Any) -> None:
    led = DynamoReminderLedger(ddb, LEDGER, DAY_INDEX)
    calls = CallCounter(ddb, "dynamodb")
    # the contact slots ride in the claim's transaction: 4 items, still one call
    assert led.claim(request(), "t1", 500, NOW, timedelta(hours=24)) == ClaimOutcome.CLAIMED
    led.record_sent(request(), "t1", "m1", NOW)
    assert calls.writes() == 2
    assert calls.ops["TransactWriteItems"] == 1


def test_moto_reports_cancellation_reasons_per_item(ddb: Any) -> None:
    """What the claim mapping relies on: one reason per TransactItem, in order."""
    DynamoReminderLedger(ddb, LEDGER, DAY_INDEX).claim(request(), "t1", 1, NOW)
    with pytest.raises(ClientError) as info:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": LEDGER,
                        "Key": {"order_id": {"S": "o1"}},
                        "ConditionExpression": "attribute_not_exists(order_id)",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": LEDGER,
                        "Key": {"order_id": {"S": "zz"}},
                        "ConditionExpression": "attribute_not_exists(order_id)",
                    }
                },
            ]
        )
    assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in info.value.response["CancellationReasons"]] == [
        "ConditionalCheckFailed",
        "None",
    ]


class ConflictOnce:
    """A client whose first TransactWriteItems is cancelled by a TransactionConflict."""

    def __init__(self, client: Any, times: int = 1):
        self._client = client
        self._times = times
        self.tokens: list[str] = []

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.tokens.append(kwargs["ClientRequestToken"])
        if self._times > 0:
            self._times -= 1
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return self._client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_claim_retries_a_transaction_conflict_on_the_quota_item(ddb: Any) -> None:
    client = ConflictOnce(ddb)
    led = DynamoReminderLedger(client, LEDGER, DAY_INDEX, sleep=lambda _: None)
    assert led.claim(request(), "t1", 500, NOW) == ClaimOutcome.CLAIMED
    assert len(client.tokens) == 2 and len(set(client.tokens)) == 2
    assert all(len(t) <= 36 for t in client.tokens)

    stuck = DynamoReminderLedger(ConflictOnce(ddb, times=99), LEDGER, DAY_INDEX, sleep=lambda _: None)
    with pytest.raises(DalError, match="conflicting"):
        stuck.claim(request("o2"), "t2", 500, NOW)


# ---------------------------------------------------------------------------------------------
# the ledger: held claims (duplicate, in flight, or left by a sender that died)


def test_a_held_claim_is_in_flight_then_unconfirmed_until_reported(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    assert led.claim(request(), "t1", 500, NOW) == ClaimOutcome.CLAIMED
    assert led.claim(request(), "t2", 500, NOW + CLAIM_IN_FLIGHT_LIMIT - timedelta(seconds=1)) == (
        ClaimOutcome.IN_FLIGHT
    )
    # Held longer than any send invocation lives, never recorded: its sender died holding it.
    later = NOW + CLAIM_IN_FLIGHT_LIMIT
    assert led.claim(request(), "t3", 500, later) == ClaimOutcome.UNCONFIRMED
    assert led.claim(request(), "t3", 500, later) == ClaimOutcome.UNCONFIRMED  # until reported
    led.record_unconfirmed(request(), "unconfirmed: claimed, never recorded as sent", later)
    assert led.claim(request(), "t4", 500, later) == ClaimOutcome.ALREADY_CLAIMED
    assert ledger_env.item("o1")["skips"][0]["reason"].startswith("unconfirmed")
    assert led.claim(request(attempt=2), "t5", 500, later) == ClaimOutcome.CLAIMED  # the next is free
    assert led.sent_on(DAY) == 2  # refused claims took no unit of the cap


def test_a_recorded_send_is_a_duplicate_however_old(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    for at in (NOW, NOW + timedelta(hours=5)):
        assert led.claim(request(), "t2", 500, at) == ClaimOutcome.ALREADY_CLAIMED


def test_a_held_claim_is_told_apart_without_an_extra_read(ddb: Any) -> None:
    led = DynamoReminderLedger(ddb, LEDGER, DAY_INDEX)
    led.claim(request(), "t1", 500, NOW)
    calls = CallCounter(ddb, "dynamodb")
    assert led.claim(request(), "t2", 500, NOW + timedelta(minutes=10)) == ClaimOutcome.UNCONFIRMED
    assert dict(calls.ops) == {"TransactWriteItems": 1}  # the old item came back with the cancellation


# ---------------------------------------------------------------------------------------------
# the ledger: the buyer's contact slots

DAY_LONG = timedelta(hours=24)


def test_one_claim_per_buyer_and_per_phone_per_interval(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    first = request("o1", buyer="b1", phone="+8613800138001")
    assert led.claim(first, "t1", 500, NOW, DAY_LONG) == ClaimOutcome.CLAIMED
    same_buyer = request("o2", buyer="b1", phone="+8613800138002")
    same_phone = request("o3", buyer="b3", phone="+8613800138001")
    later = NOW + timedelta(hours=5)
    assert led.claim(same_buyer, "t2", 500, later, DAY_LONG) == ClaimOutcome.RECENTLY_CONTACTED
    assert led.claim(same_phone, "t3", 500, later, DAY_LONG) == ClaimOutcome.RECENTLY_CONTACTED
    other = request("o4", buyer="b4", phone="+8613800138004")
    assert led.claim(other, "t4", 500, later, DAY_LONG) == ClaimOutcome.CLAIMED
    # refused claims changed nothing: no attempt taken, no unit of the cap
    assert "claimed_attempt" not in ledger_env.item("o2") and led.sent_on(DAY) == 2
    # exactly the interval later the slot is free again ("24 h" includes its end)
    assert led.claim(same_buyer, "t5", 500, NOW + DAY_LONG, DAY_LONG) == ClaimOutcome.CLAIMED


def test_a_duplicate_is_reported_before_a_contact_or_a_cap_hit(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request(), "t1", 1, NOW, DAY_LONG)
    led.record_sent(request(), "t1", "m1", NOW)
    assert led.claim(request(), "t2", 1, NOW, DAY_LONG) == ClaimOutcome.ALREADY_CLAIMED
    assert led.claim(request("o2"), "t3", 1, NOW, DAY_LONG) == ClaimOutcome.RECENTLY_CONTACTED
    assert led.claim(request("o3", buyer="b3", phone="+8613800138003"), "t4", 1, NOW, DAY_LONG) == (
        ClaimOutcome.DAILY_LIMIT
    )


def test_a_release_gives_the_slots_back_with_their_previous_contact_time(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    phone_key, buyer_key = contact_keys(request())
    led.claim(request(), "t1", 500, NOW, DAY_LONG)
    led.record_sent(request(), "t1", "m1", NOW)
    # a day later, reminder 2 is claimed and throttled: its claim is released
    later = NOW + DAY_LONG
    assert led.claim(request(attempt=2), "t2", 500, later, DAY_LONG) == ClaimOutcome.CLAIMED
    led.release(request(attempt=2), "t2")
    for key in (phone_key, buyer_key):
        assert ledger_env.item(key)["contacted_at"] == utc_iso(NOW)  # not wiped: restored
        assert "contact_token" not in ledger_env.item(key)
    # the restored time still counts for a rule measured over a longer interval
    two_days = timedelta(hours=48)
    assert led.claim(request("o2"), "t3", 500, later, two_days) == ClaimOutcome.RECENTLY_CONTACTED
    assert led.claim(request("o2"), "t3", 500, later, DAY_LONG) == ClaimOutcome.CLAIMED
    # a slot never contacted before is left empty again by a release
    fresh = request("o5", buyer="b5", phone="+8613800138005")
    led.claim(fresh, "t5", 500, NOW, DAY_LONG)
    led.release(fresh, "t5")
    assert ledger_env.item(contact_keys(fresh)[0])["contacted_at"] == ""
    assert led.claim(request("o6", buyer="b5", phone="+8613800138006"), "t6", 500, NOW, DAY_LONG) == (
        ClaimOutcome.CLAIMED
    )


def test_a_release_leaves_slots_it_did_not_take(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request("o1"), "t1", 500, NOW, DAY_LONG)  # holds b1's slots
    led.claim(request("o2"), "t2", 500, NOW)  # no interval: takes no slot (e.g. a history import)
    led.release(request("o2"), "t2")
    assert led.sent_on(DAY) == 1 and "claimed_attempt" not in ledger_env.item("o2")
    assert ledger_env.item(contact_keys(request())[0])["contact_token"] == "t1"


def test_claims_whose_outcome_is_unknown_are_seen_by_plans(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request("o1", buyer="b1", phone="+8613800138001"), "t1", 500, NOW, DAY_LONG)  # unknown
    sent = request("o2", buyer="b2", phone="+8613800138002")
    led.claim(sent, "t2", 500, NOW, DAY_LONG)
    led.record_sent(sent, "t2", "m2", NOW + timedelta(seconds=1))
    released = request("o3", buyer="b3", phone="+8613800138003")
    led.claim(released, "t3", 500, NOW, DAY_LONG)
    led.release(released, "t3")

    recent = led.recent_sends(NOW - timedelta(hours=1), [DAY])
    assert recent == [
        SentReminder("o1", "b1", "+8613800138001", NOW.astimezone(UTC), 1),
        SentReminder("o2", "b2", "+8613800138002", NOW.astimezone(UTC) + timedelta(seconds=1), 1),
    ]  # one entry per order; the released claim is gone
    assert led.states(["o1", "o3"]) == {"o1": ReminderState("o1", 1, False)}


def test_contact_slots_expire_and_long_buyer_ids_are_hashed(ledger_env: LedgerEnv) -> None:
    long_id = "b" * 3000
    keys = contact_keys(request(buyer=long_id))
    assert keys[0] == "#contact#phone#+8613800138000"
    assert keys[1].startswith("#contact#buyer#sha256:") and len(keys[1]) < 100
    assert contact_keys(request(buyer="")) == ["#contact#phone#+8613800138000"]  # no shared "" slot
    assert ledger_env.ledger.claim(request(buyer=long_id), "t1", 500, NOW, DAY_LONG) == ClaimOutcome.CLAIMED
    if ledger_env.kind == "dynamo":
        for key in keys:
            assert ledger_env.item(key)["expires_at"] == int((NOW + timedelta(days=30)).timestamp())


@pytest.mark.usefixtures("atomic_moto")
def test_concurrent_claims_for_one_buyers_orders_let_one_through(ledger_env: LedgerEnv) -> None:
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list[ClaimOutcome] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        r = request(f"o{i}", buyer="b1", phone=f"+86138001380{i % 2}0")  # one buyer, two phones
        barrier.wait()
        outcome = ledger_env.ledger.claim(r, f"token-{i}", 500, NOW, DAY_LONG)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(outcomes) == {ClaimOutcome.CLAIMED: 1, ClaimOutcome.RECENTLY_CONTACTED: n - 1}
    assert ledger_env.ledger.sent_on(DAY) == 1


def test_current_reads_closes_at_and_flags_what_no_longer_parses(orders_env: OrdersEnv) -> None:
    orders_env.put(
        [
            record("open", "2026-11-23T08:00:00+08:00", closes_at="2026-11-24T08:00:00+08:00"),
            record("no-close", "2026-11-23T08:00:00+08:00", closes_at=""),
            record("bad-close", "2026-11-23T08:00:00+08:00", closes_at="tomorrow"),
            record("naive", "2026-11-23T08:00:00", status="paid"),
            {"order_id": "bare", "status": "unpaid"},
        ]
    )
    got = orders_env.repo().current(["open", "no-close", "bad-close", "naive", "bare", "gone"])
    created = datetime(2026, 11, 23, 8, 0, tzinfo=CST)
    assert got == {
        "open": OrderNow("unpaid", created, datetime(2026, 11, 24, 8, 0, tzinfo=CST)),
        "no-close": OrderNow("unpaid", created, None),
        "bad-close": OrderNow("unpaid", created, invalid_field="closes_at"),
        "naive": OrderNow("paid", invalid_field="created_at"),
        "bare": OrderNow("unpaid", invalid_field="created_at"),
    }


# ---------------------------------------------------------------------------------------------
# the ledger: reads


def test_states_recent_sends_and_sent_on_round_trip(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    day_before = DAY - timedelta(days=1)
    sends = [  # order, buyer, attempt, shop-local day, sent at
        ("o1", "b1", 1, day_before, datetime(2026, 11, 22, 15, 5, tzinfo=CST)),
        ("o2", "b2", 1, DAY, datetime(2026, 11, 23, 9, 55, tzinfo=CST)),
        ("o3", "b3", 1, day_before, datetime(2026, 11, 22, 9, 55, tzinfo=CST)),  # older than 24 h
    ]
    for oid, buyer, attempt, day, at in sends:
        r = request(oid, attempt, day=day, buyer=buyer, phone=f"+86138001380{oid[-1]}0")
        assert led.claim(r, f"t-{oid}", 500, at) == ClaimOutcome.CLAIMED
        led.record_sent(r, f"t-{oid}", f"m-{oid}", at)
    # o2 gets its second reminder the same day
    r2 = request("o2", 2, buyer="b2", phone="+8613800138020")
    at2 = datetime(2026, 11, 23, 10, 5, tzinfo=CST)
    assert led.claim(r2, "t-o2b", 500, at2) == ClaimOutcome.CLAIMED
    led.record_sent(r2, "t-o2b", "m-o2b", at2)
    led.request_calls(["big", "big"], NOW)
    led.claim(request("o9"), "t-o9", 500, NOW)  # claimed, never recorded
    led.record_skip(request("o8"), "opted_out", NOW)

    states = led.states(["o1", "o2", "o3", "big", "o8", "o9", "never"])
    assert states == {
        "o1": ReminderState("o1", 1, False),
        "o2": ReminderState("o2", 2, False),
        "o3": ReminderState("o3", 1, False),
        "big": ReminderState("big", 0, True),
        "o9": ReminderState("o9", 1, False),  # its outcome is unknown: the attempt counts as taken
    }

    since = datetime(2026, 11, 23, 10, 30, tzinfo=CST) - timedelta(hours=24)
    recent = led.recent_sends(since, [day_before, DAY, day_before])
    got = sorted((s.order_id, s.buyer_id, s.phone, s.sent_at, s.attempt) for s in recent)
    assert got == [
        ("o1", "b1", "+8613800138010", datetime(2026, 11, 22, 7, 5, tzinfo=UTC), 1),
        ("o2", "b2", "+8613800138020", datetime(2026, 11, 23, 2, 5, tzinfo=UTC), 2),
    ]
    assert led.recent_sends(since, [DAY]) == [s for s in recent if s.order_id == "o2"]
    assert led.sent_on(DAY) == 3  # o2 twice, o9
    assert led.sent_on(day_before) == 2
    assert led.sent_on(DAY + timedelta(days=5)) == 0


def test_states_reads_in_batches_of_100(ddb: Any) -> None:
    led = DynamoReminderLedger(ddb, LEDGER, DAY_INDEX)
    led.request_calls(["o007", "o200"], NOW)
    calls = CallCounter(ddb, "dynamodb")
    got = led.states([f"o{i:03}" for i in range(250)])
    assert set(got) == {"o007", "o200"}
    assert calls.ops["BatchGetItem"] == 3


def test_request_calls_keeps_the_first_time(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.request_calls(["big"], NOW)
    led.request_calls(["big"], NOW + timedelta(hours=3))
    assert ledger_env.item("big")["call_requested_at"] == "2026-11-23T02:00:00.000+00:00"


def test_record_skip_appends(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.record_skip(request(), "opted_out", NOW)
    led.record_skip(request(attempt=2), "deadline", NOW + timedelta(minutes=1))
    skips = ledger_env.item("o1")["skips"]
    assert [(s["attempt"], s["reason"]) for s in skips] == [(1, "opted_out"), (2, "deadline")]
    assert ledger_env.ledger.states(["o1"]) == {}  # skips alone are not reminder state


def test_opt_outs_are_remembered_per_number(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    assert led.opted_out_phones() == set()
    led.record_opt_out(request("o1"), NOW)
    led.record_opt_out(request("o2"), NOW)  # the same number again: kept once
    assert led.opted_out_phones() == {request("o1").phone}
    assert ledger_env.item("o1")["skips"][0]["reason"] == "opted_out"


def test_ledger_items_expire(ddb: Any) -> None:
    led = DynamoReminderLedger(ddb, LEDGER, DAY_INDEX, ttl_days=30)
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW + timedelta(minutes=1))
    get = lambda k: item_from_ddb(ddb.get_item(TableName=LEDGER, Key={"order_id": {"S": k}})["Item"])  # noqa: E731
    assert get("o1")["expires_at"] == int((NOW + timedelta(days=30, minutes=1)).timestamp())
    assert get(quota_key(DAY))["expires_at"] == int((NOW + timedelta(days=30)).timestamp())


# ---------------------------------------------------------------------------------------------
# SQS


@pytest.fixture
def sqs(stack: StackResources) -> tuple[Any, str]:
    return boto3.client("sqs", region_name=REGION), stack.send_queue_url


def _receive_all(client: Any, url: str) -> list[str]:
    bodies: list[str] = []
    while True:
        msgs = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return bodies
        bodies += [m["Body"] for m in msgs]
        client.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
        )


def test_sqs_enqueue_batches_of_ten_round_trip(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    calls = CallCounter(client, "sqs")
    reqs = [request(f"o{i:02}", text=f"【小店】订单 o{i:02} 还未付款") for i in range(25)]
    assert SqsSendQueue(client, url).enqueue(reqs) == 25
    assert calls.ops["SendMessageBatch"] == 3
    bodies = _receive_all(client, url)
    assert "订单" in bodies[0]  # not \u-escaped: the text is the SMS
    received = sorted((SendRequest.from_json(json.loads(b)) for b in bodies), key=lambda r: r.order_id)
    assert received == reqs


class PartlyFailingSqs:
    """SendMessageBatch that fails chosen entries: retryable ones for the first ``n`` calls."""

    def __init__(self, client: Any, retryable_fails: int = 1, sender_fault_orders: tuple[str, ...] = ()):
        self._client = client
        self._left = retryable_fails
        self._bad = sender_fault_orders
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        failed, ok = [], []
        for e in Entries:
            oid = json.loads(e["MessageBody"])["order_id"]
            if oid in self._bad:
                failed.append({"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents"})
            elif self._left > 0 and e is Entries[0]:
                failed.append({"Id": e["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                ok.append(e)
        self._left -= 1
        resp = self._client.send_message_batch(QueueUrl=QueueUrl, Entries=ok) if ok else {"Successful": []}
        return {"Successful": resp.get("Successful", []), "Failed": failed}


def test_sqs_retries_only_failed_entries(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    flaky = PartlyFailingSqs(client, retryable_fails=2)
    reqs = [request(f"o{i}") for i in range(5)]
    assert SqsSendQueue(flaky, url, sleep=lambda _: None).enqueue(reqs) == 5
    assert flaky.calls == 3
    assert sorted(json.loads(b)["order_id"] for b in _receive_all(client, url)) == [f"o{i}" for i in range(5)]


def test_sqs_names_the_orders_it_could_not_queue(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    flaky = PartlyFailingSqs(client, retryable_fails=99, sender_fault_orders=("o13",))
    reqs = [request(f"o{i:02}") for i in range(15)]
    with pytest.raises(EnqueueError) as info:
        SqsSendQueue(flaky, url, max_retries=2, sleep=lambda _: None).enqueue(reqs)
    assert sorted(info.value.order_ids) == ["o00", "o10", "o13"]
    assert len(_receive_all(client, url)) == 12  # everything else went out


# ---------------------------------------------------------------------------------------------
# SNS


class GatewayEnv:
    def __init__(self, kind: str):
        self.kind = kind
        if kind == "fake":
            self.gateway: Any = FakeSmsGateway(opted_out={"+14155550199"})
        else:
            self.client = boto3.client("sns", region_name=REGION)
            self.gateway = SnsSmsGateway(self.client, sender_id="NUDGE")

    def sent(self) -> list[tuple[str, str]]:
        return self.gateway.sent if self.kind == "fake" else moto_sent_sms(region=REGION)


@pytest.fixture(params=["fake", "sns"])
def gateway_env(request: pytest.FixtureRequest) -> Iterator[GatewayEnv]:
    if request.param == "fake":
        yield GatewayEnv("fake")
    else:
        with mock_aws():
            yield GatewayEnv("sns")


def test_publish_sends_the_text(gateway_env: GatewayEnv) -> None:
    text = "【小店】您的订单还未付款，需要帮忙吗？"
    first = gateway_env.gateway.publish(outgoing("+8613800138000", text))
    second = gateway_env.gateway.publish(outgoing("+14155550100", "hello"))
    assert first and second and first != second
    assert gateway_env.sent() == [("+8613800138000", text), ("+14155550100", "hello")]


def test_opted_out_numbers(gateway_env: GatewayEnv) -> None:
    # moto: every number ending in 99 is opted out; the fake is told the same number
    assert gateway_env.gateway.is_opted_out("+14155550199") is True
    assert gateway_env.gateway.is_opted_out("+14155550100") is False


def test_a_bad_number_is_a_permanent_error(gateway_env: GatewayEnv) -> None:
    with pytest.raises(PermanentSendError):
        gateway_env.gateway.publish(outgoing("not-a-number", "hi"))
    assert gateway_env.sent() == []


def test_publish_sets_the_sms_attributes() -> None:
    with mock_aws():
        client = boto3.client("sns", region_name=REGION)
        seen: list[dict[str, Any]] = []
        client.meta.events.register(
            "provide-client-params.sns.Publish", lambda params, **_: seen.append(params)
        )
        SnsSmsGateway(client, sender_id="NUDGE", origination_number="+18005550100", max_price="0.50").publish(
            outgoing("+8613800138000", "hi")
        )
        SnsSmsGateway(client).publish(outgoing("+8613800138000", "hi"))
    attrs = {k: v["StringValue"] for k, v in seen[0]["MessageAttributes"].items()}
    assert attrs == {
        "AWS.SNS.SMS.SMSType": "Transactional",
        "AWS.SNS.SMS.SenderID": "NUDGE",
        "AWS.MM.SMS.OriginationNumber": "+18005550100",
        "AWS.SNS.SMS.MaxPrice": "0.50",
    }
    assert set(seen[1]["MessageAttributes"]) == {"AWS.SNS.SMS.SMSType"}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("Throttled", 429),
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("SomethingNew", 502),
    ],
)
def test_throttling_and_5xx_are_transient(code: str, status: int) -> None:
    client = boto3.client("sns", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("publish", service_error_code=code, http_status_code=status)
        stub.add_client_error(
            "check_if_phone_number_is_opted_out", service_error_code=code, http_status_code=status
        )
        gateway = SnsSmsGateway(client)
        with pytest.raises(TransientSendError):
            gateway.publish(outgoing("+8613800138000", "hi"))
        with pytest.raises(TransientSendError):
            gateway.is_opted_out("+8613800138000")


def test_other_client_errors_are_permanent() -> None:
    client = boto3.client("sns", region_name=REGION)
    with Stubber(client) as stub:
        stub.add_client_error("publish", service_error_code="InvalidParameter", http_status_code=400)
        with pytest.raises(PermanentSendError):
            SnsSmsGateway(client).publish(outgoing("+8613800138000", "hi"))


class Raising:
    def __init__(self, exc: Exception):
        self.exc = exc

    def publish(self, **_: Any) -> dict[str, Any]:
        raise self.exc


def test_unreachable_sns_is_transient_but_a_lost_answer_is_not() -> None:
    with pytest.raises(TransientSendError):
        SnsSmsGateway(Raising(EndpointConnectionError(endpoint_url="https://sns"))).publish(
            outgoing("+8613800138000", "x")
        )
    # A read timeout: SNS may have sent it. Releasing the claim could send it twice: propagate as is.
    with pytest.raises(ReadTimeoutError):
        SnsSmsGateway(Raising(ReadTimeoutError(endpoint_url="https://sns"))).publish(
            outgoing("+8613800138000", "x")
        )


# --- delivery receipts: fake or dynamo ---------------------------------------------------------


def _receipt(
    status: str,
    message_id: str = "m1",
    *,
    order_id: str | None = "o1",
    attempt: int | None = 1,
    minutes: int = 1,
):
    from nudge.domain.delivery import DeliveryStatus, Receipt

    return Receipt(
        message_id=message_id,
        status=DeliveryStatus(status),
        at=NOW + timedelta(minutes=minutes),
        code=status.upper(),
        order_id=order_id,
        attempt=attempt,
    )


def test_a_receipt_is_applied_once_and_never_backwards(ledger_env: LedgerEnv) -> None:
    from nudge.services.ports import ReceiptOutcome as R

    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    assert led.apply_receipt(_receipt("pending")) is R.APPLIED
    assert led.apply_receipt(_receipt("delivered", minutes=3)) is R.APPLIED
    assert led.apply_receipt(_receipt("delivered", minutes=3)) is R.UNCHANGED  # delivered twice
    assert led.apply_receipt(_receipt("pending", minutes=2)) is R.UNCHANGED  # late, out of order
    assert led.apply_receipt(_receipt("failed", minutes=9)) is R.UNCHANGED  # the first final stays
    item = ledger_env.item("o1")
    assert (item["delivery_1"], item["delivery_code_1"]) == ("delivered", "DELIVERED")


def test_a_receipt_for_no_known_sms_writes_nothing(ledger_env: LedgerEnv) -> None:
    from nudge.services.ports import ReceiptOutcome as R

    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    assert led.apply_receipt(_receipt("delivered", "forged")) is R.UNKNOWN_MESSAGE
    assert led.apply_receipt(_receipt("delivered", attempt=2)) is R.UNKNOWN_MESSAGE
    assert led.apply_receipt(_receipt("delivered", order_id="o-nobody")) is R.UNKNOWN_MESSAGE
    assert led.apply_receipt(_receipt("delivered", order_id=None)) is R.UNKNOWN_MESSAGE
    assert "delivery_1" not in ledger_env.item("o1") and ledger_env.item("o-nobody") == {}


def test_a_receipt_settles_an_unconfirmed_send(ledger_env: LedgerEnv) -> None:
    from nudge.services.ports import ReceiptOutcome as R

    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_unconfirmed(request(), "unconfirmed: publish outcome unknown", NOW)
    assert led.apply_receipt(_receipt("delivered", "m-late")) is R.SETTLED
    item = ledger_env.item("o1")
    assert (item["message_id_1"], item["delivery_1"]) == ("m-late", "delivered")
    assert led.apply_receipt(_receipt("delivered", "m-other")) is R.UNKNOWN_MESSAGE  # now it has an id


def test_an_sns_log_receipt_finds_its_sms_through_the_pointer_and_the_pointer_is_no_order(
    ledger_env: LedgerEnv,
) -> None:
    from nudge.services.ports import ReceiptOutcome as R

    env = LedgerEnv(ledger_env.kind, ledger_env.ddb, message_pointers=True)
    led = env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    pointer = env.item("#sns-message#m1")
    assert (pointer["sms_order_id"], int(pointer["sms_attempt"])) == ("o1", 1)
    assert not {"sent_day", "held_out_day", "phone", "reminders_sent"} & set(pointer)
    assert led.apply_receipt(_receipt("delivered", order_id=None, attempt=None)) is R.APPLIED
    assert led.apply_receipt(_receipt("delivered", order_id=None, attempt=None)) is R.UNCHANGED
    assert (
        led.apply_receipt(_receipt("delivered", "m-unknown", order_id=None, attempt=None))
        is R.UNKNOWN_MESSAGE
    )
    assert env.item("#sns-message#m-unknown") == {}
    assert env.item("o1")["delivery_1"] == "delivered"
    # Never in a plan's view: not an order's state, not a recent send.
    assert set(led.states(["o1", "#sns-message#m1"])) == {"o1"}
    assert [r.order_id for r in led.recent_sends(NOW - timedelta(hours=1), [request().day])] == ["o1"]


def test_without_sns_logs_no_pointer_is_written_or_read(ledger_env: LedgerEnv) -> None:
    from nudge.services.ports import ReceiptOutcome as R

    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    assert ledger_env.item("#sns-message#m1") == {}
    assert led.apply_receipt(_receipt("delivered", order_id=None, attempt=None)) is R.UNKNOWN_MESSAGE


def test_a_failed_pointer_write_loses_only_the_receipt_never_the_recorded_send(ddb: Any) -> None:
    from botocore.exceptions import ClientError

    class PointerWritesFail:
        def __init__(self, client: Any):
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def update_item(self, **kwargs: Any) -> Any:
            if kwargs["Key"]["order_id"]["S"].startswith("#sns-message#"):
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
            return self._client.update_item(**kwargs)

    led = DynamoReminderLedger(PointerWritesFail(ddb), LEDGER, DAY_INDEX, ttl_days=30, message_pointers=True)
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)  # no raise: the SMS is out and recorded
    item = item_from_ddb(ddb.get_item(TableName=LEDGER, Key={"order_id": {"S": "o1"}})["Item"])
    assert item["message_id_1"] == "m1"


# --- unknown after 72 h: fake or dynamo --------------------------------------------------------


def test_mark_unknown_writes_only_an_sms_without_a_final_status(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    later = NOW + timedelta(hours=73)
    assert led.mark_unknown("o-nobody", 1, later) is False and ledger_env.item("o-nobody") == {}  # no item
    led.claim(request(), "t1", 500, NOW)
    assert led.mark_unknown("o1", 1, later) is False  # claimed, neither sent nor reported unconfirmed
    led.record_sent(request(), "t1", "m1", NOW)
    assert led.mark_unknown("o1", 2, later) is False  # no such SMS
    assert led.apply_receipt(_receipt("pending")) is not None
    assert led.mark_unknown("o1", 1, later) is True  # pending -> unknown
    assert led.mark_unknown("o1", 1, later + timedelta(days=1)) is False  # once
    item = ledger_env.item("o1")
    assert (item["delivery_1"], item["delivery_code_1"]) == ("unknown", "NO_RECEIPT_72H")
    assert item["delivery_at_1"] == utc_iso(later) and "delivery_2" not in item
    led.claim(request("o2"), "t2", 500, NOW)
    led.record_sent(request("o2"), "t2", "m2", NOW)
    led.apply_receipt(_receipt("delivered", "m2", order_id="o2"))
    assert led.mark_unknown("o2", 1, later) is False  # a final status stays
    assert ledger_env.item("o2")["delivery_1"] == "delivered"


def test_awaiting_receipts_reads_the_day_index_for_order_items_only(ledger_env: LedgerEnv) -> None:
    from nudge.domain.delivery import AwaitedSms

    led = ledger_env.ledger
    # With the buyer interval on, the claim also puts the phone's contact item in the day index.
    led.claim(request(), "t1", 500, NOW, buyer_min_interval=timedelta(hours=24))
    led.record_sent(request(), "t1", "m1", NOW)
    hour = timedelta(hours=1)
    found = list(led.awaiting_receipts(NOW - hour, NOW + hour, [DAY]))
    assert found == [AwaitedSms("o1", 1, NOW.astimezone(UTC), None)]
    assert list(led.awaiting_receipts(NOW + hour, NOW + 2 * hour, [DAY])) == []  # not in the time range
    assert list(led.awaiting_receipts(NOW - hour, NOW + hour, [DAY + timedelta(days=1)])) == []
    if ledger_env.calls is not None:
        assert set(ledger_env.calls.ops) <= {"TransactWriteItems", "UpdateItem", "Query"}  # never a Scan


def test_an_order_whose_only_sms_is_unconfirmed_enters_the_day_index_at_its_claim(
    ledger_env: LedgerEnv,
) -> None:
    """Its SMS may be out: the sweep must find it; plans see it at its claim, as the claim's
    contact item shows them; the report reads no SMS on it (it lists recorded sends)."""
    from nudge.adapters.ledger import touches_from_item
    from nudge.domain.delivery import AwaitedSms
    from nudge.services.receipt_deadline import mark_unknown_deliveries

    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)  # no buyer interval: no contact item in the index
    reported = NOW + timedelta(minutes=30)  # a redelivery found the claim never recorded
    led.record_unconfirmed(request(), "unconfirmed: claimed, never recorded as sent", reported)
    item = ledger_env.item("o1")
    assert (item["sent_day"], item["last_sent_at"]) == (DAY.isoformat(), utc_iso(NOW))
    hour = timedelta(hours=1)
    assert list(led.awaiting_receipts(NOW - hour, NOW + hour, [DAY])) == [
        AwaitedSms("o1", 1, reported.astimezone(UTC), None, unconfirmed=True)
    ]
    assert [(r.order_id, r.sent_at) for r in led.recent_sends(NOW - hour, [DAY])] == [("o1", NOW)]
    assert not touches_from_item(ledger_env.item("o1")).sends  # never counted as sent, never credited
    summary = mark_unknown_deliveries(led, reported + timedelta(hours=73), CST)
    assert (summary.marked, summary.marked_unconfirmed) == (1, 1)
    assert ledger_env.item("o1")["delivery_1"] == "unknown"


def test_an_unconfirmed_later_sms_leaves_the_order_under_its_recorded_send(ledger_env: LedgerEnv) -> None:
    led = ledger_env.ledger
    led.claim(request(), "t1", 500, NOW)
    led.record_sent(request(), "t1", "m1", NOW)
    nxt = request(attempt=2, day=DAY + timedelta(days=1))
    led.claim(nxt, "t2", 500, NOW + timedelta(days=1))
    led.record_unconfirmed(nxt, "unconfirmed: publish outcome unknown", NOW + timedelta(days=1))
    item = ledger_env.item("o1")
    assert (item["sent_day"], item["last_sent_at"], int(item["reminders_sent"])) == (
        DAY.isoformat(),
        utc_iso(NOW),
        1,
    )


def test_the_unknown_sweep_reaches_an_order_whose_id_starts_with_a_hash(ledger_env: LedgerEnv) -> None:
    """Order ids are the shop's strings ("#1001" is a common order name): only the ledger's own
    key prefixes mark an item that is not an order."""
    from nudge.services.receipt_deadline import mark_unknown_deliveries

    led = ledger_env.ledger
    hashed = request("#1001")
    led.claim(hashed, "t1", 500, NOW, buyer_min_interval=timedelta(hours=24))
    led.record_sent(hashed, "t1", "m1", NOW)
    summary = mark_unknown_deliveries(led, NOW + timedelta(hours=73), CST)
    assert (summary.examined, summary.marked) == (1, 1)
    assert ledger_env.item("#1001")["delivery_1"] == "unknown"


def test_the_unknown_sweep_is_bounded_per_run_and_the_next_run_goes_on(
    ledger_env: LedgerEnv, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nudge.services import receipt_deadline

    monkeypatch.setattr(receipt_deadline, "PROGRESS_EVERY", 2)
    led = ledger_env.ledger
    for i in range(5):
        led.claim(request(f"o{i}", phone=f"+861380013800{i}", buyer=f"b{i}"), "t", 500, NOW)
        led.record_sent(request(f"o{i}", phone=f"+861380013800{i}", buyer=f"b{i}"), "t", f"m{i}", NOW)
    later = NOW + timedelta(hours=73)

    def seconds_for(sms: int):  # an invocation with time for this many SMS, then under the margin
        calls = iter(range(10_000))
        return lambda: 60.0 if next(calls) < sms else receipt_deadline.RUN_MARGIN - 1

    with caplog.at_level("INFO", logger=receipt_deadline.__name__):
        first = receipt_deadline.mark_unknown_deliveries(led, later, CST, time_left=seconds_for(3))
    assert (first.examined, first.marked, first.limited) == (3, 3, True)  # out of time at the 4th SMS
    second = receipt_deadline.mark_unknown_deliveries(led, later, CST, time_left=seconds_for(10))
    assert (second.marked, second.limited) == (2, False)
    third = receipt_deadline.mark_unknown_deliveries(led, later, CST)
    assert (third.examined, third.marked, third.raced) == (5, 0, 0)
    assert all(ledger_env.item(f"o{i}")["delivery_1"] == "unknown" for i in range(5))
    assert "unknown after 72 h: 2 SMS read, 2 marked, 0 raced" in caplog.text  # the progress line
    assert "out of time after 3 SMS read" in caplog.text
    assert "phone" not in str(first.to_json()) and "+86" not in caplog.text


def test_the_sms_of_an_item_and_the_time_each_counts_from() -> None:
    from nudge.adapters.ledger import awaited_from_item
    from nudge.domain.delivery import AwaitedSms, DeliveryStatus

    t = [utc_iso(NOW + timedelta(days=d)) for d in range(4)]
    item = {
        "order_id": "o1",
        "reminders_sent": 3,
        "last_sent_at": t[2],
        "message_id_1": "m1",
        "sent_at_1": t[0],
        "delivery_1": "delivered",
        # attempt 2: claimed and released (never sent); attempt 3: recorded before per-attempt times
        "message_id_3": "m3",
        "unconfirmed_attempts": {4},
        "skips": [
            {"attempt": 2, "reason": "paid", "at": t[1]},
            {"attempt": 4, "reason": "unconfirmed", "at": t[3]},
        ],
    }
    at = [datetime.fromisoformat(x) for x in t]
    assert awaited_from_item(item) == [
        AwaitedSms("o1", 1, at[0], DeliveryStatus.DELIVERED),
        AwaitedSms("o1", 3, at[2], None),
        AwaitedSms("o1", 4, at[3], None, unconfirmed=True),  # counted from its report, after the claim
    ]
    assert awaited_from_item({**item, "delivery_1": "lost"})[0].attempt == 3  # not a status: left alone
    assert awaited_from_item({"order_id": "#contact#phone#+8613800138000", "last_sent_at": t[0]}) == []
