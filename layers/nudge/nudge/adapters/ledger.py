"""The reminder ledger in DynamoDB (``ReminderLedger`` in ``nudge.services.ports``): its item layout lives here.

It takes a ready-made boto3 client and resource names (no ``os.environ`` here, no clock: every
time is passed in). The services only see the port; ``tests/fakes.py`` holds an in-memory twin
with the same semantics, kept honest by the shared contract tests in ``tests/contract/test_dal.py``.

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
    sent_day          S   shop-local YYYY-MM-DD    } sends by day, sparse (unsent orders are absent);
                          an order whose SMS were all unconfirmed: its claim's time and day
                          (``record_unconfirmed``), so the unknown-after-72-h sweep finds them
    message_id_<n>    S   SNS message id of attempt n
    sent_at_<n>, window_<n>, segments_<n>   S, S, N   attempt n's SMS, for the outcomes report
    variant_<n>       S   the text variant attempt n was sent with (only with messages.variants)
    delivery_<n>, delivery_code_<n>, delivery_at_<n>   S   attempt n's delivery status from the
                          gateway's receipts (nudge.domain.delivery), never backwards; "unknown"
                          with code NO_RECEIPT_72H when none was final 72 h after the send
    held_out_at       S   first time the order was held out (holdout group), UTC ISO } the
    held_out_day      S   shop-local YYYY-MM-DD of that                              } holdout index
    held_out_last_at, held_out_window   S   the latest hold-out decision and its window
    held_out_count    N   the reminders a held-out order would have had (it runs out like a texted one)
    outcome           M   the order's outcome once paid (``outcome_to_map`` below), written once
    call_requested_at S   when a large order went to the staff call list
    skips             L   [{attempt, reason, at}] planned SMS that were not sent
    sms_claimed       N   quota item only: SMS claimed on that day (net of releases)
    phones            SS  "#opted-out" item only: numbers SNS reported opted out
    expires_at        N   TTL, epoch seconds (every item, contact items included)

SMS pointer items (only with SNS delivery-status logs: ``message_pointers``), one per SMS sent::

    order_id          S   "#sns-message#<SNS message id>"
    sms_order_id, sms_attempt   S, N   the SMS's order and attempt (a log line names neither)
    expires_at        N   TTL: POINTER_TTL after the send (SNS's logs come within 72 h)

They carry no index attribute (never in the day or holdout index, so never in a plan, the report
or the outcomes) and no order field, and their keys start with "#" like every non-order item.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from nudge.adapters.dynamo_io import (
    CONDITIONAL_CHECK_FAILED,
    backoff,
    batch_get,
    cancellation_codes,
    epoch,
    item_from_ddb,
    n_value,
    query_all,
    s_value,
    transaction_token,
    unique,
)
from nudge.domain.delivery import NO_RECEIPT_CODE, AwaitedSms, DeliveryStatus, Receipt
from nudge.domain.instants import stored_instant, utc_iso
from nudge.domain.models import ReminderState, SentReminder
from nudge.domain.outcomes import HoldoutMark, Outcome, SmsSent
from nudge.services.ports import (
    ClaimOutcome,
    DalError,
    OrderTouches,
    ReceiptOutcome,
    SendRequest,
    claim_failure,
)

log = logging.getLogger(__name__)

QUOTA_PREFIX = "#quota#"
OPTED_OUT_KEY = "#opted-out"  # the ledger item listing numbers SNS reported opted out
OPTED_OUT_SKIP = "opted_out"
CONTACT_PREFIX = "#contact#"
SNS_MESSAGE_PREFIX = "#sns-message#"  # SMS pointer items (SNS delivery-status logs)
POINTER_TTL = timedelta(days=4)  # SNS's delivery logs come within 72 h of the send
_MAX_KEY_BYTES = 1024  # DynamoDB allows 2048 bytes for a partition key; hash anything longer than this


class ClaimNotHeldError(DalError):
    """``record_sent`` for an (order, attempt) this token does not hold (wrong token, released, stolen)."""


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
        held_out_last_at=stored_instant(item.get("held_out_last_at") or item.get("held_out_at")),
    )


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


def _delivery_names(attempt: int) -> dict[str, str]:
    """One SMS's message id and delivery attributes on its ledger item, as expression names."""
    return {
        "#mid": f"message_id_{attempt}",
        "#st": f"delivery_{attempt}",
        "#code": f"delivery_code_{attempt}",
        "#at": f"delivery_at_{attempt}",
    }


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
        message_pointers: bool = False,
    ):
        if ttl_days < 1:
            raise ValueError("ttl_days must be >= 1")
        self._client = client
        self._table = table_name
        self._index = day_index
        self._ttl = timedelta(days=ttl_days)
        self._sleep = sleep
        self._max_conflict_retries = max_conflict_retries
        # SNS delivery-status logs name only the message id: each recorded SMS also gets a pointer.
        self._message_pointers = message_pointers

    # -- reads --------------------------------------------------------------------------------

    def states(self, order_ids: Sequence[str]) -> dict[str, ReminderState]:
        items = batch_get(
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
            for raw in query_all(
                self._client,
                TableName=self._table,
                IndexName=self._index,
                KeyConditionExpression="sent_day = :d AND last_sent_at >= :since",
                ProjectionExpression="order_id, buyer_id, phone, last_sent_at, reminders_sent,"
                " contact_order_id, contact_attempt",
                ExpressionAttributeValues={":d": s_value(day.isoformat()), ":since": s_value(lower)},
            ):
                found.append(sent_reminder(item_from_ddb(raw)))
        return latest_per_order(found)

    def sent_on(self, day: date) -> int:
        resp = self._client.get_item(
            TableName=self._table,
            Key={"order_id": s_value(quota_key(day))},
            ProjectionExpression="sms_claimed",
            ConsistentRead=True,
        )
        raw = resp.get("Item", {}).get("sms_claimed")
        return max(0, int(raw["N"])) if raw else 0

    # -- writes -------------------------------------------------------------------------------

    def request_calls(self, order_ids: Sequence[str], at: datetime) -> None:
        for oid in unique(order_ids):
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": s_value(oid)},
                UpdateExpression="SET call_requested_at = if_not_exists(call_requested_at, :at),"
                " expires_at = :exp",
                ExpressionAttributeValues={
                    ":at": s_value(utc_iso(at)),
                    ":exp": n_value(epoch(at + self._ttl)),
                },
            )

    def mark_held_out(self, attempts: Mapping[str, int], at: datetime, window: str, day: date) -> None:
        for oid, attempt in attempts.items():
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={"order_id": s_value(oid)},
                    UpdateExpression="SET held_out_at = if_not_exists(held_out_at, :at),"
                    " held_out_day = if_not_exists(held_out_day, :d), held_out_last_at = :at,"
                    " held_out_window = :w, held_out_count = :a, expires_at = :exp",
                    # Once per would-be reminder: a re-run plan does not move the mark.
                    ConditionExpression="attribute_not_exists(held_out_count) OR held_out_count < :a",
                    ExpressionAttributeValues={
                        ":at": s_value(utc_iso(at)),
                        ":d": s_value(day.isoformat()),
                        ":w": s_value(window),
                        ":a": n_value(attempt),
                        ":exp": n_value(epoch(at + self._ttl)),
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
        expires = n_value(epoch(now + self._ttl))
        at = s_value(utc_iso(now))
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"order_id": s_value(request.order_id)},
                    "UpdateExpression": "SET claimed_attempt = :a, claim_token = :t, claimed_at = :now,"
                    " buyer_id = :b, phone = :p, expires_at = :exp",
                    "ConditionExpression": _CLAIM_ORDER_CONDITION,
                    "ExpressionAttributeValues": {
                        ":a": n_value(request.attempt),
                        ":t": s_value(token),
                        ":now": at,
                        ":b": s_value(request.buyer_id),
                        ":p": s_value(request.phone),
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
                ":cutoff": s_value(cutoff),
                ":never": s_value(""),
                ":now": at,
                ":t": s_value(token),
                ":o": s_value(request.order_id),
                ":a": n_value(request.attempt),
                ":exp": expires,
            }
            # previous_contacted_at first: it must read contacted_at before this claim writes it.
            update = (
                "SET previous_contacted_at = if_not_exists(contacted_at, :never), contacted_at = :now,"
                " contact_token = :t, contact_order_id = :o, contact_attempt = :a, expires_at = :exp"
            )
            if i == 0:  # the phone slot puts the claim in the day index: plans see it at once
                update += ", sent_day = :d, last_sent_at = :now, buyer_id = :b, phone = :p"
                values.update({":d": s_value(request.day.isoformat()), ":b": s_value(request.buyer_id)})
                values[":p"] = s_value(request.phone)
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"order_id": s_value(key)},
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
                    "Key": {"order_id": s_value(quota_key(request.day))},
                    "UpdateExpression": "ADD sms_claimed :one SET expires_at = :exp",
                    "ConditionExpression": _CLAIM_QUOTA_CONDITION,
                    "ExpressionAttributeValues": {
                        ":one": n_value(1),
                        ":cap": n_value(daily_cap),
                        ":exp": expires,
                    },
                }
            }
        )
        reasons = self._transact(items, transaction_token("claim", request.dedupe_key, token, utc_iso(now)))
        if reasons is None:
            return ClaimOutcome.CLAIMED
        codes = cancellation_codes(reasons)
        # Several may fail at once; the first in this order wins: a duplicate delivery is
        # reported as such, not as a contact or a cap hit (the planner's precedence too).
        if codes[0] == CONDITIONAL_CHECK_FAILED:
            old = reasons[0].get("Item")
            item = item_from_ddb(old) if old else self._read_consistent(request.order_id)
            return held_claim_outcome(item, request.attempt, now)
        if CONDITIONAL_CHECK_FAILED in codes[1 : 1 + len(slots)]:
            return ClaimOutcome.RECENTLY_CONTACTED
        if codes[-1] == CONDITIONAL_CHECK_FAILED:
            return ClaimOutcome.DAILY_LIMIT
        raise DalError(f"claim {request.dedupe_key}: transaction cancelled: {codes}")

    def release(self, request: SendRequest, token: str) -> None:
        a = request.attempt
        restore = (
            "SET claimed_attempt = :prev REMOVE claim_token"
            if a > 1
            else "REMOVE claimed_attempt, claim_token"
        )
        values = {":t": s_value(token), ":a": n_value(a)}
        if a > 1:
            values[":prev"] = n_value(a - 1)
        order_item = {
            "Update": {
                "TableName": self._table,
                "Key": {"order_id": s_value(request.order_id)},
                "UpdateExpression": restore,
                "ConditionExpression": _RELEASE_CONDITION,
                "ExpressionAttributeValues": values,
            }
        }
        quota_item = {
            "Update": {
                "TableName": self._table,
                "Key": {"order_id": s_value(quota_key(request.day))},
                "UpdateExpression": "ADD sms_claimed :minus",
                "ExpressionAttributeValues": {":minus": n_value(-1)},
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
                        "Key": {"order_id": s_value(key)},
                        "UpdateExpression": "SET contacted_at = if_not_exists(previous_contacted_at, :never)"
                        f" REMOVE {remove}",
                        "ConditionExpression": "contact_token = :t",
                        "ExpressionAttributeValues": {":t": s_value(token), ":never": s_value("")},
                    }
                }
            )
        for round_ in range(len(slots) + 1):
            reasons = self._transact(
                [order_item, *slots, quota_item],
                transaction_token("release", request.dedupe_key, token, round_),
            )
            if reasons is None:
                return
            codes = cancellation_codes(reasons)
            if codes[0] == CONDITIONAL_CHECK_FAILED:  # not held by this token (or already sent)
                log.info("release %s: nothing to release", request.dedupe_key)
                return
            held = [s for s, code in zip(slots, codes[1:-1], strict=True) if code != CONDITIONAL_CHECK_FAILED]
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
            variant[":v"] = s_value(request.variant)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": s_value(request.order_id)},
                UpdateExpression="SET reminders_sent = :a, last_sent_at = :at, sent_day = :d, #mid = :m,"
                " expires_at = :exp, #sat = :at, #win = :w, #seg = :g" + (", #var = :v" if variant else ""),
                ConditionExpression=_HELD,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    **variant,
                    ":w": s_value(request.window),
                    ":g": n_value(request.segments),
                    ":a": n_value(request.attempt),
                    ":t": s_value(token),
                    ":at": s_value(utc_iso(sent_at)),
                    ":d": s_value(request.day.isoformat()),
                    ":m": s_value(message_id),
                    ":exp": n_value(epoch(sent_at + self._ttl)),
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise ClaimNotHeldError(
                    f"record_sent {request.dedupe_key}: claim not held by this token (message {message_id})"
                ) from exc
            raise
        if self._message_pointers:
            self._write_pointer(request, message_id, sent_at)

    def _write_pointer(self, request: SendRequest, message_id: str, sent_at: datetime) -> None:
        """The SMS pointer (SNS delivery-status logs). The SMS is out and recorded: a failed pointer
        write loses only its receipt (counted unknown and dropped), so it is logged, never raised
        (raising would report a recorded SMS as unconfirmed)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": s_value(SNS_MESSAGE_PREFIX + message_id)},
                UpdateExpression="SET sms_order_id = :o, sms_attempt = :a, expires_at = :exp",
                ExpressionAttributeValues={
                    ":o": s_value(request.order_id),
                    ":a": n_value(request.attempt),
                    ":exp": n_value(epoch(sent_at + POINTER_TTL)),
                },
            )
        except ClientError as exc:
            log.warning("record_sent %s: SMS pointer not written: %s", request.dedupe_key, exc)

    def _pointed(self, receipt: Receipt) -> Receipt:
        """A receipt naming only its message id (SNS delivery-status logs) -> the same receipt
        naming its SMS's order and attempt, when the SMS's pointer is there."""
        if receipt.order_id is not None or not receipt.message_id:
            return receipt
        item = self._client.get_item(
            TableName=self._table,
            Key={"order_id": s_value(SNS_MESSAGE_PREFIX + receipt.message_id)},
            ConsistentRead=True,
        ).get("Item")
        if not item or "sms_order_id" not in item or "sms_attempt" not in item:
            return receipt
        return replace(receipt, order_id=item["sms_order_id"]["S"], attempt=int(item["sms_attempt"]["N"]))

    def apply_receipt(self, receipt: Receipt) -> ReceiptOutcome:
        if self._message_pointers:
            receipt = self._pointed(receipt)
        if receipt.order_id is None or receipt.attempt is None:
            return ReceiptOutcome.UNKNOWN_MESSAGE  # only the context or a pointer finds the SMS's item
        a = receipt.attempt
        names = _delivery_names(a)
        values = {
            ":m": s_value(receipt.message_id),
            ":s": s_value(receipt.status.value),
            ":c": s_value(receipt.code or ""),
            ":at": s_value(utc_iso(receipt.at)),
            ":a": n_value(a),
            ":pending": s_value(DeliveryStatus.PENDING.value),
        }
        # The SMS: its recorded message id, or an attempt reported unconfirmed (its id was never
        # known: the receipt settles it). Never backwards: see nudge.domain.delivery.takes.
        sms = "(#mid = :m OR (attribute_not_exists(#mid) AND contains(unconfirmed_attempts, :a)))"
        if receipt.status is DeliveryStatus.PENDING:
            fresh = "attribute_not_exists(#st)"
            del values[":pending"]  # DynamoDB refuses a value the expressions do not use
        else:
            fresh = "(attribute_not_exists(#st) OR #st = :pending)"
        try:
            old = self._client.update_item(
                TableName=self._table,
                Key={"order_id": s_value(receipt.order_id)},
                UpdateExpression="SET #st = :s, #code = :c, #at = :at, #mid = :m",
                ConditionExpression=f"{sms} AND {fresh}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",  # did it have a message id? (settling an unconfirmed send)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            item = self._read_consistent(receipt.order_id)
            known = item.get(f"message_id_{a}") == receipt.message_id or (
                f"message_id_{a}" not in item and a in {int(x) for x in item.get("unconfirmed_attempts", ())}
            )
            return ReceiptOutcome.UNCHANGED if known else ReceiptOutcome.UNKNOWN_MESSAGE
        settled = f"message_id_{a}" not in old.get("Attributes", {})
        return ReceiptOutcome.SETTLED if settled else ReceiptOutcome.APPLIED

    # -- unknown after 72 h (nudge.services.receipts.mark_unknown_deliveries) --------------------

    def awaiting_receipts(
        self, since: datetime, until: datetime, days: Sequence[date]
    ) -> Iterator[AwaitedSms]:
        """The SMS of the order items whose last SMS was sent in [since, until], read day by day
        from the day index (Query, lazily: the caller's limit stops the reads too)."""
        for day in days:
            for raw in query_all(
                self._client,
                TableName=self._table,
                IndexName=self._index,
                KeyConditionExpression="sent_day = :d AND last_sent_at BETWEEN :since AND :until",
                ExpressionAttributeValues={
                    ":d": s_value(day.isoformat()),
                    ":since": s_value(utc_iso(since)),
                    ":until": s_value(utc_iso(until)),
                },
            ):
                yield from awaited_from_item(item_from_ddb(raw))

    def mark_unknown(self, order_id: str, attempt: int, at: datetime) -> bool:
        """One conditional write: ``unknown`` on the SMS if it still has no final status (none, or
        ``pending``); never on an item or an SMS that does not exist. False when it did not apply."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": s_value(order_id)},
                UpdateExpression="SET #st = :s, #code = :c, #at = :at",
                ConditionExpression="(attribute_exists(#mid) OR contains(unconfirmed_attempts, :a))"
                " AND (attribute_not_exists(#st) OR #st = :pending)",
                ExpressionAttributeNames=_delivery_names(attempt),
                ExpressionAttributeValues={
                    ":s": s_value(DeliveryStatus.UNKNOWN.value),
                    ":c": s_value(NO_RECEIPT_CODE),
                    ":at": s_value(utc_iso(at)),
                    ":a": n_value(attempt),
                    ":pending": s_value(DeliveryStatus.PENDING.value),
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def record_skip(self, request: SendRequest, reason: str, at: datetime) -> None:
        self._append_skip(request, reason, at)

    def record_unconfirmed(self, request: SendRequest, reason: str, at: datetime) -> None:
        # An order with no recorded send enters the day index at its claim (which the claim's
        # contact item already shows the plans), so the unknown-after-72-h sweep finds its SMS.
        # First: a failed skip write is retried by the redelivery, this one would not be.
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": s_value(request.order_id)},
                UpdateExpression="SET sent_day = :d, last_sent_at = claimed_at",
                ConditionExpression="attribute_not_exists(sent_day) AND attribute_exists(claimed_at)",
                ExpressionAttributeValues={":d": s_value(request.day.isoformat())},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        self._append_skip(request, reason, at, also="ADD unconfirmed_attempts :ua")

    def _append_skip(self, request: SendRequest, reason: str, at: datetime, also: str = "") -> None:
        entry = {
            "M": {"attempt": n_value(request.attempt), "reason": s_value(reason), "at": s_value(utc_iso(at))}
        }
        values: dict[str, Any] = {
            ":empty": {"L": []},
            ":entry": {"L": [entry]},
            ":exp": n_value(epoch(at + self._ttl)),
        }
        if also:
            values[":ua"] = {"NS": [str(request.attempt)]}
        self._client.update_item(
            TableName=self._table,
            Key={"order_id": s_value(request.order_id)},
            UpdateExpression="SET skips = list_append(if_not_exists(skips, :empty), :entry),"
            f" expires_at = :exp {also}".rstrip(),
            ExpressionAttributeValues=values,
        )

    def record_opt_out(self, request: SendRequest, at: datetime) -> None:
        self.record_skip(request, OPTED_OUT_SKIP, at)
        self.add_opted_out(request.phone, at)

    def add_opted_out(self, phone: str, at: datetime) -> None:
        # One small item holds every opted-out number (a string set, <= ~20k numbers in 400 KB),
        # so a plan learns them all in one read; its TTL is refreshed by each new opt-out.
        self._client.update_item(
            TableName=self._table,
            Key={"order_id": s_value(OPTED_OUT_KEY)},
            UpdateExpression="ADD phones :p SET expires_at = :exp",
            ExpressionAttributeValues={":p": {"SS": [phone]}, ":exp": n_value(epoch(at + self._ttl))},
        )

    def opted_out_phones(self) -> set[str]:
        item = self._client.get_item(
            TableName=self._table, Key={"order_id": s_value(OPTED_OUT_KEY)}, ConsistentRead=True
        ).get("Item")
        return set(item["phones"]["SS"]) if item and "phones" in item else set()

    def _read_consistent(self, key: str) -> dict[str, Any]:
        """Fallback when a cancellation comes back without the old item."""
        item = self._client.get_item(
            TableName=self._table, Key={"order_id": s_value(key)}, ConsistentRead=True
        )
        return item_from_ddb(item.get("Item", {"order_id": s_value(key)}))

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
                codes = cancellation_codes(reasons)
                if len(codes) != len(items):
                    raise DalError(f"TransactWriteItems cancelled without usable reasons: {reasons}") from exc
                if CONDITIONAL_CHECK_FAILED in codes or "TransactionConflict" not in codes:
                    return list(reasons)
                if attempt == self._max_conflict_retries:
                    raise DalError(
                        f"TransactWriteItems: still conflicting after {attempt + 1} tries"
                    ) from exc
                self._sleep(backoff(attempt))
                # A new logical attempt: the cancelled one must not be answered from the token cache.
                request_token = transaction_token(request_token, attempt)
        raise AssertionError("unreachable")


def held_claim_outcome(item: Mapping[str, Any], attempt: int, now: datetime) -> ClaimOutcome:
    """Why a claim of ``attempt`` failed on this ledger item: ``claim_failure`` over its fields."""
    return claim_failure(
        attempt,
        sent=int(item.get("reminders_sent", 0)),
        reported_unconfirmed={int(a) for a in item.get("unconfirmed_attempts", ())},
        claimed_attempt=int(item.get("claimed_attempt", 0)),
        claimed_at=datetime.fromisoformat(c) if isinstance(c := item.get("claimed_at"), str) else None,
        now=now,
    )


_STATUSES = frozenset(s.value for s in DeliveryStatus)
# The ledger's own items. Only these prefixes: an order id may itself start with "#" ("#1001").
_NOT_ORDER_KEYS = (QUOTA_PREFIX, OPTED_OUT_KEY, CONTACT_PREFIX, SNS_MESSAGE_PREFIX)


def awaited_from_item(item: Mapping[str, Any]) -> list[AwaitedSms]:
    """The SMS on one ledger item (plain values) and their delivery status, for the unknown-after-
    72-h sweep (shared with the in-memory fake). A recorded SMS counts from its send; one whose
    outcome was reported unconfirmed (no message id) from that report, which came after it."""
    oid = str(item.get("order_id", ""))
    if not oid or oid.startswith(_NOT_ORDER_KEYS):  # contact items (in the day index) carry no SMS
        return []
    last = int(item.get("reminders_sent", 0))
    unconfirmed = {int(a) for a in item.get("unconfirmed_attempts", ())}
    reported: dict[int, str] = {}
    for skip in item.get("skips", ()):
        a = int(skip.get("attempt", 0))
        if a in unconfirmed and a not in reported and isinstance(skip.get("at"), str):
            reported[a] = skip["at"]
    out = []
    for a in sorted(set(range(1, last + 1)) | unconfirmed):
        recorded = f"message_id_{a}" in item
        at = item.get(f"sent_at_{a}")
        if at is None and recorded and a == last:
            at = item.get("last_sent_at")  # recorded before per-attempt details
        if at is None:
            at = reported.get(a)
        if at is None or not (recorded or a in unconfirmed):
            continue  # an attempt never sent (released, skipped) or with no time to count from
        status = item.get(f"delivery_{a}")
        if status and status not in _STATUSES:
            continue  # not a status Nudge writes: left alone
        out.append(
            AwaitedSms(
                order_id=oid,
                attempt=a,
                sent_at=datetime.fromisoformat(at),
                status=DeliveryStatus(status) if status else None,
                unconfirmed=not recorded,
            )
        )
    return out


# ------------------------------------------------------- outcomes: read and written on the same item


def touches_from_item(item: Mapping[str, Any]) -> OrderTouches:
    """One ledger item (plain values) -> what the outcomes need (shared with the in-memory fake)."""
    oid = item["order_id"]
    last = int(item.get("reminders_sent", 0))
    sends = []
    for attempt in range(1, last + 1):
        at = item.get(f"sent_at_{attempt}")
        if at is None and attempt == last:
            at = item.get("last_sent_at")  # an entry recorded before per-attempt details
        if at is None:
            continue
        sends.append(
            SmsSent(
                order_id=oid,
                attempt=attempt,
                sent_at=datetime.fromisoformat(at),
                window=str(item.get(f"window_{attempt}", "")),
                segments=int(item.get(f"segments_{attempt}", 1)),
                variant=item.get(f"variant_{attempt}"),
                delivery=item.get(f"delivery_{attempt}"),
                delivery_code=item.get(f"delivery_code_{attempt}") or None,
            )
        )
    holdout = None
    if "held_out_at" in item:
        first = datetime.fromisoformat(item["held_out_at"])
        holdout = HoldoutMark(
            order_id=oid,
            first_at=first,
            last_at=datetime.fromisoformat(item.get("held_out_last_at") or item["held_out_at"]),
            window=str(item.get("held_out_window", "")),
        )
    return OrderTouches(tuple(sends), holdout, recorded="outcome" in item, phone=item.get("phone"))


def outcome_to_map(outcome: Outcome, recorded_at: datetime) -> dict[str, Any]:
    """The ``outcome`` attribute, low-level DynamoDB form."""
    m: dict[str, Any] = {
        "holdout": {"BOOL": outcome.holdout},
        "paid_at": {"S": utc_iso(outcome.paid_at)},
        "minutes_to_pay": {"N": str(outcome.minutes_to_pay)},
        "amount": {"N": str(outcome.amount)},
        "currency": {"S": outcome.currency},
        "window": {"S": outcome.window},
        "attribution_hours": {"N": str(outcome.attribution_hours)},
        "recorded_at": {"S": utc_iso(recorded_at)},
    }
    if outcome.attempt is not None:
        m["attempt"] = {"N": str(outcome.attempt)}
    if outcome.sms_at is not None:
        m["sms_at"] = {"S": utc_iso(outcome.sms_at)}
    if outcome.variant is not None:
        m["variant"] = {"S": outcome.variant}
    return {"M": m}


def outcome_from_map(order_id: str, m: Mapping[str, Any]) -> Outcome:
    """The ``outcome`` attribute as plain values (``item_from_ddb``) -> Outcome."""
    return Outcome(
        order_id=order_id,
        holdout=bool(m.get("holdout")),
        attempt=int(m["attempt"]) if m.get("attempt") is not None else None,
        sms_at=datetime.fromisoformat(m["sms_at"]) if m.get("sms_at") else None,
        paid_at=datetime.fromisoformat(m["paid_at"]),
        minutes_to_pay=float(m.get("minutes_to_pay", 0)),
        amount=Decimal(str(m.get("amount", 0))),
        currency=str(m.get("currency", "")),
        window=str(m.get("window", "")),
        attribution_hours=int(m.get("attribution_hours", 0)),
        variant=str(m["variant"]) if m.get("variant") is not None else None,
    )
