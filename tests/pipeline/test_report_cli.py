"""`nudge report` over a ledger on moto: Query-only reads, the JSON contract, masked --orders."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from nudge_cli.cli import main
from nudge_cli.stack import StackError, stack_config
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import SHANGHAI, numbered_order

pytestmark = pytest.mark.aws

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(i: int) -> dict:
    created = AT - timedelta(hours=3, minutes=i)
    return numbered_order(i, created=created, phone_prefix="+86138001381", amount="150.00")


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


def stubbed_stack(
    stack: str, env: dict[str, str], outputs: dict[str, str] | None = None
) -> tuple[Any, Any, list[Stubber]]:
    """A CloudFormation and a Lambda client answering as a deployed Nudge stack (shapes checked
    against the real API models by botocore's Stubber): its outputs first when given, then the
    plan function's environment."""
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    lam = boto3.client("lambda", region_name="us-east-1")
    stubs = [Stubber(cfn), Stubber(lam)]
    if outputs is not None:
        listed = [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]
        described = {
            "StackName": stack,
            "CreationTime": AT,
            "StackStatus": "CREATE_COMPLETE",
            "Outputs": listed,
        }
        stubs[0].add_response("describe_stacks", {"Stacks": [described]}, {"StackName": stack})
    stubs[0].add_response(
        "describe_stack_resource",
        {
            "StackResourceDetail": {
                "StackName": stack,
                "LogicalResourceId": "PlanFunction",
                "PhysicalResourceId": f"{stack}-PlanFunction-AbC123",
                "ResourceType": "AWS::Lambda::Function",
                "LastUpdatedTimestamp": datetime(2026, 11, 1),
                "ResourceStatus": "CREATE_COMPLETE",
            }
        },
        {"StackName": stack, "LogicalResourceId": "PlanFunction"},
    )
    stubs[1].add_response(
        "get_function_configuration",
        {"FunctionName": f"{stack}-PlanFunction-AbC123", "Environment": {"Variables": env}},
        {"FunctionName": f"{stack}-PlanFunction-AbC123"},
    )
    for stub in stubs:
        stub.activate()
    return cfn, lam, stubs


def test_report_with_stack_uses_the_deployed_config(monkeypatch):
    """--stack without --config reads ExtraConfigJson and the parameters the functions run with."""
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders([order(i) for i in range(1, 3)])
        p.fire_window("09:50-10:40@11:00", AT)
        p.drain_queue()
        env = {
            **p.resources.function_envs["PlanFunction"],
            "EXTRA_CONFIG_JSON": json.dumps({"outcomes": {"price_per_segment": "0.07"}}),
        }
        tables = {"LedgerTableName": p.resources.ledger_table, "OrdersTableName": p.resources.orders_table}
        cfn, lam, stubs = stubbed_stack("nudge", env, tables)
        real = boto3.client
        clients = {"cloudformation": cfn, "lambda": lam}
        factory = lambda: lambda name, **kw: clients.get(name) or real(name, **kw)  # noqa: E731
        for module in ("nudge_cli.common", "nudge_cli.report", "nudge_cli.calls"):
            monkeypatch.setattr(f"{module}.aws_clients", factory)
        out = io.StringIO()
        assert main(["report", "--stack", "nudge", "--to", "2026-11-23", "--json"], out) == 0
        r = json.loads(out.getvalue())
        for stub in stubs:
            stub.assert_no_pending_responses()
    assert r["reminded"] == 2 and r["segments"] >= 2 and r["cost"] == format(0.07 * r["segments"], ".2f")


def test_a_stack_whose_config_cannot_be_read_is_one_clear_line():
    env = {"LEDGER_TABLE": "l", "EXTRA_CONFIG_JSON": '{"outcomes": {"price_per_segment": -1}}'}
    cfn, lam, _ = stubbed_stack("nudge", env)
    with pytest.raises(StackError, match=r"^--stack nudge: its config: outcomes.price_per_segment: "):
        stack_config(cfn, lam, "nudge")
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(cfn) as stub:
        stub.add_client_error("describe_stack_resource", "ValidationError", "Stack 'gone' does not exist")
        with pytest.raises(StackError, match="cannot read its config: Stack 'gone' does not exist"):
            stack_config(cfn, lam, "gone")


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {"Error": {"ErrorCode": "KMSAccessDeniedException", "Message": "no decrypt"}},
            "cannot be read: no decrypt",
        ),
        ({"Variables": {"SHOP_NAME": "Tea"}}, "has no Nudge environment"),
    ],
)
def test_a_stack_function_without_a_readable_nudge_environment_is_refused(environment, message):
    cfn, _, _ = stubbed_stack("nudge", {})
    lam = boto3.client("lambda", region_name="us-east-1")
    with Stubber(lam) as stub:
        stub.add_response(
            "get_function_configuration",
            {"FunctionName": "nudge-PlanFunction-AbC123", "Environment": environment},
            {"FunctionName": "nudge-PlanFunction-AbC123"},
        )
        with pytest.raises(StackError, match=message):
            stack_config(cfn, lam, "nudge")
