"""DynamoDB adapters behind ``nudge.services.ports``: the orders table and the reminder ledger.

Every adapter takes ready-made boto3 clients and resource names (no ``os.environ`` here, no clock:
every time is passed in). The services only see the ports; ``tests/fakes.py`` holds in-memory twins
with the same semantics, kept honest by the shared contract tests in ``tests/test_dal.py``.

Ledger table (one item per order, keyed ``order_id``; one quota item per shop-local day; one
item listing the numbers SNS reported opted out)::

    order_id          S   the order, "#quota#YYYY-MM-DD" for the day's SMS counter, or "#opted-out"
    buyer_id, phone   S   who the last claimed SMS went to (the per-buyer 24 h rule needs them)
    claimed_attempt   N   the highest attempt taken by a sender (the dedupe guard)
    claim_token       S   which sender holds it
    claimed_at        S   UTC ISO
    reminders_sent    N   the attempt of the last SMS actually published
    last_sent_at      S   UTC ISO of that SMS      } the "sent_day-last_sent_at" index:
    sent_day          S   shop-local YYYY-MM-DD    } sends by day, sparse (unsent orders are absent)
    message_id_<n>    S   SNS message id of attempt n
    sent_at_<n>, window_<n>, segments_<n>   S, S, N   attempt n's SMS, for the outcomes report
    held_out_at       S   first time the order was held out (holdout group), UTC ISO } the
    held_out_day      S   shop-local YYYY-MM-DD of that                              } holdout index
    held_out_last_at, held_out_window   S   the latest hold-out decision and its window
    outcome           M   the order's outcome once paid (nudge.adapters.outcomes), written once
    call_requested_at S   when a large order went to the staff call list
    skips             L   [{attempt, reason, at}] planned SMS that were not sent
    sms_claimed       N   quota item only: SMS claimed on that day (net of releases)
    phones            SS  "#opted-out" item only: numbers SNS reported opted out
    expires_at        N   TTL, epoch seconds
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from nudge.adapters.common import DalError, backoff
from nudge.domain.models import InvalidOrder, Order, ReminderState, SentReminder
from nudge.services.ports import ClaimOutcome, SendRequest

log = logging.getLogger(__name__)

__all__ = [
    "OPTED_OUT_KEY",
    "OPTED_OUT_SKIP",
    "PLANNING_STATUSES",
    "ClaimNotHeldError",
    "DalError",
    "DynamoOrderRepository",
    "DynamoReminderLedger",
    "item_from_ddb",
    "planning_lower_bound",
    "quota_key",
    "reminder_state",
    "utc_iso",
]

# Orders of these statuses are read for planning: unpaid ones are reminded, paid ones feed the
# "buyer paid another order that same day" rule. Closed orders are never needed.
PLANNING_STATUSES = ("unpaid", "paid")

# UTC offsets in use range from -12:00 to +14:00. ``created_at`` is stored as the shop wrote it
# (wall-clock time plus offset), and the index sorts those strings, not instants. The wall clock of
# an order created at instant t is t + offset >= t - 12 h, so every order created at or after
# ``since`` has a wall-clock string >= (since in UTC - 12 h). Only negative offsets push a string
# below its instant; +14:00 pushes it above, which can only let in a few older orders (the port
# allows that: the rules judge each order's age).
MAX_NEGATIVE_OFFSET = timedelta(hours=12)

BATCH_GET_LIMIT = 100  # DynamoDB BatchGetItem: at most 100 keys per request
QUOTA_PREFIX = "#quota#"
OPTED_OUT_KEY = "#opted-out"  # the ledger item listing numbers SNS reported opted out
OPTED_OUT_SKIP = "opted_out"


class ClaimNotHeldError(DalError):
    """``record_sent`` for an (order, attempt) this token does not hold (wrong token, released, stolen)."""


# ---------------------------------------------------------------------------------------------
# helpers


def planning_lower_bound(since: datetime) -> str:
    """The ``created_at >= :lower`` string bound that misses no order created at or after ``since``.

    ``since`` minus the largest negative offset, in UTC, floored to the minute: any ISO-8601
    string whose wall clock is at or after that instant starts with a 16-character prefix
    ``YYYY-MM-DDTHH:MM`` that is >= the bound (and a longer string with an equal prefix sorts after
    it). Assumes the ``T`` separator of ISO 8601 (a space-separated time on the bound's date would
    sort before it).
    """
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return (since.astimezone(UTC) - MAX_NEGATIVE_OFFSET).strftime("%Y-%m-%dT%H:%M")


def utc_iso(at: datetime) -> str:
    """Fixed-width UTC ISO-8601 (millisecond precision) so that strings sort like instants."""
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def quota_key(day: date) -> str:
    return f"{QUOTA_PREFIX}{day.isoformat()}"


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))  # BatchGetItem refuses duplicate keys


_DESERIALIZER = TypeDeserializer()


def _attr(value: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value -> Python (numbers as Decimal, like boto3's resource API).

    A hand-written fast path for what order records hold (strings, then numbers): about 4x faster
    than ``TypeDeserializer`` on 100k orders. Other types fall back to it.
    """
    s = value.get("S")
    if s is not None:
        return s
    n = value.get("N")
    if n is not None:
        return Decimal(n)
    for kind, raw in value.items():
        if kind == "BOOL":
            return raw
        if kind == "NULL":
            return None
        if kind == "L":
            return [_attr(v) for v in raw]
        if kind == "M":
            return item_from_ddb(raw)
        if kind == "SS":
            return set(raw)
        break
    return _DESERIALIZER.deserialize(value)


def item_from_ddb(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A low-level client item -> plain dict (what the resource API would give, only faster)."""
    out = {}
    for k, v in item.items():
        s = v.get("S")
        out[k] = s if s is not None else _attr(v)
    return out


def _batch_get(
    client: Any,
    table_name: str,
    ids: Sequence[str],
    *,
    projection: str,
    names: dict[str, str] | None = None,
    consistent: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    max_retries: int = 8,
) -> Iterator[dict[str, Any]]:
    """BatchGetItem in chunks of 100, retrying UnprocessedKeys with bounded backoff."""
    for chunk in _chunks(_unique(ids), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            "Keys": [{"order_id": {"S": oid}} for oid in chunk],
            "ProjectionExpression": projection,
            "ConsistentRead": consistent,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        pending: dict[str, Any] = {table_name: request}
        for attempt in range(max_retries + 1):
            resp = client.batch_get_item(RequestItems=pending)
            for item in resp.get("Responses", {}).get(table_name, []):
                yield item_from_ddb(item)
            pending = resp.get("UnprocessedKeys") or {}
            if not pending:
                break
            if attempt == max_retries:
                left = len(pending[table_name]["Keys"])
                raise DalError(f"BatchGetItem on {table_name}: {left} keys still unprocessed")
            sleep(backoff(attempt))


def _query_all(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """All pages of one Query, raw items."""
    while True:
        resp = client.query(**kwargs)
        yield from resp.get("Items", [])
        last = resp.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last


# ---------------------------------------------------------------------------------------------
# orders


class DynamoOrderRepository:
    """Orders the shop writes, read through the ``status-created_at`` index (Query, never Scan)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        status_index: str = "status-created_at",
        *,
        page_size: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._table = table_name
        self._index = status_index
        self._page_size = page_size  # Limit per Query page; None = DynamoDB's 1 MB pages
        self._sleep = sleep

    def orders_for_planning(self, since: datetime) -> Iterator[Order | InvalidOrder]:
        from nudge.domain.orders import parse_order

        lower = planning_lower_bound(since)
        for status in PLANNING_STATUSES:
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": self._index,
                "KeyConditionExpression": "#s = :s AND created_at >= :lower",
                "ExpressionAttributeNames": {"#s": "status"},  # `status` is a reserved word
                "ExpressionAttributeValues": {":s": {"S": status}, ":lower": {"S": lower}},
            }
            if self._page_size:
                kwargs["Limit"] = self._page_size
            for item in _query_all(self._client, **kwargs):
                yield parse_order(item_from_ddb(item))

    def statuses(self, order_ids: Sequence[str]) -> dict[str, str]:
        # Strongly consistent: this is the send-time "has it been paid meanwhile?" check.
        items = _batch_get(
            self._client,
            self._table,
            order_ids,
            projection="order_id, #s",
            names={"#s": "status"},
            consistent=True,
            sleep=self._sleep,
        )
        return {i["order_id"]: i["status"] for i in items if isinstance(i.get("status"), str)}


# ---------------------------------------------------------------------------------------------
# reminder ledger

_CLAIM_ORDER_CONDITION = (
    "(attribute_not_exists(claimed_attempt) OR claimed_attempt < :a)"
    " AND (attribute_not_exists(reminders_sent) OR reminders_sent < :a)"
)
_CLAIM_QUOTA_CONDITION = "attribute_not_exists(sms_claimed) OR sms_claimed < :cap"
_HELD = "claim_token = :t AND claimed_attempt = :a"
# A claim whose SMS was recorded as sent can never be released: that would reopen the attempt.
_RELEASE_CONDITION = f"{_HELD} AND (attribute_not_exists(reminders_sent) OR reminders_sent < :a)"
_IDEMPOTENCY_NS = uuid.UUID("7d0c3f59-8d8e-4c59-9a53-3c6e5b1b7a11")


def _request_token(*parts: object) -> str:
    """A ClientRequestToken (<= 36 chars) for one logical TransactWriteItems call.

    botocore retries a transaction whose response was lost; with the same token DynamoDB answers
    the retry with the first outcome instead of failing our own condition (a claim we hold would
    otherwise come back ALREADY_CLAIMED and its SMS would never go out).
    """
    return str(uuid.uuid5(_IDEMPOTENCY_NS, "|".join(str(p) for p in parts)))


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def reminder_state(item: Mapping[str, Any]) -> ReminderState:
    """What the planner needs from one ledger item (shared with the in-memory fake)."""
    return ReminderState(
        order_id=item["order_id"],
        reminders_sent=int(item.get("reminders_sent", 0)),
        call_requested="call_requested_at" in item,
        held_out="held_out_at" in item,
    )


class DynamoReminderLedger:
    """How many reminders each order had, who holds each (order, attempt), and the daily SMS cap."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        day_index: str = "sent_day-last_sent_at",
        ttl_days: int = 30,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_conflict_retries: int = 6,
    ):
        if ttl_days < 1:
            raise ValueError("ttl_days must be >= 1")
        self._client = client
        self._table = table_name
        self._index = day_index
        self._ttl = timedelta(days=ttl_days)
        self._sleep = sleep
        self._max_conflict_retries = max_conflict_retries

    # -- reads --------------------------------------------------------------------------------

    def states(self, order_ids: Sequence[str]) -> dict[str, ReminderState]:
        items = _batch_get(
            self._client,
            self._table,
            order_ids,
            projection="order_id, reminders_sent, call_requested_at, held_out_at",
            sleep=self._sleep,
        )
        out: dict[str, ReminderState] = {}
        for item in items:
            state = reminder_state(item)
            if state.reminders_sent or state.call_requested or state.held_out:
                out[item["order_id"]] = state  # claims, releases and skips alone are not state
        return out

    def recent_sends(self, since: datetime, days: Iterable[date]) -> list[SentReminder]:
        lower = utc_iso(since)
        out: list[SentReminder] = []
        for day in sorted(set(days)):
            for raw in _query_all(
                self._client,
                TableName=self._table,
                IndexName=self._index,
                KeyConditionExpression="sent_day = :d AND last_sent_at >= :since",
                ProjectionExpression="order_id, buyer_id, phone, last_sent_at, reminders_sent",
                ExpressionAttributeValues={":d": _s(day.isoformat()), ":since": _s(lower)},
            ):
                item = item_from_ddb(raw)
                out.append(
                    SentReminder(
                        order_id=item["order_id"],
                        buyer_id=item.get("buyer_id", ""),
                        phone=item.get("phone", ""),
                        sent_at=datetime.fromisoformat(item["last_sent_at"]),
                        attempt=int(item.get("reminders_sent", 0)),
                    )
                )
        return out

    def sent_on(self, day: date) -> int:
        resp = self._client.get_item(
            TableName=self._table,
            Key={"order_id": _s(quota_key(day))},
            ProjectionExpression="sms_claimed",
            ConsistentRead=True,
        )
        raw = resp.get("Item", {}).get("sms_claimed")
        return max(0, int(raw["N"])) if raw else 0

    # -- writes -------------------------------------------------------------------------------

    def request_calls(self, order_ids: Sequence[str], at: datetime) -> None:
        for oid in _unique(order_ids):
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": _s(oid)},
                UpdateExpression="SET call_requested_at = if_not_exists(call_requested_at, :at),"
                " expires_at = :exp",
                ExpressionAttributeValues={":at": _s(utc_iso(at)), ":exp": _n(_epoch(at + self._ttl))},
            )

    def mark_held_out(self, order_ids: Sequence[str], at: datetime, window: str, day: date) -> None:
        for oid in _unique(order_ids):
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": _s(oid)},
                UpdateExpression="SET held_out_at = if_not_exists(held_out_at, :at),"
                " held_out_day = if_not_exists(held_out_day, :d), held_out_last_at = :at,"
                " held_out_window = :w, expires_at = :exp",
                ExpressionAttributeValues={
                    ":at": _s(utc_iso(at)),
                    ":d": _s(day.isoformat()),
                    ":w": _s(window),
                    ":exp": _n(_epoch(at + self._ttl)),
                },
            )

    def claim(self, request: SendRequest, token: str, daily_cap: int, now: datetime) -> ClaimOutcome:
        if daily_cap <= 0:  # `attribute_not_exists(sms_claimed)` would let the first one through
            return ClaimOutcome.DAILY_LIMIT
        expires = _n(_epoch(now + self._ttl))
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"order_id": _s(request.order_id)},
                    "UpdateExpression": "SET claimed_attempt = :a, claim_token = :t, claimed_at = :now,"
                    " buyer_id = :b, phone = :p, expires_at = :exp",
                    "ConditionExpression": _CLAIM_ORDER_CONDITION,
                    "ExpressionAttributeValues": {
                        ":a": _n(request.attempt),
                        ":t": _s(token),
                        ":now": _s(utc_iso(now)),
                        ":b": _s(request.buyer_id),
                        ":p": _s(request.phone),
                        ":exp": expires,
                    },
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"order_id": _s(quota_key(request.day))},
                    "UpdateExpression": "ADD sms_claimed :one SET expires_at = :exp",
                    "ConditionExpression": _CLAIM_QUOTA_CONDITION,
                    "ExpressionAttributeValues": {":one": _n(1), ":cap": _n(daily_cap), ":exp": expires},
                }
            },
        ]
        reasons = self._transact(items, _request_token("claim", request.dedupe_key, token, utc_iso(now)))
        if reasons is None:
            return ClaimOutcome.CLAIMED
        order_reason, quota_reason = reasons
        # Both may fail at once; a duplicate delivery is reported as such, not as a cap hit.
        if order_reason == "ConditionalCheckFailed":
            return ClaimOutcome.ALREADY_CLAIMED
        if quota_reason == "ConditionalCheckFailed":
            return ClaimOutcome.DAILY_LIMIT
        raise DalError(f"claim {request.dedupe_key}: transaction cancelled: {reasons}")

    def release(self, request: SendRequest, token: str) -> None:
        a = request.attempt
        restore = (
            "SET claimed_attempt = :prev REMOVE claim_token"
            if a > 1
            else "REMOVE claimed_attempt, claim_token"
        )
        values = {":t": _s(token), ":a": _n(a)}
        if a > 1:
            values[":prev"] = _n(a - 1)
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"order_id": _s(request.order_id)},
                    "UpdateExpression": restore,
                    "ConditionExpression": _RELEASE_CONDITION,
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"order_id": _s(quota_key(request.day))},
                    "UpdateExpression": "ADD sms_claimed :minus",
                    "ExpressionAttributeValues": {":minus": _n(-1)},
                }
            },
        ]
        reasons = self._transact(items, _request_token("release", request.dedupe_key, token))
        if reasons is not None:
            if reasons[0] == "ConditionalCheckFailed":  # not held by this token (or already sent)
                log.info("release %s: nothing to release", request.dedupe_key)
                return
            raise DalError(f"release {request.dedupe_key}: transaction cancelled: {reasons}")

    def record_sent(self, request: SendRequest, token: str, message_id: str, sent_at: datetime) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": _s(request.order_id)},
                UpdateExpression="SET reminders_sent = :a, last_sent_at = :at, sent_day = :d, #mid = :m,"
                " expires_at = :exp, #sat = :at, #win = :w, #seg = :g",
                ConditionExpression=_HELD,
                ExpressionAttributeNames={
                    "#mid": f"message_id_{request.attempt}",
                    # per attempt, for the outcomes report (the fields above keep only the last)
                    "#sat": f"sent_at_{request.attempt}",
                    "#win": f"window_{request.attempt}",
                    "#seg": f"segments_{request.attempt}",
                },
                ExpressionAttributeValues={
                    ":w": _s(request.window),
                    ":g": _n(request.segments),
                    ":a": _n(request.attempt),
                    ":t": _s(token),
                    ":at": _s(utc_iso(sent_at)),
                    ":d": _s(request.day.isoformat()),
                    ":m": _s(message_id),
                    ":exp": _n(_epoch(sent_at + self._ttl)),
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ClaimNotHeldError(
                    f"record_sent {request.dedupe_key}: claim not held by this token (message {message_id})"
                ) from exc
            raise

    def record_skip(self, request: SendRequest, reason: str, at: datetime) -> None:
        entry = {"M": {"attempt": _n(request.attempt), "reason": _s(reason), "at": _s(utc_iso(at))}}
        self._client.update_item(
            TableName=self._table,
            Key={"order_id": _s(request.order_id)},
            UpdateExpression="SET skips = list_append(if_not_exists(skips, :empty), :entry),"
            " expires_at = :exp",
            ExpressionAttributeValues={
                ":empty": {"L": []},
                ":entry": {"L": [entry]},
                ":exp": _n(_epoch(at + self._ttl)),
            },
        )

    def record_opt_out(self, request: SendRequest, at: datetime) -> None:
        self.record_skip(request, OPTED_OUT_SKIP, at)
        # One small item holds every opted-out number (a string set, <= ~20k numbers in 400 KB),
        # so a plan learns them all in one read; its TTL is refreshed by each new opt-out.
        self._client.update_item(
            TableName=self._table,
            Key={"order_id": _s(OPTED_OUT_KEY)},
            UpdateExpression="ADD phones :p SET expires_at = :exp",
            ExpressionAttributeValues={":p": {"SS": [request.phone]}, ":exp": _n(_epoch(at + self._ttl))},
        )

    def opted_out_phones(self) -> set[str]:
        item = self._client.get_item(
            TableName=self._table, Key={"order_id": _s(OPTED_OUT_KEY)}, ConsistentRead=True
        ).get("Item")
        return set(item["phones"]["SS"]) if item and "phones" in item else set()

    def _transact(self, items: list[dict[str, Any]], request_token: str) -> list[str] | None:
        """Run one TransactWriteItems; None on success, else the cancellation code of each item.

        ``TransactionConflict`` (another transaction on the same item, e.g. the day's quota item
        under concurrent senders) is retried with bounded backoff; it decides nothing.
        """
        for attempt in range(self._max_conflict_retries + 1):
            try:
                self._client.transact_write_items(TransactItems=items, ClientRequestToken=request_token)
                return None
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                raw = exc.response.get("CancellationReasons") or []
                reasons = [str(r.get("Code") or "None") for r in raw]
                if len(reasons) != len(items):
                    raise DalError(f"TransactWriteItems cancelled without usable reasons: {raw}") from exc
                if "ConditionalCheckFailed" in reasons or "TransactionConflict" not in reasons:
                    return reasons
                if attempt == self._max_conflict_retries:
                    raise DalError(
                        f"TransactWriteItems: still conflicting after {attempt + 1} tries"
                    ) from exc
                self._sleep(backoff(attempt))
                # A new logical attempt: the cancelled one must not be answered from the token cache.
                request_token = _request_token(request_token, attempt)
        raise AssertionError("unreachable")
