"""`nudge`: the operator's command line. A thin shell: it reads files and the clock, the core decides.

Bad arguments or config exit with status 2 and one line naming the key and the problem. Bad order
lines are never fatal: each is an `invalid_order` decision. Order data printed to the terminal is
escaped (no rich markup, no control characters or terminal escapes), in the table and in --json.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

from nudge.domain.config import Config, ConfigError, load_config
from nudge.domain.models import Action, Plan, ReminderState
from nudge.domain.orders import YEARS, HistoryError, read_history_jsonl, read_orders_jsonl
from nudge.domain.restdays import RestDayCalendar, window_openings
from nudge.domain.rules import plan_reminders


class UsageError(Exception):
    """Exit 2 with this one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse prints usage over two lines; keep one
        raise UsageError(message)


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
    parser = _Parser(prog="nudge", description="SMS payment reminders for unpaid shop orders.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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

    add_audit_parser(sub)
    # Outcomes: `nudge report`, `nudge calls` (nudge_cli.report, nudge_cli.calls)
    from nudge_cli.calls import add_calls_parser
    from nudge_cli.report import add_report_parser

    add_report_parser(sub)
    add_calls_parser(sub)
    # -- orders in: `nudge import` (nudge_cli.importer) ------------------------------------------
    from nudge_cli.importer import add_arguments as add_import_arguments

    add_import_arguments(sub.add_parser("import", help="import a backlog of orders (JSON Lines or CSV)"))
    return parser


def read_config_file(path: Path) -> Config:
    """Read a YAML or JSON config file (--config); the core validates what it holds."""
    import yaml

    p = path
    kind = "JSON" if p.suffix == ".json" else "YAML"
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("--config", f"{p} is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except RecursionError:
        raise ConfigError("--config", f"{p} is not valid {kind}: nested too deeply") from None
    except (ValueError, yaml.YAMLError) as exc:  # ValueError: JSON errors, too-long integers
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError("--config", f"{p} is not valid {kind}: {first}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError("--config", f"{p} must hold a mapping of settings")
    return load_config(data)


def _config(path: Path | None) -> Config:
    return read_config_file(path) if path else load_config()


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
        raise UsageError(f"--history: {_terminal_safe(str(exc))}") from None


def run_plan(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config)
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
        out.write(_terminal_safe_json(json.dumps(plan.to_json(), ensure_ascii=False, indent=2)))
        out.write("\n")
    else:
        print_plan(plan, out)
    return 0


# Control (Cc), format (Cf: bidi overrides, zero-width), surrogate, private-use and unassigned
# characters, and line/paragraph separators: order data must not move the cursor, recolour or
# reorder the operator's terminal. They are shown escaped, as Python writes them in a string.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape_unsafe(text: str, escape: Callable[[str], str], keep: str = "") -> str:
    if text.isprintable():  # fast path; also False for harmless spaces like U+3000, checked below
        return text
    return "".join(
        escape(ch) if ch not in keep and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
    )


def _terminal_safe(text: str) -> str:
    return _escape_unsafe(text, lambda ch: repr(ch)[1:-1])


def _json_escape(ch: str) -> str:
    units = ch.encode("utf-16-le", "surrogatepass")
    return "".join(f"\\u{int.from_bytes(units[i : i + 2], 'little'):04x}" for i in range(0, len(units), 2))


def _terminal_safe_json(text: str) -> str:
    # json.dumps already escapes U+0000-U+001F inside strings, so a raw newline is layout (kept);
    # the other characters can only be inside strings, where \\uXXXX means the same character.
    return _escape_unsafe(text, _json_escape, keep="\n")


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
        return Text(_terminal_safe(str(value)))

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
    config = _config(args.config)
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
    from nudge_cli.demo import run_demo as demo

    return demo(out, at=args.at)


# -- nudge audit ------------------------------------------------------------------------------
# The daily audit function's check, on demand, against any orders table (AWS credentials of the
# environment). Exit 0: every order can be decided; 1: problems found (listed); 2: cannot read.


def add_audit_parser(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="orders in a DynamoDB orders table that the plan can never decide")
    audit.add_argument("--table", required=True, help="the orders table's name (a Scan: not for peak hours)")
    audit.add_argument("--json", action="store_true", help="print one JSON object")


def run_audit(args: argparse.Namespace, out: TextIO) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from nudge.adapters.orders import scan_order_items
    from nudge.services.audit import audit_orders

    try:
        report = audit_orders(scan_order_items(boto3.client("dynamodb"), args.table))
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


def run_import(args: argparse.Namespace, out: TextIO) -> int:
    from nudge_cli.importer import ImportUsageError
    from nudge_cli.importer import run_import as import_orders

    try:
        return import_orders(args, out)
    except ImportUsageError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
        from nudge_cli.calls import run_calls
        from nudge_cli.report import run_report

        handler = {
            "plan": run_plan,
            "schedule": run_schedule,
            "demo": run_demo,
            "audit": run_audit,
            "import": run_import,
            "report": run_report,
            "calls": run_calls,
        }[args.command]
        return handler(args, out)
    except UsageError as exc:
        print(f"nudge: error: {_terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"nudge: config error: {_terminal_safe(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
