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
