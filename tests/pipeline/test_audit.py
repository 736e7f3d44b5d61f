"""The orders audit: orders the plan's index query cannot return are counted and named, daily."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta

import pytest

from nudge.adapters.orders import scan_order_items
from nudge.services.audit import audit_orders, check_order_item, safe_problem
from nudge_cli.cli import main
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import SHANGHAI

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
CREATED = (AT - timedelta(hours=3)).isoformat()


def item(order_id: str, **fields) -> dict:
    base = {
        "order_id": order_id,
        "buyer_id": f"b-{order_id}",
        "phone": "+8613800138001",
        "status": "unpaid",
        "created_at": CREATED,
        "amount": 100,
        "buyer_name": "王芳",
    }
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


# Each: the item, the field reported, whether the plan's index query can return it at all.
BAD = [
    (item("pending", status="pending"), "status", True),
    (item("upper", status="UNPAID"), "status", True),
    (item("no-status", status=None), "status", True),
    (item("no-created", created_at=None), "created_at", True),
    (item("naive", created_at="2026-11-23T06:50:00"), "created_at", False),  # read, then invalid_order
    (item("amount", amount="lots"), "amount", False),
    (item("no-phone", phone=None), "phone", False),
]
GOOD = [item("ok-1"), item("ok-2", status="paid"), item("closed", status="closed", created_at=None)]


@pytest.mark.parametrize(("record", "field", "invisible"), BAD, ids=[r["order_id"] for r, _, _ in BAD])
def test_each_problem_names_the_order_and_field_and_says_if_the_plan_can_see_it(record, field, invisible):
    problem = check_order_item(record)
    assert problem is not None
    assert (problem.order_id, problem.field, problem.invisible) == (record["order_id"], field, invisible)


def test_valid_and_closed_orders_have_no_problem():
    assert [check_order_item(r) for r in GOOD] == [None, None, None]


def test_one_bad_item_never_stops_the_audit_and_counts_cover_everything():
    report = audit_orders([*GOOD, *(r for r, _, _ in BAD), "not a mapping", {"order_id": 7}])
    assert report.scanned == 12 and report.closed == 1 and report.valid == 2
    assert report.invalid == 9 and report.invisible == 6
    assert report.by_field == {"status": 4, "created_at": 2, "amount": 1, "phone": 1, "record": 1}


def test_problem_texts_carry_no_personal_value():
    assert safe_problem("buyer_name", "contains a link 'https://evil.example/x'") == (
        "contains a link (value withheld)"
    )
    assert "13800138001" not in safe_problem("status", "unknown status '+8613800138001'")
    assert safe_problem("created_at", "not an ISO-8601 timestamp: '2026-11-23'") == (
        "not an ISO-8601 timestamp: '2026-11-23'"
    )


# ----------------------------------------------------------------------------------------- moto

QUIET = {"LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "true"}


@pytest.mark.aws
def test_the_audit_function_reports_what_the_plan_never_decides():
    records = [*GOOD, *(r for r, _, _ in BAD)]
    buffer = io.StringIO()
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders(records)
        plan = p.fire_window("09:50-10:40@11:00", AT)
        decided = {d["order_id"] for d in plan["decisions"]}
        invisible = {r["order_id"] for r, _, hidden in BAD if hidden}
        assert not decided & invisible  # the gap the audit closes: no decision, no log line
        # The audit handler's own logger (not a name looked up: which one is live depends on what ran before).
        handlers = [h for h in p.audit_module.logger.handlers if isinstance(h, logging.StreamHandler)]
        previous = [h.setStream(buffer) for h in handlers]
        # Powertools keeps the level of the first Logger of a service name: a test that ran
        # before with LOG_LEVEL=ERROR would silence the warnings this test reads.
        level = p.audit_module.logger.log_level
        p.audit_module.logger.setLevel("INFO")
        try:
            report = p.run_audit()
        finally:
            p.audit_module.logger.setLevel(level)
            for h, stream in zip(handlers, previous, strict=True):
                h.setStream(stream)
    assert report["scanned"] == len(records) and report["invalid"] == len(BAD)
    assert report["invisible"] == len(invisible)
    assert report["by_field"] == {"amount": 1, "created_at": 2, "phone": 1, "status": 3}
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    logged = {(x["order_id"], x["field"]) for x in lines if x["message"] == "invalid order item"}
    assert logged == {(r["order_id"], f) for r, f, _ in BAD}
    assert "13800138001" not in buffer.getvalue() and "王芳" not in buffer.getvalue()


@pytest.fixture
def orders_table(monkeypatch):
    import boto3
    import moto

    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        from nudge_local.moto_env import provision
        from nudge_local.pipeline import TEMPLATE

        stack = provision(TEMPLATE, session=boto3.session.Session(region_name="us-east-1"))
        yield boto3.resource("dynamodb", region_name="us-east-1").Table(stack.orders_table)


@pytest.mark.aws
def test_the_scan_reads_every_page_with_only_the_contract_fields(orders_table):
    for i in range(7):
        orders_table.put_item(Item={**item(f"o-{i}"), "shop_notes": "internal"})
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")  # low level, as the audit function's
    items = list(scan_order_items(client, orders_table.name, page_size=2))
    assert sorted(i["order_id"] for i in items) == [f"o-{i}" for i in range(7)]
    assert all("shop_notes" not in i for i in items) and items[0]["status"] == "unpaid"


@pytest.mark.aws
def test_nudge_audit_lists_the_problems_and_exits_1(orders_table, capsys):
    for record in [item("ok"), item("pending", status="pending"), item("no-created", created_at=None)]:
        orders_table.put_item(Item=record)
    out = io.StringIO()
    assert main(["audit", "--table", orders_table.name], out=out) == 1
    text = out.getvalue()
    assert text.startswith("3 orders scanned: 1 can be decided, 2 invalid (2 the plan cannot even see)")
    assert "pending  status: unknown status 'pending'" in text and "no-created  created_at: missing" in text
    assert "13800138001" not in text
    out = io.StringIO()
    assert main(["audit", "--table", orders_table.name, "--json"], out=out) == 1
    assert json.loads(out.getvalue())["by_field"] == {"created_at": 1, "status": 1}


@pytest.mark.aws
def test_nudge_audit_of_a_clean_table_exits_0_and_of_a_missing_one_2(orders_table, capsys):
    orders_table.put_item(Item=item("ok"))
    assert main(["audit", "--table", orders_table.name], out=io.StringIO()) == 0
    assert main(["audit", "--table", "no-such-table"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("nudge: error: --table no-such-table: ResourceNotFoundException")
        and err.count("\n") == 1
    )
