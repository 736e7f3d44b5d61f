"""The outcomes path at scale, on moto: ``python -m bench.outcomes [--paid 10000] [--ledger 100000]``.

1. Stream: ``--paid`` orders become paid (60% were texted, 10% held out, the rest never seen by
   Nudge); their stream records go through the real outcomes handler in batches of 100, as the
   event source mapping delivers them. Counted: DynamoDB requests by operation, records per request.
2. Report: ``--ledger`` ledger items (texted orders over 7 days, a tenth held out, a third with an
   outcome) read the way ``nudge report --days 7`` reads them (Query only) and aggregated by the
   pure ``build_report``. Counted: Query pages, items read, CPU time, peak memory.

Times are CPU time in this process and include moto's side of every call: they are not AWS
latencies. Results go to ``bench/outcomes-results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.memory import PeakMemory

RESULTS = Path(__file__).resolve().parent / "outcomes-results.json"
ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 9, 50, tzinfo=ZONE)
WINDOWS = ("09:50-10:40", "15:00-16:50")
SEED = 20261123
QUIET = {"LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def ledger_item(oid: str, sent_at: datetime, rng: random.Random, *, outcome: bool) -> dict[str, Any]:
    """A ledger item as the send path leaves it (record_sent), in low-level DynamoDB form."""
    window = WINDOWS[sent_at.astimezone(ZONE).hour >= 12]
    seg = rng.choice((1, 1, 2))
    item: dict[str, Any] = {
        "order_id": {"S": oid},
        "buyer_id": {"S": f"b-{oid}"},
        "phone": {"S": f"+86139{rng.randrange(10**8):08d}"},
        "reminders_sent": {"N": "1"},
        "claimed_attempt": {"N": "1"},
        "last_sent_at": {"S": _iso(sent_at)},
        "sent_day": {"S": sent_at.astimezone(ZONE).date().isoformat()},
        "sent_at_1": {"S": _iso(sent_at)},
        "window_1": {"S": window},
        "segments_1": {"N": str(seg)},
        "message_id_1": {"S": f"m-{oid}"},
    }
    if outcome:
        minutes = rng.randrange(1, 600)
        item["outcome"] = {
            "M": {
                "holdout": {"BOOL": False},
                "attempt": {"N": "1"},
                "sms_at": {"S": _iso(sent_at)},
                "paid_at": {"S": _iso(sent_at + timedelta(minutes=minutes))},
                "minutes_to_pay": {"N": str(minutes)},
                "amount": {"N": str(rng.randrange(10, 500))},
                "currency": {"S": "CNY"},
                "window": {"S": window},
                "attribution_hours": {"N": "72"},
                "recorded_at": {"S": _iso(sent_at + timedelta(minutes=minutes))},
            }
        }
    return item


def held_item(oid: str, at: datetime) -> dict[str, Any]:
    return {
        "order_id": {"S": oid},
        "held_out_at": {"S": _iso(at)},
        "held_out_last_at": {"S": _iso(at)},
        "held_out_day": {"S": at.astimezone(ZONE).date().isoformat()},
        "held_out_window": {"S": WINDOWS[0]},
    }


def write_items(client: Any, table: str, items: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(items), 25):
        chunk = [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]
        client.batch_write_item(RequestItems={table: chunk})


def count_outcomes(client: Any, table: str, order_ids: Sequence[str]) -> int:
    found = 0
    for start in range(0, len(order_ids), 100):
        keys = [{"order_id": {"S": oid}} for oid in order_ids[start : start + 100]]
        request = {table: {"Keys": keys, "ProjectionExpression": "order_id, outcome"}}
        found += sum(
            "outcome" in item for item in client.batch_get_item(RequestItems=request)["Responses"][table]
        )
    return found


def counting(client: Any) -> Counter:
    ops: Counter = Counter()
    client.meta.events.register("before-call.dynamodb", lambda model, **_: ops.update([model.name]))
    return ops


def bench_stream(paid: int) -> dict[str, Any]:
    import boto3

    from nudge_local.pipeline import FakeClock, LocalPipeline

    rng = random.Random(SEED)
    with LocalPipeline(clock=FakeClock(START + timedelta(hours=1)), env=QUIET) as p:
        client = boto3.client("dynamodb")
        ledger = p.resources.ledger_table
        texted, held, changes = [], [], []
        for i in range(paid):
            oid = f"p{i:06d}"
            kind = rng.random()
            sent_at = START + timedelta(minutes=rng.randrange(0, 40))
            if kind < 0.6:
                texted.append(ledger_item(oid, sent_at, rng, outcome=False))
            elif kind < 0.7:
                held.append(held_item(oid, sent_at))
            base = {"order_id": oid, "buyer_id": f"b{i}", "status": "unpaid", "amount": "128.00",
                    "created_at": (sent_at - timedelta(hours=3)).isoformat()}  # fmt: skip
            paid_at = sent_at + timedelta(minutes=rng.randrange(-30, 600))
            changes.append((base, {**base, "status": "paid", "paid_at": paid_at.isoformat()}))
        write_items(client, ledger, texted + held)
        ops = counting(p.outcomes_app.recorder.store._client)
        cpu = time.process_time()
        with PeakMemory() as mem, contextlib.redirect_stdout(io.StringIO()):  # the handler's EMF lines
            stats = p.play_stream(changes + changes[: paid // 10])  # a tenth delivered twice
        cpu = time.process_time() - cpu
        outcomes = count_outcomes(client, ledger, [i["order_id"]["S"] for i in texted + held])
    requests = sum(ops.values())
    return {
        "paid_orders": paid,
        "stream_records": stats["records"],
        "invocations": stats["invocations"],
        "texted": len(texted),
        "held_out": len(held),
        "outcomes_written": outcomes,
        "dynamodb_requests": dict(ops),
        "records_per_request": round(stats["records"] / requests, 1) if requests else None,
        "cpu_s": round(cpu, 2),
        "memory": mem.to_json(),
    }


def bench_report(items: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from nudge.adapters.outcomes import DynamoOutcomeStore
    from nudge.domain.report import build_report
    from nudge_local.moto_env import provision

    rng = random.Random(SEED)
    root = Path(__file__).resolve().parents[1]
    with mock_aws():
        stack = provision(root / "template.yaml", stack_name="bench")
        client = boto3.client("dynamodb")
        rows = []
        for i in range(items):
            day = rng.randrange(7)
            at = START + timedelta(days=day, hours=rng.choice((0, 5)), minutes=rng.randrange(40))
            if rng.random() < 0.1:
                rows.append(held_item(f"r{i:06d}", at))
            else:
                rows.append(ledger_item(f"r{i:06d}", at, rng, outcome=rng.random() < 0.33))
        write_items(client, stack.ledger_table, rows)
        ops = counting(client)
        store = DynamoOutcomeStore(client, stack.ledger_table)
        first = START.date()
        last = first + timedelta(days=6)
        cpu = time.process_time()
        with PeakMemory() as mem:
            records = store.report_records(first, last)
            read_cpu = time.process_time() - cpu
            report = build_report(
                sms=records.sms,
                outcomes=records.outcomes,
                held_out=records.held_out,
                first_day=first,
                last_day=last,
                zone=ZONE,
                price_per_segment=Decimal("0.045"),
                currency="CNY",
            )
        cpu = time.process_time() - cpu
    return {
        "ledger_items": items,
        "items_read": records.items,
        "query_pages": records.queries,
        "dynamodb_requests": dict(ops),
        "read_cpu_s": round(read_cpu, 2),
        "total_cpu_s": round(cpu, 2),
        "aggregate_cpu_s": round(cpu - read_cpu, 2),
        "memory": mem.to_json(),
        "report": {k: report[k] for k in ("reminded", "sms", "paid", "paid_rate", "holdout")},
    }


def format_result(result: dict[str, Any]) -> str:
    s, r = result["stream"], result["report"]
    return "\n".join(
        [
            f"outcomes stream: {s['paid_orders']:,} paid orders, {s['stream_records']:,} records "
            f"({s['invocations']} invocations): DynamoDB {s['dynamodb_requests']} -> "
            f"{s['records_per_request']} records per request; {s['outcomes_written']:,} outcomes written; "
            f"{s['cpu_s']} s CPU, +{s['memory']['delta_mb']} MB",
            f"nudge report --days 7 over {r['ledger_items']:,} ledger items: {r['query_pages']} Query pages, "
            f"{r['items_read']:,} items read, {r['dynamodb_requests']}; read {r['read_cpu_s']} s + aggregate "
            f"{r['aggregate_cpu_s']} s CPU, +{r['memory']['delta_mb']} MB",
        ]
    )


def verdicts(result: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """The outcomes goals, each (name, measured value, met)."""
    s, r = result["stream"], result["report"]
    calls = r["dynamodb_requests"]
    return [
        (
            "outcomes stream: at most one batched read per 100 records",
            s["dynamodb_requests"].get("BatchGetItem"),
            s["dynamodb_requests"].get("BatchGetItem", 0) <= -(-s["stream_records"] // 100),
        ),
        (
            f"report over {r['ledger_items']:,} ledger items: Query only, never Scan",
            calls,
            set(calls) == {"Query"},
        ),
        (
            f"report over {r['ledger_items']:,} ledger items: every item read once",
            r["items_read"],
            r["items_read"] == r["ledger_items"],
        ),
        ("report aggregation < 5 s CPU", f"{r['aggregate_cpu_s']} s", r["aggregate_cpu_s"] < 5),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--paid", type=int, default=10_000)
    parser.add_argument("--ledger", type=int, default=100_000)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        os.environ.setdefault(key, value)
    # moto's transactions deep-copy whole tables (O(table) memory and time per call: 10k
    # deliveries took 23 GB without this); bench.motofix removes that, responses unchanged.
    from bench import motofix

    motofix.install()
    started = time.perf_counter()
    result = {"generated_by": "python -m bench.outcomes", "seed": SEED, "stream": bench_stream(args.paid)}
    result["report"] = bench_report(args.ledger)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(format_result(result))
    print(f"wrote {args.out} in {result['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
