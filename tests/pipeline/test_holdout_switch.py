"""Switching the holdout off keeps the comparison fair (analysed as assigned), end to end on moto.

Orders held out while the share was 50% are texted once the share goes to 0 (the operator
redeploys ExtraConfigJson); they pay after that SMS. Their orders and payments stay in the holdout
group: the report never counts them as reminded, nor their payments as recovered."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import pytest

from nudge_cli.cli import main
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import MORNING_OPENS, QUIET, SHANGHAI, numbered_order

pytestmark = pytest.mark.aws

AFTERNOON = datetime(2026, 11, 23, 15, 0, tzinfo=SHANGHAI)


def holdout(percent: int) -> dict[str, str]:
    return {"EXTRA_CONFIG_JSON": json.dumps({"rules": {"holdout_percent": percent}})}


def test_orders_held_out_then_texted_after_the_switch_stay_in_the_holdout_group(tmp_path):
    orders = [numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in range(1, 41)]
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env={**QUIET, **holdout(50)}) as p:
        p.load_orders(orders)
        morning = p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        held = {d["order_id"] for d in morning["decisions"] if d["reason"] == "holdout"}
        texted = {d["order_id"] for d in morning["decisions"] if d["action"] == "send"}
        assert held and texted and not held & texted

        p.redeploy(holdout(0))  # the operator switches the holdout off
        afternoon = p.fire_window("15:00-16:50@17:00", AFTERNOON)
        p.drain_queue()
        assert {d["order_id"] for d in afternoon["decisions"] if d["action"] == "send"} == held

        # Every held-out order pays 20 minutes after the SMS it got once the holdout was off.
        paid_at = AFTERNOON + timedelta(minutes=20)
        p.clock.set(paid_at)
        p.play_stream([p.pay_order(oid, paid_at) for oid in sorted(held)])
        outcomes = {oid: p.ledger_item(oid)["outcome"] for oid in held}
        assert all(o["holdout"] for o in outcomes.values())  # measured as the holdout's payment

        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
    r = json.loads(out.getvalue())
    assert r["holdout"]["orders"] == len(held) and r["holdout"]["paid"] == len(held)
    assert r["reminded"] == len(texted) and r["paid"] == 0  # the reminded group is what it was
    assert r["sms"] == len(texted) + len(held)  # every SMS still costs money
    assert r["cost_currency"] == "CNY"
