"""The send service: one queued SMS at a time, each guarded so it goes out at most once.

Order of the guards, and why:
0. the operators' pause switch: a paused shop sends nothing, even what is already queued;
1. pace to the shop's SMS-per-second ceiling (before the checks, so they see the real send time);
2. the deadline (window end or the buyer's night): late is never acceptable;
3. the order as it is now (one strongly consistent read per SQS batch): still unpaid, not closed
   (``closes_at``), not older than ``max_age``: a payment or a closing may have landed since
   planning, and a throttled retry may come after the order closed;
4. the number is not opted out at SNS;
5. enough of the invocation left to publish and record (else retry later, unclaimed): a claim
   whose sender is killed by the Lambda timeout is a reminder lost as "unknown";
6. claim (order, attempt), the buyer's contact slots (buyer id and phone, free only if not
   contacted within ``buyer_min_interval``) and one unit of the day's cap, in one transaction;
7. publish; on throttling release the claim and let SQS redeliver; on an unknown failure keep
   the claim, since the SMS may have gone out: a lost reminder is better than a double one;
8. record the message id and count the reminder.

A claim that is held but was never recorded (its sender died between claim and record) comes
back to a redelivery as UNCONFIRMED, is reported once (``record_unconfirmed``) and never published.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from nudge.services.ports import (
    ClaimOutcome,
    OptedOutError,
    OrderNow,
    OrderRepository,
    OutgoingSms,
    PermanentSendError,
    ReminderLedger,
    SendRequest,
    SmsGateway,
    TransientSendError,
)

log = logging.getLogger(__name__)

# What a send needs after its claim, at worst: one Publish (2 s to connect + 10 s to read, one
# attempt: ``nudge.adapters.sns.SNS_CLIENT_CONFIG``) and one UpdateItem to record it, with room.
MIN_TIME_TO_SEND = timedelta(seconds=20)


class SendOutcome(StrEnum):
    SENT = "sent"
    PAUSED = "paused"
    PAST_DEADLINE = "past_deadline"
    NOT_UNPAID = "not_unpaid"
    EXPIRED = "expired"  # closed (closes_at <= now) or created max_age ago or more
    INVALID_ORDER = "invalid_order"  # the order record no longer parses (a date field)
    OPTED_OUT = "opted_out"
    BUYER_RECENTLY_CONTACTED = "buyer_recently_contacted"
    DUPLICATE = "duplicate"  # settled before, or held right now by a concurrent sender
    UNCONFIRMED = "unconfirmed"  # held by a sender that died; the SMS may be out: never resent
    DAILY_LIMIT = "daily_limit"
    REJECTED = "rejected"
    DRY_RUN = "dry_run"


class RetryLaterError(Exception):
    """Nothing was sent and nothing is claimed: leave the message on the queue for later."""


class TooLittleTimeError(RetryLaterError):
    """The invocation is about to time out: not claimed, retried by a later invocation."""


class TooEarlyError(RetryLaterError):
    """The SMS's window has not opened yet: not claimed, retried after the visibility timeout."""


class UnconfirmedSendError(Exception):
    """The claim is held and the SMS may be out (publish or its record failed mid-way): the
    attempt is never published again, and it is recorded as unconfirmed (so a redelivery is a
    plain duplicate). Any other exception from ``deliver`` came before a claim, so a
    redelivery simply tries again."""


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
    """What lives as long as a container: the ports, the clock, the pacer and the limits.

    Per-invocation state lives in the ``SendBatch`` that ``start_batch`` returns, never here.
    """

    orders: OrderRepository
    ledger: ReminderLedger
    sms: SmsGateway
    clock: Callable[[], datetime]
    pacer: Pacer
    daily_cap: int
    buyer_min_interval: timedelta  # at most one SMS per buyer (id or phone) per this interval
    max_age: timedelta  # an order this old is expired, however it was planned
    new_token: Callable[[], str]
    dry_run: bool = False
    min_time_to_send: timedelta = MIN_TIME_TO_SEND
    # The longest a publish can take (the SNS client's connect + read timeouts): a claim is only
    # made while the SMS would still go out before its deadline even then.
    publish_timeout: timedelta = timedelta(0)

    def start_batch(
        self,
        requests: Sequence[SendRequest],
        *,
        paused: bool = False,
        remaining_ms: Callable[[], int] | None = None,
    ) -> SendBatch:
        """Read the orders as they are now once for a whole SQS batch, not once per SMS.

        ``paused``: the operators' switch; a paused batch is dropped unsent (and unread).
        ``remaining_ms``: the invocation's time left (``context.get_remaining_time_in_millis``).
        """
        ids = list(dict.fromkeys(r.order_id for r in requests))
        orders_now = self.orders.current(ids) if ids and not paused else {}
        # A gateway with its own opt-out list is not asked per SMS, and it does not know the shop's
        # list (buyers who replied 退订 or TD, numbers added by staff): read it once per batch, so an
        # opt-out reaches the SMS already queued too.
        opted_out = (
            self.ledger.opted_out_phones() if ids and not paused and self.sms.checks_opt_out else set()
        )
        return SendBatch(
            self, paused=paused, orders_now=orders_now, remaining_ms=remaining_ms, opted_out=opted_out
        )


@dataclass(slots=True)
class SendBatch:
    """One SQS batch: the orders as read for it and the pause switch; dropped with the invocation."""

    sender: Sender
    paused: bool = False
    orders_now: dict[str, OrderNow] = field(default_factory=dict)
    remaining_ms: Callable[[], int] | None = None
    opted_out: set[str] = field(default_factory=set)  # the shop's list, read for this batch

    def deliver(self, request: SendRequest) -> SendOutcome:
        s = self.sender
        if self.paused:
            # Dropped, not retried: the next window after the shop resumes plans it again.
            return SendOutcome.PAUSED
        s.pacer.wait()
        now = s.clock()
        if now >= request.not_after:
            # The window closed (or the buyer's night began): the next window plans it again.
            return SendOutcome.PAST_DEADLINE
        if request.not_before is not None and now < request.not_before:
            raise TooEarlyError(f"{request.dedupe_key}: its window opens at {request.not_before.isoformat()}")
        if request.order_id not in self.orders_now:  # not in this batch's read: read it now
            self.orders_now.update(s.orders.current([request.order_id]))
        skipped = self._order_skip(self.orders_now.get(request.order_id), now)
        if skipped is not None:
            outcome, reason = skipped
            s.ledger.record_skip(request, reason, now)
            return outcome
        if request.phone in self.opted_out:  # the shop's own list (a reply, the staff)
            s.ledger.record_skip(request, SendOutcome.OPTED_OUT.value, now)
            return SendOutcome.OPTED_OUT
        if not s.sms.checks_opt_out:  # a gateway with its own opt-out list refuses at publish
            try:
                opted_out = s.sms.is_opted_out(request.phone)
            except TransientSendError as exc:  # nothing claimed yet: just try again later
                raise RetryLaterError(str(exc)) from exc
            except PermanentSendError as exc:  # it will not take this number: publishing would fail too
                s.ledger.record_skip(request, f"{SendOutcome.REJECTED.value}: {exc}", now)
                return SendOutcome.REJECTED
            if opted_out:
                s.ledger.record_opt_out(request, now)  # later plans skip the number as opted_out
                return SendOutcome.OPTED_OUT
        if s.dry_run:
            return SendOutcome.DRY_RUN
        if self.remaining_ms is not None and self.remaining_ms() < s.min_time_to_send.total_seconds() * 1000:
            raise TooLittleTimeError(
                f"{request.dedupe_key}: {self.remaining_ms()} ms left in this invocation"
            )

        # The checks above take time (an SNS call, maybe a read): the deadline is checked again
        # with the publish's own worst case, so no SMS goes out past it however slow SNS is.
        now = s.clock()
        if now + s.publish_timeout >= request.not_after:
            return SendOutcome.PAST_DEADLINE
        token = s.new_token()
        claim = s.ledger.claim(request, token, s.daily_cap, now, s.buyer_min_interval)
        if claim is not ClaimOutcome.CLAIMED:
            return self._not_claimed(request, claim, now)
        # The claim takes time too (a transaction conflict is retried with backoff): the deadline
        # is checked once more at the real hand-off, whose instant the gateway's time-to-live counts
        # from. Given back, the attempt is planned again in a later window.
        now = s.clock()
        if now + s.publish_timeout >= request.not_after:
            s.ledger.release(request, token)
            return SendOutcome.PAST_DEADLINE
        try:
            message_id = s.sms.publish(OutgoingSms.of(request, claim_token=token, handed_at=now))
        except TransientSendError as exc:
            s.ledger.release(request, token)
            raise RetryLaterError(str(exc)) from exc
        except OptedOutError:  # the gateway's own list: nothing sent, remembered for later plans
            s.ledger.release(request, token)
            s.ledger.record_opt_out(request, now)
            return SendOutcome.OPTED_OUT
        except PermanentSendError as exc:
            s.ledger.release(request, token)
            s.ledger.record_skip(request, f"{SendOutcome.REJECTED.value}: {exc}", now)
            return SendOutcome.REJECTED
        except Exception as exc:
            # No answer (e.g. a read timeout): the SMS may be out, so the claim is kept and this
            # attempt is never published again (a redelivered message finds it claimed).
            raise self._unconfirmed(request, f"publish outcome unknown: {exc!r}", now) from exc
        try:
            s.ledger.record_sent(request, token, message_id, s.clock())
        except Exception as exc:
            raise self._unconfirmed(request, f"sent as {message_id} but not recorded: {exc!r}", now) from exc
        return SendOutcome.SENT

    def _order_skip(self, order: OrderNow | None, now: datetime) -> tuple[SendOutcome, str] | None:
        if order is None or order.status != "unpaid":
            return SendOutcome.NOT_UNPAID, SendOutcome.NOT_UNPAID.value
        if order.invalid_field:
            return SendOutcome.INVALID_ORDER, f"{SendOutcome.INVALID_ORDER.value}: {order.invalid_field}"
        if order.closes_at is not None and order.closes_at <= now:
            return (
                SendOutcome.EXPIRED,
                f"{SendOutcome.EXPIRED.value}: closed at {order.closes_at.isoformat()}",
            )
        if order.created_at is not None and now - order.created_at >= self.sender.max_age:
            return SendOutcome.EXPIRED, f"{SendOutcome.EXPIRED.value}: older than {self.sender.max_age}"
        return None

    def _not_claimed(self, request: SendRequest, claim: ClaimOutcome, now: datetime) -> SendOutcome:
        ledger = self.sender.ledger
        if claim is ClaimOutcome.RECENTLY_CONTACTED:
            ledger.record_skip(request, SendOutcome.BUYER_RECENTLY_CONTACTED.value, now)
            return SendOutcome.BUYER_RECENTLY_CONTACTED
        if claim is ClaimOutcome.UNCONFIRMED:
            # A sender took this attempt long ago and never recorded it (it died between claim and
            # record): the SMS may be out. Reported once; later deliveries are plain duplicates.
            ledger.record_unconfirmed(
                request, f"{SendOutcome.UNCONFIRMED.value}: claimed, never recorded as sent", now
            )
            return SendOutcome.UNCONFIRMED
        if claim is ClaimOutcome.DAILY_LIMIT:
            return SendOutcome.DAILY_LIMIT
        return SendOutcome.DUPLICATE  # ALREADY_CLAIMED or IN_FLIGHT

    def _unconfirmed(self, request: SendRequest, why: str, now: datetime) -> UnconfirmedSendError:
        error = UnconfirmedSendError(f"{request.dedupe_key}: {why}")
        try:
            self.sender.ledger.record_unconfirmed(request, f"{SendOutcome.UNCONFIRMED.value}: {why}", now)
        except Exception:  # e.g. DynamoDB is down: the redelivery reports it instead
            log.warning("could not record %s as unconfirmed", request.dedupe_key, exc_info=True)
        return error
