"""`nudge calls`: the open staff calls; `nudge calls done ORDER --by NAME --note TEXT` logs one.

Open calls are the unpaid, unexpired orders put on the call list and not yet called, read like the
planner reads (the orders' status index, then the ledger in batches: never Scan).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_calls_parser", "open_calls", "run_calls"]


def _tables(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a sub-command's defaults must not overwrite what was given before it
    for flag, text in (
        ("--stack", "the deployed stack's name"),
        ("--ledger-table", "the reminder ledger table (instead of --stack)"),
        ("--orders-table", "the orders table (instead of --stack)"),
    ):
        parser.add_argument(flag, default=argparse.SUPPRESS, help=text)
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="the shop's config file")


def add_calls_parser(sub: Any) -> None:
    calls = sub.add_parser("calls", help="the staff call list: open calls, or `done` to log one")
    _tables(calls)
    calls.add_argument("--all", action="store_true", help="also list calls already made")
    calls.add_argument(
        "--at", type=datetime.fromisoformat, help="list the calls open at this time (default: now)"
    )
    calls.add_argument("--json", action="store_true")
    from nudge_cli.cli import _Parser  # one-line usage errors, exit 2

    actions = calls.add_subparsers(dest="calls_command", parser_class=_Parser)
    done = actions.add_parser("done", help="record a call made to a buyer")
    done.add_argument("order_id", metavar="ORDER")
    done.add_argument("--by", required=True, help="who called")
    done.add_argument("--note", required=True, help="what the buyer said")
    _tables(done)


def run_calls(args: argparse.Namespace, out: TextIO) -> int:
    import boto3

    from nudge.adapters.staff import DynamoCallLog, NotOnCallListError
    from nudge_cli.cli import UsageError
    from nudge_cli.report import shop_config, table_names

    for name in ("stack", "ledger_table", "orders_table", "config"):
        if not hasattr(args, name):
            setattr(args, name, None)
    ledger_table, orders_table = table_names(args, UsageError)
    client = boto3.client("dynamodb")
    log = DynamoCallLog(client, ledger_table)
    now = datetime.now(UTC)
    if args.calls_command == "done":
        by, note = args.by.strip(), args.note.strip()
        if not by:
            raise UsageError("--by: must name who called")
        try:
            count = log.record_call(args.order_id, now, by, note)
        except NotOnCallListError:
            raise UsageError(f"ORDER: {args.order_id} is not on the call list") from None
        print(f"{args.order_id}: call {count} recorded ({by}); it stays off the call list", file=out)
        return 0
    at = getattr(args, "at", None)
    if at is not None and at.tzinfo is None:
        raise UsageError("--at: needs a UTC offset, e.g. 2026-11-23T10:00+08:00")
    # Only the list needs the config (zone, max age): `done` works for staff who cannot read Lambda.
    return _list(args, out, shop_config(args, UsageError), client, log, orders_table, at or now)


def _list(
    args: argparse.Namespace,
    out: TextIO,
    config: Any,
    client: Any,
    log: Any,
    orders_table: str,
    now: datetime,
) -> int:
    rows = open_calls(client, log, orders_table, config, now, include_done=args.all)
    if args.json:
        json.dump({"calls": rows}, out, ensure_ascii=False, indent=2, default=str)
        out.write("\n")
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, width=140, soft_wrap=False, highlight=False)
    console.print(f"{len(rows)} open call(s) ({config.shop.timezone}), closing first at the top")
    table = Table()
    for col in ("order", "amount", "closes", "buyer", "item", "calls"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            escape(r["order_id"]),
            f"{r['amount']} {r['currency']}",
            r["closes_at"][:16],
            escape(r["buyer_name"] or "-"),
            escape(r["item"] or "-"),
            str(r["calls"]),
        )
    console.print(table)
    return 0


def open_calls(
    client: Any, log: Any, orders_table: str, config: Any, now: datetime, *, include_done: bool = False
) -> list[dict[str, Any]]:
    """The calls open at ``now``, closing first at the top, as ``nudge calls --json`` lists them
    (also the report page's call list). ``log``: a ``DynamoCallLog`` over the ledger."""
    from nudge.adapters.dynamodb import DynamoOrderRepository
    from nudge.domain.models import Order
    from nudge.services.calls import call_entries

    max_age = timedelta(hours=config.rules.max_age_hours)
    records = [
        o
        for o in DynamoOrderRepository(client, orders_table).orders_for_planning(now - max_age)
        if isinstance(o, Order) and o.status == "unpaid"
    ]
    calls = log.calls([o.order_id for o in records])
    shown = [
        o
        for o in records
        if o.order_id in calls and (include_done or "call_done_at" not in calls[o.order_id])
    ]
    entries = [
        e for e in call_entries(shown, [o.order_id for o in shown], config=config) if e.closes_at > now
    ]
    zone = config.shop.zone
    return [
        {
            "order_id": e.order_id,
            "amount": format(e.amount, "f"),
            "currency": e.currency,
            "item": e.item_title,
            "closes_at": e.closes_at.astimezone(zone).isoformat(),
            "buyer_name": e.buyer_name,
            "requested_at": calls[e.order_id].get("call_requested_at"),
            "calls": int(calls[e.order_id].get("call_count", 0)),
            "last_call": (calls[e.order_id].get("call_log") or [None])[-1],
        }
        for e in entries
    ]
