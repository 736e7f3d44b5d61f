"""The small interfaces the services use to reach AWS. Adapters: ``nudge.adapters``; fakes: ``tests/fakes.py``.

Each method is one batched round trip (or a few pages), never a call per order on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from nudge.domain.delivery import AwaitedSms, Receipt
from nudge.domain.models import InvalidOrder, Order, ReminderState, SentReminder
from nudge.domain.order_changes import OrderChange
from nudge.domain.outcomes import HoldoutMark, Outcome, SmsSent


def _template_params(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("template_params: expected an object of strings")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One SMS the planner asks the sender to send: the body of one SQS message."""

    order_id: str
    buyer_id: str
    phone: str  # E.164
    attempt: int
    text: str
    segments: int
    not_after: datetime  # past this instant the SMS is dropped, never sent late
    day: date  # the shop-local day whose SMS cap this send counts against
    window: str  # "09:50-10:40"
    planned_at: datetime
    # Not before the window opens (a plan invoked within its clock-skew allowance before the
    # scheduled time still plans): the queue holds the message back, the sender re-checks.
    not_before: datetime | None = None
    variant: str | None = None  # the order's variant of the text (messages.variants), if any
    # The text's values for a gateway that sends registered templates (Alibaba Cloud's
    # TemplateParam: messages.template_params); None for gateways that send ``text`` itself.
    template_params: dict[str, str] | None = field(default=None, hash=False)

    def to_json(self) -> dict:
        out = asdict(self)
        out["not_after"] = self.not_after.isoformat()
        out["planned_at"] = self.planned_at.isoformat()
        out["day"] = self.day.isoformat()
        out["not_before"] = self.not_before.isoformat() if self.not_before else None
        if self.template_params is None:
            del out["template_params"]  # the messages of the text-sending gateways stay as they were
        return out

    @classmethod
    def from_json(cls, data: dict) -> SendRequest:
        return cls(
            order_id=str(data["order_id"]),
            buyer_id=str(data["buyer_id"]),
            phone=str(data["phone"]),
            attempt=int(data["attempt"]),
            text=str(data["text"]),
            segments=int(data["segments"]),
            not_after=datetime.fromisoformat(data["not_after"]),
            day=date.fromisoformat(data["day"]),
            window=str(data["window"]),
            planned_at=datetime.fromisoformat(data["planned_at"]),
            not_before=datetime.fromisoformat(data["not_before"]) if data.get("not_before") else None,
            # Absent from a message queued before variants existed.
            variant=str(data["variant"]) if data.get("variant") is not None else None,
            template_params=_template_params(data.get("template_params")),
        )

    @property
    def dedupe_key(self) -> str:
        """The identity the ledger claims: one SMS per (order, attempt), ever."""
        return f"{self.order_id}#{self.attempt}"


class ClaimOutcome(StrEnum):
    """What ``ReminderLedger.claim`` found. Only CLAIMED lets the sender publish."""

    CLAIMED = "claimed"  # this sender owns (order, attempt): it may publish once
    # (order, attempt) is settled: recorded as sent, or its unknown outcome already recorded
    # (``record_unconfirmed``). A duplicate delivery: drop.
    ALREADY_CLAIMED = "already_claimed"
    # Held by another sender for less than CLAIM_IN_FLIGHT_LIMIT and not recorded yet: it may be
    # publishing right now (concurrent pollers with the same message queued twice). Drop.
    IN_FLIGHT = "in_flight"
    # Held for longer than CLAIM_IN_FLIGHT_LIMIT and never recorded: the sender that took it died
    # between claim and record (or lost SNS's answer and could not say so). The SMS may be out;
    # nobody has reported it yet. Drop, never publish, and report it.
    UNCONFIRMED = "unconfirmed"
    # The buyer (by buyer id or by phone) was contacted less than the minimum interval ago,
    # including by a claim whose outcome is unknown. Drop.
    RECENTLY_CONTACTED = "recently_contacted"
    DAILY_LIMIT = "daily_limit"  # the shop-local day's SMS cap is used up: drop


# A claim lives from the sender's claim to its record_sent: within one send invocation, whose
# timeout (60 s in template.yaml) is well below this. A claim older than this that was never
# recorded cannot be in flight any more: its sender died. SQS redelivers a failed message only
# after the visibility timeout (370 s), so a redelivery always sees such a claim as UNCONFIRMED.
CLAIM_IN_FLIGHT_LIMIT = timedelta(minutes=2)


def claim_failure(
    attempt: int,
    *,
    sent: int,
    reported_unconfirmed: set[int],
    claimed_attempt: int,
    claimed_at: datetime | None,
    now: datetime,
) -> ClaimOutcome:
    """Why a claim of ``attempt`` failed, from what the ledger holds for the order: the one rule
    every ledger (DynamoDB, the in-memory fake) answers with."""
    if sent >= attempt or attempt in reported_unconfirmed:
        return ClaimOutcome.ALREADY_CLAIMED  # settled: sent, or its unknown outcome reported
    if claimed_attempt == attempt and claimed_at is not None and claimed_at > now - CLAIM_IN_FLIGHT_LIMIT:
        return ClaimOutcome.IN_FLIGHT
    return ClaimOutcome.UNCONFIRMED


@dataclass(frozen=True, slots=True)
class OrderNow:
    """What the sender re-reads of an order just before its SMS: has it been paid, closed, or
    has it aged out since it was planned? ``invalid_field`` names a field that no longer parses
    (the sender then sends nothing: it cannot vouch for the order)."""

    status: str | None
    created_at: datetime | None = None
    closes_at: datetime | None = None
    invalid_field: str | None = None


class DalError(RuntimeError):
    """An AWS call could not be completed after bounded retries; nothing is silently lost."""


class SecretsUnavailable(RuntimeError):
    """Secrets Manager could not be read (throttled, denied, down): not the sender's fault."""


class TransientSendError(Exception):
    """SNS refused for now (throttling, 5xx): nothing was sent; try again later."""


class PermanentSendError(Exception):
    """SNS refused this SMS for good (e.g. an invalid number): nothing was sent; retrying won't help."""


class OrderRepository(Protocol):
    def orders_for_planning(self, since: datetime) -> Iterator[Order | InvalidOrder]:
        """Unpaid and paid orders created at or after ``since`` (index queries, never Scan).

        May return a few older ones (ISO strings with different offsets do not sort by
        instant); the rules judge each order's age themselves.
        """
        ...

    def current(self, order_ids: Sequence[str]) -> dict[str, OrderNow]:
        """Status, ``created_at`` and ``closes_at`` of each order as they are now (batched,
        strongly consistent reads); missing orders are left out."""
        ...


class ReminderLedger(Protocol):
    def states(self, order_ids: Sequence[str]) -> dict[str, ReminderState]:
        """Ledger state of these orders (batched reads); orders never reminded are left out.

        ``reminders_sent`` counts an attempt that is claimed but not recorded (outcome unknown,
        or in flight) as taken: it may have reached the buyer, so it is never planned again."""
        ...

    def recent_sends(self, since: datetime, days: Iterable[date]) -> list[SentReminder]:
        """The last SMS of every order sent at or after ``since``, and every claim taken since
        then whose outcome is unknown (it may have reached the buyer); ``days`` are the
        shop-local days that range touches (the ledger indexes sends by day)."""
        ...

    def sent_on(self, day: date) -> int:
        """How many SMS were sent (claimed) on this shop-local day."""
        ...

    def request_calls(self, order_ids: Sequence[str], at: datetime) -> None:
        """Put these large orders on the staff call list (marks them `call_requested`)."""
        ...

    def mark_held_out(self, attempts: Mapping[str, int], at: datetime, window: str, day: date) -> None:
        """Keep these orders in the holdout group: order id -> the reminder each was held out of
        (first and latest time, window, shop-local day); the same reminder again changes nothing."""
        ...

    def claim(
        self,
        request: SendRequest,
        token: str,
        daily_cap: int,
        now: datetime,
        buyer_min_interval: timedelta | None = None,
    ) -> ClaimOutcome:
        """Atomically take (order, attempt), one unit of the day's SMS cap and, when
        ``buyer_min_interval`` is given, the buyer's contact slots (by buyer id and by phone),
        free only if neither was contacted in the last ``buyer_min_interval``. ``None`` takes no
        slot (history imports; the sender always passes its interval)."""
        ...

    def release(self, request: SendRequest, token: str) -> None:
        """Undo a claim whose publish certainly did not happen (e.g. throttled): the attempt,
        the unit of the cap and the contact slots (their previous contact time comes back)."""
        ...

    def record_sent(self, request: SendRequest, token: str, message_id: str, sent_at: datetime) -> None:
        """After a publish: count the reminder, keep the message id, refresh the TTL."""
        ...

    def record_skip(self, request: SendRequest, reason: str, at: datetime) -> None:
        """Keep why a planned SMS was not sent (e.g. paid meanwhile)."""
        ...

    def record_unconfirmed(self, request: SendRequest, reason: str, at: datetime) -> None:
        """A claimed attempt whose outcome is unknown has been reported: keep why (as a skip),
        and make later deliveries of it plain duplicates (ALREADY_CLAIMED), not new reports."""
        ...

    def record_opt_out(self, request: SendRequest, at: datetime) -> None:
        """SNS says this number is opted out: keep it, for this order and for every later plan."""
        ...

    def opted_out_phones(self) -> set[str]:
        """Numbers SNS reported opted out, as recorded by ``record_opt_out`` (one read)."""
        ...


class SendQueue(Protocol):
    def enqueue(self, requests: Sequence[SendRequest], *, delay_seconds: int = 0) -> int:
        """Queue the sends in batches of 10, invisible for ``delay_seconds``; returns how many
        were accepted."""
        ...


class OptedOutError(PermanentSendError):
    """The gateway refused the SMS because the number opted out (its own list): nothing was sent."""


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One SMS handed to a gateway, with everything any gateway can use: End User Messaging's
    time-to-live counts down to ``not_after`` and its ``Context`` names the order, attempt and
    variant; Alibaba Cloud's ``OutId`` names the SMS's ledger key (reminder and order id)."""

    phone: str  # E.164
    text: str
    order_id: str
    attempt: int
    claim_token: str
    not_after: datetime  # past this instant the SMS must not reach the buyer
    handed_at: datetime  # when the sender hands it over (the time-to-live counts from here)
    variant: str | None = None
    # The values of a registered template (Alibaba Cloud's TemplateParam), when the plan made them.
    template_params: Mapping[str, str] | None = field(default=None, hash=False)

    @classmethod
    def of(cls, request: SendRequest, *, claim_token: str, handed_at: datetime) -> OutgoingSms:
        return cls(
            phone=request.phone,
            text=request.text,
            order_id=request.order_id,
            attempt=request.attempt,
            claim_token=claim_token,
            not_after=request.not_after,
            handed_at=handed_at,
            variant=request.variant,
            template_params=request.template_params,
        )


class SmsGateway(Protocol):
    # True: the sender makes no per-SMS opt-out check call (the gateway keeps its own list and
    # refuses with OptedOutError, like End User Messaging, or has no such call, like Alibaba
    # Cloud) and reads the shop's own list once per batch instead. False (SNS): the sender asks
    # ``is_opted_out`` before each claim.
    checks_opt_out: bool

    def is_opted_out(self, phone: str) -> bool: ...

    def publish(self, sms: OutgoingSms) -> str:
        """Send one SMS; returns the gateway's message id. Raises TransientSendError when nothing
        was sent and a retry may work, PermanentSendError (OptedOutError) when it never will; any
        other error means the outcome is unknown."""
        ...


# ------------------------------------------------------------------------------ orders in


class WriteOutcome(StrEnum):
    WRITTEN = "written"  # the order now holds this change
    FILLED = "filled"  # an older whole record completed an order known only by its status
    UNCHANGED = "unchanged"  # stale, the same, or it would have gone backwards: nothing changed
    DUPLICATE = "duplicate"  # this delivery was stored before


class WebhookSecrets(Protocol):
    def secret(self, route: str) -> str | None:
        """The route's secret, None while it is not set. Raises SecretsUnavailable."""
        ...


class OrdersStore(Protocol):
    def apply(
        self, change: OrderChange, *, delivery: str | None = None, now: datetime | None = None
    ) -> WriteOutcome: ...


# ------------------------------------------------------------------------------ receipts


class ReceiptOutcome(StrEnum):
    APPLIED = "applied"  # the SMS's delivery status changed
    SETTLED = "settled"  # an unconfirmed send's receipt: the SMS did go out, now it is known
    UNCHANGED = "unchanged"  # a repeat, or older than what is recorded (never backwards)
    UNKNOWN_MESSAGE = "unknown_message"  # no SMS with this id for that order and attempt: dropped


class DeliveryLedger(Protocol):
    def add_opted_out(self, phone: str, at: datetime) -> None:
        """Put the number on the do-not-contact list (what ``opted_out_phones`` returns)."""
        ...

    def apply_receipt(self, receipt: Receipt) -> ReceiptOutcome:
        """Record a receipt on its SMS's ledger item (one conditional write): never backwards,
        never creating an item. ``receipt`` names the order and attempt (the gateway's context)."""
        ...

    def awaiting_receipts(
        self, since: datetime, until: datetime, days: Sequence[date]
    ) -> Iterator[AwaitedSms]:
        """Every SMS (with its delivery status) of the order items whose last SMS was sent in
        [``since``, ``until``] on these shop-local days: Query on the day index, read lazily."""
        ...

    def mark_unknown(self, order_id: str, attempt: int, at: datetime) -> bool:
        """Write ``unknown`` (code NO_RECEIPT_72H) on this SMS if it still has no final status (one
        conditional write, never creating an item or an SMS); False when it did not apply."""
        ...


# ------------------------------------------------------------------------------ outcomes


@dataclass(frozen=True, slots=True)
class OrderTouches:
    """What the ledger knows about one order: its SMS, its hold-out mark, whether it has an outcome."""

    sends: tuple[SmsSent, ...] = ()
    holdout: HoldoutMark | None = None
    recorded: bool = False
    phone: str | None = None  # the number the last SMS went to (for the report's masked listing)


class OutcomeStore(Protocol):
    def touches(self, order_ids: Sequence[str]) -> dict[str, OrderTouches]:
        """Ledger state of these orders (batched reads); orders the ledger never saw are left out."""
        ...

    def record_outcome(self, outcome: Outcome, at: datetime) -> bool:
        """Write the order's outcome if it has none yet; False when one was already recorded."""
        ...


# ------------------------------------------------------------------------------ staff


class StaffNotifier(Protocol):
    def publish(self, subject: str, body: str) -> str:
        """Send one message to the staff topic; returns its message id."""
        ...
