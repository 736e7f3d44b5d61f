"""Planner throughput ("the planner stays linear"): the pure rules on 10k and 100k orders.

``python -m bench.planner [--sizes 10000,100000] [--profile]``

For each size: generate a shop, parse every record with ``nudge.domain.orders.parse_order``, then time
``nudge.domain.rules.plan_reminders`` at a fixed ``now`` inside a window, best of 3, both CPU time
(``time.process_time``) and wall time (``time.perf_counter``). The phone-number caches are cleared
before every timed run, so each run pays for parsing the numbers as a cold Lambda does.

The ledger given to the rules is synthetic and deterministic: some candidates already had one or
two reminders and some buyers were texted in the last 24 h, so those lookups are exercised too.
The daily SMS cap is lifted (as in the end-to-end bench) so that every send is rendered.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import json
import pstats
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from bench.generate import generate_orders
from bench.memory import PeakMemory
from nudge.domain.config import Config, load_config
from nudge.domain.models import InvalidOrder, Order, ReminderState, SentReminder
from nudge.domain.orders import parse_order
from nudge.domain.phones import buyer_zones, phone_info
from nudge.domain.restdays import RestDayCalendar
from nudge.domain.rules import plan_reminders

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=CST)  # Monday, inside 09:50-10:40
SEED = 20261123
SIZES = (10_000, 100_000)
TARGET_100K_SECONDS = 2.0
LINEAR_FACTOR_LIMIT = 12.0  # 10x the orders may cost at most 12x the time


def bench_config(daily_sms_cap: int = 1_000_000) -> Config:
    return load_config({"rules": {"daily_sms_cap": daily_sms_cap}})


def synthetic_ledger(
    orders: Sequence[Order | InvalidOrder], now: datetime, seed: int = SEED
) -> tuple[dict[str, ReminderState], list[SentReminder]]:
    """Ledger state for some unpaid orders, and the SMS that went out in the last 24 h."""
    r = random.Random(seed)
    states: dict[str, ReminderState] = {}
    recent: list[SentReminder] = []
    for o in orders:
        if not isinstance(o, Order) or o.status != "unpaid":
            continue
        x = r.random()
        if x < 0.25:
            sent = 1 if x < 0.20 else 2
            states[o.order_id] = ReminderState(o.order_id, sent, False)
            sent_at = now - timedelta(minutes=r.randint(30, 48 * 60))
            if sent_at > o.created_at:
                recent.append(SentReminder(o.order_id, o.buyer_id, o.phone, sent_at, sent))
    return states, recent


def clear_caches() -> None:
    phone_info.cache_clear()
    buyer_zones.cache_clear()


@dataclass
class PlannerTiming:
    orders: int
    parse_cpu_s: float
    plan_cpu_s: float  # best of the runs
    plan_wall_s: float  # best of the runs
    plan_cpu_runs: list[float]
    sends: int
    by_reason: dict[str, int]
    memory_mb: float | None = None  # parse + plan from DynamoDB items, tracemalloc peak

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.plan_cpu_s if self.plan_cpu_s else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "parse_cpu_s": round(self.parse_cpu_s, 4),
            "plan_cpu_s": round(self.plan_cpu_s, 4),
            "plan_wall_s": round(self.plan_wall_s, 4),
            "plan_cpu_runs": [round(x, 4) for x in self.plan_cpu_runs],
            "orders_per_s": round(self.orders_per_s),
            "sends": self.sends,
            "memory_mb": None if self.memory_mb is None else round(self.memory_mb, 1),
            "by_reason": self.by_reason,
        }


def to_ddb_items(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as the DynamoDB client returns them (numbers as {"N": ...})."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    out = []
    for r in records:
        clean = json.loads(json.dumps(r), parse_float=Decimal)
        out.append({k: ser.serialize(v) for k, v in clean.items()})
    return out


def client_memory_mb(
    records: Sequence[dict[str, Any]], now: datetime, config: Config, calendar: RestDayCalendar
) -> float:
    """What the plan handler itself holds at its peak, without moto: the orders parsed from
    DynamoDB items (as the Query pages deliver them) and the plan (tracemalloc peak)."""
    from nudge.adapters.dynamo_io import item_from_ddb

    items = to_ddb_items(records)
    clear_caches()
    with PeakMemory("tracemalloc") as mem:
        orders = [parse_order(item_from_ddb(i)) for i in items]
        ledger, recent = synthetic_ledger(orders, now)
        plan = plan_reminders(orders, now=now, config=config, calendar=calendar, ledger=ledger, recent=recent)
        del orders, plan
    return mem.delta_mb


def time_planner(
    n: int, *, seed: int = SEED, now: datetime = NOW, repeats: int = 3, memory: bool = True
) -> PlannerTiming:
    records = generate_orders(n, seed=seed, now=now)
    t0 = time.process_time()
    orders = [parse_order(r) for r in records]
    parse_cpu = time.process_time() - t0
    config = bench_config()
    calendar = RestDayCalendar(config.calendar)
    calendar.is_rest_day(now.date())  # load the year outside the timing (a warm Lambda has it)
    memory_mb = client_memory_mb(records, now, config, calendar) if memory else None
    del records
    ledger, recent = synthetic_ledger(orders, now, seed)
    cpu_runs, wall_runs = [], []
    plan = None
    for _ in range(repeats):
        clear_caches()
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        plan = plan_reminders(orders, now=now, config=config, calendar=calendar, ledger=ledger, recent=recent)
        cpu_runs.append(time.process_time() - c0)
        wall_runs.append(time.perf_counter() - w0)
    assert plan is not None
    by_reason = dict(sorted(plan.count_by_reason().items()))
    return PlannerTiming(
        orders=n,
        parse_cpu_s=parse_cpu,
        plan_cpu_s=min(cpu_runs),
        plan_wall_s=min(wall_runs),
        plan_cpu_runs=cpu_runs,
        sends=by_reason.get("send", 0),
        by_reason=by_reason,
        memory_mb=memory_mb,
    )


def profile_planner(n: int, *, seed: int = SEED, now: datetime = NOW, top: int = 20) -> str:
    """cProfile of one cold ``plan_reminders`` run: the top functions by own time and cumulative."""
    orders = [parse_order(r) for r in generate_orders(n, seed=seed, now=now)]
    config = bench_config()
    calendar = RestDayCalendar(config.calendar)
    calendar.is_rest_day(now.date())
    ledger, recent = synthetic_ledger(orders, now, seed)
    clear_caches()
    prof = cProfile.Profile()
    prof.enable()
    plan_reminders(orders, now=now, config=config, calendar=calendar, ledger=ledger, recent=recent)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run(sizes: Sequence[int] = SIZES, *, repeats: int = 3, profile: bool = False) -> dict[str, Any]:
    timings = {n: time_planner(n, repeats=repeats) for n in sizes}
    result: dict[str, Any] = {
        "now": NOW.isoformat(),
        "seed": SEED,
        "method": f"plan_reminders on parsed orders; best of {repeats}; time.process_time (CPU) and "
        "time.perf_counter (wall); phone caches cleared before each run",
        "sizes": {str(n): t.to_json() for n, t in timings.items()},
        "checks": [],
    }
    ordered = sorted(timings)
    big = ordered[-1]
    t = timings[big].plan_cpu_s
    limit_s = TARGET_100K_SECONDS * big / 100_000
    result["checks"].append(
        {
            "name": f"planner {big // 1000}k orders < {limit_s:g} s CPU",
            "value": round(t, 3),
            "pass": t < limit_s,
        }
    )
    for small, large in itertools.pairwise(ordered):
        ratio = timings[large].plan_cpu_s / timings[small].plan_cpu_s
        limit = LINEAR_FACTOR_LIMIT * large / small / 10
        result["checks"].append(
            {
                "name": f"planner {large // 1000}k / {small // 1000}k time within {limit:g}x",
                "value": round(ratio, 2),
                "pass": ratio <= limit,
            }
        )
    missed = any(not c["pass"] for c in result["checks"])
    if profile or missed:
        result["profile"] = profile_planner(big)
    return result


def format_result(result: dict[str, Any]) -> str:
    lines = [
        "| orders | parse CPU s | plan CPU s (best) | plan wall s (best) | orders/s (CPU) | sends | memory MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, t in result["sizes"].items():
        lines.append(
            f"| {int(n):,} | {t['parse_cpu_s']:.3f} | {t['plan_cpu_s']:.3f} | {t['plan_wall_s']:.3f} "
            f"| {t['orders_per_s']:,} | {t['sends']:,} | {t['memory_mb'] if t['memory_mb'] is not None else '-'} |"
        )
    for c in result["checks"]:
        lines.append(f"{'PASS' if c['pass'] else 'MISS'}  {c['name']}: {c['value']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the largest size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    result = run(sizes, repeats=args.repeats, profile=args.profile)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    if "profile" in result and not args.json:
        print(result["profile"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
