"""The small interfaces the services use to reach AWS. Adapters: ``nudge.adapters``; fakes: ``tests/fakes.py``.

Each method is one batched round trip (or a few pages), never a call per order on the hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from nudge.domain.models import InvalidOrder, Order, ReminderState, SentReminder


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

    def to_json(self) -> dict:
        out = asdict(self)
        out["not_after"] = self.not_after.isoformat()
        out["planned_at"] = self.planned_at.isoformat()
        out["day"] = self.day.isoformat()
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
        )

    @property
    def dedupe_key(self) -> str:
        """The identity the ledger claims: one SMS per (order, attempt), ever."""
        return f"{self.order_id}#{self.attempt}"


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # this sender owns (order, attempt): it may publish once
    ALREADY_CLAIMED = "already_claimed"  # another delivery/sender has it (or sent it): drop
    DAILY_LIMIT = "daily_limit"  # the shop-local day's SMS cap is used up: drop


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

    def statuses(self, order_ids: Sequence[str]) -> dict[str, str]:
        """Current ``status`` of each order (batched reads); missing orders are left out."""
        ...


class ReminderLedger(Protocol):
    def states(self, order_ids: Sequence[str]) -> dict[str, ReminderState]:
        """Ledger state of these orders (batched reads); orders never reminded are left out."""
        ...

    def recent_sends(self, since: datetime, days: Iterable[date]) -> list[SentReminder]:
        """The last SMS of every order sent at or after ``since``; ``days`` are the shop-local
        days that range touches (the ledger indexes sends by day)."""
        ...

    def sent_on(self, day: date) -> int:
        """How many SMS were sent (claimed) on this shop-local day."""
        ...

    def request_calls(self, order_ids: Sequence[str], at: datetime) -> None:
        """Put these large orders on the staff call list (marks them `call_requested`)."""
        ...

    def mark_held_out(self, order_ids: Sequence[str], at: datetime, window: str, day: date) -> None:
        """Keep these orders in the holdout group (first and latest time, window, shop-local day)."""
        ...

    def claim(self, request: SendRequest, token: str, daily_cap: int, now: datetime) -> ClaimOutcome:
        """Atomically take (order, attempt) and one unit of the day's SMS cap."""
        ...

    def release(self, request: SendRequest, token: str) -> None:
        """Undo a claim whose publish certainly did not happen (e.g. throttled)."""
        ...

    def record_sent(self, request: SendRequest, token: str, message_id: str, sent_at: datetime) -> None:
        """After a publish: count the reminder, keep the message id, refresh the TTL."""
        ...

    def record_skip(self, request: SendRequest, reason: str, at: datetime) -> None:
        """Keep why a planned SMS was not sent (e.g. paid meanwhile)."""
        ...

    def record_opt_out(self, request: SendRequest, at: datetime) -> None:
        """SNS says this number is opted out: keep it, for this order and for every later plan."""
        ...

    def opted_out_phones(self) -> set[str]:
        """Numbers SNS reported opted out, as recorded by ``record_opt_out`` (one read)."""
        ...


class SendQueue(Protocol):
    def enqueue(self, requests: Sequence[SendRequest]) -> int:
        """Queue the sends in batches of 10; returns how many were accepted."""
        ...


class SmsGateway(Protocol):
    def is_opted_out(self, phone: str) -> bool: ...

    def publish(self, phone: str, text: str) -> str:
        """Send one SMS; returns the message id. Raises TransientSendError when throttled."""
        ...
