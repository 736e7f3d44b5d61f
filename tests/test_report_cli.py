"""`nudge report` over a ledger on moto: Query-only reads, the JSON contract, masked --orders."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nudge_cli.cli import main
from nudge_cli.local import FakeClock, LocalPipeline

pytestmark = pytest.mark.aws

SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(i: int) -> dict:
    return {
        "order_id": f"o-{i}",
        "buyer_id": f"b-{i}",
        "phone": f"+86138001381{i:02d}",
        "status": "unpaid",
        "created_at": (AT - timedelta(hours=3, minutes=i)).isoformat(),
        "amount": "150.00",
    }


def test_report_after_a_window_and_some_payments(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"outcomes": {"price_per_segment": "0.05"}}), encoding="utf-8")
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders([order(i) for i in range(1, 5)])
        p.fire_window("09:50-10:40@11:00", AT)
        p.drain_queue()
        p.play_stream(
            [p.pay_order("o-1", AT + timedelta(minutes=40)), p.pay_order("o-2", AT + timedelta(hours=2))]
        )
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        args = ["report", *tables, "--to", "2026-11-23", "--days", "7", "--config", str(config)]
        out = io.StringIO()
        assert main([*args, "--json"], out) == 0
        r = json.loads(out.getvalue())
        assert (r["from"], r["to"], r["reminded"], r["sms"], r["paid"]) == (
            "2026-11-17",
            "2026-11-23",
            4,
            4,
            2,
        )
        assert r["recovered"] == {"CNY": "300.00"} and r["paid_rate"] == 0.5 and r["holdout"] is None
        assert r["cost"] == format(0.05 * r["segments"], ".2f")
        assert [row["window"] for row in r["by_window"]] == ["09:50-10:40"]
        out = io.StringIO()
        assert main([*args, "--orders"], out) == 0
        text = out.getvalue()
        assert "recovered orders" in text and "o-1" in text and "+86138001381" not in text
        assert "300.00 CNY" in text and "ROI" in text
        out = io.StringIO()
        main([*args, "--json", "--orders"], out)
        listed = json.loads(out.getvalue())["orders"]
        assert [o["order_id"] for o in listed] == ["o-1", "o-2"] and listed[0]["status_now"] == "paid"
        assert all("*" in o["phone"] for o in listed)


def test_report_usage_errors(capsys):
    assert main(["report", "--ledger-table", "x"]) == 2
    assert "--orders-table" in capsys.readouterr().err
    assert main(["report", "--stack", "s", "--ledger-table", "x", "--orders-table", "y"]) == 2
    assert main(["report", "--ledger-table", "x", "--orders-table", "y", "--days", "0"]) == 2
