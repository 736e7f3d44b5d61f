"""Unknown after 72 h: every SMS a gateway took ends in one delivery status on its ledger item.

Once a day (the receipts function's schedule) this reads, through the ledger's day index, the
order items whose last SMS went out between RECEIPT_DEADLINE + SWEEP_LOOKBACK and
RECEIPT_DEADLINE ago, and writes ``unknown`` (code NO_RECEIPT_72H) on each of their SMS that has
no final status RECEIPT_DEADLINE after its send (``nudge.domain.delivery.overdue``). Each write is
one conditional update: a receipt that lands between the read and the write wins, an SMS with a
final status is never touched, a second run finds nothing left to write. A run goes on while its
invocation has time left (``time_left``, less RUN_MARGIN for the answer, its log and metrics);
when it stops before the end it says so
(``limited``, the handler's ``DeliveryUnknownUnfinished`` metric, which has an alarm), and what it
leaves is still in range for the next runs (SWEEP_LOOKBACK).

``unknown`` is final like the others (``takes``): a real receipt arriving after it changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from nudge.domain.delivery import SWEEP_LOOKBACK, overdue, sweep_span
from nudge.domain.instants import utc_iso
from nudge.services.ports import DeliveryLedger

__all__ = ["PROGRESS_EVERY", "RUN_MARGIN", "SweepSummary", "mark_unknown_deliveries"]

log = logging.getLogger(__name__)

PROGRESS_EVERY = 1000  # a progress log line every this many SMS read
# Seconds kept back from the invocation's time: one more Query page, the summary, the metrics.
RUN_MARGIN = 20.0


@dataclass(slots=True)
class SweepSummary:
    """What one run did (counts only: no phone number, no order id)."""

    since: datetime
    until: datetime
    days: list[date] = field(default_factory=list)
    examined: int = 0  # SMS read
    marked: int = 0  # unknown written
    marked_unconfirmed: int = 0  # of them, sends whose outcome was never known (now settled: unknown)
    raced: int = 0  # due, but a receipt (or another run) wrote first: left as it is
    limited: bool = False  # stopped before the end (out of time): the next run goes on

    def to_json(self) -> dict[str, Any]:
        return {
            "since": utc_iso(self.since),
            "until": utc_iso(self.until),
            "days": [d.isoformat() for d in self.days],
            "examined": self.examined,
            "marked_unknown": self.marked,
            "marked_unknown_unconfirmed": self.marked_unconfirmed,
            "raced": self.raced,
            "limited": self.limited,
        }


def mark_unknown_deliveries(
    ledger: DeliveryLedger,
    now: datetime,
    zone: tzinfo,
    *,
    time_left: Callable[[], float] | None = None,
    lookback: timedelta = SWEEP_LOOKBACK,
) -> SweepSummary:
    """Write ``unknown`` on the SMS with no final status RECEIPT_DEADLINE after their send.

    ``time_left``: seconds the invocation has left (the Lambda context's); the run stops before
    the next SMS once it is under RUN_MARGIN.
    """
    since, until, days = sweep_span(now, zone, lookback)
    summary = SweepSummary(since=since, until=until, days=days)
    for sms in ledger.awaiting_receipts(since, until, days):
        if time_left is not None and time_left() < RUN_MARGIN:
            summary.limited = True  # this SMS and those after it: the next run
            log.warning(
                "unknown after 72 h: out of time after %d SMS read (%d marked); the next run goes on",
                summary.examined,
                summary.marked,
            )
            break
        summary.examined += 1
        if overdue(sms, now):
            if ledger.mark_unknown(sms.order_id, sms.attempt, now):
                summary.marked += 1
                summary.marked_unconfirmed += sms.unconfirmed
            else:
                summary.raced += 1
        if summary.examined % PROGRESS_EVERY == 0:
            log.info(
                "unknown after 72 h: %d SMS read, %d marked, %d raced",
                summary.examined,
                summary.marked,
                summary.raced,
            )
    return summary
