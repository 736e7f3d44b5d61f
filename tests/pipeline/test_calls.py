"""The staff call list: one digest per window with new calls, `nudge calls`, `nudge calls done`."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from nudge.domain.config import load_config
from nudge.domain.models import Order
from nudge.domain.restdays import RestDayCalendar
from nudge.services.calls import DIGEST_MAX_LINES, build_digest, call_entries
from nudge.services.planning import WindowRun, plan_window
from nudge_cli.cli import main
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import SHANGHAI
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
CONFIG = load_config()
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def big(oid: str, minutes: int = 0, **extra) -> Order:
    fields = {
        "order_id": oid,
        "buyer_id": f"b-{oid}",
        "phone": f"+8613800{abs(hash(oid)) % 1000000:06d}",
        "status": "unpaid",
        "created_at": AT - timedelta(hours=3, minutes=minutes),
        "amount": Decimal("1888"),
        "buyer_name": "王\u202e小明\x07",
        "item_title": "羽绒服",
    }
    fields.update(extra)
    return Order(**fields)


def test_the_digest_lists_order_amount_item_closing_time_and_name():
    orders = [big("A2", 0), big("A1", 30, closes_at=AT + timedelta(hours=1)), big("small", amount=Decimal(5))]
    entries = call_entries(orders, ["A1", "A2"], config=CONFIG)
    assert [e.order_id for e in entries] == ["A1", "A2"]  # the one closing first at the top
    subject, body = build_digest(entries, window="09:50-10:40", now=AT, config=CONFIG)
    assert subject.isascii() and "2 order(s) to call" in subject and len(subject) < 100
    assert "A1" in body and "¥1888.00" in body
    assert "closes 11-23 10:50" in body and "羽绒服" in body
    assert "王 小明" in body and "\u202e" not in body and "\x07" not in body  # buyer text made plain
    many = [big(f"o{i}", i % 50) for i in range(DIGEST_MAX_LINES + 5)]
    _, body = build_digest(
        call_entries(many, [o.order_id for o in many], config=CONFIG), window="w", now=AT, config=CONFIG
    )
    assert "and 5 more: run `nudge calls`" in body


class Staff:
    def __init__(self, fail: bool = False):
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    def publish(self, subject: str, body: str) -> str:
        if self.fail:
            raise RuntimeError("SNS down")
        self.sent.append((subject, body))
        return "m1"


def run(repo, ledger, staff, at=AT):
    return plan_window(
        WindowRun("09:50-10:40", at), config=CONFIG, calendar=RestDayCalendar(CONFIG.calendar), orders=repo,
        ledger=ledger, queue=FakeSendQueue(), started_at=at, staff=staff,
    )  # fmt: skip


def test_one_digest_per_window_with_new_calls_only():
    repo, ledger, staff = FakeOrderRepository([big("A1"), big("A2", 5)]), FakeReminderLedger(), Staff()
    _, summary = run(repo, ledger, staff)
    assert summary.calls == 2 and len(staff.sent) == 1 and "A1" in staff.sent[0][1]
    # the next run: both already requested (call_requested), no digest
    _, summary = run(repo, ledger, staff, AT + timedelta(minutes=10))
    assert summary.by_reason == {"call_requested": 2} and len(staff.sent) == 1


def test_a_failed_digest_is_a_warning_not_a_failed_plan():
    repo, ledger = FakeOrderRepository([big("A1")]), FakeReminderLedger()
    _, summary = run(repo, ledger, Staff(fail=True))
    assert summary.calls == 1 and any("staff call digest not sent" in w for w in summary.warnings)
    assert "call_requested_at" in ledger.items["A1"]


@pytest.mark.aws
def test_calls_through_the_pipeline_and_the_cli(monkeypatch):
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders(
            [
                {
                    "order_id": "A1",
                    "buyer_id": "b1",
                    "phone": "+8613800138011",
                    "status": "unpaid",
                    "created_at": (AT - timedelta(hours=3)).isoformat(),
                    "amount": 1888,
                    "buyer_name": "Li Lei",
                    "item_title": "Down jacket",
                    "closes_at": (AT + timedelta(days=3)).isoformat(),
                }
            ]
        )
        summary = p.fire_window("09:50-10:40@11:00", AT)
        assert summary["calls"] == 1 and not summary["warnings"]
        ((subject, body),) = p.staff_digests()
        assert "A1" in body and "Li Lei" in body and "Down jacket" in body and subject.startswith("Nudge: 1")
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["calls", *tables, "--json", "--at", AT.isoformat()], out) == 0
        (row,) = json.loads(out.getvalue())["calls"]
        assert (row["order_id"], row["amount"], row["buyer_name"], row["calls"]) == (
            "A1",
            "1888",
            "Li Lei",
            0,
        )
        out = io.StringIO()
        assert main(["calls", "done", "A1", "--by", "Wang", "--note", "will pay tonight", *tables], out) == 0
        assert "call 1 recorded" in out.getvalue()
        item = p.ledger_item("A1")
        assert item["call_count"] == 1 and item["call_by"] == "Wang"
        assert item["call_log"][0]["note"] == "will pay tonight" and "call_requested_at" in item
        out = io.StringIO()
        main(["calls", *tables, "--json", "--at", AT.isoformat()], out)
        assert json.loads(out.getvalue())["calls"] == []  # done: no longer open
        # A call that is done is never requested again.
        again = p.fire_window("15:00-16:50@17:00", AT.replace(hour=15, minute=0))
        assert again["by_reason"] == {"call_requested": 1} and len(p.staff_digests()) == 1
        assert main(["calls", "done", "nope", "--by", "Wang", "--note", "x", *tables], io.StringIO()) == 2
        # Staff who may read the stack and the ledger, not Lambda, can still record a call with
        # --stack: `done` needs no config (the Lambda stub has no answers: any call would fail).
        cfn, lam = boto3.client("cloudformation"), boto3.client("lambda")
        outputs = [
            {"OutputKey": "LedgerTableName", "OutputValue": p.resources.ledger_table},
            {"OutputKey": "OrdersTableName", "OutputValue": p.resources.orders_table},
        ]
        stack = {"StackName": "s", "CreationTime": AT, "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}
        real = boto3.client
        clients = {"cloudformation": cfn, "lambda": lam}
        factory = lambda: lambda name, **kw: clients.get(name) or real(name, **kw)  # noqa: E731
        for module in ("nudge_cli.common", "nudge_cli.report", "nudge_cli.calls"):
            monkeypatch.setattr(f"{module}.aws_clients", factory)
        with Stubber(cfn) as cfn_stub, Stubber(lam):
            cfn_stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "s"})
            out = io.StringIO()
            assert main(["calls", "done", "A1", "--by", "Li", "--note", "paid", "--stack", "s"], out) == 0
        assert "call 2 recorded" in out.getvalue()
