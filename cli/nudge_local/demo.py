"""`nudge demo`: the whole pipeline on moto with the sample orders, narrated for a shop owner.

The stack is built from template.yaml, the real handlers run with its environment, and the
clock is fixed (Monday 2026-11-23, the morning window), so the demo shows the same on any day.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from nudge.domain.orders import read_history_jsonl
from nudge.domain.privacy import mask_phone
from nudge.domain.webhooks import sign_standard
from nudge_local.pipeline import (
    ALIYUN_TEMPLATES,
    EVENTS,
    FakeClock,
    LocalPipeline,
    function_url_event,
    storable_records,
)

SHOP_ZONE = ZoneInfo("Asia/Shanghai")  # template.yaml's default ShopTimezone
DEFAULT_AT = datetime(2026, 11, 23, 9, 50, tzinfo=SHOP_ZONE)
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}  # keep the narration readable
# A small A/B test of two first-reminder texts (messages.variants), as a shop would set it in
# ExtraConfigJson: the caring question of the guides against a shipping cut-off nudge.
DEMO_VARIANTS = {
    "1": [
        {"name": "caring", "template": "{greeting}，您的订单（{amount}）还未付款，是付款遇到问题了吗？"},
        {
            "name": "cutoff",
            "template": "{greeting}，您的订单（{amount}）还未付款，[[{ship_by}前]]付款当天发货。",
        },
    ]
}
DEMO_CONFIG = {"messages": {"variants": DEMO_VARIANTS}}
# With --gateway aliyun: the templates a shop would register for the two reminders and for each
# first-reminder variant (one code per variant, in their order), with Nudge's variable names.
DEMO_ALIYUN_TEMPLATES = {
    "SMS_480010011": "${name}您好，您的订单（¥${amount}）还未付款，是付款遇到问题了吗？",
    "SMS_480010012": "${name}您好，您的订单（¥${amount}）还未付款，${cutoff}前付款当天发货。",
}
DEMO_ALIYUN_CODES = "1=SMS_480010011|SMS_480010012,2=SMS_480010002"


def _decisions_table(summary: dict, out: TextIO) -> None:
    for d in sorted(summary["decisions"], key=lambda d: d["order_id"] or ""):
        reason = d["reason"] or ""
        print(f"     {d['order_id']:<8} {d['action']:<5} {reason}", file=out)


# The sample orders that arrive as signed Standard Webhooks deliveries, as a connected shop sends them.
WEBHOOK_ORDERS = ("o-1001", "o-1002", "o-1004")


def _orders_arrive_by_webhook(p: LocalPipeline, records: list[dict], at: datetime, out: TextIO) -> None:
    """Step 0: a shop's order.created webhooks, signed with the stack's Standard Webhooks secret,
    through the ingest function's Function URL; then a forged one, which writes nothing."""
    secret = p.webhook_secret("nudge") or ""
    print("\n0) Orders arrive by signed webhook (Standard Webhooks, POST /webhooks/nudge)", file=out)
    for n, record in enumerate(records, start=1):
        body = json.dumps(
            {"type": "order.created", "timestamp": at.isoformat(), "data": record}, ensure_ascii=False
        ).encode()
        webhook_id, ts = f"msg_demo_{n}", int(at.timestamp())
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard(secret, webhook_id, ts, body),
        }
        answer = p.ingest(function_url_event("/webhooks/nudge", body, headers, at=at))
        print(
            f"   {record['order_id']}: {answer['statusCode']} {json.loads(answer['body'])['result']}",
            file=out,
        )
    forged = json.dumps({"type": "order.paid", "timestamp": at.isoformat(), "data": {"order_id": "o-1001"}})
    headers = {
        "webhook-id": "msg_forged",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": "v1,Zm9yZ2Vk",
    }
    answer = p.ingest(function_url_event("/webhooks/nudge", forged.encode(), headers, at=at))
    print(f"   a forged order.paid for o-1001: {answer['statusCode']} (nothing written)", file=out)


def run_demo(
    out: TextIO, *, at: datetime | None = None, html: Path | None = None, gateway: str = "sns"
) -> int:
    at = at or DEFAULT_AT
    clock = FakeClock(at)
    orders_file = EVENTS / "sample-orders.jsonl"
    history = read_history_jsonl((EVENTS / "sample-history.jsonl").read_text(encoding="utf-8").splitlines())
    env = {**QUIET, "EXTRA_CONFIG_JSON": json.dumps(DEMO_CONFIG, ensure_ascii=False)}
    via = {"end-user-messaging": "End User Messaging", "aliyun": "Alibaba Cloud SMS"}.get(gateway, "SNS")
    aliyun = gateway == "aliyun"
    with LocalPipeline(
        clock=clock,
        env=env,
        gateway=gateway,
        parameters={"AliyunTemplateCodes": DEMO_ALIYUN_CODES} if aliyun else None,
        aliyun_templates={**ALIYUN_TEMPLATES, **DEMO_ALIYUN_TEMPLATES} if aliyun else None,
    ) as p:
        r = p.resources
        window = r.env["WINDOWS"].split(",")[0]
        print("Nudge demo: the whole pipeline on moto (no AWS account is touched)", file=out)
        print(
            f"  stack from template.yaml: tables {r.orders_table}, {r.ledger_table}; queue {r.send_queue_url.rsplit('/', 1)[-1]}",
            file=out,
        )
        records, refused = storable_records(orders_file)
        by_webhook = [r for r in records if r["order_id"] in WEBHOOK_ORDERS]
        _orders_arrive_by_webhook(p, by_webhook, at, out)
        loaded = p.load_orders([r for r in records if r["order_id"] not in WEBHOOK_ORDERS])
        print(
            f"  the shop's other {loaded} sample orders written to the orders table directly "
            f"(events/sample-orders.jsonl; {refused} unreadable line refused)",
            file=out,
        )
        print(
            f"  loaded {p.load_history(history, SHOP_ZONE)} earlier reminders into the ledger (events/sample-history.jsonl)",
            file=out,
        )

        local = at.astimezone(SHOP_ZONE)
        print(
            f"\n1) EventBridge Scheduler fires window {window} at {local:%a %Y-%m-%d %H:%M} {SHOP_ZONE.key}",
            file=out,
        )
        first = p.fire_window(window, at)
        print(
            f"   plan: {first['orders_read']} orders read, {first['enqueued']} SMS queued, {first['calls']} to the staff call list",
            file=out,
        )
        _decisions_table(first, out)
        print(
            "   an A/B test of two first-reminder texts runs (messages.variants: caring, cutoff): each order's"
            "\n   text is drawn from its id, the same on every run; who is texted and when do not change",
            file=out,
        )

        print("\n2) The send function drains the queue (SQS batches, partial failures)", file=out)
        stats = p.drain_queue()
        sent = p.sent_sms()
        print(
            f"   {stats['invocations']} invocation(s), {stats['messages']} message(s); {via} received {len(sent)} SMS:",
            file=out,
        )
        for phone, text in sent:
            print(f"     {mask_phone(phone)}: {text}", file=out)
        if aliyun:
            accepted = p.dysmsapi.accepted
            print(
                f"   (a local dysmsapi on {p.dysmsapi.endpoint} took them through Alibaba Cloud's SDK: each a "
                "registered template\n   filled with the plan's values under the signature, OutId = the SMS's "
                "ledger key (reminder + order id),\n   its BizId on the ledger; templates "
                f"{', '.join(sorted({a.template_code for a in accepted}))})",
                file=out,
            )
        for d in first["decisions"]:
            if d["action"] == "send":
                item = p.ledger_item(d["order_id"]) or {}
                for skip in item.get("skips", []):
                    print(f"     {d['order_id']}: not sent at send time: {skip.get('reason')}", file=out)

        if gateway == "end-user-messaging":
            _receipts_and_a_reply(p, out)
        elif aliyun:
            _aliyun_receipts_and_a_reply(p, out)

        print("\n3) The scheduler retries the same event (a duplicate invocation)", file=out)
        second = p.fire_window(window, at, started_at=at + timedelta(seconds=30))
        again = p.drain_queue()
        print(
            f"   plan answered from its idempotency record: {second['enqueued']} queued, same summary: {second == first}",
            file=out,
        )
        print(
            f"   queue delivered {again['messages']} message(s); {via} total still {len(p.sent_sms())}",
            file=out,
        )

        rerun_at = at + timedelta(minutes=15)
        print(
            f"\n4) An operator re-runs the window by hand at {rerun_at.astimezone(SHOP_ZONE):%H:%M}", file=out
        )
        third = p.fire_window(window, rerun_at)
        p.drain_queue()
        print(
            f"   plan: {third['enqueued']} queued; buyers reminded in step 2 are held back "
            f"(buyer_recently_contacted: {third['by_reason'].get('buyer_recently_contacted', 0)})",
            file=out,
        )
        newly = [d["order_id"] for d in third["decisions"] if d["action"] == "send"]
        remembered = [d["order_id"] for d in third["decisions"] if d["reason"] == "opted_out"]
        where = "by the 退订 reply in step 2c" if aliyun else f"at {via} in step 2"
        print(f"   opted out {where}, now skipped when planning: {', '.join(remembered) or 'none'}", file=out)
        for order_id, (phone, text) in zip(newly, p.sent_sms()[len(sent) :], strict=False):
            item = p.ledger_item(order_id) or {}
            print(
                f"   new: {order_id}, reminder {item.get('reminders_sent')} (its last reminder was over 24 h ago)"
                f"\n     {mask_phone(phone)}: {text}",
                file=out,
            )
        phones = Counter(phone for phone, _ in p.sent_sms())
        twice = [mask_phone(phone) for phone, n in phones.items() if n > 1]
        print(
            f"\n{via} received {sum(phones.values())} SMS in all; any number texted twice: {twice or 'none'}",
            file=out,
        )
        _outcomes_step(p, at, out, html)
        return 1 if twice else 0


def _receipts_and_a_reply(p: LocalPipeline, out: TextIO) -> None:
    """With End User Messaging: its delivery events come back (one carrier failure among them),
    and one buyer answers 退订."""
    texts = p.sms_voice.sent
    print("\n2b) End User Messaging's delivery events reach the receipts function (EventBridge)", file=out)
    for n, text in enumerate(texts):
        kind = "TEXT_CARRIER_UNREACHABLE" if n == len(texts) - 1 else "TEXT_DELIVERED"
        event = {
            "version": "0",
            "id": str(n),
            "detail-type": "Text Message Delivery Status Updated",
            "source": "aws.sms-voice",
            "detail": {
                "eventType": kind,
                "eventTimestamp": int(p.clock.now().timestamp() * 1000) + 5000,
                "messageId": text.message_id,
                "messageStatus": kind.removeprefix("TEXT_"),
                "context": text.params.get("Context", {}),
            },
        }
        result = p.delivery_event(event)["result"]
        print(f"     {mask_phone(text.phone)}: {kind.removeprefix('TEXT_').lower()} ({result})", file=out)
    if texts:
        replier = texts[0].phone
        answer = p.inbound_sms(
            {"originationNumber": replier, "destinationNumber": "+12125550101", "messageBody": "退订"}
        )
        print(
            f"   {mask_phone(replier)} replies 退订: {answer['results'][0]}; no later plan or queued SMS reaches it",
            file=out,
        )


# With Alibaba Cloud: what its receipts say about the demo's SMS, by position (the rest delivered):
# one SMS a carrier refused (a carrier's code, as Alibaba Cloud passes it on) and one that expired.
ALIYUN_FAILED = {-1: "UNDELIV", 1: "EXPIRED"}


def _aliyun_receipts_and_a_reply(p: LocalPipeline, out: TextIO) -> None:
    """With Alibaba Cloud: its SmsReport push (one carrier failure, one expiry) and, replayed,
    nothing changes; then one buyer's 退订 arrives by SmsUp push."""
    from nudge.domain.delivery import parse_aliyun_out_id
    from nudge_local.dysmsapi import e164_of, sms_report, sms_up

    accepted = list(p.dysmsapi.accepted)
    if not accepted:
        return
    now = p.clock.now()
    failed = {n % len(accepted): code for n, code in ALIYUN_FAILED.items()}
    reports = [
        sms_report(
            sms,
            success=n not in failed,
            code=failed.get(n, "DELIVERED"),
            sent_at=now,
            reported_at=now + timedelta(seconds=8 if n not in failed else 150),
        )
        for n, sms in enumerate(accepted)
    ]
    print(
        "\n2b) Alibaba Cloud pushes its delivery receipts (SmsReport, one JSON array) to the ingest"
        "\n    Function URL, POST /receipts/aliyun/report/<the stack's token>",
        file=out,
    )
    print(f"   answered {_pushed(p, 'report', reports)}; each SMS's ledger item now says:", file=out)
    keys = [parse_aliyun_out_id(sms.out_id) for sms in accepted]

    def statuses() -> list[tuple[str | None, str | None]]:
        result = []
        for key in keys:
            item = (p.ledger_item(key[0]) or {}) if key else {}
            n = key[1] if key else 0
            result.append((item.get(f"delivery_{n}"), item.get(f"delivery_code_{n}")))
        return result

    before = statuses()
    for sms, key, (status, code) in zip(accepted, keys, before, strict=True):
        order = f"{key[0]} reminder {key[1]}" if key else "(no ledger key)"
        detail = f"{status}, {code}" if status != "delivered" and code else str(status)
        print(f"     {order} {mask_phone(e164_of(sms.phone))}: {detail}", file=out)
    replayed = _pushed(p, "report", reports)
    print(
        f"   the same push again (Alibaba Cloud retries until it reads code 0): {replayed}, "
        f"nothing changed: {statuses() == before}",
        file=out,
    )
    replier = accepted[0].phone
    print(
        "\n2c) A buyer answers 退订; Alibaba Cloud pushes the reply (SmsUp) to POST /receipts/aliyun/up/<token>",
        file=out,
    )
    answer = _pushed(p, "up", [sms_up(replier, "退订", at=now + timedelta(minutes=3))])
    print(
        f"   {mask_phone(e164_of(replier))} replies 退订: answered {answer} (the same for any number);"
        "\n   the number is on the do-not-contact list: no later plan or queued SMS reaches it",
        file=out,
    )


def _pushed(p: LocalPipeline, kind: str, items: list[dict]) -> str:
    """One Alibaba Cloud push through the ingest function: its answer as Alibaba Cloud reads it."""
    answer = p.aliyun_push(kind, items)
    return f"{answer['statusCode']} {json.dumps(json.loads(answer['body']), ensure_ascii=False)}"


# (order, minutes after its last SMS) of the demo's buyers who pay; a negative delay pays before
# the SMS went out (not recovered). Realistic: most reminded payments come within the hour.
DEMO_PAYMENTS = (("o-1001", 12), ("o-1024", 47), ("o-1002", 135), ("o-1017", -20))
DEMO_PRICE = "0.045"  # CNY per SMS segment, about what a China SMS costs


def _outcomes_step(p: LocalPipeline, at: datetime, out: TextIO, html: Path | None) -> None:
    """5) Some buyers pay; the orders table's stream is played to the outcomes function; report."""
    import boto3

    from nudge.bootstrap import build_calls_app, build_report_app, session_clients
    from nudge.domain.config import load_config
    from nudge_cli.report import print_report, read_report, write_html

    print(
        "\n5) Buyers pay (the shop's orders table is updated); its stream feeds the outcomes function",
        file=out,
    )
    changes = []
    for order_id, minutes in DEMO_PAYMENTS:
        item = p.ledger_item(order_id) or {}
        last = item.get(f"sent_at_{item.get('reminders_sent', 0)}") or item.get("last_sent_at")
        base = datetime.fromisoformat(last) if last else at
        paid_at = base + timedelta(minutes=minutes)
        changes.append(p.pay_order(order_id, paid_at))
        when = "before its SMS" if minutes < 0 else f"{minutes} min after its last SMS"
        print(f"   {order_id} paid at {paid_at.astimezone(SHOP_ZONE):%H:%M} ({when})", file=out)
    changes.append(p.pay_order("o-1018", at + timedelta(hours=1)))  # the large order: a call, never texted
    print("   o-1018 paid (a large order on the call list: never texted)", file=out)
    stats = p.play_stream([*changes, changes[0]])  # the stream delivers one record twice
    print(
        f"   {stats['records']} stream records (one delivered twice) in {stats['invocations']} invocation(s)",
        file=out,
    )
    config = load_config({**DEMO_CONFIG, "outcomes": {"price_per_segment": DEMO_PRICE}})
    day = at.astimezone(SHOP_ZONE).date()
    tables = {"ledger_table": p.resources.ledger_table, "orders_table": p.resources.orders_table}
    clients = session_clients(boto3.session.Session())
    app = build_report_app(**tables, clients=clients)
    report, listed = read_report(app, config, day, day, True)
    print(f"\n6) nudge report --days 1 --orders (price per segment {DEMO_PRICE} CNY)", file=out)
    print_report(report, config, "CNY", out, listed)
    if html is not None:
        write_html(html, report, build_calls_app(**tables, clients=clients), config, "CNY")
        print(
            f"\n7) nudge report --html {html}: one page for the shop (charts, the A/B test, open calls);"
            " open it in any browser",
            file=out,
        )
