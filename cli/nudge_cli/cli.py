"""`nudge`: the operator's command line. A thin shell: it reads files and the clock, the core decides.

Bad arguments or config exit with status 2 and one line naming the key and the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

from nudge.domain.config import Config, ConfigError, load_config
from nudge.domain.models import Action, Plan, ReminderState
from nudge.domain.orders import HistoryError, read_history_jsonl, read_orders_jsonl
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
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


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

    # -- orders in: `nudge import` (nudge_cli.importer) ------------------------------------------
    from nudge_cli.importer import add_arguments as add_import_arguments

    add_import_arguments(sub.add_parser("import", help="import a backlog of orders (JSON Lines or CSV)"))
    return parser


def read_config_file(path: Path) -> Config:
    """Read a YAML or JSON config file (--config); the core validates what it holds."""
    import yaml

    p = path
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {p}: {exc.strerror}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            "--config",
            f"{p} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {str(exc).splitlines()[0]}",
        ) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError("--config", f"{p} must hold a mapping of settings")
    return load_config(data)


def _config(path: Path | None) -> Config:
    return read_config_file(path) if path else load_config()


def _open(path: Path) -> TextIO:
    if str(path) == "-":
        return sys.stdin
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--orders: cannot read {path}: {exc.strerror}") from None


def run_plan(args: argparse.Namespace, out: TextIO) -> int:
    config = _config(args.config)
    history = []
    if args.history:
        try:
            history = read_history_jsonl(args.history.read_text(encoding="utf-8").splitlines())
        except OSError as exc:
            raise UsageError(f"--history: cannot read {args.history}: {exc.strerror}") from None
        except HistoryError as exc:
            raise UsageError(f"--history: {exc}") from None
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
        json.dump(plan.to_json(), out, ensure_ascii=False, indent=2)
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

    console = Console(file=out, width=140, soft_wrap=False)
    where = f"window {plan.window}" if plan.window else "no window open"
    skipped = f"; run skipped: {plan.run_skipped}" if plan.run_skipped else ""
    console.print(f"Plan at {plan.at.isoformat()} ({where}{skipped})", highlight=False)
    table = Table(show_lines=False)
    for col in ("order", "action", "reason", "#", "seg", "message"):
        table.add_column(col, overflow="fold")
    for d in plan.decisions:
        reason = d.reason.value if d.reason else ""
        if d.detail:
            reason = f"{reason} ({d.detail})"
        table.add_row(
            d.order_id or "?",
            d.action.value,
            reason,
            str(d.attempt or ""),
            str(d.segments or ""),
            d.message or "",
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
        handler = {"plan": run_plan, "schedule": run_schedule, "demo": run_demo, "import": run_import}[
            args.command
        ]
        return handler(args, out)
    except UsageError as exc:
        print(f"nudge: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"nudge: config error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
