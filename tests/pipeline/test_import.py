"""`nudge import`: JSON Lines and CSV into the orders table on moto, never backwards, rejects kept."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from nudge.adapters.orders import DynamoOrdersStore
from nudge.domain.order_changes import order_change
from nudge_cli.cli import main
from nudge_cli.common import UsageError
from nudge_cli.importer import table_from_stack
from nudge_local.moto_env import provision

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def row(order_id: str, status: str = "unpaid", **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "buyer_id": f"b-{order_id}",
        "phone": "+8613800138000",
        "status": status,
        "created_at": "2026-11-22T10:00:00+08:00",
        "amount": 120,
        **extra,
    }


GOOD = [row("o-1"), row("o-2", "paid", paid_at="2026-11-22T11:00:00+08:00"), row("o-3", buyer_flags=["vip"])]


def jsonl(path: Path, records: list[Any], bad_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    for index, text in sorted((bad_lines or {}).items()):
        lines.insert(index, text)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        stack = provision(TEMPLATE, stack_name="import-test")
        yield stack


def items(table: str) -> dict[str, dict[str, Any]]:
    found = boto3.resource("dynamodb", region_name="us-east-1").Table(table).scan()["Items"]
    return {i["order_id"]: i for i in found}


def run(*argv: str) -> tuple[int, str, str]:
    out = io.StringIO()
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(argv), out=out)
    return code, out.getvalue().strip(), err.getvalue()


def test_import_writes_good_lines_keeps_rejects_with_line_numbers_and_repeats_as_a_no_op(aws, tmp_path):
    source = jsonl(
        tmp_path / "orders.jsonl",
        [*GOOD, row("o-4", amount=-1)],
        bad_lines={1: "{not json", 3: '"a string"'},
    )
    rejects = tmp_path / "rejects.jsonl"
    code, out, err = run("import", str(source), "--table", aws.orders_table, "--rejects", str(rejects))
    assert (code, out) == (1, "imported 3, unchanged 0, rejected 3")
    assert "import: 6/6 lines" in err  # progress on stderr
    assert set(items(aws.orders_table)) == {"o-1", "o-2", "o-3"}
    assert items(aws.orders_table)["o-3"]["buyer_flags"] == ["vip"]
    rejected = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["field"]) for r in rejected] == [(2, "record"), (4, "record"), (6, "amount")]
    assert rejected[2]["order_id"] == "o-4" and json.loads(rejected[2]["input"])["amount"] == -1

    code, out, _ = run("import", str(source), "--table", aws.orders_table)
    assert (code, out) == (1, "imported 0, unchanged 3, rejected 3")


def test_import_never_undoes_a_payment_and_takes_newer_states(aws, tmp_path):
    store = DynamoOrdersStore(boto3.client("dynamodb", region_name="us-east-1"), aws.orders_table)
    store.apply(order_change(row("o-1", "paid"), full=True, version=datetime(2026, 11, 23, tzinfo=UTC)))
    source = jsonl(tmp_path / "o.jsonl", [row("o-1"), row("o-2", updated_at="2026-11-22T12:00:00+08:00")])
    assert run("import", str(source), "--table", aws.orders_table)[:2] == (
        0,
        "imported 1, unchanged 1, rejected 0",
    )
    assert items(aws.orders_table)["o-1"]["status"] == "paid"
    newer = jsonl(tmp_path / "n.jsonl", [row("o-2", "closed", updated_at="2026-11-22T13:00:00+08:00")])
    assert run("import", str(newer), "--table", aws.orders_table)[:2] == (
        0,
        "imported 1, unchanged 0, rejected 0",
    )
    older = jsonl(tmp_path / "old.jsonl", [row("o-2", "paid", updated_at="2026-11-22T12:30:00+08:00")])
    assert run("import", str(older), "--table", aws.orders_table)[:2] == (
        0,
        "imported 0, unchanged 1, rejected 0",
    )
    assert items(aws.orders_table)["o-2"]["status"] == "closed"


def test_import_csv_with_a_header_row(aws, tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(
        "order_id,buyer_id,phone,status,created_at,amount,buyer_flags,buyer_name\n"
        "c-1,b-1,+8613800138000,unpaid,2026-11-22T10:00:00+08:00,99.5,vip;wholesale,张三\n"
        "c-2,b-2,+8613800138001,unpaid,not-a-date,10,,\n"
        'c-3,b-3,"+86 138 0013 8002",paid,2026-11-22T10:00:00+08:00,"1,000",,\n',
        encoding="utf-8",
    )
    code, out, err = run("import", str(source), "--table", aws.orders_table)
    assert (code, out) == (1, "imported 1, unchanged 0, rejected 2")
    assert "line 3: created_at" in err and "line 4: amount" in err
    item = items(aws.orders_table)["c-1"]
    assert item["buyer_flags"] == ["vip", "wholesale"] and str(item["amount"]) == "99.5"


def test_dry_run_needs_no_aws(tmp_path, monkeypatch):
    import boto3.session

    def no_aws(*_: Any, **__: Any) -> None:
        raise AssertionError("a dry run touched AWS")

    monkeypatch.setattr(boto3.session, "Session", no_aws)
    source = jsonl(tmp_path / "o.jsonl", [*GOOD, {"order_id": "x"}])
    code, out, _ = run("import", str(source), "--dry-run")
    assert (code, out) == (1, "imported 3, unchanged 0, rejected 1 (dry run: nothing was written)")
    assert run("import", str(jsonl(tmp_path / "g.jsonl", GOOD)), "--dry-run")[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import", "orders.jsonl"], "give --stack NAME or --table NAME"),
        (["import", "missing.jsonl", "--table", "t"], "cannot read missing.jsonl"),
        (["import", "orders.jsonl", "--table", "t", "--stack", "s"], "not allowed with argument"),
        (["import", "orders.jsonl", "--format", "xml", "--dry-run"], "invalid choice"),
        (["import", "bad.csv", "--dry-run"], "CSV header row lacks status"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    jsonl(tmp_path / "orders.jsonl", GOOD)
    (tmp_path / "bad.csv").write_text("order_id,phone\n1,2\n", encoding="utf-8")
    code, out, err = run(*argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_stack_resolves_the_orders_table_from_its_outputs():
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        outputs = [
            {"OutputKey": "LedgerTableName", "OutputValue": "l"},
            {"OutputKey": "OrdersTableName", "OutputValue": "orders-t"},
        ]
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "nudge",
                        "CreationTime": datetime(2026, 1, 1),
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": outputs,
                    }
                ]
            },
            {"StackName": "nudge"},
        )
        assert table_from_stack(cfn, "nudge") == "orders-t"
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id gone does not exist")
        with pytest.raises(UsageError, match="--stack gone: Stack with id gone does not exist"):
            table_from_stack(cfn, "gone")


def test_lines_that_are_hostile_to_the_table_are_rejected_not_fatal(aws, tmp_path):
    """The import reads and bounds lines with the webhooks' code: a number too long to read, a
    time near year 9999 and an id over DynamoDB's key limit are rejected lines, never a crash."""
    source = jsonl(
        tmp_path / "o.jsonl",
        [
            row("o-1"),
            row("o-2", updated_at="9999-12-31T23:59:59-05:00"),
            row("x" * 3000),
            row("o-4", item_title="t" * 500_000),
        ],
        bad_lines={1: '{"order_id": "o-9", "amount": ' + "9" * 5000 + "}"},
    )
    rejects = tmp_path / "rejects.jsonl"
    code, out, _ = run("import", str(source), "--table", aws.orders_table, "--rejects", str(rejects))
    assert (code, out) == (1, "imported 1, unchanged 0, rejected 4")
    rejected = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["field"]) for r in rejected] == [
        (2, "record"),
        (3, "updated_at"),
        (4, "order_id"),
        (5, "item_title"),
    ]
    assert "digit" in rejected[0]["problem"] and "year 9999" in rejected[1]["problem"]
    assert set(items(aws.orders_table)) == {"o-1"}


def test_an_imported_platform_backlog_is_the_order_its_webhooks_update(tmp_path):
    """A Shopify shop imports its backlog with the platform's prefix; the Shopify payment webhook
    then pays that same order. A bare id stays the shop's own order (DECISIONS: order ids by source)."""
    from nudge_local.pipeline import FakeClock, LocalPipeline
    from tests import webhook_events as we

    with LocalPipeline(clock=FakeClock(datetime(2025, 3, 12, 20, 40, 12, tzinfo=UTC))) as p:
        p.set_webhook_secret("shopify", we.SHOPIFY_SECRET)
        backlog = [
            row("shopify:5921873412345", created_at="2025-03-10T10:15:02-04:00"),
            row("5921873412345", created_at="2025-03-10T10:15:02-04:00"),
        ]
        source = jsonl(tmp_path / "backlog.jsonl", backlog)
        assert run("import", str(source), "--table", p.resources.orders_table)[:2] == (
            0,
            "imported 2, unchanged 0, rejected 0",
        )
        answer = p.ingest(we.load("function-url-shopify-orders-paid.json"))
        assert json.loads(answer["body"]) == {"result": "accepted", "order_id": "shopify:5921873412345"}
        stored = items(p.resources.orders_table)
        assert stored["shopify:5921873412345"]["status"] == "paid"
        assert stored["5921873412345"]["status"] == "unpaid"
