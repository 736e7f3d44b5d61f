"""The send path per SMS gateway: AWS calls per SMS, and the sustained send rate against SmsPerSecond.

``python -m bench.gateways [--orders 200] [--minutes 50]``

1. Calls per SMS: one window of ``--orders`` orders through the real plan and send handlers on the
   local stack, once with each ``SmsGateway`` (SNS on moto; End User Messaging through its local
   stand-in, ``nudge_local.sms_voice``; Alibaba Cloud's SDK against ``nudge_local.dysmsapi``, its
   SendSms counted as one call). Every call the send function makes is counted
   (``bench.calls``); the harness's SQS calls (the event source mapping's) are left out. Reported
   per SMS: the per-SMS operations (claim, hand-off, record, SNS's opt-out check) and the
   per-batch reads (the orders' payment check, the shop's opt-out list) spread over the batch.
2. Sustained rate: the sender's pacer over a simulated ``--minutes`` window at the stack's default
   ``SmsPerSecond`` (5), with more SMS queued than the window can take, on a fake clock: SMS sent
   per second of the window (goal: at least 95% of the rate) and the most in any one second
   (goal: never over it). The pollers' split of the rate (template MaximumConcurrency) is not
   simulated: each poller paces at its share, so together they stay under the rate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

RESULTS = Path(__file__).resolve().parent / "gateways-results.json"
SHOP = ZoneInfo("Asia/Shanghai")
WINDOW_OPENS = datetime(2026, 11, 23, 9, 50, tzinfo=SHOP)
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
# Also measured: SNS with its SMS delivery-status logs on (SnsDeliveryStatusLogs), whose ledger
# writes a pointer per SMS (message id -> order) for the receipts.
SNS_WITH_LOGS = "sns+delivery-logs"
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "sns": ("sns", {}),
    "end-user-messaging": ("end-user-messaging", {}),
    SNS_WITH_LOGS: ("sns", {"SnsDeliveryStatusLogs": "100"}),
    "aliyun": ("aliyun", {}),  # Alibaba Cloud's SDK against the local dysmsapi (nudge_local.dysmsapi)
}
RATE = 5.0  # template.yaml's SmsPerSecond default


def calls_per_sms(variant: str, orders: int) -> dict[str, Any]:
    from bench.calls import CallCounter
    from nudge_local.pipeline import FakeClock, LocalPipeline

    counter = CallCounter().install()
    try:
        records = [
            {
                "order_id": f"o-{i}",
                "buyer_id": f"b-{i}",
                "phone": f"+861380{i:06d}1",  # never ending in 99: the stand-ins' opted-out numbers
                "status": "unpaid",
                "created_at": (WINDOW_OPENS - timedelta(hours=3)).isoformat(),
                "amount": "100.00",
            }
            for i in range(orders)
        ]
        gateway, parameters = VARIANTS[variant]
        with LocalPipeline(
            clock=FakeClock(WINDOW_OPENS), env=QUIET, gateway=gateway, parameters=parameters
        ) as p:
            counter.mark_harness(p.sqs, p.dynamodb.meta.client)
            p.load_orders(records)
            p.fire_window("09:50-10:40@11:00", WINDOW_OPENS)
            with counter.in_phase("send"), contextlib.redirect_stdout(io.StringIO()):
                drained = p.drain_queue()
            sent = len(p.sent_sms())
            # Alibaba Cloud's SendSms is HTTP to its own API, not a botocore call: counted here.
            hand_offs = len(p.dysmsapi.seen) if p.dysmsapi is not None else 0
        calls = Counter(counter.phases["send"].calls)
        if hand_offs:
            calls["aliyun.SendSms"] = hand_offs
    finally:
        counter.uninstall()
    # Read once per batch or once per container (the Alibaba Cloud AccessKey), not per SMS.
    per_batch = {
        "dynamodb.BatchGetItem",
        "dynamodb.GetItem",
        "ssm.GetParameter",
        "secretsmanager.GetSecretValue",
    }
    total = sum(calls.values())
    per_sms_ops = sum(n for op, n in calls.items() if op not in per_batch)
    return {
        "gateway": variant,
        "orders": orders,
        "sms_sent": sent,
        "invocations": drained["invocations"],
        "calls": dict(sorted(calls.items())),
        "calls_per_sms": round(total / sent, 2) if sent else None,
        "per_sms_operations": round(per_sms_ops / sent, 2) if sent else None,
        "per_batch_reads_per_sms": round((total - per_sms_ops) / sent, 2) if sent else None,
    }


def sustained_rate(minutes: int, rate: float = RATE) -> dict[str, Any]:
    """The real sender over the in-memory fakes on a fake clock: how fast it sends for a whole window."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/fakes.py: the port's fakes
    from nudge.services.ports import SendRequest
    from nudge.services.sending import Pacer, Sender
    from nudge_local.pipeline import FakeClock
    from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSmsGateway

    window = timedelta(minutes=minutes)
    queued = int(window.total_seconds() * rate * 1.2)  # more than the window can take
    clock = FakeClock(WINDOW_OPENS)
    created = (WINDOW_OPENS - timedelta(hours=3)).isoformat()
    orders = [
        {"order_id": f"o-{i}", "buyer_id": f"b-{i}", "phone": f"+861380{i:07d}", "status": "unpaid",
         "created_at": created, "amount": "100"}
        for i in range(queued)
    ]  # fmt: skip
    times: list[datetime] = []

    class TimedGateway(FakeSmsGateway):  # when each SMS is handed over, on the fake clock
        def publish(self, sms: Any) -> str:
            times.append(clock.now())
            return super().publish(sms)

    sms = TimedGateway()
    sender = Sender(
        orders=FakeOrderRepository(orders),
        ledger=FakeReminderLedger(),
        sms=sms,
        clock=clock.now,
        pacer=Pacer(rate, clock=clock.now, sleep=clock.sleep),
        daily_cap=10**9,
        buyer_min_interval=timedelta(hours=24),
        max_age=timedelta(hours=72),
        new_token=iter(f"t{i}" for i in range(10**9)).__next__,
    )
    deadline = WINDOW_OPENS + window
    requests = [
        SendRequest(o["order_id"], o["buyer_id"], o["phone"], 1, "hi", 1, deadline, WINDOW_OPENS.date(),
                    "09:50-10:40", WINDOW_OPENS)
        for o in orders
    ]  # fmt: skip
    started = time.perf_counter()
    for start in range(0, len(requests), 10):  # SQS batches of 10
        batch = requests[start : start + 10]
        run = sender.start_batch(batch)
        for r in batch:
            run.deliver(r)
        if clock.now() >= deadline:
            break
    per_second = Counter(int((t - WINDOW_OPENS).total_seconds()) for t in times)
    sent = len(times)
    return {
        "window_minutes": minutes,
        "configured_per_second": rate,
        "queued": queued,
        "sent": sent,
        "achieved_per_second": round(sent / window.total_seconds(), 3),
        "share_of_rate": round(sent / (window.total_seconds() * rate), 4),
        "max_in_one_second": max(per_second.values()) if per_second else 0,
        "cpu_s": round(time.perf_counter() - started, 2),
    }


def verdicts(result: dict[str, Any]) -> list[tuple[str, Any, bool | None]]:
    out: list[tuple[str, Any, bool | None]] = []
    for row in result["calls"]:
        name = f"{row['gateway']}: AWS calls per SMS on the send path"
        out.append(
            (
                name,
                f"{row['calls_per_sms']} ({row['per_sms_operations']} per-SMS + {row['per_batch_reads_per_sms']} batch reads)",
                None,
            )
        )
        if row["gateway"] == "end-user-messaging":
            ops = row["per_sms_operations"]
            out.append(
                (
                    "end-user-messaging: per-SMS operations between 2 and 3 (claim, hand-off, record)",
                    ops,
                    2 <= ops <= 3,
                )
            )
    r = result["rate"]
    out.append(
        (
            f"sustained rate over {r['window_minutes']} min >= 95% of SmsPerSecond",
            f"{r['share_of_rate']:.1%}",
            r["share_of_rate"] >= 0.95,
        )
    )
    out.append(
        (
            "never over SmsPerSecond in any second",
            r["max_in_one_second"],
            r["max_in_one_second"] <= r["configured_per_second"],
        )
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=50)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = {
        "generated_by": "python -m bench.gateways",
        "calls": [calls_per_sms(v, args.orders) for v in VARIANTS],
        "rate": sustained_rate(args.minutes),
    }
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for row in result["calls"]:
        print(
            f"{row['gateway']}: {row['sms_sent']} SMS, {row['calls_per_sms']} calls per SMS: {row['calls']}"
        )
    r = result["rate"]
    print(
        f"sustained rate: {r['sent']:,} SMS in {r['window_minutes']} min at {r['configured_per_second']}/s configured "
        f"-> {r['achieved_per_second']}/s ({r['share_of_rate']:.1%}), at most {r['max_in_one_second']} in one second"
    )
    print(f"wrote {args.out} in {result['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
