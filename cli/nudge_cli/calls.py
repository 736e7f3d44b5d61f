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

from nudge.bootstrap import CallsApp
from nudge_cli.common import Parser, UsageError, aws_clients, shop_config, table_names

__all__ = ["add_parser", "open_calls", "run"]


def _tables(parser: argparse.ArgumentParser, default: Any) -> None:
    """The table options, given before `done` or after it: `calls` defaults them to None, `done`
    to SUPPRESS, so a sub-command's defaults never overwrite what was given before it."""
    for flag, text in (
        ("--stack", "the deployed stack's name"),
        ("--ledger-table", "the reminder ledger table (instead of --stack)"),
        ("--orders-table", "the orders table (instead of --stack)"),
    ):
        parser.add_argument(flag, default=default, help=text)
    parser.add_argument("--config", type=Path, default=default, help="the shop's config file")


def add_parser(sub: Any) -> None:
    calls = sub.add_parser("calls", help="the staff call list: open calls, or `done` to log one")
    _tables(calls, None)
    calls.add_argument("--all", action="store_true", help="also list calls already made")
    calls.add_argument(
        "--at", type=datetime.fromisoformat, help="list the calls open at this time (default: now)"
    )
    calls.add_argument("--json", action="store_true")
    actions = calls.add_subparsers(dest="calls_command", parser_class=Parser)
    done = actions.add_parser("done", help="record a call made to a buyer")
    done.add_argument("order_id", metavar="ORDER")
    done.add_argument("--by", required=True, help="who called")
    done.add_argument("--note", required=True, help="what the buyer said")
    _tables(done, argparse.SUPPRESS)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from nudge.adapters.staff import NotOnCallListError
    from nudge.bootstrap import build_calls_app

    ledger_table, orders_table = table_names(args)
    app = build_calls_app(ledger_table=ledger_table, orders_table=orders_table, clients=aws_clients())
    log = app.call_log
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
    return _list(args, out, shop_config(args), app, at or now)


def _list(args: argparse.Namespace, out: TextIO, config: Any, app: CallsApp, now: datetime) -> int:
    rows = open_calls(app, config, now, include_done=args.all)
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
    app: CallsApp, config: Any, now: datetime, *, include_done: bool = False
) -> list[dict[str, Any]]:
    """The calls open at ``now``, closing first at the top, as ``nudge calls --json`` lists them
    (also the report page's call list)."""
    from nudge.domain.models import Order
    from nudge.services.calls import call_entries

    max_age = timedelta(hours=config.rules.max_age_hours)
    records = [
        o
        for o in app.orders.orders_for_planning(now - max_age)
        if isinstance(o, Order) and o.status == "unpaid"
    ]
    calls = app.call_log.calls([o.order_id for o in records])
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
