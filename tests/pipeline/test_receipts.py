"""Delivery receipts end to end: End User Messaging's EventBridge events through the real receipts
handler onto the ledger item of an SMS the pipeline sent (moto; stack from template.yaml)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from nudge_cli.cli import main
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import MORNING_OPENS, QUIET, numbered_order

pytestmark = pytest.mark.aws

EVENTS = Path(__file__).resolve().parents[2] / "events"


def delivery(message_id: str, order_id: str, kind: str = "TEXT_DELIVERED", attempt: str = "1") -> dict:
    """The sample event (events/eum-text-delivered.json) about this SMS."""
    event = json.loads((EVENTS / "eum-text-delivered.json").read_text(encoding="utf-8"))
    event["detail"].update(
        messageId=message_id,
        eventType=kind,
        messageStatus=kind.removeprefix("TEXT_"),
        context={"order_id": order_id, "attempt": attempt},
    )
    return event


def test_receipts_land_on_the_sms_once_and_never_backwards():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        m1 = p.ledger_item("o-1")["message_id_1"]
        assert p.delivery_event(delivery(m1, "o-1", "TEXT_PENDING")) == {"result": "applied"}
        assert p.delivery_event(delivery(m1, "o-1")) == {"result": "applied"}
        assert p.delivery_event(delivery(m1, "o-1")) == {"result": "unchanged"}  # at least once
        assert p.delivery_event(delivery(m1, "o-1", "TEXT_QUEUED")) == {"result": "unchanged"}  # late
        item = p.ledger_item("o-1")
        assert (item["delivery_1"], item["delivery_code_1"]) == ("delivered", "DELIVERED")
        # Another order's id, a forged id, an order Nudge never texted: counted and dropped.
        assert p.delivery_event(delivery(m1, "o-2")) == {"result": "unknown_message"}
        assert p.delivery_event(delivery("forged", "o-404")) == {"result": "unknown_message"}
        assert p.ledger_item("o-404") is None and "delivery_1" not in p.ledger_item("o-2")
        unreadable = delivery(m1, "o-1")
        del unreadable["detail"]["messageId"]
        assert p.delivery_event(unreadable)["result"] == "unreadable"
        m2 = p.ledger_item("o-2")["message_id_1"]
        assert p.delivery_event(delivery(m2, "o-2", "TEXT_CARRIER_UNREACHABLE")) == {"result": "applied"}
        # nudge report reads them back: one delivered, one failed by its code
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
    r = json.loads(out.getvalue())
    assert (r["delivered"], r["failed"], r["expired"], r["delivery_rate"]) == (
        1,
        {"CARRIER_UNREACHABLE": 1},
        0,
        0.5,
    )


# ------------------------------------------------------------- SNS SMS delivery-status logs

SNS_LOGS = {"SnsDeliveryStatusLogs": "100"}


def sns_logs_event(*lines: tuple[str, str, str] | str) -> dict:
    """A CloudWatch Logs subscription event shaped like the samples in events/, its log lines SNS's
    delivery-status lines about these SMS: (message id, SUCCESS or FAILURE, providerResponse), or
    a raw line as given."""
    import base64
    import gzip

    sample = json.loads((EVENTS / "sns-sms-delivery-log-failure.json").read_text(encoding="utf-8"))
    payload = json.loads(gzip.decompress(base64.b64decode(sample["awslogs"]["data"])))
    template = json.loads(payload["logEvents"][0]["message"])
    events = []
    for i, spec in enumerate(lines):
        line = json.loads(json.dumps(template))
        if isinstance(spec, tuple):
            line["notification"]["messageId"], line["status"], line["delivery"]["providerResponse"] = spec
        message = spec if isinstance(spec, str) else json.dumps(line)
        events.append({"id": str(i), "timestamp": 1795399234558 + i, "message": message})
    payload["logEvents"] = events
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def ledger_keys(p: LocalPipeline) -> list[str]:
    table = p.dynamodb.Table(p.resources.ledger_table)
    return sorted(i["order_id"] for i in table.scan(ProjectionExpression="order_id")["Items"])


def test_sns_delivery_logs_land_on_the_sms_through_the_ledgers_pointer():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET, parameters=SNS_LOGS) as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2, 3)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        m1, m2 = p.ledger_item("o-1")["message_id_1"], p.ledger_item("o-2")["message_id_1"]
        pointers = [k for k in ledger_keys(p) if k.startswith("#sns-message#")]
        assert len(pointers) == 3  # one per SMS sent
        pointer = p.ledger_item(f"#sns-message#{m1}")
        assert (pointer["sms_order_id"], pointer["sms_attempt"]) == ("o-1", 1)
        assert set(pointer) == {
            "order_id",
            "sms_order_id",
            "sms_attempt",
            "expires_at",
        }  # no phone, no index key
        logs = sns_logs_event(
            (m1, "SUCCESS", "Message has been accepted by phone carrier"),
            (m2, "FAILURE", "Phone is currently unreachable/unavailable"),
            ("0f0f0f0f-aaaa-bbbb-cccc-404040404040", "SUCCESS", "Message has been accepted by phone carrier"),
            "not json: +12065550100",
        )
        counts = {"applied": 2, "unknown_message": 1, "unreadable": 1}
        assert p.delivery_event(logs) == {"result": "logs", "counts": counts}
        before = ledger_keys(p)
        assert p.delivery_event(logs) == {
            "result": "logs",
            "counts": {"unchanged": 2, "unknown_message": 1, "unreadable": 1},
        }
        assert ledger_keys(p) == before  # a replay changes nothing; the unknown id created nothing
        assert (p.ledger_item("o-1")["delivery_1"], p.ledger_item("o-1")["delivery_code_1"]) == (
            "delivered",
            "Message has been accepted by phone carrier",
        )
        assert p.ledger_item("o-2")["delivery_1"] == "failed"
        assert "delivery_1" not in p.ledger_item("o-3")
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
    r = json.loads(out.getvalue())
    assert (r["delivered"], r["failed"]) == (1, {"Phone is currently unreachable/unavailable": 1})
    assert "#sns-message#" not in out.getvalue()  # pointers are no orders and no SMS
    assert r["delivery_rate"] == 0.5  # of the SMS with a final receipt (o-3's has none yet)


def test_the_default_stack_writes_no_pointer_and_drops_sns_log_lines_it_cannot_place():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        assert p.resources.function_envs["SendFunction"]["SNS_DELIVERY_LOGS"] == "false"
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        assert not [k for k in ledger_keys(p) if k.startswith("#sns-message#")]
        m1 = p.ledger_item("o-1")["message_id_1"]
        logs = sns_logs_event((m1, "SUCCESS", "Message has been accepted by phone carrier"))
        assert p.delivery_event(logs) == {"result": "logs", "counts": {"unknown_message": 1}}
        assert "delivery_1" not in p.ledger_item("o-1")
