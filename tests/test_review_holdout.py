"""Review finding: the holdout's two groups are not measured alike, so the lift is biased.

A reminded order gets at most ``max_reminders_per_order`` SMS and its attribution window starts at
the last one. A held-out order is "held out" again in every window until it expires
(``ReminderState.held_out`` keeps attempt 1 forever, and plan_window re-marks it each time, moving
``held_out_last_at``), and attribute_payment starts its window at the latest mark. So a payment
days later counts for the holdout group and not for its reminded twin: the control group's paid
rate is inflated and the reported lift is too low.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from nudge.domain.config import load_config
from nudge.domain.models import Order, Reason, ReminderState
from nudge.domain.outcomes import HoldoutMark, Payment, SmsSent, attribute_payment
from nudge.domain.rules import plan_reminders

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # both orders' first window (Monday morning)


def unpaid(order_id: str) -> Order:
    return Order(
        order_id=order_id,
        buyer_id=f"b-{order_id}",
        phone="+8613800138001" if order_id == "held" else "+8613800138002",
        status="unpaid",
        created_at=T0 - timedelta(hours=3),
        amount=Decimal(100),
    )


# Expected: once an order has been held out for as many windows as a reminded order can be texted
# (max_reminders_per_order), later windows treat both alike (max_reminders), so the control
# group's exposure window does not keep moving. Today the held-out order gets `holdout` (and a new
# mark) in its third window, where its reminded twin gets `max_reminders`.
def test_review_held_out_order_is_held_out_again_after_max_reminders():
    config = load_config({"rules": {"holdout_percent": 50, "large_order_amount": None}})
    third_window = T0 + timedelta(days=1)  # Tuesday morning: the reminded twin had 2 SMS by now
    plan = plan_reminders(
        [unpaid("held"), unpaid("reminded")],
        now=third_window,
        config=config,
        ledger={
            "held": ReminderState("held", reminders_sent=0, held_out=True),
            "reminded": ReminderState("reminded", reminders_sent=2),
        },
    )
    reasons = {d.order_id: d.reason for d in plan.decisions}
    assert reasons["reminded"] is Reason.MAX_REMINDERS
    assert reasons["held"] is reasons["reminded"], reasons


# Expected: the same payment time after the same first contact is credited alike in both groups.
def test_review_late_payment_counts_for_the_holdout_group_but_not_for_the_reminded_one():
    second_sms = T0 + timedelta(hours=5, minutes=10)  # Monday afternoon, reminder 2
    paid_at = second_sms + timedelta(hours=73)  # past the 72 h attribution window
    reminded = attribute_payment(
        Payment("reminded", paid_at, Decimal(100), "CNY"),
        [SmsSent("reminded", 1, T0, "09:50-10:40", 1), SmsSent("reminded", 2, second_sms, "15:00-16:50", 1)],
        None,
        attribution_hours=72,
    )
    # The held-out twin, marked in each of its windows until it expired at 72 h (last: Wednesday
    # afternoon, as the ledger's held_out_last_at holds it).
    held = attribute_payment(
        Payment("held", paid_at, Decimal(100), "CNY"),
        [],
        HoldoutMark(
            "held", first_at=T0, last_at=T0 + timedelta(days=2, hours=5, minutes=10), window="15:00-16:50"
        ),
        attribution_hours=72,
    )
    assert reminded is None  # not recovered: fine
    assert held is None, f"counted as holdout_paid {held.minutes_to_pay} min after its last mark"
