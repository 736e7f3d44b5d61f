"""What only the fakes do: failure injection, inspection helpers, Order records.

The semantics they share with the AWS adapters are proven by the contract tests in test_dal.py.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from nudge.adapters.sqs import SqsSendQueue
from nudge.domain.models import Order
from nudge.domain.orders import parse_order
from nudge.services.ports import ClaimOutcome, PermanentSendError, SendRequest, TransientSendError
from nudge_local.pipeline import moto_sent_sms
from tests.builders import outgoing
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue, FakeSmsGateway, order_record

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=CST)


def request(order_id: str = "o1", attempt: int = 1) -> SendRequest:
    return SendRequest(
        order_id=order_id,
        buyer_id="b1",
        phone="+8613800138000",
        attempt=attempt,
        text="【小店】您的订单还未付款",
        segments=1,
        not_after=NOW + timedelta(minutes=40),
        day=date(2026, 11, 23),
        window="09:50-10:40",
        planned_at=NOW,
    )


def test_fake_gateway_fails_the_next_n_publishes() -> None:
    sms = FakeSmsGateway()
    sms.fail_next(2)
    for _ in range(2):
        with pytest.raises(TransientSendError):
            sms.publish(outgoing("+8613800138000", "hi"))
    assert sms.published == []
    assert sms.publish(outgoing("+8613800138000", "hi")) == "fake-1"
    assert sms.sent == [("+8613800138000", "hi")]


def test_fake_gateway_failing_numbers_opt_outs_and_bad_numbers() -> None:
    sms = FakeSmsGateway(opted_out={"+8613800138099"}, failing_numbers={"+8613800138001"})
    with pytest.raises(TransientSendError):
        sms.publish(outgoing("+8613800138001", "hi"))
    with pytest.raises(PermanentSendError):
        sms.publish(outgoing("13800138000", "hi"))  # national, not E.164: SNS says InvalidParameter
    assert sms.is_opted_out("+8613800138099") and not sms.is_opted_out("+8613800138000")
    assert sms.opt_out_checks == ["+8613800138099", "+8613800138000"]
    # opting a number out later is just a set
    sms.opted_out.add("+8613800138000")
    assert sms.is_opted_out("+8613800138000")


def test_fake_orders_take_records_and_orders() -> None:
    order = Order(
        order_id="o1",
        buyer_id="b1",
        phone="+8613800138000",
        status="unpaid",
        created_at=datetime(2026, 11, 23, 8, 0, tzinfo=CST),
        amount=Decimal("12.30"),
        buyer_flags=frozenset({"vip"}),
        closes_at=datetime(2026, 11, 25, 8, 0, tzinfo=CST),
    )
    assert parse_order(order_record(order)) == order
    repo = FakeOrderRepository([order, {**order_record(order), "order_id": "o2", "status": "closed"}])
    assert list(repo.orders_for_planning(NOW - timedelta(hours=72))) == [order]
    now = repo.current(["o1", "o2", "o3"])
    assert {k: v.status for k, v in now.items()} == {"o1": "unpaid", "o2": "closed"}
    assert (now["o1"].created_at, now["o1"].closes_at) == (order.created_at, order.closes_at)
    repo.set_status("o1", "paid")
    assert repo.current(["o1"])["o1"].status == "paid"
    assert (repo.planning_calls, repo.current_calls) == (1, 2)


def test_fake_orders_hide_records_the_index_would_not_hold() -> None:
    repo = FakeOrderRepository(
        [
            {"order_id": "no-created", "status": "unpaid"},
            {"order_id": "no-status", "created_at": "2026-11-23"},
        ]
    )
    assert list(repo.orders_for_planning(NOW - timedelta(days=1))) == []


def test_fake_ledger_exposes_its_items() -> None:
    led = FakeReminderLedger()
    assert led.claim(request(), "t1", 5, NOW) == ClaimOutcome.CLAIMED
    led.record_sent(request(), "t1", "m1", NOW)
    assert led.items["o1"]["reminders_sent"] == 1
    assert led.items["o1"]["last_sent_at"] == "2026-11-23T02:00:00.000+00:00"
    assert led.quota == {date(2026, 11, 23): 1}


def test_fake_queue_batches_like_sqs() -> None:
    queue = FakeSendQueue()
    reqs = [request(f"o{i:02}") for i in range(25)]
    assert queue.enqueue(reqs) == 25
    assert queue.batches == 3
    assert queue.bodies[0] == SqsSendQueue.body(reqs[0])
    assert json.loads(queue.bodies[0])["text"] == "【小店】您的订单还未付款"
    assert queue.requests == reqs
    assert queue.drain() == reqs and queue.requests == []


def test_moto_sent_sms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        assert moto_sent_sms() == []
        boto3.client("sns", region_name="us-east-1").publish(PhoneNumber="+8613800138000", Message="你好")
        assert moto_sent_sms(region="us-east-1") == [("+8613800138000", "你好")]
        assert moto_sent_sms(region="eu-west-1") == []
