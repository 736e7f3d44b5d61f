"""The staff topic (SNS) behind ``nudge.services.calls.StaffNotifier``, and the call log kept on
the orders' ledger items (``nudge calls``, ``nudge calls done``).

Ledger attributes (on the order's item, beside ``call_requested_at``)::

    call_count     N   calls made
    call_done_at   S   UTC ISO of the last one
    call_by        S   who made it
    call_log       L   [{at, by, note}] every call (seed 002: time, staff, count, feedback)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from nudge.adapters.dynamo_io import batch_get
from nudge.domain.instants import utc_iso

__all__ = ["DynamoCallLog", "NotOnCallListError", "SnsStaffNotifier"]


class SnsStaffNotifier:
    def __init__(self, client: Any, topic_arn: str):
        self._client = client
        self._topic = topic_arn

    def publish(self, subject: str, body: str) -> str:
        return self._client.publish(TopicArn=self._topic, Subject=subject, Message=body)["MessageId"]


class NotOnCallListError(LookupError):
    """`nudge calls done` for an order that was never put on the call list."""


class DynamoCallLog:
    def __init__(self, client: Any, table_name: str, ttl_days: int = 35):
        self._client = client
        self._table = table_name
        self._ttl = timedelta(days=ttl_days)

    def calls(self, order_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The call fields of these orders' ledger items, for those on the call list."""
        items = batch_get(
            self._client,
            self._table,
            order_ids,
            projection="order_id, call_requested_at, call_count, call_done_at, call_by, call_log",
        )
        return {i["order_id"]: i for i in items if "call_requested_at" in i}

    def record_call(self, order_id: str, at: datetime, by: str, note: str) -> int:
        """Log one call; returns how many calls the order has had. ``call_requested_at`` stays,
        so the planner keeps skipping the order as `call_requested`: it is never requested again."""
        entry = {"M": {"at": {"S": utc_iso(at)}, "by": {"S": by}, "note": {"S": note}}}
        try:
            resp = self._client.update_item(
                TableName=self._table,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="SET call_done_at = :at, call_by = :by,"
                " call_log = list_append(if_not_exists(call_log, :empty), :entry), expires_at = :exp"
                " ADD call_count :one",
                ConditionExpression="attribute_exists(call_requested_at)",
                ExpressionAttributeValues={
                    ":at": {"S": utc_iso(at)},
                    ":by": {"S": by},
                    ":empty": {"L": []},
                    ":entry": {"L": [entry]},
                    ":one": {"N": "1"},
                    ":exp": {"N": str(int((at + self._ttl).timestamp()))},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise NotOnCallListError(order_id) from None
            raise
        return int(resp["Attributes"]["call_count"]["N"])
