"""`nudge import FILE [--format jsonl|csv] (--stack NAME | --table NAME) [--dry-run] [--rejects FILE]`.

A shop's backlog into the orders table under the same contract as the webhooks: each line is
validated like the planner validates it (``parse_order``), and written with the same never-backwards
conditional write (``DynamoOrdersStore``): an order already stored in a newer state, or paid /
closed, is left as it is. So the same file twice changes nothing, and an import never undoes what
webhooks said since.

Time of a line's state: its ``updated_at`` column when there is one (held to the orders' years),
else the later of ``created_at`` and ``paid_at``. Order ids are the shop's own, stored as they are;
a platform's order is named with its prefix (``shopify:5921873412345``), so a backlog imported
that way is the same order its webhooks later update. Conditional writes cannot go through BatchWriteItem, so lines are
written in batches of concurrent UpdateItem calls (``--workers``). A bad line, or one that could
not be written, goes to the rejects file with its line number; the rest are imported.

Exit 0: nothing rejected; 1: some lines rejected (the rest imported); 2: usage errors.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from nudge.domain.models import InvalidOrder
from nudge.domain.order_changes import OrderChange
from nudge.domain.orders import JsonProblem, load_json, time_problem
from nudge.domain.platforms import ORDER_RECORD_FIELDS
from nudge.services.ingest import prepare_change
from nudge.services.ports import DalError, OrdersStore, WriteOutcome
from nudge_cli.common import UsageError, aws_clients

BATCH = 1000  # lines in flight at once
DEFAULT_WORKERS = 16


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    raw: str  # the line as read (JSON Lines) or re-joined (CSV), for the rejects file
    change: OrderChange | None
    field: str | None = None
    problem: str | None = None
    order_id: str | None = None


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("import", help="import a backlog of orders (JSON Lines or CSV)")
    parser.add_argument("file", type=Path, help="JSON Lines or CSV (header row with the order fields)")
    parser.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file's suffix")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--stack", help="the deployed stack (its OrdersTableName output)")
    target.add_argument("--table", help="the orders table's name")
    parser.add_argument("--dry-run", action="store_true", help="validate only; needs no AWS")
    parser.add_argument(
        "--rejects", type=Path, help="write rejected lines here (JSON Lines, with line numbers)"
    )
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="concurrent writes (default 16)")


# ------------------------------------------------------------------------------------------ reading


def _updated_at(record: Any) -> datetime | None:
    """The record's own ``updated_at`` (optional in an import file), bounded like every time."""
    raw = record.get("updated_at") if isinstance(record, dict) else None
    if not (isinstance(raw, str) and raw.strip()):
        return None
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError("updated_at: expected ISO-8601 with a UTC offset") from None
    problem = time_problem(at)  # the orders' bound: the UTC conversion and the TTL cannot overflow
    if problem:
        raise ValueError(f"updated_at: {problem}")
    return at


def _line(number: int, raw: str, record: Any) -> Line:
    try:
        version = _updated_at(record)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        order_id = record.get("order_id") if isinstance(record, dict) else None
        return Line(number, raw, None, field, problem, str(order_id) if order_id else None)
    change = prepare_change(record, full=True, version=version, line=number)
    if isinstance(change, InvalidOrder):
        return Line(number, raw, None, change.field, change.problem, change.order_id)
    return Line(number, raw, change, order_id=change.order_id)


def read_jsonl(handle: TextIO) -> Iterator[Line]:
    for number, text in enumerate(handle, start=1):
        raw = text.rstrip("\n")
        if not raw.strip():
            continue
        try:
            record = load_json(raw)  # the planner's reader: a number too long to read is a bad line too
        except JsonProblem as exc:
            yield Line(number, raw, None, "record", str(exc))
            continue
        yield _line(number, raw, record)


def _csv_record(row: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:  # more cells than headers
            continue
        name = key.strip()
        text = (value or "").strip()
        if not text:
            continue
        if name == "buyer_flags":
            record[name] = json.loads(text) if text.startswith("[") else [f for f in text.split(";") if f]
        else:
            record[name] = text
    return record


def read_csv(handle: TextIO) -> Iterator[Line]:
    reader = csv.DictReader(handle)
    missing = [f for f in ("order_id", "status") if f not in (reader.fieldnames or [])]
    if missing:
        raise UsageError(f"CSV header row lacks {', '.join(missing)} (columns: the order fields)")
    for row in reader:
        number = reader.line_num
        raw = json.dumps({k: v for k, v in row.items() if k is not None}, ensure_ascii=False)
        try:
            record = _csv_record(row)
        except json.JSONDecodeError:
            yield Line(number, raw, None, "buyer_flags", "not a JSON list or ;-separated flags")
            continue
        yield _line(number, raw, record)


# ------------------------------------------------------------------------------------------ AWS


def table_from_stack(cloudformation: Any, stack: str) -> str:
    from nudge_cli.stack import StackError, stack_output

    try:
        return stack_output(cloudformation, stack, "OrdersTableName")[0]
    except StackError as exc:
        raise UsageError(str(exc)) from None


# ------------------------------------------------------------------------------------------ running


class _Progress:
    """A bar on a terminal, a line every 10% otherwise (stderr either way)."""

    def __init__(self, total: int, stream: TextIO):
        self.total, self.done, self.stream = total, 0, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._next = max(1, total // 10)
        self._started = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        if self.tty:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} lines")
            self.stream.flush()
        elif self.done >= self._next or self.done == self.total:
            self.stream.write(
                f"import: {self.done}/{self.total} lines ({time.monotonic() - self._started:.1f} s)\n"
            )
            self._next = self.done + max(1, self.total // 10)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def run(args: argparse.Namespace, out: TextIO, err: TextIO | None = None) -> int:
    err = err or sys.stderr
    fmt = args.format or ("csv" if args.file.suffix.lower() == ".csv" else "jsonl")
    if not args.dry_run and not (args.stack or args.table):
        raise UsageError("give --stack NAME or --table NAME (or --dry-run)")
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    try:
        handle = open(args.file, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    with handle:
        try:
            lines = list(read_csv(handle) if fmt == "csv" else read_jsonl(handle))
        except UnicodeDecodeError:
            raise UsageError(f"{args.file} is not UTF-8 text") from None
        except csv.Error as exc:
            raise UsageError(f"{args.file}: not readable as CSV ({exc})") from None

    rejects = [line for line in lines if line.change is None]
    good = [line for line in lines if line.change is not None]
    counts = {"imported": 0, "unchanged": 0}
    if args.dry_run:
        counts["imported"] = len(good)
    else:
        store = _store(args)
        progress = _Progress(len(lines), err)
        progress.advance(len(rejects))
        with cf.ThreadPoolExecutor(max_workers=args.workers) as pool:
            for start in range(0, len(good), BATCH):
                batch = good[start : start + BATCH]
                for line, result in zip(batch, pool.map(lambda ln: _write(store, ln), batch), strict=True):
                    if not isinstance(result, WriteOutcome):  # the reason it could not be written
                        rejects.append(Line(line.number, line.raw, None, "store", result, line.order_id))
                    elif result is WriteOutcome.UNCHANGED:
                        counts["unchanged"] += 1
                    else:
                        counts["imported"] += 1
                progress.advance(len(batch))
        progress.close()
    rejects.sort(key=lambda line: line.number)
    if args.rejects:
        _write_rejects(args.rejects, rejects)
    for line in rejects[:20]:
        print(f"line {line.number}: {line.field}: {line.problem}", file=err)
    if len(rejects) > 20:
        print(f"... and {len(rejects) - 20} more rejected lines", file=err)
    summary = f"imported {counts['imported']}, unchanged {counts['unchanged']}, rejected {len(rejects)}"
    print(summary + (" (dry run: nothing was written)" if args.dry_run else ""), file=out)
    return 1 if rejects else 0


def _store(args: argparse.Namespace) -> OrdersStore:
    from nudge.bootstrap import build_import_app

    clients = aws_clients()
    table = args.table or table_from_stack(clients("cloudformation"), args.stack)
    return build_import_app(orders_table=table, clients=clients, workers=args.workers).store


def _write(store: OrdersStore, line: Line) -> WriteOutcome | str:
    if line.change is None:  # only good lines are written
        raise ValueError(f"line {line.number} has no change")
    try:
        return store.apply(line.change)
    except DalError as exc:
        return f"{exc}; run the import again (it is safe to repeat)"


def _write_rejects(path: Path, rejects: list[Line]) -> None:
    try:
        with path.open("w", encoding="utf-8") as fh:
            for line in rejects:
                entry = {
                    "line": line.number,
                    "order_id": line.order_id,
                    "field": line.field,
                    "problem": line.problem,
                }
                fh.write(json.dumps({**entry, "input": line.raw}, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise UsageError(f"--rejects: cannot write {path}: {exc.strerror}") from None


__all__ = ["ORDER_RECORD_FIELDS", "add_parser", "run", "table_from_stack"]
