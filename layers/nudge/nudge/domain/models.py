"""Plain data shared by the pure core, the services and the adapters.

Nothing here does I/O. Times are timezone-aware ``datetime`` values; money is ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Literal


class Action(StrEnum):
    SEND = "send"
    CALL = "call"
    SKIP = "skip"


class Reason(StrEnum):
    """Why an order is not sent an SMS now. Declared in the rules contract's (docs/RULES.md) precedence: first wins."""

    INVALID_ORDER = "invalid_order"
    NOT_UNPAID = "not_unpaid"
    EXPIRED = "expired"
    PAUSED = "paused"
    REST_DAY = "rest_day"
    OUTSIDE_WINDOW = "outside_window"
    CASH_ON_DELIVERY = "cash_on_delivery"
    DISTRIBUTION_CHANNEL = "distribution_channel"
    BLOCKED_BUYER = "blocked_buyer"
    OPTED_OUT = "opted_out"
    INVALID_PHONE = "invalid_phone"
    BUYER_PAID_SAME_DAY = "buyer_paid_same_day"
    SUPERSEDED = "superseded"
    TOO_NEW = "too_new"
    MAX_REMINDERS = "max_reminders"
    BUYER_RECENTLY_CONTACTED = "buyer_recently_contacted"
    QUIET_HOURS = "quiet_hours"
    DAILY_LIMIT = "daily_limit"
    LARGE_ORDER = "large_order"  # action `call`
    CALL_REQUESTED = "call_requested"  # skip: already on the staff call list
    HOLDOUT = "holdout"  # skip: in the holdout group (rules.holdout_percent), to measure lift


REASON_PRECEDENCE: tuple[Reason, ...] = tuple(Reason)

ORDER_STATUSES = frozenset({"unpaid", "paid", "closed"})
PAYMENT_METHODS = frozenset({"online", "cod"})


@dataclass(slots=True)  # not frozen: a frozen init costs ~2x and runs for every order read
class Order:
    """One shop order, validated against the rules contract's (docs/RULES.md) order record.

    ``phone`` is kept as the shop wrote it: parsing it is costly and only needed for the few
    orders that get far enough in the rules (see ``nudge.domain.phones``).
    """

    order_id: str
    buyer_id: str
    phone: str
    status: str
    created_at: datetime
    amount: Decimal
    currency: str | None = None
    channel: str = "direct"
    payment_method: str = "online"
    paid_at: datetime | None = None
    closes_at: datetime | None = None
    buyer_flags: frozenset[str] = frozenset()
    buyer_name: str | None = None
    item_title: str | None = None
    pay_url: str | None = None


@dataclass(frozen=True, slots=True)
class InvalidOrder:
    """A record that broke the order contract: never fatal, it gets `invalid_order`."""

    order_id: str | None  # when the record had a usable one
    field: str  # the offending field, or "record" for unreadable input
    problem: str
    line: int | None = None  # 1-based line in a JSON Lines file, when read from one

    @property
    def detail(self) -> str:
        return f"{self.field}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ReminderState:
    """What the reminder ledger knows about one order."""

    order_id: str
    reminders_sent: int = 0
    call_requested: bool = False
    held_out: bool = False  # once held out, an order stays in the holdout group
    # The holdout group is held back exactly where it would have been texted: how many reminders
    # it would have had by now, and when the last of them would have gone out.
    held_out_count: int = 0
    held_out_last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SentReminder:
    """One SMS already sent (a `--history` line, or a ledger entry)."""

    order_id: str
    buyer_id: str
    phone: str
    sent_at: datetime
    attempt: int


# The three decisions an order can get, each with exactly the fields it has. ``action`` and
# ``reason`` are class constants where the kind fixes them, so every decision answers them alike
# (``d.action is Action.SEND`` narrows the union for a type checker). Not frozen: a frozen init
# costs ~2x, and there is one decision per order.


@dataclass(slots=True)
class SendDecision:
    """Send reminder ``attempt`` as this SMS, no later than ``not_after``."""

    action: ClassVar[Literal[Action.SEND]] = Action.SEND
    reason: ClassVar[None] = None
    order_id: str
    attempt: int  # the reminder number, 1 or 2
    message: str
    segments: int
    # What the sender needs, kept on the decision so the shell does not look it up again.
    buyer_id: str
    phone_e164: str
    # The last instant this SMS may go out: the window's end, the buyer's night, the order's
    # closing time or its expiry, whichever comes first.
    not_after: datetime
    # The order's variant (``messages.variants``, nudge.domain.variants); None without variants.
    variant: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape docs/RULES.md fixes for `nudge plan --json`."""
        return {
            "order_id": self.order_id,
            "action": self.action.value,
            "reason": None,
            "attempt": self.attempt,
            "message": self.message,
            "segments": self.segments,
            "variant": self.variant,
        }


@dataclass(slots=True)
class CallDecision:
    """Put the order on the staff call list (a large order) instead of texting."""

    action: ClassVar[Literal[Action.CALL]] = Action.CALL
    reason: ClassVar[Literal[Reason.LARGE_ORDER]] = Reason.LARGE_ORDER
    order_id: str
    attempt: int  # the reminder the order would have had, so every action has the same JSON shape
    buyer_id: str
    phone_e164: str

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "action": self.action.value,
            "reason": self.reason.value,
            "attempt": self.attempt,
            "message": None,
            "segments": None,
            "variant": None,
        }


@dataclass(slots=True)
class SkipDecision:
    """No SMS and no call this run, for ``reason``."""

    action: ClassVar[Literal[Action.SKIP]] = Action.SKIP
    order_id: str | None  # None for an unreadable record
    reason: Reason
    detail: str | None = None  # e.g. "amount: must be >= 0" for invalid_order

    def to_json(self) -> dict[str, Any]:
        """the rules contract's (docs/RULES.md) shape, plus `detail` when there is one (docs/DECISIONS.md)."""
        out: dict[str, Any] = {
            "order_id": self.order_id,
            "action": self.action.value,
            "reason": self.reason.value,
            "attempt": None,
            "message": None,
            "segments": None,
            "variant": None,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


Decision = SendDecision | CallDecision | SkipDecision
"""The one decision an order gets in a run."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The result of one planning run."""

    at: datetime
    window: str | None  # "09:50-10:40" when `at` is inside a window
    run_skipped: Reason | None  # paused / rest_day / outside_window: the whole run sends nothing
    decisions: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # order id -> the reminder it was held out of, for every `holdout` decision (the ledger keeps it)
    holdout_attempts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "window": self.window,
            "run_skipped": self.run_skipped.value if self.run_skipped else None,
            "decisions": [d.to_json() for d in self.decisions],
        }

    def count_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self.decisions:
            key = d.reason.value if d.reason else d.action.value
            counts[key] = counts.get(key, 0) + 1
        return counts
