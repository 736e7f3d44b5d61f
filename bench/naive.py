"""The obvious design, for comparison: the same rules, none of the batching.

One window, the way a first version would do it:

1. ``Scan`` the whole orders table (paginated);
2. one ``GetItem`` on the ledger per unpaid order (and one for the day's SMS count);
3. the same pure rules (``nudge.domain.rules.plan_reminders``), so the decisions are comparable;
4. for each SMS: ``sns.publish`` in a loop, then one ``PutItem`` to record it; one
   ``UpdateItem`` per large order put on the call list.

No SQS hand-off, no claim (so no protection against a double send), no status re-check and no
opt-out check before publishing. Its AWS calls are counted by the same ``CallCounter``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nudge.adapters.dynamo_io import item_from_ddb
from nudge.adapters.ledger import quota_key
from nudge.domain.config import Config
from nudge.domain.instants import utc_iso
from nudge.domain.models import Action, InvalidOrder, Order, ReminderState, SentReminder
from nudge.domain.orders import parse_order
from nudge.domain.restdays import RestDayCalendar
from nudge.domain.rules import plan_reminders


@dataclass
class NaiveResult:
    orders_read: int = 0
    candidates: int = 0
    sms_sent: int = 0
    segments: int = 0
    calls_requested: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    read_cpu_s: float = 0.0  # Scan + GetItem loop, CPU of this process (moto included)
    plan_cpu_s: float = 0.0  # the rules only
    send_cpu_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "orders_read": self.orders_read,
            "candidates": self.candidates,
            "sms_sent": self.sms_sent,
            "segments": self.segments,
            "calls_requested": self.calls_requested,
            "by_reason": dict(sorted(self.by_reason.items())),
            "read_cpu_s": round(self.read_cpu_s, 3),
            "plan_cpu_s": round(self.plan_cpu_s, 3),
            "send_cpu_s": round(self.send_cpu_s, 3),
        }


def run_naive(
    *,
    dynamodb: Any,
    sns: Any,
    orders_table: str,
    ledger_table: str,
    config: Config,
    now: datetime,
) -> NaiveResult:
    """One window the naive way, with the given boto3 clients (hooked by the caller's counter)."""
    result = NaiveResult()
    calendar = RestDayCalendar(config.calendar)
    max_age = timedelta(hours=config.rules.max_age_hours)
    interval = timedelta(hours=config.rules.buyer_min_interval_hours)

    # 1. everything in the orders table
    c0 = time.process_time()
    records: list[Order | InvalidOrder] = []
    kwargs: dict[str, Any] = {"TableName": orders_table}
    while True:
        page = dynamodb.scan(**kwargs)
        records.extend(parse_order(item_from_ddb(item)) for item in page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    result.orders_read = len(records)

    # 2. the ledger, one order at a time
    ledger: dict[str, ReminderState] = {}
    recent: list[SentReminder] = []
    for order in records:
        if not isinstance(order, Order) or order.status != "unpaid":
            continue
        if now - order.created_at < max_age and (order.closes_at is None or order.closes_at > now):
            result.candidates += 1
        item = dynamodb.get_item(TableName=ledger_table, Key={"order_id": {"S": order.order_id}}).get("Item")
        if not item:
            continue
        state = item_from_ddb(item)
        sent = int(state.get("reminders_sent", 0))
        ledger[order.order_id] = ReminderState(order.order_id, sent, "call_requested_at" in state)
        if sent and "last_sent_at" in state:
            sent_at = datetime.fromisoformat(state["last_sent_at"])
            if now - sent_at < interval:
                recent.append(SentReminder(order.order_id, order.buyer_id, order.phone, sent_at, sent))
    today = now.astimezone(config.shop.zone).date()
    quota = dynamodb.get_item(TableName=ledger_table, Key={"order_id": {"S": quota_key(today)}}).get("Item")
    sent_today = int(quota["sms_claimed"]["N"]) if quota and "sms_claimed" in quota else 0
    result.read_cpu_s = time.process_time() - c0

    # 3. the same rules
    c0 = time.process_time()
    plan = plan_reminders(
        records,
        now=now,
        config=config,
        calendar=calendar,
        ledger=ledger,
        recent=recent,
        sent_today=sent_today,
    )
    result.plan_cpu_s = time.process_time() - c0
    result.by_reason = plan.count_by_reason()

    # 4. publish in a loop, record each
    c0 = time.process_time()
    for d in plan.decisions:
        if d.action is Action.CALL:
            dynamodb.update_item(
                TableName=ledger_table,
                Key={"order_id": {"S": d.order_id}},
                UpdateExpression="SET call_requested_at = :at",
                ExpressionAttributeValues={":at": {"S": utc_iso(now)}},
            )
            result.calls_requested += 1
        elif d.action is Action.SEND:
            message_id = sns.publish(PhoneNumber=d.phone_e164, Message=d.message)["MessageId"]
            dynamodb.put_item(
                TableName=ledger_table,
                Item={
                    "order_id": {"S": d.order_id},
                    "buyer_id": {"S": d.buyer_id or ""},
                    "phone": {"S": d.phone_e164 or ""},
                    "reminders_sent": {"N": str(d.attempt)},
                    "last_sent_at": {"S": utc_iso(now)},
                    "sent_day": {"S": today.isoformat()},
                    f"message_id_{d.attempt}": {"S": message_id},
                },
            )
            result.sms_sent += 1
            result.segments += d.segments or 0
    result.send_cpu_s = time.process_time() - c0
    return result
