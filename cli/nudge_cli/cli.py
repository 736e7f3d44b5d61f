"""`nudge`: the operator's command line. A thin shell: it reads files and the clock, the core decides.

Bad arguments or config exit with status 2 and one line naming the key and the problem. Bad order
lines are never fatal: each is an `invalid_order` decision. Order data printed to the terminal is
escaped (no rich markup, no control characters or terminal escapes), in the table and in --json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from nudge.domain.config import ConfigError
from nudge.domain.models import Action, Plan, ReminderState
from nudge.domain.orders import YEARS, HistoryError, read_history_jsonl, read_orders_jsonl
from nudge.domain.restdays import RestDayCalendar, window_openings
from nudge.domain.rules import plan_reminders
from nudge_cli import audit, calls, importer, report
from nudge_cli.common import (
    Parser,
    UsageError,
    config_file,
    terminal_safe,
    terminal_safe_json,
)


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 timestamp: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset, e.g. {text}+08:00")
    if value.year not in YEARS:  # the bound orders have too: no date arithmetic can overflow
        raise argparse.ArgumentTypeError(f"year {value.year} is outside {YEARS.start}-{YEARS.stop - 1}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    if value > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_DAYS}")
    return value


MAX_DAYS = 366


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nudge", description="SMS payment reminders for unpaid shop orders.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    plan = sub.add_parser("plan", help="dry run: decide every order at a given time, no AWS")
    plan.add_argument("--orders", required=True, type=Path, help="JSON Lines file of orders ('-' for stdin)")
    plan.add_argument("--at", required=True, type=_timestamp, help="the run's time, ISO-8601 with offset")
    plan.add_argument("--config", type=Path, help="YAML or JSON config file")
    plan.add_argument("--history", type=Path, help="JSON Lines of earlier reminders")
    plan.add_argument("--json", action="store_true", help="print one JSON object")

    schedule = sub.add_parser("schedule", help="the next window openings in the shop's time zone")
    schedule.add_argument("--days", type=_positive_int, default=7)
    schedule.add_argument("--config", type=Path)
    schedule.add_argument("--from", dest="start", type=_timestamp, help="start here instead of now")
    schedule.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="the whole pipeline on moto with sample orders")
    demo.add_argument("--at", type=_timestamp, default=None, help="the morning window's scheduled time")
    demo.add_argument(
        "--html", type=Path, default=None, metavar="FILE", help="end by writing the report page here"
    )
    demo.add_argument(
        "--gateway",
        choices=("sns", "end-user-messaging", "aliyun"),
        default="sns",
        help="the SmsGateway the demo stack sends with (end-user-messaging adds receipts and a reply; "
        "aliyun sends through a local dysmsapi with the real SDK)",
    )

    for command in COMMANDS.values():
        if command.add_parser is not None:
            command.add_parser(sub)
    return parser


def _open(path: Path) -> BinaryIO:
    """The orders file in binary mode: lines split on b"\\n" only, each decoded on its own, so
    a line that is not UTF-8 is one invalid order, not the end of the run."""
    if str(path) == "-":
        return sys.stdin.buffer
    try:
        return path.open("rb")
    except OSError as exc:
        raise UsageError(f"--orders: cannot read {path}: {exc.strerror}") from None


def _read_history(path: Path) -> list:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise UsageError(f"--history: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--history: {path} is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        # Split on "\\n" only: str.splitlines() would also split at U+2028 inside a JSON string.
        return read_history_jsonl(text.split("\n"))
    except HistoryError as exc:
        raise UsageError(f"--history: {terminal_safe(str(exc))}") from None


def run_plan(args: argparse.Namespace, out: TextIO) -> int:
    config = config_file(args.config)
    history = _read_history(args.history) if args.history else []
    # The ledger's count per order is the highest attempt the history shows.
    ledger: dict[str, ReminderState] = {}
    for sent in history:
        known = ledger.get(sent.order_id)
        if known is None or sent.attempt > known.reminders_sent:
            ledger[sent.order_id] = ReminderState(sent.order_id, reminders_sent=sent.attempt)
    today = args.at.astimezone(config.shop.zone).date()
    sent_today = sum(1 for s in history if s.sent_at.astimezone(config.shop.zone).date() == today)

    with _open(args.orders) as handle:
        plan = plan_reminders(
            read_orders_jsonl(handle),
            now=args.at,
            config=config,
            ledger=ledger,
            recent=history,
            sent_today=sent_today,
        )
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        out.write(terminal_safe_json(json.dumps(plan.to_json(), ensure_ascii=False, indent=2)))
        out.write("\n")
    else:
        print_plan(plan, out)
    return 0


def summary_line(plan: Plan) -> str:
    actions = {a: sum(1 for d in plan.decisions if d.action is a) for a in Action}
    skips = {k: v for k, v in plan.count_by_reason().items() if k not in ("send", "large_order")}
    detail = ", ".join(f"{k} {v}" for k, v in sorted(skips.items(), key=lambda kv: (-kv[1], kv[0])))
    line = (
        f"{len(plan.decisions)} orders: {actions[Action.SEND]} send, {actions[Action.CALL]} call, "
        f"{actions[Action.SKIP]} skip"
    )
    return f"{line} ({detail})" if detail else line


def print_plan(plan: Plan, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def cell(value: object) -> Text:
        # A Text is never read as markup, so "[/]" or "[bold]" in an order field prints as written.
        return Text(terminal_safe(str(value)))

    console = Console(file=out, width=140, soft_wrap=False)
    where = f"window {plan.window}" if plan.window else "no window open"
    skipped = f"; run skipped: {plan.run_skipped}" if plan.run_skipped else ""
    console.print(f"Plan at {plan.at.isoformat()} ({where}{skipped})", highlight=False)
    table = Table(show_lines=False)
    rows = [d.to_json() for d in plan.decisions]  # the same fields as --json, whatever the kind
    # The variant column only with messages.variants: without them the table is as it always was.
    variants = any(row["variant"] for row in rows)
    columns = ("order", "action", "reason", "#", "seg") + (("variant",) if variants else ()) + ("message",)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        reason = row["reason"] or ""
        if row.get("detail"):
            reason = f"{reason} ({row['detail']})"
        table.add_row(
            cell(row["order_id"] or "?"),
            cell(row["action"]),
            cell(reason),
            cell(row["attempt"] or ""),
            cell(row["segments"] or ""),
            *((cell(row["variant"] or ""),) if variants else ()),
            cell(row["message"] or ""),
        )
    console.print(table)
    print(summary_line(plan), file=out)


def run_schedule(args: argparse.Namespace, out: TextIO) -> int:
    config = config_file(args.config)
    calendar = RestDayCalendar(config.calendar)
    start = args.start or datetime.now(UTC)
    openings = window_openings(config, calendar, start, args.days)
    for warning in calendar.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        rows = [
            {
                "day": o.day.isoformat(),
                "window": o.window.name,
                "opens_at": o.opens_at.isoformat(),
                "closes_at": o.closes_at.isoformat(),
                "rest_day": o.rest_day,
            }
            for o in openings
        ]
        json.dump({"timezone": config.shop.timezone, "openings": rows}, out, indent=2)
        out.write("\n")
        return 0
    print(
        f"Window openings in {config.shop.timezone} (the scheduler fires every day; "
        f"on rest days the run sends nothing):",
        file=out,
    )
    for o in openings:
        mark = "rest day: no reminders" if o.rest_day else "sends"
        print(f"  {o.opens_at:%a %Y-%m-%d %H:%M}-{o.closes_at:%H:%M}  {mark}", file=out)
    return 0


def run_demo(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from nudge_local.demo import run_demo as demo
    except ModuleNotFoundError as exc:  # the demo runs on moto, which the operator CLI does not need
        if (exc.name or "").split(".")[0] != "moto":
            raise
        raise UsageError("demo: needs moto: pip install 'nudge[demo]' (make demo does it)") from None
    return demo(out, at=args.at, html=args.html, gateway=args.gateway)


@dataclass(frozen=True, slots=True)
class Command:
    run: Callable[[argparse.Namespace, TextIO], int]
    add_parser: Callable[[Any], None] | None = None  # None: build_parser adds it itself


# Every `nudge` command: the ones that reach AWS live in their own modules, built like the functions
# (their apps come from nudge.bootstrap); those modules import nudge_cli.common, never this one.
COMMANDS = {
    "plan": Command(run_plan),
    "schedule": Command(run_schedule),
    "demo": Command(run_demo),
    "audit": Command(audit.run, audit.add_parser),
    "report": Command(report.run, report.add_parser),
    "calls": Command(calls.run, calls.add_parser),
    "import": Command(importer.run, importer.add_parser),
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        handler = COMMANDS[args.command].run
        return handler(args, out)
    except UsageError as exc:
        print(f"nudge: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"nudge: config error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
