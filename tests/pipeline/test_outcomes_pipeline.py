"""Outcomes end to end: the template's stream and function, and the real handler on moto with the
stream played in-process (``LocalPipeline.play_stream``), the report read back with Query."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from nudge.adapters.outcomes import DynamoOutcomeStore
from nudge_local.moto_env import load_template
from nudge_local.pipeline import FakeClock, LambdaContextStub, LocalPipeline, matches_filter, stream_record
from tests.builders import SHANGHAI, order_record

pytestmark = pytest.mark.aws

ROOT = Path(__file__).resolve().parents[2]
SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
MORNING = "09:50-10:40@11:00"
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    from tests.contract.test_template import translated as make

    return make.__wrapped__()


def test_the_orders_table_streams_and_the_function_reads_it(translated):
    res = translated["Resources"]
    assert res["OrdersTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    (mapping,) = [
        m["Properties"]
        for m in res.values()
        if m["Type"] == "AWS::Lambda::EventSourceMapping"
        and m["Properties"]["FunctionName"] == {"Ref": "OutcomesFunction"}
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True and mapping["MaximumRetryAttempts"] == 5
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["OutcomesDLQ", "Arn"]}
    assert mapping["EventSourceArn"] == {
        "Fn::If": [
            "CreateOrdersTable",
            {"Fn::GetAtt": ["OrdersTable", "StreamArn"]},
            {"Ref": "ExistingOrdersStreamArn"},
        ]
    }
    assert len(mapping["FilterCriteria"]["Filters"]) == 2
    assert res["OutcomesFunction"]["Condition"] == "HasOrdersStream"
    # least privilege: the ledger only, read and conditional update
    (policy,) = [
        p for p in res["OutcomesFunctionRole"]["Properties"]["Policies"] if "ReadLedger" in json.dumps(p)
    ]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) == {"dynamodb:BatchGetItem", "dynamodb:UpdateItem"}


def filters() -> list[dict]:
    events = load_template(ROOT / "template.yaml")["Resources"]["OutcomesFunction"]["Properties"]["Events"]
    return [json.loads(f["Pattern"]) for f in events["Payments"]["Properties"]["FilterCriteria"]["Filters"]]


@pytest.mark.parametrize(
    ("old", "new", "invokes"),
    [
        (None, {"order_id": "a", "status": "paid"}, True),  # inserted paid
        ({"order_id": "a", "status": "unpaid"}, {"order_id": "a", "status": "paid"}, True),
        ({"order_id": "a", "status": "paid"}, {"order_id": "a", "status": "paid", "note": "x"}, False),
        (None, {"order_id": "a", "status": "unpaid"}, False),
        ({"order_id": "a", "status": "paid"}, {"order_id": "a", "status": "closed"}, False),  # refunded
        ({"order_id": "a", "status": "paid"}, None, False),  # deleted
        ({"order_id": "a"}, {"order_id": "a", "status": "paid"}, True),  # had no status
    ],
)
def test_the_filter_lets_only_changes_to_paid_through(old, new, invokes):
    record = stream_record(old, new, sequence=1, at=AT, stream_arn=ARN)
    assert any(matches_filter(record, f) for f in filters()) is invokes


def test_the_sample_stream_event_is_what_the_handler_takes():
    event = json.loads((ROOT / "events" / "dynamodb-stream-paid.json").read_text(encoding="utf-8"))
    (record,) = event["Records"]
    assert (
        record["eventSource"] == "aws:dynamodb"
        and record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    )
    assert any(matches_filter(record, f) for f in filters())
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        assert p.outcomes_module.lambda_handler(event, LambdaContextStub("outcomes")) == {
            "batchItemFailures": []
        }


def order(oid: str, i: int, **extra) -> dict:
    created = (AT - timedelta(hours=3, minutes=i)).isoformat()
    fields = {
        "buyer_id": f"b-{oid}",
        "phone": f"+86138001381{i:02d}",
        "created_at": created,
        "amount": "128.00",
    }
    return order_record(order_id=oid, **{**fields, **extra})


def test_payments_after_reminders_are_recorded_once(monkeypatch):
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders([order("o-1", 1), order("o-2", 2), order("o-3", 3)])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        assert len(p.sent_sms()) == 3
        sent_at = datetime.fromisoformat(p.ledger_item("o-1")["sent_at_1"])
        changes = [
            p.pay_order("o-1", sent_at + timedelta(minutes=25)),
            p.pay_order("o-2", sent_at - timedelta(minutes=5)),  # paid before the SMS
            p.pay_order("never", AT),  # an order Nudge never saw (an upsert)
        ]
        stats = p.play_stream([*changes, changes[0]])  # the first one delivered twice
        assert stats["failed"] == 0 and stats["invocations"] == 1 and stats["records"] == 4
        # refunded (back to unpaid), then paid again: one outcome still
        p.set_order_status("o-1", "unpaid")
        again = p.pay_order("o-1", sent_at + timedelta(hours=2))
        p.play_stream([again])
        outcome = p.ledger_item("o-1")["outcome"]
        assert outcome["attempt"] == 1 and outcome["minutes_to_pay"] == Decimal("25.0")
        assert outcome["amount"] == Decimal("128.00") and outcome["window"] == "09:50-10:40"
        assert "outcome" not in p.ledger_item("o-2") and p.ledger_item("never") is None
        store = DynamoOutcomeStore(
            boto3.client("dynamodb", region_name="us-east-1"), p.resources.ledger_table
        )
        records = store.report_records(AT.date(), AT.date())
        assert [o.order_id for o in records.outcomes] == ["o-1"]


def test_a_ledger_error_fails_the_record_and_the_stream_retries_it():
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders([order("o-1", 1)])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        change = p.pay_order("o-1", AT + timedelta(minutes=30))
        store = p.outcomes_app.recorder.store
        real, calls = store.record_outcome, []

        def flaky(outcome, at):
            calls.append(outcome.order_id)
            if len(calls) == 1:
                raise RuntimeError("throttled")
            return real(outcome, at)

        store.record_outcome = flaky
        stats = p.play_stream([change])
        assert stats == {"records": 1, "invocations": 2, "failed": 1}
        assert p.ledger_item("o-1")["outcome"]["attempt"] == 1


def test_the_demo_ends_with_a_report_of_recovered_orders():
    import io

    from nudge_local.demo import run_demo

    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    report = text[text.index("6) nudge report") :]
    assert "paid after a reminder: 3 (50.0%), recovered 548.50 CNY" in report
    listed = report[report.index("recovered orders") :]
    assert "o-1001" in listed and "o-1002" in listed and "o-1024" in listed
    assert "o-1017" not in listed and "o-1018" not in listed  # paid before its SMS; never texted
    assert "+86138****8001" in listed and "+8613800138001" not in text


def test_recovered_revenue_is_graphed_in_the_shop_currency_only(monkeypatch):
    """The dashboard sums RecoveredRevenue: yuan plus dollars would be a number that means nothing."""
    recorded: list[tuple[str, float]] = []
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        real = p.outcomes_module.metrics.add_metric

        def add_metric(name: str, **kwargs: Any) -> None:
            recorded.append((name, kwargs["value"]))
            real(name=name, **kwargs)

        monkeypatch.setattr(p.outcomes_module.metrics, "add_metric", add_metric)
        p.load_orders([order("o-cny", 1), order("o-usd", 2, currency="USD", amount="19.90")])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        assert len(p.sent_sms()) == 2
        stats = p.play_stream(
            [
                p.pay_order("o-cny", AT + timedelta(minutes=30)),
                p.pay_order("o-usd", AT + timedelta(minutes=40)),
            ]
        )
        assert stats["failed"] == 0
    assert ("RecoveredRevenue", 128.0) in recorded  # the shop's currency (CNY, the default)
    assert [v for n, v in recorded if n == "RecoveredRevenue"] == [128.0]
    assert [n for n, _ in recorded].count("RecoveredOrders") == 2
    assert ("RecoveredOtherCurrencyOrders", 1) in recorded
