"""Orders in, on moto: webhook deliveries through the real ingest handler, and `nudge import`.

``python -m bench.ingest [--deliveries 10000] [--imports 10000,100000] [--out FILE]``

1. Webhooks: ``--deliveries`` signed Standard Webhooks requests (Function URL events) to the ingest
   handler of a moto stack built from template.yaml: one ``order.created`` per order, 5% of the
   orders reordered (``order.paid`` delivered before ``order.created``), and 10% of all deliveries
   exact re-sends of an earlier one (a sender's retry). Reported: handler CPU time per request
   (process time around the handler call, moto's side included: not Lambda latency), DynamoDB
   requests per order and per delivery, and the final states (every duplicate written once,
   every reordered order paid).
2. Import: JSON Lines files of each size through ``nudge import --table`` into a fresh stack, then
   the same file again (all unchanged). Reported: wall time, lines per second, DynamoDB requests per
   line, and how the time grows from the smallest to the largest size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "ingest-results.json"
CST = timezone(timedelta(hours=8))
START = datetime(2026, 11, 23, 7, 0, tzinfo=CST)
SEED = 20261123


def _env() -> None:
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
    }.items():
        os.environ.setdefault(key, value)


def _record(i: int) -> dict[str, Any]:
    return {
        "order_id": f"w-{i:06d}",
        "buyer_id": f"b-{i:06d}",
        "phone": f"+86138{i % 100_000_000:08d}",
        "status": "unpaid",
        "created_at": (START - timedelta(minutes=i % 600)).isoformat(),
        "amount": str(50 + i % 500),
        "item_title": "Ceramic Teapot",
    }


def _count_calls(client: Any, counter: Counter) -> None:
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: counter.update([model.name]))


def bench_webhooks(n: int) -> dict[str, Any]:
    from nudge.domain.webhooks import sign_standard
    from nudge_local.pipeline import FakeClock, LocalPipeline

    rng = random.Random(SEED)
    clock = FakeClock(START)
    quiet = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalPipeline(clock=clock, env=quiet) as p:
        secret = p.webhook_secret("nudge")
        duplicates = n // 10
        fresh = n - duplicates
        reordered_orders = fresh // 20  # each adds a paid delivery: 5% of the orders are reordered pairs
        orders = fresh - reordered_orders
        plan: list[tuple[str, dict[str, Any]]] = []  # (webhook id, payload)
        for i in range(orders):
            created = {"type": "order.created", "timestamp": START.isoformat(), "data": _record(i)}
            if i < reordered_orders:
                paid_at = (START + timedelta(minutes=30)).isoformat()
                paid = {
                    "type": "order.paid",
                    "timestamp": paid_at,
                    "data": {"order_id": _record(i)["order_id"]},
                }
                plan.append((f"msg_paid_{i}", paid))
            plan.append((f"msg_created_{i}", created))
        for _ in range(duplicates):
            plan.insert(rng.randrange(1, len(plan) + 1), plan[rng.randrange(len(plan))])

        def event(webhook_id: str, payload: dict[str, Any]) -> dict[str, Any]:
            body = json.dumps(payload, separators=(",", ":")).encode()
            ts = int(clock.now().timestamp())
            return _function_url_event(
                body,
                {
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(ts),
                    "webhook-signature": sign_standard(secret, webhook_id, ts, body),
                },
            )

        p.ingest(event("msg_warm", {"type": "order.paid", "data": {"order_id": "warm"}}))  # cold start
        calls: Counter[str] = Counter()
        _count_calls(p.ingest_app.store._client, calls)
        cpu: list[float] = []
        answers: Counter[str] = Counter()
        for webhook_id, payload in plan:
            request = event(webhook_id, payload)
            t0 = time.process_time()
            response = p.ingest(request)
            cpu.append(time.process_time() - t0)
            answers[json.loads(response["body"])["result"]] += 1
            clock.advance(0.01)
        table = p.dynamodb.Table(p.resources.orders_table)
        page = table.scan(ConsistentRead=True)
        items = page["Items"]
        while page.get("LastEvaluatedKey"):  # a bench check, not the hot path
            page = table.scan(ConsistentRead=True, ExclusiveStartKey=page["LastEvaluatedKey"])
            items += page["Items"]
        statuses = Counter(i["status"] for i in items if i["order_id"] != "warm")
        requests = sum(calls.values())
        cpu_sorted = sorted(cpu)
        return {
            "deliveries": len(plan),
            "orders": orders,
            "duplicates": duplicates,
            "reordered_orders": reordered_orders,
            "answers": dict(answers),
            "statuses": dict(statuses),
            "cpu_ms_mean": round(1000 * statistics.fmean(cpu), 3),
            "cpu_ms_p50": round(1000 * cpu_sorted[len(cpu) // 2], 3),
            "cpu_ms_p95": round(1000 * cpu_sorted[int(len(cpu) * 0.95)], 3),
            "ddb_requests": dict(calls),
            "ddb_requests_per_order": round(requests / orders, 3),
            "ddb_requests_per_delivery": round(requests / len(plan), 3),
        }


def _function_url_event(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/webhooks/nudge",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "content-length": str(len(body)), **headers},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "bench",
            "domainName": "bench.lambda-url.us-east-1.on.aws",
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": "/webhooks/nudge",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.1",
                "userAgent": "bench",
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def bench_import(n: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from nudge_cli.cli import main as nudge
    from nudge_local.moto_env import provision
    from nudge_local.pipeline import TEMPLATE

    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        path = Path(tmp) / "orders.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for i in range(n):
                fh.write(json.dumps(_record(i)) + "\n")
        stack = provision(TEMPLATE, stack_name=f"bench-import-{n}")
        calls: Counter[str] = Counter()
        original = boto3.session.Session.client

        def client(self: Any, *args: Any, **kwargs: Any) -> Any:
            made = original(self, *args, **kwargs)
            if (args[:1] or [kwargs.get("service_name")])[0] == "dynamodb":
                _count_calls(made, calls)
            return made

        out = {}
        boto3.session.Session.client = client  # type: ignore[method-assign]
        try:
            for run in ("first", "again"):
                calls.clear()
                stdout, stderr = io.StringIO(), io.StringIO()
                t0 = time.perf_counter()
                with contextlib.redirect_stderr(stderr):
                    code = nudge(["import", str(path), "--table", stack.orders_table], out=stdout)
                elapsed = time.perf_counter() - t0
                out[run] = {
                    "exit": code,
                    "summary": stdout.getvalue().strip(),
                    "seconds": round(elapsed, 2),
                    "lines_per_second": round(n / elapsed),
                    "ddb_requests_per_line": round(sum(calls.values()) / n, 3),
                }
        finally:
            boto3.session.Session.client = original  # type: ignore[method-assign]
        return {"lines": n, **out}


def format_table(report: dict[str, Any]) -> str:
    w = report["webhooks"]
    lines = [
        "Orders in (moto; CPU includes moto's side of each call, not Lambda latency)",
        "",
        "| webhooks | value |",
        "|---|---|",
        f"| deliveries (orders, duplicates, reordered orders) | {w['deliveries']:,} ({w['orders']:,}, {w['duplicates']:,}, {w['reordered_orders']:,}) |",
        f"| answers | {', '.join(f'{k} {v:,}' for k, v in sorted(w['answers'].items()))} |",
        f"| final statuses | {', '.join(f'{k} {v:,}' for k, v in sorted(w['statuses'].items()))} |",
        f"| handler CPU per request (mean / p50 / p95) | {w['cpu_ms_mean']} / {w['cpu_ms_p50']} / {w['cpu_ms_p95']} ms |",
        f"| DynamoDB requests per order / per delivery | {w['ddb_requests_per_order']} / {w['ddb_requests_per_delivery']} |",
        f"| DynamoDB requests by operation | {', '.join(f'{k} {v:,}' for k, v in sorted(w['ddb_requests'].items()))} |",
        "",
        "| import (nudge import --table) | lines | time | lines/s | requests/line | summary |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["imports"]:
        for run in ("first", "again"):
            r = row[run]
            lines.append(
                f"| {run} | {row['lines']:,} | {r['seconds']} s | {r['lines_per_second']:,} | {r['ddb_requests_per_line']} | {r['summary']} |"
            )
    if report.get("import_growth"):
        g = report["import_growth"]
        lines.append(
            f"\nimport time x{g['time_ratio']} for x{g['size_ratio']} lines ({g['from']:,} -> {g['to']:,})"
        )
    return "\n".join(lines)


def verdicts(report: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """The orders-in goals, each (name, measured value, met)."""
    w = report["webhooks"]
    out: list[tuple[str, Any, bool]] = [
        (
            "webhooks: DynamoDB requests per delivery <= 1.1",
            w["ddb_requests_per_delivery"],
            w["ddb_requests_per_delivery"] <= 1.1,
        ),
        (
            "webhooks: handler CPU p95 < 1 s (Shopify waits 5 s)",
            f"{w['cpu_ms_p95']} ms",
            w["cpu_ms_p95"] < 1000,
        ),
        (
            "webhooks: every reordered order ends paid",
            w["statuses"].get("paid"),
            w["statuses"].get("paid") == w["reordered_orders"],
        ),
    ]
    for row in report["imports"]:
        first, again = row["first"], row["again"]
        out.append(
            (
                f"import {row['lines']:,} lines: one DynamoDB request per line",
                first["ddb_requests_per_line"],
                first["ddb_requests_per_line"] <= 1.0,
            )
        )
        out.append(
            (
                f"import {row['lines']:,} lines again: all unchanged",
                again["summary"],
                again["summary"].startswith("imported 0,"),
            )
        )
    growth = report.get("import_growth")
    if growth:
        linear = growth["time_ratio"] <= 1.5 * growth["size_ratio"]
        out.append(
            (
                "import time grows linearly (time ratio <= 1.5 x size ratio)",
                f"x{growth['time_ratio']} for x{growth['size_ratio']}",
                linear,
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    # The 10k-to-100k growth is what the bench is for; moto writes ~60-80 new lines a second, so
    # the 100k import (run twice) takes most of an hour. --imports 10000,20000 is the quick check.
    parser.add_argument("--imports", default="10000,100000")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    # moto's transactions deep-copy whole tables (O(table) memory and time per call: 10k
    # deliveries took 23 GB without this); bench.motofix removes that, responses unchanged.
    from bench import motofix

    motofix.install()
    _env()
    sizes = [int(s) for s in args.imports.split(",") if s]
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(f"ingest: {args.deliveries:,} webhook deliveries ...", flush=True)
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' metrics (EMF) go to stdout
            webhooks = bench_webhooks(args.deliveries)
        imports = []
        for n in sizes:
            print(f"ingest: import of {n:,} lines, twice ...", flush=True)
            imports.append(bench_import(n))
    report: dict[str, Any] = {
        "generated_by": "python -m bench.ingest",
        "webhooks": webhooks,
        "imports": imports,
    }
    if len(imports) >= 2:
        a, b = imports[0], imports[-1]
        report["import_growth"] = {
            "from": a["lines"],
            "to": b["lines"],
            "size_ratio": round(b["lines"] / a["lines"], 1),
            "time_ratio": round(b["first"]["seconds"] / a["first"]["seconds"], 1),
        }
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(format_table(report))
    print(f"\nwrote {args.out} in {report['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
