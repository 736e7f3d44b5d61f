"""Outcomes in the reminder ledger (its item layout: ``nudge.adapters.ledger``): the outcomes function's reads and its write-once outcome, and
the report's reads (Query by day, never Scan).

Each order's outcome is a map attribute ``outcome`` on the order's own ledger item, written with
``attribute_not_exists(outcome)``: one outcome per order, however often its payment is delivered
or repeated. Orders the ledger never saw get no item at all. The report finds its orders through
two sparse indexes: ``sent_day-last_sent_at`` (texted orders, by the day of their last SMS) and
``held_out_day-held_out_at`` (held-out orders, by the day they were first held out); both project
the whole item, so the outcome comes with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from nudge.adapters.dynamo_io import batch_get, item_from_ddb
from nudge.adapters.ledger import outcome_from_map, outcome_to_map, touches_from_item
from nudge.domain.outcomes import HoldoutMark, Outcome, SmsSent
from nudge.services.ports import OrderTouches

__all__ = [
    "HOLDOUT_INDEX",
    "DynamoOutcomeStore",
    "ReportRecords",
]

SENT_DAY_INDEX = "sent_day-last_sent_at"
HOLDOUT_INDEX = "held_out_day-held_out_at"
MAX_ATTEMPTS = 10  # reminders per order the outcomes read back (rules.max_reminders_per_order is 2)
_TOUCH_FIELDS = (
    "order_id, phone, reminders_sent, last_sent_at, held_out_at, held_out_last_at, held_out_window"
)


@dataclass(slots=True)
class ReportRecords:
    """What the report needs, read from the ledger."""

    sms: list[SmsSent] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    held_out: list[HoldoutMark] = field(default_factory=list)
    phones: dict[str, str] = field(default_factory=dict)
    items: int = 0  # ledger items read
    queries: int = 0  # Query pages requested

    def add_item(self, item: Mapping[str, Any]) -> None:
        self.items += 1
        oid = item["order_id"]
        touches = touches_from_item(item)
        self.sms.extend(touches.sends)
        if touches.holdout is not None:
            self.held_out.append(touches.holdout)
        if touches.phone:
            self.phones[oid] = touches.phone
        if isinstance(item.get("outcome"), Mapping):
            self.outcomes.append(outcome_from_map(oid, item["outcome"]))


def report_days(first_day: date, last_day: date, max_age_hours: int) -> tuple[list[date], list[date]]:
    """The index days to read: SMS are indexed by the day of the order's *last* SMS, which can
    come up to the order's maximum age after its first, so the send index is read that much past
    the period; held-out orders are indexed by the day they were first held out."""
    extra = math.ceil(max_age_hours / 24) + 1
    span = (last_day - first_day).days
    holdout_days = [first_day + timedelta(days=n) for n in range(span + 1)]
    send_days = [first_day + timedelta(days=n) for n in range(span + 1 + extra)]
    return send_days, holdout_days


class DynamoOutcomeStore:
    """The outcomes' view of the ledger table (same table as ``DynamoReminderLedger``)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        sent_day_index: str = SENT_DAY_INDEX,
        holdout_index: str = HOLDOUT_INDEX,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._table = table_name
        self._sent_index = sent_day_index
        self._holdout_index = holdout_index
        self._sleep = sleep

    def touches(self, order_ids: Sequence[str]) -> dict[str, OrderTouches]:
        if not order_ids:
            return {}
        # The per-attempt fields of the first MAX_ATTEMPTS reminders (the rules default to 2).
        fields = [_TOUCH_FIELDS, "#o"] + [
            f"sent_at_{a}, window_{a}, segments_{a}, variant_{a}" for a in range(1, MAX_ATTEMPTS + 1)
        ]
        items = batch_get(
            self._client,
            self._table,
            order_ids,
            projection=", ".join(fields),
            names={"#o": "outcome"},
            consistent=True,  # a payment right after the SMS must see the SMS recorded
            sleep=self._sleep,
        )
        return {item["order_id"]: touches_from_item(item) for item in items}

    def record_outcome(self, outcome: Outcome, at: datetime) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": {"S": outcome.order_id}},
                UpdateExpression="SET #o = :o",
                ConditionExpression="attribute_exists(order_id) AND attribute_not_exists(#o)",
                ExpressionAttributeNames={"#o": "outcome"},
                ExpressionAttributeValues={":o": outcome_to_map(outcome, at)},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # -- the report ---------------------------------------------------------------------------

    def report_records(self, first_day: date, last_day: date, *, max_age_hours: int = 72) -> ReportRecords:
        send_days, holdout_days = report_days(first_day, last_day, max_age_hours)
        out = ReportRecords()
        seen: set[str] = set()
        for index, key, days in (
            (self._sent_index, "sent_day", send_days),
            (self._holdout_index, "held_out_day", holdout_days),
        ):
            for day in days:
                for raw in self._query(index, key, day, out):
                    item = item_from_ddb(raw)
                    if item["order_id"] not in seen:  # texted after being held out: read once
                        seen.add(item["order_id"])
                        out.add_item(item)
        return out

    def _query(self, index: str, key: str, day: date, out: ReportRecords) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#k = :d",
            "ExpressionAttributeNames": {"#k": key},
            "ExpressionAttributeValues": {":d": {"S": day.isoformat()}},
        }
        while True:
            out.queries += 1
            resp = self._client.query(**kwargs)
            yield from resp.get("Items", [])
            last = resp.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last
