"""`nudge audit`: the daily audit function's check, on demand, against any orders table (the AWS
credentials of the environment). Exit 0: every order can be decided; 1: problems found (listed);
2: cannot read.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from nudge_cli.common import UsageError, aws_clients

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    audit = sub.add_parser("audit", help="orders in a DynamoDB orders table that the plan can never decide")
    audit.add_argument("--table", required=True, help="the orders table's name (a Scan: not for peak hours)")
    audit.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from nudge.bootstrap import build_audit_app
    from nudge.services.audit import audit_orders

    app = build_audit_app(args.table, clients=aws_clients())
    try:
        report = audit_orders(app.order_items())
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise UsageError(f"--table {args.table}: {err.get('Code')}: {err.get('Message')}") from None
    except BotoCoreError as exc:
        raise UsageError(f"--table {args.table}: {exc}") from None
    if args.json:
        data = {**report.to_json(), "problems": [p.to_json() for p in report.problems]}
        json.dump(data, out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        print(
            f"{report.scanned} orders scanned: {report.valid} can be decided, {report.invalid} invalid "
            f"({report.invisible} the plan cannot even see), {report.closed} closed (not checked)",
            file=out,
        )
        for p in report.problems:
            mark = "  [never decided]" if p.invisible else ""
            print(f"  {p.order_id or '(no order_id)'}  {p.field}: {p.problem}{mark}", file=out)
        if report.invalid > len(report.problems):
            print(f"  ... and {report.invalid - len(report.problems)} more", file=out)
    return 1 if report.invalid else 0
