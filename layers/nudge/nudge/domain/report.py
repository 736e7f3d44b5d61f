"""`nudge report`: what the reminders cost and what they brought back, as a pure function.

Input: plain records read from the ledger (SMS sent, outcomes, held-out orders); output: the
JSON object the CLI prints. Every order counts once, under one reminder: the reminder its payment
is credited to, else its last reminder in the period ("last touch"). SMS, segments and cost count
each SMS under its own day, window and reminder number. So the by-day, by-window and by-attempt
rows each add up to the totals.

Money is kept as ``Decimal`` and written as strings (exact); rates and the lift as floats.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nudge.domain.outcomes import HoldoutMark, Outcome, SmsSent
from nudge.domain.stats import newcombe

__all__ = ["MIN_ARM", "NOT_ENOUGH_DATA", "build_report", "recovered_orders"]

MIN_ARM = 100  # below this many orders in either group the lift is "not enough data"
NOT_ENOUGH_DATA = "not enough data"
ADDITIVE = ("reminded", "sms", "segments", "cost", "paid", "recovered")  # rows sum to the totals


@dataclass(slots=True)
class _Figures:
    reminded: int = 0
    sms: int = 0
    segments: int = 0
    cost: Decimal = Decimal(0)
    paid: int = 0
    recovered: dict[str, Decimal] = field(default_factory=dict)
    minutes: list[float] = field(default_factory=list)

    def add_sms(self, sms: SmsSent, price: Decimal) -> None:
        self.sms += 1
        self.segments += sms.segments
        self.cost += price * sms.segments

    def add_order(self, outcome: Outcome | None) -> None:
        self.reminded += 1
        if outcome is not None:
            self.paid += 1
            self.recovered[outcome.currency] = (
                self.recovered.get(outcome.currency, Decimal(0)) + outcome.amount
            )
            self.minutes.append(outcome.minutes_to_pay)

    def to_json(self) -> dict[str, Any]:
        return {
            "reminded": self.reminded,
            "sms": self.sms,
            "segments": self.segments,
            "cost": _money(self.cost),
            "paid": self.paid,
            "paid_rate": _rate(self.paid, self.reminded),
            "recovered": {c: _money(v) for c, v in sorted(self.recovered.items())},
            "median_minutes_to_pay": round(statistics.median(self.minutes), 1) if self.minutes else None,
        }

    def roi(self, currency: str) -> float | None:
        """Recovered money in the cost's currency per unit of cost (other currencies are left out)."""
        if self.cost <= 0:
            return None
        return round(float(self.recovered.get(currency, Decimal(0)) / self.cost), 2)


def _money(value: Decimal) -> str:
    return format(value, "f")  # never exponent notation ("1E+2")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def build_report(
    *,
    sms: Iterable[SmsSent],
    outcomes: Iterable[Outcome],
    held_out: Iterable[HoldoutMark] = (),
    first_day: date,
    last_day: date,
    zone: ZoneInfo,
    price_per_segment: Decimal,
    currency: str,
    min_arm: int = MIN_ARM,
    variants: Sequence[str] = (),
) -> dict[str, Any]:
    """The report over the shop-local days ``first_day``..``last_day`` (both included).

    ``variants``: the configured text variants in order (the first is the one the others are
    compared with); variants seen in the ledger but no longer configured follow by name.
    """
    if last_day < first_day:
        raise ValueError("last_day must not be before first_day")

    def in_period(at: Any) -> bool:
        return first_day <= at.astimezone(zone).date() <= last_day

    sends_by_order: dict[str, list[SmsSent]] = {}
    for s in sms:
        if in_period(s.sent_at):
            sends_by_order.setdefault(s.order_id, []).append(s)
    # Analysed as assigned: an order held out stays in the holdout group even if it was texted
    # later (the share lowered or set to 0). Its SMS still cost money and count as SMS, but the
    # order and its payment belong to the holdout group only (an outcome recorded before this rule
    # may have credited such a payment to an SMS: it counts for the holdout all the same).
    marks = list(held_out)
    held_ids = {h.order_id for h in marks}
    reminded_outcomes: dict[str, Outcome] = {}
    holdout_outcomes: dict[str, Outcome] = {}
    for o in outcomes:
        (holdout_outcomes if o.holdout or o.order_id in held_ids else reminded_outcomes)[o.order_id] = o

    total = _Figures()
    by_day: dict[date, _Figures] = {}
    by_window: dict[str, _Figures] = {}
    by_attempt: dict[int, _Figures] = {}
    by_variant: dict[str | None, _Figures] = {}

    def rows(s: SmsSent) -> tuple[_Figures, ...]:
        return (
            total,
            by_day.setdefault(s.sent_at.astimezone(zone).date(), _Figures()),
            by_window.setdefault(s.window or "unknown", _Figures()),
            by_attempt.setdefault(s.attempt, _Figures()),
            by_variant.setdefault(s.variant, _Figures()),
        )

    for order_id, sends in sends_by_order.items():
        for s in sends:
            for row in rows(s):
                row.add_sms(s, price_per_segment)
        if order_id in held_ids:
            continue  # a held-out order texted later: its SMS cost, its order is the holdout's
        outcome = reminded_outcomes.get(order_id)
        credited = next((s for s in sends if outcome is not None and s.attempt == outcome.attempt), None)
        if credited is None:
            outcome = None  # not paid, or paid after a reminder outside this period
            credited = max(sends, key=lambda s: (s.sent_at, s.attempt))
        for row in rows(credited):
            row.add_order(outcome)

    def table(groups: dict[Any, _Figures], key: str) -> list[dict[str, Any]]:
        out = []
        for name, figures in sorted(groups.items(), key=lambda kv: str(kv[0])):
            label = name.isoformat() if isinstance(name, date) else name
            out.append({key: label, **figures.to_json(), "roi": figures.roi(currency)})
        return out

    report: dict[str, Any] = {
        "from": first_day.isoformat(),
        "to": last_day.isoformat(),
        **total.to_json(),
        "cost_currency": currency,  # what "cost" (and every row's) is counted in
        "holdout": _holdout(total, marks, holdout_outcomes, in_period, min_arm),
        "by_day": table(by_day, "day"),
        "by_window": table(by_window, "window"),
        "by_attempt": table(by_attempt, "attempt"),
        "by_variant": _by_variant(by_variant, variants, currency, min_arm),
    }
    report.update(_delivery([s for sends in sends_by_order.values() for s in sends], reminded_outcomes))
    return report


def _delivery(sms: list[SmsSent], outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """What the receipts say about the period's SMS; nothing at all when no SMS has a receipt (SNS
    without delivery logs). ``delivery_rate`` = delivered / SMS with a final status: delivered,
    failed, expired and unknown (``pending`` ones and those with no status yet, under 72 h old,
    are still on their way); ``failed`` counts the other final statuses by the provider's code
    (blocked and opted out included); ``unknown`` = no final receipt within 72 h (or the provider
    said unknown); ``recovered_delivered`` = recovered orders whose credited SMS was delivered."""
    with_receipt = [s for s in sms if s.delivery is not None]
    if not with_receipt:
        return {}
    delivered = sum(1 for s in with_receipt if s.delivery == "delivered")
    expired = sum(1 for s in with_receipt if s.delivery == "expired")
    unknown = sum(1 for s in with_receipt if s.delivery == "unknown")
    failed: dict[str, int] = {}
    for s in with_receipt:
        if s.delivery not in ("delivered", "expired", "pending", "unknown"):
            code = s.delivery_code or str(s.delivery)
            failed[code] = failed.get(code, 0) + 1
    final = delivered + expired + unknown + sum(failed.values())
    credited = {(o.order_id, o.attempt) for o in outcomes.values()}
    return {
        "delivered": delivered,
        "delivery_rate": _rate(delivered, final),
        "failed": dict(sorted(failed.items())),
        "expired": expired,
        "unknown": unknown,
        "recovered_delivered": sum(
            1 for s in with_receipt if s.delivery == "delivered" and (s.order_id, s.attempt) in credited
        ),
    }


def _by_variant(
    groups: dict[str | None, _Figures], configured: Sequence[str], currency: str, min_arm: int
) -> list[dict[str, Any]]:
    """One row per text variant, each compared with the first (``diff``: its paid rate minus the
    first's, with the Newcombe 95% interval, or "not enough data" under ``min_arm`` orders in
    either). Empty when no SMS carried a variant. SMS sent without one (before the test began)
    get a row of their own, ``variant`` null, so the rows still add up to the totals."""
    if not any(name is not None for name in groups):
        return []
    if configured and configured[0] not in groups:
        # The baseline sent nothing in the period: it keeps its row (all zero), so no other variant
        # silently becomes the one compared with; every difference is then "not enough data".
        groups = {**groups, configured[0]: _Figures()}
    rank = {name: i for i, name in enumerate(configured)}
    names = sorted(groups, key=lambda n: (n is None, rank.get(n or "", len(rank)), n or ""))
    first = groups[names[0]] if names[0] is not None else None
    out = []
    for name in names:
        figures = groups[name]
        row: dict[str, Any] = {"variant": name, **figures.to_json(), "roi": figures.roi(currency)}
        row["diff"], row["ci95"] = None, None  # the first variant, and SMS without a variant
        if name is not None and name != names[0] and first is not None:
            if figures.reminded >= min_arm and first.reminded >= min_arm:
                ci = newcombe(figures.paid, figures.reminded, first.paid, first.reminded)
                row["diff"] = round(ci.difference, 4)
                row["ci95"] = [round(ci.lower, 4), round(ci.upper, 4)]
            else:
                row["ci95"] = NOT_ENOUGH_DATA
        out.append(row)
    return out


def _holdout(
    reminded: _Figures,
    held_out: Iterable[HoldoutMark],
    outcomes: dict[str, Outcome],
    in_period: Any,
    min_arm: int,
) -> dict[str, Any] | None:
    orders = {h.order_id for h in held_out if in_period(h.first_at)}
    if not orders:
        return None
    paid = sum(1 for oid in orders if oid in outcomes)
    out: dict[str, Any] = {
        "orders": len(orders),
        "paid": paid,
        "paid_rate": _rate(paid, len(orders)),
        "lift": None,  # None: not enough data (under ``min_arm`` orders in a group)
        "ci95": None,
    }
    if len(orders) >= min_arm and reminded.reminded >= min_arm:
        ci = newcombe(reminded.paid, reminded.reminded, paid, len(orders))
        out["lift"] = round(ci.difference, 4)
        out["ci95"] = [round(ci.lower, 4), round(ci.upper, 4)]
    return out


def roi(report_row: dict[str, Any], currency: str) -> float | None:
    """ROI of a report row (totals or a by_* entry): recovered in ``currency`` per unit of cost."""
    cost = Decimal(report_row["cost"])
    if cost <= 0:
        return None
    return round(float(Decimal(report_row["recovered"].get(currency, "0")) / cost), 2)


def recovered_orders(
    outcomes: Iterable[Outcome],
    sms: Iterable[SmsSent],
    *,
    first_day: date,
    last_day: date,
    zone: ZoneInfo,
    held_out: Iterable[HoldoutMark] = (),
) -> list[Outcome]:
    """The recovered orders the report counts, oldest payment first: never a held-out order (as
    assigned, even one texted later whose outcome was recorded before that rule)."""
    held_ids = {h.order_id for h in held_out}
    in_period = {
        (s.order_id, s.attempt) for s in sms if first_day <= s.sent_at.astimezone(zone).date() <= last_day
    }
    hits = [
        o
        for o in outcomes
        if not o.holdout and o.order_id not in held_ids and (o.order_id, o.attempt) in in_period
    ]
    return sorted(hits, key=lambda o: (o.paid_at, o.order_id))
