"""The send service: one queued SMS at a time, each guarded so it goes out at most once.

Order of the guards, and why:
0. the operators' pause switch: a paused shop sends nothing, even what is already queued;
1. pace to the shop's SMS-per-second ceiling (before the checks, so they see the real send time);
2. the deadline (window end or the buyer's night): late is never acceptable;
3. the order is still unpaid (a payment may have landed since planning);
4. the number is not opted out at SNS;
5. claim (order, attempt) and one unit of the day's cap in one conditional write;
6. publish; on throttling release the claim and let SQS redeliver; on an unknown failure keep
   the claim, since the SMS may have gone out: a lost reminder is better than a double one;
7. record the message id and count the reminder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from nudge.services.ports import (
    ClaimOutcome,
    OrderRepository,
    PermanentSendError,
    ReminderLedger,
    SendRequest,
    SmsGateway,
    TransientSendError,
)


class SendOutcome(StrEnum):
    SENT = "sent"
    PAUSED = "paused"
    PAST_DEADLINE = "past_deadline"
    NOT_UNPAID = "not_unpaid"
    OPTED_OUT = "opted_out"
    DUPLICATE = "duplicate"
    DAILY_LIMIT = "daily_limit"
    REJECTED = "rejected"
    DRY_RUN = "dry_run"


class RetryLaterError(Exception):
    """Nothing was sent and the claim is released: leave the message on the queue for later."""


class UnconfirmedSendError(Exception):
    """The claim is held and the SMS may be out (publish or its record failed mid-way): the
    attempt is never published again. Any other exception from ``deliver`` came before a claim,
    so a redelivery simply tries again."""


@dataclass(slots=True)
class Pacer:
    """Spaces publishes to at most ``per_second``, with the clock and sleep it is given."""

    per_second: float
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    _next: datetime | None = None

    def wait(self) -> None:
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep((self._next - now).total_seconds())
            now = self.clock()
        self._next = now + timedelta(seconds=1 / self.per_second)


@dataclass(slots=True)
class Sender:
    orders: OrderRepository
    ledger: ReminderLedger
    sms: SmsGateway
    clock: Callable[[], datetime]
    pacer: Pacer
    daily_cap: int
    new_token: Callable[[], str]
    dry_run: bool = False
    _statuses: dict[str, str] = field(default_factory=dict)
    _paused: bool = False

    def start_batch(self, requests: Sequence[SendRequest], *, paused: bool = False) -> None:
        """Read the orders' current status once for a whole SQS batch, not once per SMS.

        Replaces what an earlier batch read: a warm container must never trust an old status.
        ``paused``: the operators' switch; a paused batch is dropped unsent (and unread).
        """
        self._paused = paused
        ids = list(dict.fromkeys(r.order_id for r in requests))
        self._statuses = self.orders.statuses(ids) if ids and not paused else {}

    def deliver(self, request: SendRequest) -> SendOutcome:
        if self._paused:
            # Dropped, not retried: the next window after the shop resumes plans it again.
            return SendOutcome.PAUSED
        self.pacer.wait()
        now = self.clock()
        if now >= request.not_after:
            # The window closed (or the buyer's night began): the next window plans it again.
            return SendOutcome.PAST_DEADLINE
        if request.order_id not in self._statuses:  # not in this batch's read: read it now
            self._statuses.update(self.orders.statuses([request.order_id]))
        if self._statuses.get(request.order_id) != "unpaid":
            self.ledger.record_skip(request, SendOutcome.NOT_UNPAID.value, now)
            return SendOutcome.NOT_UNPAID
        try:
            opted_out = self.sms.is_opted_out(request.phone)
        except TransientSendError as exc:  # nothing claimed yet: just try again later
            raise RetryLaterError(str(exc)) from exc
        except PermanentSendError as exc:  # SNS will not take this number: publishing would fail too
            self.ledger.record_skip(request, f"{SendOutcome.REJECTED.value}: {exc}", now)
            return SendOutcome.REJECTED
        if opted_out:
            self.ledger.record_opt_out(request, now)  # later plans skip the number as opted_out
            return SendOutcome.OPTED_OUT
        if self.dry_run:
            return SendOutcome.DRY_RUN

        token = self.new_token()
        claim = self.ledger.claim(request, token, self.daily_cap, now)
        if claim is ClaimOutcome.ALREADY_CLAIMED:
            return SendOutcome.DUPLICATE
        if claim is ClaimOutcome.DAILY_LIMIT:
            return SendOutcome.DAILY_LIMIT
        try:
            message_id = self.sms.publish(request.phone, request.text)
        except TransientSendError as exc:
            self.ledger.release(request, token)
            raise RetryLaterError(str(exc)) from exc
        except PermanentSendError as exc:
            self.ledger.release(request, token)
            self.ledger.record_skip(request, f"{SendOutcome.REJECTED.value}: {exc}", now)
            return SendOutcome.REJECTED
        except Exception as exc:
            # No answer (e.g. a read timeout): the SMS may be out, so the claim is kept and this
            # attempt is never published again (a redelivered message finds it claimed).
            raise UnconfirmedSendError(f"{request.dedupe_key}: publish outcome unknown: {exc!r}") from exc
        try:
            self.ledger.record_sent(request, token, message_id, self.clock())
        except Exception as exc:
            raise UnconfirmedSendError(
                f"{request.dedupe_key}: sent as {message_id} but not recorded: {exc!r}"
            ) from exc
        return SendOutcome.SENT
