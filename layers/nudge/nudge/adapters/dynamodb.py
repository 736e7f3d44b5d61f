"""DynamoDB adapters behind ``nudge.services.ports``: the orders table and the reminder ledger.

Every adapter takes ready-made boto3 clients and resource names (no ``os.environ`` here, no clock:
every time is passed in). The services only see the ports; ``tests/fakes.py`` holds in-memory twins
with the same semantics, kept honest by the shared contract tests in ``tests/test_dal.py``.

Ledger table, keyed ``order_id``: one item per order, one quota item per shop-local day, one item
listing the numbers SNS reported opted out, and two contact items per buyer (by phone, by buyer id)::

    order_id          S   the order; "#quota#YYYY-MM-DD"; "#opted-out"; "#contact#phone#<e164>";
                          "#contact#buyer#<buyer_id>" (a key over 1 KB is hashed: "...#sha256:<hex>")
    buyer_id, phone   S   who the last claimed SMS went to
    claimed_attempt   N   the highest attempt taken by a sender (the dedupe guard)
    claim_token       S   which sender holds it
    claimed_at        S   UTC ISO; a claim older than CLAIM_IN_FLIGHT_LIMIT and never recorded
                          was left by a sender that died: its redelivery is UNCONFIRMED
    unconfirmed_attempts NS attempts whose unknown outcome was reported (later deliveries of
                          them are plain duplicates)
    reminders_sent    N   the attempt of the last SMS actually published
    last_sent_at      S   UTC ISO of that SMS      } the "sent_day-last_sent_at" index:
    sent_day          S   shop-local YYYY-MM-DD    } sends by day, sparse (unsent orders are absent)
    message_id_<n>    S   SNS message id of attempt n
    sent_at_<n>, window_<n>, segments_<n>   S, S, N   attempt n's SMS, for the outcomes report
    variant_<n>       S   the text variant attempt n was sent with (only with messages.variants)
    held_out_at       S   first time the order was held out (holdout group), UTC ISO } the
    held_out_day      S   shop-local YYYY-MM-DD of that                              } holdout index
    held_out_last_at, held_out_window   S   the latest hold-out decision and its window
    held_out_count    N   the reminders a held-out order would have had (it runs out like a texted one)
    outcome           M   the order's outcome once paid (nudge.adapters.outcomes), written once
    call_requested_at S   when a large order went to the staff call list
    skips             L   [{attempt, reason, at}] planned SMS that were not sent
    sms_claimed       N   quota item only: SMS claimed on that day (net of releases)
    phones            SS  "#opted-out" item only: numbers SNS reported opted out
    expires_at        N   TTL, epoch seconds (every item, contact items included)

Contact items (the per-buyer minimum interval, enforced by the claim itself)::

    contacted_at          S  UTC ISO of the claim that last took the slot; "" = given back, never
    previous_contacted_at S  what contacted_at was before that claim, restored by its release
    contact_token         S  the claim token holding the slot (removed on release)
    contact_order_id      S  } the (order, attempt) of that claim
    contact_attempt       N  }
    sent_day, last_sent_at,  phone item only, written by the claim itself: the claim is in the
    buyer_id, phone          day index from the instant it is taken, so a plan sees a send whose
                             outcome is unknown (``recent_sends``); a release removes them (the
                             previous contact is older than the interval: no plan needs it)

The claim transaction takes the order's (order, attempt), the phone and buyer slots (free if
``contacted_at`` is absent, "" or at least the interval old) and one unit of the day's cap, all or
nothing. These items are never index keys except sent_day/last_sent_at, so "" is a legal value.
"""

from __future__ import annotations

import hashlib
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
from nudge.services.ports import CLAIM_IN_FLIGHT_LIMIT, ClaimOutcome, OrderNow, SendRequest

log = logging.getLogger(__name__)

__all__ = [
    "CONTACT_PREFIX",
    "OPTED_OUT_KEY",
    "OPTED_OUT_SKIP",
    "PLANNING_STATUSES",
    "ClaimNotHeldError",
    "DalError",
    "DynamoOrderRepository",
    "DynamoReminderLedger",
    "contact_keys",
    "held_claim_outcome",
    "item_from_ddb",
    "latest_per_order",
    "order_now",
    "planning_lower_bound",
    "quota_key",
    "reminder_state",
    "sent_reminder",
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
CONTACT_PREFIX = "#contact#"
_MAX_KEY_BYTES = 1024  # DynamoDB allows 2048 bytes for a partition key; hash anything longer than this


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


def contact_keys(request: SendRequest) -> list[str]:
    """The ledger keys of the buyer's contact slots: by phone (first: it carries the day-index
    attributes), then by buyer id (none for an empty buyer id: it would join unrelated buyers)."""
    keys = [f"{CONTACT_PREFIX}phone#{request.phone}"]
    if request.buyer_id:
        keys.append(f"{CONTACT_PREFIX}buyer#{request.buyer_id}")
    return [
        k
        if len(k.encode()) <= _MAX_KEY_BYTES
        else k[: k.index("#", len(CONTACT_PREFIX)) + 1] + "sha256:" + hashlib.sha256(k.encode()).hexdigest()
        for k in keys
    ]


def _when(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no UTC offset")
    return parsed


def order_now(item: Mapping[str, Any]) -> OrderNow:
    """An order record as the sender re-reads it (shared with the in-memory fake)."""
    status = item.get("status") if isinstance(item.get("status"), str) else None
    try:
        created_at = _when(item.get("created_at"))
    except ValueError:
        return OrderNow(status, invalid_field="created_at")
    closes_at = None
    if item.get("closes_at") not in (None, ""):
        try:
            closes_at = _when(item["closes_at"])
        except ValueError:
            return OrderNow(status, created_at, invalid_field="closes_at")
    return OrderNow(status, created_at, closes_at)


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

    def current(self, order_ids: Sequence[str]) -> dict[str, OrderNow]:
        # Strongly consistent: this is the send-time "paid, closed or aged out meanwhile?" check.
        items = _batch_get(
            self._client,
            self._table,
            order_ids,
            projection="order_id, #s, created_at, closes_at",
            names={"#s": "status"},
            consistent=True,
            sleep=self._sleep,
        )
        return {i["order_id"]: order_now(i) for i in items}


# ---------------------------------------------------------------------------------------------
# reminder ledger

_CLAIM_ORDER_CONDITION = (
    "(attribute_not_exists(claimed_attempt) OR claimed_attempt < :a)"
    " AND (attribute_not_exists(reminders_sent) OR reminders_sent < :a)"
)
_CLAIM_QUOTA_CONDITION = "attribute_not_exists(sms_claimed) OR sms_claimed < :cap"
# A slot is free if never taken, given back (""), or taken at least the interval ago.
_CLAIM_CONTACT_CONDITION = "attribute_not_exists(contacted_at) OR contacted_at <= :cutoff"
_HELD = "claim_token = :t AND claimed_attempt = :a"
# A claim whose SMS was recorded as sent can never be released: that would reopen the attempt.
_RELEASE_CONDITION = f"{_HELD} AND (attribute_not_exists(reminders_sent) OR reminders_sent < :a)"
_CCF = "ConditionalCheckFailed"
_IDEMPOTENCY_NS = uuid.UUID("7d0c3f59-8d8e-4c59-9a53-3c6e5b1b7a11")


def _request_token(*parts: object) -> str:
    """A ClientRequestToken (<= 36 chars) for one logical TransactWriteItems call.

    botocore retries a transaction whose response was lost; with the same token DynamoDB answers
    the retry with the first outcome instead of failing our own condition (a claim we hold would
    otherwise come back as held by someone and its SMS would never go out).
    """
    return str(uuid.uuid5(_IDEMPOTENCY_NS, "|".join(str(p) for p in parts)))


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _instant(text: Any) -> datetime | None:
    """A stored UTC ISO time, or None when absent or unreadable (a hand-edited item)."""
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def reminder_state(item: Mapping[str, Any]) -> ReminderState:
    """What the planner needs from one ledger item (shared with the in-memory fake).

    A claimed attempt counts as taken even if never recorded: its SMS may be out (the sender
    died or lost SNS's answer), so the planner never plans that attempt again.
    """
    return ReminderState(
        order_id=item["order_id"],
        reminders_sent=max(int(item.get("reminders_sent", 0)), int(item.get("claimed_attempt", 0))),
        call_requested="call_requested_at" in item,
        held_out="held_out_at" in item,
        # Marks made before the count was kept were all the first reminder's.
        held_out_count=int(item.get("held_out_count", 1 if "held_out_at" in item else 0)),
        held_out_last_at=_instant(item.get("held_out_last_at") or item.get("held_out_at")),
    )


def held_claim_outcome(item: Mapping[str, Any], attempt: int, now: datetime) -> ClaimOutcome:
    """Why a claim of ``attempt`` failed on this order item (shared with the in-memory fake)."""
    reported = {int(a) for a in item.get("unconfirmed_attempts", ())}
    if int(item.get("reminders_sent", 0)) >= attempt or attempt in reported:
        return ClaimOutcome.ALREADY_CLAIMED  # settled: sent, or its unknown outcome reported
    claimed_at = item.get("claimed_at")
    if (
        int(item.get("claimed_attempt", 0)) == attempt
        and isinstance(claimed_at, str)
        and datetime.fromisoformat(claimed_at) > now - CLAIM_IN_FLIGHT_LIMIT
    ):
        return ClaimOutcome.IN_FLIGHT
    return ClaimOutcome.UNCONFIRMED


def sent_reminder(item: Mapping[str, Any]) -> SentReminder:
    """One day-index item as the planner sees it: a recorded send, or a contact claim."""
    if str(item["order_id"]).startswith(CONTACT_PREFIX):
        order_id, attempt = item.get("contact_order_id", ""), item.get("contact_attempt", 0)
    else:
        order_id, attempt = item["order_id"], item.get("reminders_sent", 0)
    return SentReminder(
        order_id=order_id,
        buyer_id=item.get("buyer_id", ""),
        phone=item.get("phone", ""),
        sent_at=datetime.fromisoformat(item["last_sent_at"]),
        attempt=int(attempt),
    )


def latest_per_order(reminders: Iterable[SentReminder]) -> list[SentReminder]:
    """One entry per order, the latest (a recorded send and the claim that took it are one SMS)."""
    latest: dict[str, SentReminder] = {}
    for r in reminders:
        if r.order_id not in latest or (r.sent_at, r.attempt) > (
            latest[r.order_id].sent_at,
            latest[r.order_id].attempt,
        ):
            latest[r.order_id] = r
    return sorted(latest.values(), key=lambda r: (r.sent_at, r.order_id))


def _codes(reasons: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r.get("Code") or "None") for r in reasons]


class DynamoReminderLedger:
    """How many reminders each order had, who holds each (order, attempt), the buyers' contact
    slots and the daily SMS cap."""

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
            projection="order_id, reminders_sent, claimed_attempt, call_requested_at, held_out_at,"
            " held_out_count, held_out_last_at",
            sleep=self._sleep,
        )
        out: dict[str, ReminderState] = {}
        for item in items:
            state = reminder_state(item)
            if state.reminders_sent or state.call_requested or state.held_out:
                out[item["order_id"]] = state  # released claims and skips alone are not state
        return out

    def recent_sends(self, since: datetime, days: Iterable[date]) -> list[SentReminder]:
        lower = utc_iso(since)
        found: list[SentReminder] = []
        for day in sorted(set(days)):
            for raw in _query_all(
                self._client,
                TableName=self._table,
                IndexName=self._index,
                KeyConditionExpression="sent_day = :d AND last_sent_at >= :since",
                ProjectionExpression="order_id, buyer_id, phone, last_sent_at, reminders_sent,"
                " contact_order_id, contact_attempt",
                ExpressionAttributeValues={":d": _s(day.isoformat()), ":since": _s(lower)},
            ):
                found.append(sent_reminder(item_from_ddb(raw)))
        return latest_per_order(found)

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

    def mark_held_out(self, attempts: Mapping[str, int], at: datetime, window: str, day: date) -> None:
        for oid, attempt in attempts.items():
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"order_id": _s(oid)},
                    UpdateExpression="SET held_out_at = if_not_exists(held_out_at, :at),"
                    " held_out_day = if_not_exists(held_out_day, :d), held_out_last_at = :at,"
                    " held_out_window = :w, held_out_count = :a, expires_at = :exp",
                    # Once per would-be reminder: a re-run plan does not move the mark.
                    ConditionExpression="attribute_not_exists(held_out_count) OR held_out_count < :a",
                    ExpressionAttributeValues={
                        ":at": _s(utc_iso(at)),
                        ":d": _s(day.isoformat()),
                        ":w": _s(window),
                        ":a": _n(attempt),
                        ":exp": _n(_epoch(at + self._ttl)),
                    },
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def claim(
        self,
        request: SendRequest,
        token: str,
        daily_cap: int,
        now: datetime,
        buyer_min_interval: timedelta | None = None,
    ) -> ClaimOutcome:
        if daily_cap <= 0:  # `attribute_not_exists(sms_claimed)` would let the first one through
            return ClaimOutcome.DAILY_LIMIT
        expires = _n(_epoch(now + self._ttl))
        at = _s(utc_iso(now))
        items: list[dict[str, Any]] = [
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
                        ":now": at,
                        ":b": _s(request.buyer_id),
                        ":p": _s(request.phone),
                        ":exp": expires,
                    },
                    # Why it failed decides between a duplicate, a claim in flight and a sender
                    # that died holding it: the item comes back with the cancellation, no read.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        ]
        slots = contact_keys(request) if buyer_min_interval else []  # 0 or None: no buyer rule
        cutoff = utc_iso(now - buyer_min_interval) if buyer_min_interval else ""
        for i, key in enumerate(slots):
            values = {
                ":cutoff": _s(cutoff),
                ":never": _s(""),
                ":now": at,
                ":t": _s(token),
                ":o": _s(request.order_id),
                ":a": _n(request.attempt),
                ":exp": expires,
            }
            # previous_contacted_at first: it must read contacted_at before this claim writes it.
            update = (
                "SET previous_contacted_at = if_not_exists(contacted_at, :never), contacted_at = :now,"
                " contact_token = :t, contact_order_id = :o, contact_attempt = :a, expires_at = :exp"
            )
            if i == 0:  # the phone slot puts the claim in the day index: plans see it at once
                update += ", sent_day = :d, last_sent_at = :now, buyer_id = :b, phone = :p"
                values.update({":d": _s(request.day.isoformat()), ":b": _s(request.buyer_id)})
                values[":p"] = _s(request.phone)
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"order_id": _s(key)},
                        "UpdateExpression": update,
                        "ConditionExpression": _CLAIM_CONTACT_CONDITION,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        items.append(
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"order_id": _s(quota_key(request.day))},
                    "UpdateExpression": "ADD sms_claimed :one SET expires_at = :exp",
                    "ConditionExpression": _CLAIM_QUOTA_CONDITION,
                    "ExpressionAttributeValues": {":one": _n(1), ":cap": _n(daily_cap), ":exp": expires},
                }
            }
        )
        reasons = self._transact(items, _request_token("claim", request.dedupe_key, token, utc_iso(now)))
        if reasons is None:
            return ClaimOutcome.CLAIMED
        codes = _codes(reasons)
        # Several may fail at once; the first in this order wins: a duplicate delivery is
        # reported as such, not as a contact or a cap hit (the planner's precedence too).
        if codes[0] == _CCF:
            old = reasons[0].get("Item")
            item = item_from_ddb(old) if old else self._read_consistent(request.order_id)
            return held_claim_outcome(item, request.attempt, now)
        if _CCF in codes[1 : 1 + len(slots)]:
            return ClaimOutcome.RECENTLY_CONTACTED
        if codes[-1] == _CCF:
            return ClaimOutcome.DAILY_LIMIT
        raise DalError(f"claim {request.dedupe_key}: transaction cancelled: {codes}")

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
        order_item = {
            "Update": {
                "TableName": self._table,
                "Key": {"order_id": _s(request.order_id)},
                "UpdateExpression": restore,
                "ConditionExpression": _RELEASE_CONDITION,
                "ExpressionAttributeValues": values,
            }
        }
        quota_item = {
            "Update": {
                "TableName": self._table,
                "Key": {"order_id": _s(quota_key(request.day))},
                "UpdateExpression": "ADD sms_claimed :minus",
                "ExpressionAttributeValues": {":minus": _n(-1)},
            }
        }
        # The slots this token holds go back to their previous contact time. A claim made without
        # an interval took none: their condition fails, and the release is redone without them.
        slots = []
        for i, key in enumerate(contact_keys(request)):
            remove = "contact_token, contact_order_id, contact_attempt"
            if i == 0:
                remove += ", sent_day, last_sent_at"  # out of the day index again
            slots.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"order_id": _s(key)},
                        "UpdateExpression": "SET contacted_at = if_not_exists(previous_contacted_at, :never)"
                        f" REMOVE {remove}",
                        "ConditionExpression": "contact_token = :t",
                        "ExpressionAttributeValues": {":t": _s(token), ":never": _s("")},
                    }
                }
            )
        for round_ in range(len(slots) + 1):
            reasons = self._transact(
                [order_item, *slots, quota_item], _request_token("release", request.dedupe_key, token, round_)
            )
            if reasons is None:
                return
            codes = _codes(reasons)
            if codes[0] == _CCF:  # not held by this token (or already sent)
                log.info("release %s: nothing to release", request.dedupe_key)
                return
            held = [s for s, code in zip(slots, codes[1:-1], strict=True) if code != _CCF]
            if len(held) == len(slots):  # cancelled for another reason: no slot to drop
                raise DalError(f"release {request.dedupe_key}: transaction cancelled: {codes}")
            slots = held
        raise DalError(f"release {request.dedupe_key}: slots still refused after {len(slots) + 1} rounds")

    def record_sent(self, request: SendRequest, token: str, message_id: str, sent_at: datetime) -> None:
        names = {
            "#mid": f"message_id_{request.attempt}",
            # per attempt, for the outcomes report (the fields above keep only the last)
            "#sat": f"sent_at_{request.attempt}",
            "#win": f"window_{request.attempt}",
            "#seg": f"segments_{request.attempt}",
        }
        variant: dict[str, Any] = {}
        if request.variant is not None:  # only with messages.variants: the text's variant
            names["#var"] = f"variant_{request.attempt}"
            variant[":v"] = _s(request.variant)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": _s(request.order_id)},
                UpdateExpression="SET reminders_sent = :a, last_sent_at = :at, sent_day = :d, #mid = :m,"
                " expires_at = :exp, #sat = :at, #win = :w, #seg = :g" + (", #var = :v" if variant else ""),
                ConditionExpression=_HELD,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    **variant,
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
        self._append_skip(request, reason, at)

    def record_unconfirmed(self, request: SendRequest, reason: str, at: datetime) -> None:
        self._append_skip(request, reason, at, also="ADD unconfirmed_attempts :ua")

    def _append_skip(self, request: SendRequest, reason: str, at: datetime, also: str = "") -> None:
        entry = {"M": {"attempt": _n(request.attempt), "reason": _s(reason), "at": _s(utc_iso(at))}}
        values: dict[str, Any] = {
            ":empty": {"L": []},
            ":entry": {"L": [entry]},
            ":exp": _n(_epoch(at + self._ttl)),
        }
        if also:
            values[":ua"] = {"NS": [str(request.attempt)]}
        self._client.update_item(
            TableName=self._table,
            Key={"order_id": _s(request.order_id)},
            UpdateExpression="SET skips = list_append(if_not_exists(skips, :empty), :entry),"
            f" expires_at = :exp {also}".rstrip(),
            ExpressionAttributeValues=values,
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

    def _read_consistent(self, key: str) -> dict[str, Any]:
        """Fallback when a cancellation comes back without the old item."""
        item = self._client.get_item(TableName=self._table, Key={"order_id": _s(key)}, ConsistentRead=True)
        return item_from_ddb(item.get("Item", {"order_id": _s(key)}))

    def _transact(self, items: list[dict[str, Any]], request_token: str) -> list[dict[str, Any]] | None:
        """Run one TransactWriteItems; None on success, else the cancellation reason of each item
        (``Code``, and ``Item`` where ALL_OLD was asked for).

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
                reasons = exc.response.get("CancellationReasons") or []
                codes = _codes(reasons)
                if len(codes) != len(items):
                    raise DalError(f"TransactWriteItems cancelled without usable reasons: {reasons}") from exc
                if _CCF in codes or "TransactionConflict" not in codes:
                    return list(reasons)
                if attempt == self._max_conflict_retries:
                    raise DalError(
                        f"TransactWriteItems: still conflicting after {attempt + 1} tries"
                    ) from exc
                self._sleep(backoff(attempt))
                # A new logical attempt: the cancelled one must not be answered from the token cache.
                request_token = _request_token(request_token, attempt)
        raise AssertionError("unreachable")
