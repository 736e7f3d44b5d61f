"""`nudge report` and `nudge calls`: read the ledger (Query and batched gets, never Scan), print.

The figures come from the pure ``nudge.domain.report.build_report``; this module only finds the
tables, reads the records and prints them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from nudge.bootstrap import CallsApp, ReportApp
from nudge.domain.config import Config
from nudge.domain.privacy import mask_phone
from nudge.domain.report import build_report, recovered_orders, roi
from nudge_cli.common import UsageError, add_table_arguments, aws_clients, shop_config, table_names

__all__ = ["add_parser", "print_report", "read_report", "run"]


def add_parser(sub: Any) -> None:
    """The `report` subcommand."""
    report = sub.add_parser(
        "report", help="what the reminders cost and recovered, by day, window and reminder"
    )
    add_table_arguments(report)
    report.add_argument("--days", type=int, default=7, help="days back from --to (default 7)")
    report.add_argument("--to", type=date.fromisoformat, help="last day, YYYY-MM-DD (default: today)")
    report.add_argument(
        "--config",
        type=Path,
        help="the shop's config (time zone, outcomes.price_per_segment); default: the --stack's own",
    )
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.add_argument("--orders", action="store_true", help="list the recovered orders (phones masked)")
    report.add_argument(
        "--by",
        choices=BY,
        action="append",
        help="print only these tables (repeat it); `--by variant`: the text experiment, each variant vs the first",
    )
    report.add_argument(
        "--html", type=Path, metavar="FILE", help="also write one self-contained page (charts, open calls)"
    )


BY = ("day", "window", "attempt", "variant")


def configured_variants(config: Config) -> list[str]:
    """The text variants in the order the config lists them (reminder 1's list, else reminder 2's:
    when both list variants their names match position by position)."""
    variants = config.messages.variants
    return [v.name for v in variants.get("1") or variants.get("2") or []]


def run(args: argparse.Namespace, out: TextIO) -> int:
    from nudge.bootstrap import build_calls_app, build_report_app

    if not 1 <= args.days <= 400:
        raise UsageError("--days: must be between 1 and 400")
    ledger_table, orders_table = table_names(args)
    config = shop_config(args)
    zone = config.shop.zone
    last = args.to or datetime.now(UTC).astimezone(zone).date()
    first = last - timedelta(days=args.days - 1)
    clients = aws_clients()
    app = build_report_app(ledger_table=ledger_table, orders_table=orders_table, clients=clients)
    report, listed = read_report(app, config, first, last, args.orders)
    currency = config.outcomes.currency or config.shop.currency
    if args.html:
        calls_app = build_calls_app(ledger_table=ledger_table, orders_table=orders_table, clients=clients)
        write_html(args.html, report, calls_app, config, currency)
        if not args.json:
            # The page alone, unless tables were asked for too (--orders, --by): print those as well.
            if args.orders or args.by:
                print_report(report, config, currency, out, listed if args.orders else None, by=args.by)
            print(f"report page written to {args.html}", file=out)
            return 0
    if args.json:
        data = dict(report)
        if args.orders:
            data["orders"] = listed
        json.dump(data, out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        print_report(report, config, currency, out, listed if args.orders else None, by=args.by)
    return 0


def _now() -> datetime:
    return datetime.now(UTC)


def write_html(
    path: Path, report: dict[str, Any], calls_app: CallsApp, config: Config, currency: str
) -> None:
    """`--html FILE`: the report (as `--json` prints it) and the calls open now, as one page."""
    from nudge_cli.calls import open_calls
    from nudge_cli.report_html import render_report_html

    now = _now()
    calls = open_calls(calls_app, config, now)
    page = render_report_html(
        report,
        calls=calls,
        shop_name=config.shop.name,
        generated_at=now.astimezone(config.shop.zone),
        currency=currency,
    )
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--html: cannot write {path}: {exc.strerror or exc}") from None


def read_report(
    app: ReportApp, config: Config, first: date, last: date, with_orders: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read the ledger and build the report (and the recovered orders, when asked for)."""
    zone = config.shop.zone
    records = app.outcomes.report_records(first, last, max_age_hours=config.rules.max_age_hours)
    currency = config.outcomes.currency or config.shop.currency
    report = build_report(
        sms=records.sms,
        outcomes=records.outcomes,
        held_out=records.held_out,
        first_day=first,
        last_day=last,
        zone=zone,
        price_per_segment=config.outcomes.price_per_segment,
        currency=currency,
        variants=configured_variants(config),
    )
    listed = []
    if with_orders:
        recovered = recovered_orders(
            records.outcomes,
            records.sms,
            first_day=first,
            last_day=last,
            zone=zone,
            held_out=records.held_out,
        )
        now = app.orders.current([o.order_id for o in recovered])  # one batched read
        listed = [
            {
                "order_id": o.order_id,
                "attempt": o.attempt,
                "window": o.window,
                "sms_at": o.sms_at.astimezone(zone).isoformat() if o.sms_at else None,
                "paid_at": o.paid_at.astimezone(zone).isoformat(),
                "minutes_to_pay": o.minutes_to_pay,
                "amount": format(o.amount, "f"),
                "currency": o.currency,
                "phone": mask_phone(records.phones.get(o.order_id, "")),
                "status_now": now[o.order_id].status if o.order_id in now else None,
            }
            for o in recovered
        ]
    return report, listed


def _versus(row: dict[str, Any]) -> str:
    ci = row["ci95"]
    if isinstance(ci, list):
        return f"{row['diff'] * 100:+.1f} points ({ci[0] * 100:+.1f} to {ci[1] * 100:+.1f})"
    return ci or "(baseline)"


def _sample_size_hint(report: dict[str, Any]) -> str:
    """How many reminded orders each variant needs to show a 5-point difference at today's paid rate."""
    from nudge.domain.stats import orders_per_variant

    rate = report["paid_rate"]
    if rate is None or rate > 0.95:
        return "  (a test needs reminded orders with a paid rate to size it)"
    n = orders_per_variant(rate, 0.05)
    return (
        f"  to see a 5-point difference at today's paid rate ({_pct(rate)}), each variant needs about {n} "
        "reminded orders (95% confidence, 80% power); see docs/OUTCOMES.md"
    )


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _recovered(values: dict[str, str]) -> str:
    return ", ".join(f"{amount} {cur}" for cur, amount in values.items()) or "0"


def print_report(
    report: dict[str, Any],
    config: Config,
    currency: str,
    out: TextIO,
    listed: list[dict] | None = None,
    by: Sequence[str] | None = None,
) -> None:
    """The report as tables; ``by``: only these tables (default: every one with rows)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, width=140, soft_wrap=False, highlight=False)
    console.print(f"Nudge report {report['from']} to {report['to']} ({config.shop.timezone})")
    cost = Decimal(report["cost"])
    per_order = f"{cost / report['paid']:.2f} {currency}" if report["paid"] and cost else "-"
    ratio = roi(report, currency)
    console.print(
        f"  reminded {report['reminded']} orders with {report['sms']} SMS ({report['segments']} segments), "
        f"estimated cost {report['cost']} {currency}"
    )
    console.print(
        f"  paid after a reminder: {report['paid']} ({_pct(report['paid_rate'])}), recovered "
        f"{_recovered(report['recovered'])}; median {report['median_minutes_to_pay'] or '-'} min from SMS to payment"
    )
    console.print(
        f"  ROI (recovered {currency} per {currency} of SMS): {ratio if ratio is not None else '-'}; cost per recovered order {per_order}"
    )
    if "delivered" in report:  # receipts exist (End User Messaging)
        failed = ", ".join(f"{code} {n}" for code, n in report["failed"].items()) or "none"
        console.print(
            f"  delivered {report['delivered']} ({_pct(report['delivery_rate'])} of the SMS with a final receipt), "
            f"expired {report['expired']}, unknown {report.get('unknown', 0)} (no final receipt within 72 h), "
            f"failed: {escape(failed)}; "
            f"recovered after a delivered SMS: {report['recovered_delivered']}"
        )
    h = report["holdout"]
    if h is None:
        console.print("  holdout: none (rules.holdout_percent is 0, or no order was held out in these days)")
    else:
        lift = "not enough data (under 100 orders in a group)"
        if h["lift"] is not None:
            lo, hi = h["ci95"]
            lift = f"{h['lift'] * 100:+.1f} points (95% CI {lo * 100:+.1f} to {hi * 100:+.1f})"
        console.print(
            f"  holdout: {h['orders']} orders held out, {h['paid']} paid ({_pct(h['paid_rate'])}); "
            f"lift of the reminders: {lift}"
        )
    for title in BY:
        key = f"by_{title}"
        if not report.get(key) or (by and title not in by):
            continue
        table = Table(title=f"by {title}", title_justify="left")
        for col in (
            title,
            "reminded",
            "sms",
            "segments",
            "cost",
            "paid",
            "rate",
            "recovered",
            "median min",
            "ROI",
            *(("vs first, 95% CI",) if title == "variant" else ()),
        ):
            table.add_column(col, justify="left" if col == title else "right")
        for row in report[key]:
            table.add_row(
                escape(str(row[title] if row[title] is not None else "(none)")),
                str(row["reminded"]),
                str(row["sms"]),
                str(row["segments"]),
                row["cost"],
                str(row["paid"]),
                _pct(row["paid_rate"]),
                _recovered(row["recovered"]),
                str(row["median_minutes_to_pay"] or "-"),
                str(row["roi"] if row["roi"] is not None else "-"),
                *((_versus(row),) if title == "variant" else ()),
            )
        console.print(table)
        if title == "variant":
            console.print(_sample_size_hint(report))
    if listed is not None:
        table = Table(title="recovered orders", title_justify="left")
        for col in (
            "order",
            "reminder",
            "window",
            "SMS at",
            "paid at",
            "min",
            "amount",
            "phone",
            "status now",
        ):
            table.add_column(col)
        for o in listed:
            table.add_row(
                escape(o["order_id"]),
                str(o["attempt"]),
                o["window"],
                (o["sms_at"] or "")[:16],
                o["paid_at"][:16],
                str(o["minutes_to_pay"]),
                f"{o['amount']} {o['currency']}",
                o["phone"],
                escape(str(o["status_now"] or "?")),
            )
        console.print(table)
