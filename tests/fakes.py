"""In-memory fakes of the four ports, with the semantics of the AWS adapters in ``nudge.adapters``.

For fast unit tests of the services. ``tests/test_dal.py`` runs the same contract tests against
these and against the DynamoDB/SQS/SNS adapters on moto, so the two cannot drift apart.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from typing import Any

from nudge.adapters.ledger import (
    OPTED_OUT_KEY,
    OPTED_OUT_SKIP,
    SNS_MESSAGE_PREFIX,
    ClaimNotHeldError,
    awaited_from_item,
    contact_keys,
    latest_per_order,
    reminder_state,
    sent_reminder,
)
from nudge.adapters.orders import PLANNING_STATUSES, order_now, planning_lower_bound
from nudge.adapters.sqs import SQS_BATCH_LIMIT, SqsSendQueue
from nudge.domain.delivery import NO_RECEIPT_CODE, AwaitedSms, DeliveryStatus, Receipt, takes
from nudge.domain.instants import utc_iso
from nudge.domain.models import InvalidOrder, Order, ReminderState, SentReminder
from nudge.services.ports import (
    ClaimOutcome,
    OptedOutError,
    OrderNow,
    OutgoingSms,
    PermanentSendError,
    ReceiptOutcome,
    SendRequest,
    TransientSendError,
    claim_failure,
)

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def order_record(order: Order) -> dict[str, Any]:
    """An ``Order`` back in the rules contract's (docs/RULES.md) order-record shape (what the shop writes to DynamoDB)."""
    out = {k: v for k, v in asdict(order).items() if v is not None}
    for k in ("created_at", "paid_at", "closes_at"):
        if k in out:
            out[k] = out[k].isoformat()
    out["buyer_flags"] = sorted(order.buyer_flags)
    if not out["buyer_flags"]:
        del out["buyer_flags"]
    return out


class FakeOrderRepository:
    """Order records in a dict, read like the ``status-created_at`` index reads them.

    Like the index, only records with a string ``status`` and ``created_at`` are visible to
    ``orders_for_planning``, and ``created_at`` is compared as a string against the same bound.
    """

    def __init__(self, records: Iterable[Mapping[str, Any] | Order] = ()):
        self.records: dict[str, dict[str, Any]] = {}
        self.planning_calls = 0
        self.current_calls = 0
        self.put(*records)

    def put(self, *records: Mapping[str, Any] | Order) -> None:
        for r in records:
            record = order_record(r) if isinstance(r, Order) else dict(r)
            self.records[str(record["order_id"])] = record

    def set_status(self, order_id: str, status: str) -> None:
        self.records[order_id]["status"] = status

    def update(self, order_id: str, **fields: Any) -> None:
        self.records[order_id].update(fields)

    def orders_for_planning(self, since: datetime) -> Iterator[Order | InvalidOrder]:
        from nudge.domain.orders import parse_order

        self.planning_calls += 1
        lower = planning_lower_bound(since)
        for status in PLANNING_STATUSES:
            hits = [
                r
                for r in self.records.values()
                if r.get("status") == status
                and isinstance(r.get("created_at"), str)
                and r["created_at"] >= lower
            ]
            for r in sorted(hits, key=lambda r: r["created_at"]):
                yield parse_order(dict(r))

    def current(self, order_ids: Sequence[str]) -> dict[str, OrderNow]:
        self.current_calls += 1
        return {oid: order_now(self.records[oid]) for oid in order_ids if oid in self.records}


class FakeReminderLedger:
    """The reminder ledger in dicts, one lock standing in for DynamoDB's conditional writes."""

    def __init__(self, *, message_pointers: bool = False) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.quota: dict[date, int] = {}
        self._lock = threading.Lock()
        self._message_pointers = message_pointers  # SNS delivery-status logs: see adapters/ledger.py

    def states(self, order_ids: Sequence[str]) -> dict[str, ReminderState]:
        out: dict[str, ReminderState] = {}
        with self._lock:
            for oid in order_ids:
                state = reminder_state(self.items.get(oid, {"order_id": oid}))
                if state.reminders_sent or state.call_requested or state.held_out:
                    out[oid] = state
        return out

    def recent_sends(self, since: datetime, days: Iterable[date]) -> list[SentReminder]:
        lower = utc_iso(since)
        wanted = {d.isoformat() for d in days}
        with self._lock:
            hits = [
                dict(i)
                for i in self.items.values()
                if i.get("sent_day") in wanted and i.get("last_sent_at", "") >= lower
            ]
        return latest_per_order(sent_reminder(i) for i in hits)

    def sent_on(self, day: date) -> int:
        with self._lock:
            return max(0, self.quota.get(day, 0))

    def request_calls(self, order_ids: Sequence[str], at: datetime) -> None:
        with self._lock:
            for oid in order_ids:
                self._item(oid).setdefault("call_requested_at", utc_iso(at))

    def mark_held_out(self, attempts: Mapping[str, int], at: datetime, window: str, day: date) -> None:
        with self._lock:
            for oid, attempt in attempts.items():
                item = self._item(oid)
                if int(item.get("held_out_count", 0)) >= attempt:
                    continue  # a re-run plan does not move the mark
                item.setdefault("held_out_at", utc_iso(at))
                item.setdefault("held_out_day", day.isoformat())
                item.update(held_out_last_at=utc_iso(at), held_out_window=window, held_out_count=attempt)

    def claim(
        self,
        request: SendRequest,
        token: str,
        daily_cap: int,
        now: datetime,
        buyer_min_interval: timedelta | None = None,
    ) -> ClaimOutcome:
        if daily_cap <= 0:
            return ClaimOutcome.DAILY_LIMIT
        a = request.attempt
        slots = contact_keys(request) if buyer_min_interval else []
        with self._lock:
            item = self.items.get(request.order_id, {})
            if item.get("claimed_attempt", 0) >= a or item.get("reminders_sent", 0) >= a:
                claimed_at = item.get("claimed_at")
                return claim_failure(
                    a,
                    sent=item.get("reminders_sent", 0),
                    reported_unconfirmed=set(item.get("unconfirmed_attempts", ())),
                    claimed_attempt=item.get("claimed_attempt", 0),
                    claimed_at=datetime.fromisoformat(claimed_at) if claimed_at else None,
                    now=now,
                )
            cutoff = utc_iso(now - buyer_min_interval) if buyer_min_interval else ""
            for key in slots:
                if self.items.get(key, {}).get("contacted_at", "") > cutoff:
                    return ClaimOutcome.RECENTLY_CONTACTED
            if self.quota.get(request.day, 0) >= daily_cap:
                return ClaimOutcome.DAILY_LIMIT
            self.quota[request.day] = self.quota.get(request.day, 0) + 1
            at = utc_iso(now)
            self._item(request.order_id).update(
                claimed_attempt=a,
                claim_token=token,
                claimed_at=at,
                buyer_id=request.buyer_id,
                phone=request.phone,
            )
            for i, key in enumerate(slots):
                slot = self._item(key)
                slot.update(
                    previous_contacted_at=slot.get("contacted_at", ""),
                    contacted_at=at,
                    contact_token=token,
                    contact_order_id=request.order_id,
                    contact_attempt=a,
                )
                if i == 0:  # the phone slot is in the day index
                    slot.update(
                        sent_day=request.day.isoformat(),
                        last_sent_at=at,
                        buyer_id=request.buyer_id,
                        phone=request.phone,
                    )
            return ClaimOutcome.CLAIMED

    def release(self, request: SendRequest, token: str) -> None:
        a = request.attempt
        with self._lock:
            item = self.items.get(request.order_id, {})
            if (
                item.get("claim_token") != token
                or item.get("claimed_attempt") != a
                or item.get("reminders_sent", 0) >= a
            ):
                return  # nothing to release
            del item["claim_token"]
            if a > 1:
                item["claimed_attempt"] = a - 1
            else:
                del item["claimed_attempt"]
            self.quota[request.day] = self.quota.get(request.day, 0) - 1
            for i, key in enumerate(contact_keys(request)):
                slot = self.items.get(key, {})
                if slot.get("contact_token") != token:
                    continue  # not taken by this claim
                slot["contacted_at"] = slot.get("previous_contacted_at", "")
                for attr in ("contact_token", "contact_order_id", "contact_attempt"):
                    slot.pop(attr, None)
                if i == 0:
                    slot.pop("sent_day", None)
                    slot.pop("last_sent_at", None)

    def record_sent(self, request: SendRequest, token: str, message_id: str, sent_at: datetime) -> None:
        with self._lock:
            item = self.items.get(request.order_id, {})
            if item.get("claim_token") != token or item.get("claimed_attempt") != request.attempt:
                raise ClaimNotHeldError(
                    f"record_sent {request.dedupe_key}: claim not held by this token (message {message_id})"
                )
            item.update(
                reminders_sent=request.attempt,
                last_sent_at=utc_iso(sent_at),
                sent_day=request.day.isoformat(),
            )
            item[f"message_id_{request.attempt}"] = message_id
            item[f"sent_at_{request.attempt}"] = utc_iso(sent_at)
            item[f"window_{request.attempt}"] = request.window
            item[f"segments_{request.attempt}"] = request.segments
            if request.variant is not None:
                item[f"variant_{request.attempt}"] = request.variant
            if self._message_pointers:
                self.items[SNS_MESSAGE_PREFIX + message_id] = {
                    "order_id": SNS_MESSAGE_PREFIX + message_id,
                    "sms_order_id": request.order_id,
                    "sms_attempt": request.attempt,
                }

    def apply_receipt(self, receipt: Receipt) -> ReceiptOutcome:
        if self._message_pointers and receipt.order_id is None:
            with self._lock:
                pointer = self.items.get(SNS_MESSAGE_PREFIX + receipt.message_id)
            if pointer is not None:
                receipt = replace(receipt, order_id=pointer["sms_order_id"], attempt=pointer["sms_attempt"])
        if receipt.order_id is None or receipt.attempt is None:
            return ReceiptOutcome.UNKNOWN_MESSAGE
        a = receipt.attempt
        with self._lock:
            item = self.items.get(receipt.order_id)
            if item is None:
                return ReceiptOutcome.UNKNOWN_MESSAGE
            recorded = item.get(f"message_id_{a}")
            unconfirmed = recorded is None and a in item.get("unconfirmed_attempts", set())
            if recorded != receipt.message_id and not unconfirmed:
                return ReceiptOutcome.UNKNOWN_MESSAGE
            current = item.get(f"delivery_{a}")
            if not takes(DeliveryStatus(current) if current else None, receipt.status):
                return ReceiptOutcome.UNCHANGED
            item[f"message_id_{a}"] = receipt.message_id
            item[f"delivery_{a}"] = receipt.status.value
            item[f"delivery_code_{a}"] = receipt.code or ""
            item[f"delivery_at_{a}"] = utc_iso(receipt.at)
            return ReceiptOutcome.SETTLED if unconfirmed else ReceiptOutcome.APPLIED

    def awaiting_receipts(
        self, since: datetime, until: datetime, days: Sequence[date]
    ) -> Iterator[AwaitedSms]:
        lower, upper = utc_iso(since), utc_iso(until)
        for day in days:
            with self._lock:
                hits = [
                    dict(i)
                    for i in self.items.values()
                    if i.get("sent_day") == day.isoformat() and lower <= i.get("last_sent_at", "") <= upper
                ]
            for item in hits:
                yield from awaited_from_item(item)

    def mark_unknown(self, order_id: str, attempt: int, at: datetime) -> bool:
        with self._lock:
            item = self.items.get(order_id)
            if item is None:
                return False
            if f"message_id_{attempt}" not in item and attempt not in item.get("unconfirmed_attempts", set()):
                return False
            if item.get(f"delivery_{attempt}") not in (None, DeliveryStatus.PENDING.value):
                return False
            item[f"delivery_{attempt}"] = DeliveryStatus.UNKNOWN.value
            item[f"delivery_code_{attempt}"] = NO_RECEIPT_CODE
            item[f"delivery_at_{attempt}"] = utc_iso(at)
            return True

    def record_skip(self, request: SendRequest, reason: str, at: datetime) -> None:
        with self._lock:
            self._item(request.order_id).setdefault("skips", []).append(
                {"attempt": request.attempt, "reason": reason, "at": utc_iso(at)}
            )

    def record_unconfirmed(self, request: SendRequest, reason: str, at: datetime) -> None:
        with self._lock:
            item = self.items.get(request.order_id, {})
            if "sent_day" not in item and "claimed_at" in item:  # into the day index at its claim
                item.update(sent_day=request.day.isoformat(), last_sent_at=item["claimed_at"])
        self.record_skip(request, reason, at)
        with self._lock:
            self._item(request.order_id).setdefault("unconfirmed_attempts", set()).add(request.attempt)

    def record_opt_out(self, request: SendRequest, at: datetime) -> None:
        self.record_skip(request, OPTED_OUT_SKIP, at)
        self.add_opted_out(request.phone, at)

    def add_opted_out(self, phone: str, at: datetime) -> None:
        with self._lock:
            self._item(OPTED_OUT_KEY).setdefault("phones", set()).add(phone)

    def opted_out_phones(self) -> set[str]:
        with self._lock:
            return set(self.items.get(OPTED_OUT_KEY, {}).get("phones", ()))

    def _item(self, order_id: str) -> dict[str, Any]:
        return self.items.setdefault(order_id, {"order_id": order_id})


class FakeSendQueue:
    """Keeps what was enqueued; each request goes through the same JSON body as the SQS adapter."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.batches = 0
        self.delays: list[int] = []  # the delay_seconds of each enqueue call

    def enqueue(self, requests: Sequence[SendRequest], *, delay_seconds: int = 0) -> int:
        self.delays.append(delay_seconds)
        for start in range(0, len(requests), SQS_BATCH_LIMIT):
            self.batches += 1
            self.bodies.extend(SqsSendQueue.body(r) for r in requests[start : start + SQS_BATCH_LIMIT])
        return len(requests)

    @property
    def requests(self) -> list[SendRequest]:
        return [SendRequest.from_json(json.loads(b)) for b in self.bodies]

    def drain(self) -> list[SendRequest]:
        out = self.requests
        self.bodies.clear()
        return out


class FakeSmsGateway:
    """Records published SMS. Opted-out numbers are a set; failures can be injected.

    ``fail_next(n)``: the next n publishes raise TransientSendError. ``failing_numbers``: every
    publish to these raises TransientSendError. A number that is not E.164 raises
    PermanentSendError, as SNS (and moto) answer InvalidParameter.
    """

    def __init__(self, opted_out: Iterable[str] = (), failing_numbers: Iterable[str] = ()):
        self.opted_out = set(opted_out)
        self.failing_numbers = set(failing_numbers)
        self.published: list[tuple[str, str, str]] = []  # (phone, text, message_id)
        self.opt_out_checks: list[str] = []
        self.handed: list[OutgoingSms] = []  # every SMS handed over, published or not
        self._fail_next = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def fail_next(self, n: int = 1) -> None:
        self._fail_next = n

    checks_opt_out = False  # like SNS; True plays a gateway with its own opt-out list

    def is_opted_out(self, phone: str) -> bool:
        self.opt_out_checks.append(phone)
        return phone in self.opted_out

    def publish(self, sms: OutgoingSms) -> str:
        phone, text = sms.phone, sms.text
        with self._lock:
            self.handed.append(sms)
            if self.checks_opt_out and phone in self.opted_out:
                raise OptedOutError("fake: the number opted out")
            if self._fail_next > 0:
                self._fail_next -= 1
                raise TransientSendError("fake: throttled")
            if phone in self.failing_numbers:
                raise TransientSendError(f"fake: throttled for {phone}")
            if not _E164.match(phone):
                raise PermanentSendError("InvalidParameter: Phone number does not meet the E164 format")
            message_id = f"fake-{next(self._ids)}"
            self.published.append((phone, text, message_id))
            return message_id

    @property
    def sent(self) -> list[tuple[str, str]]:
        return [(phone, text) for phone, text, _ in self.published]
