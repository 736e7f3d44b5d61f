"""Text variants end to end on moto, through the real handlers: the plan queues each order's
variant, the send function writes it on the ledger item, the outcomes function credits it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from nudge.domain.config import load_config
from nudge.domain.variants import assign_variant
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.pipeline.test_outcomes_pipeline import AT, MORNING, QUIET, order

pytestmark = pytest.mark.aws

VARIANTS = {
    "1": [
        {"name": "caring", "template": "{greeting}，您的订单（{amount}）还未付款，付款遇到困难了吗？"},
        {"name": "urgent", "template": "{greeting}，您的订单（{amount}）还未付款，库存有限，先付先得。"},
    ]
}


def test_the_variant_is_on_the_sms_the_ledger_and_the_outcome():
    env = {**QUIET, "EXTRA_CONFIG_JSON": json.dumps({"messages": {"variants": VARIANTS}})}
    messages = load_config({"messages": {"variants": VARIANTS}}).messages
    ids = [f"o-{i}" for i in range(1, 9)]
    arms = {oid: assign_variant(oid, messages).name for oid in ids}
    assert set(arms.values()) == {"caring", "urgent"}
    with LocalPipeline(clock=FakeClock(AT), env=env) as p:
        p.load_orders([order(oid, i) for i, oid in enumerate(ids, start=1)])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        texts = dict(p.sent_sms())
        assert len(texts) == len(ids)
        for i, oid in enumerate(ids, start=1):
            item = p.ledger_item(oid)
            assert item["variant_1"] == arms[oid]
            text = texts[f"+86138001381{i:02d}"]
            assert ("先付先得" in text) == (arms[oid] == "urgent")
        sent_at = datetime.fromisoformat(p.ledger_item("o-1")["sent_at_1"])
        p.play_stream([p.pay_order("o-1", sent_at + timedelta(minutes=20))])
        assert p.ledger_item("o-1")["outcome"]["variant"] == arms["o-1"]


def test_nudge_report_by_variant_reads_the_arms_from_the_ledger(tmp_path):
    """`nudge report --by variant` and `--json`'s by_variant, over the ledger the handlers wrote."""
    import io

    from nudge_cli.cli import main

    env = {**QUIET, "EXTRA_CONFIG_JSON": json.dumps({"messages": {"variants": VARIANTS}})}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"messages": {"variants": VARIANTS}}))
    messages = load_config({"messages": {"variants": VARIANTS}}).messages
    ids = [f"o-{i}" for i in range(1, 11)]
    with LocalPipeline(clock=FakeClock(AT), env=env) as p:
        p.load_orders([order(oid, i) for i, oid in enumerate(ids, start=1)])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        payers = ids[:4]
        p.play_stream(
            [
                p.pay_order(
                    oid, datetime.fromisoformat(p.ledger_item(oid)["sent_at_1"]) + timedelta(minutes=9)
                )
                for oid in payers
            ]
        )
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        args = ["report", *tables, "--to", AT.date().isoformat(), "--days", "1", "--config", str(config)]
        out = io.StringIO()
        assert main([*args, "--json"], out) == 0
        rows = {row["variant"]: row for row in json.loads(out.getvalue())["by_variant"]}
        table = io.StringIO()
        assert main([*args, "--by", "variant"], table) == 0
    arms = {oid: assign_variant(oid, messages).name for oid in ids}
    for name in ("caring", "urgent"):
        assert rows[name]["reminded"] == sum(1 for a in arms.values() if a == name)
        assert rows[name]["paid"] == sum(1 for oid in payers if arms[oid] == name)
    assert rows["urgent"]["ci95"] == "not enough data" and rows["caring"]["ci95"] is None
    text = table.getvalue()
    assert "by variant" in text and "by day" not in text and "each variant needs about" in text
