"""The holdout's two groups are measured alike, so the lift is not biased.

The defect this guards against:

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

from nudge.domain.config import load_config
from nudge.domain.models import Action, Order, Reason, ReminderState, SentReminder
from nudge.domain.outcomes import in_holdout
from nudge.domain.rules import plan_reminders
from tests.builders import SHANGHAI

SH = SHANGHAI
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


# The rule: once an order has been held out for as many windows as a reminded order can be texted
# (max_reminders_per_order), later windows treat both alike (max_reminders), so the control
# group's exposure window does not keep moving. Before the fix, the held-out order gets `holdout` (and a new
# mark) in its third window, where its reminded twin gets `max_reminders`.
def test_a_held_out_order_is_not_held_out_again_after_max_reminders():
    config = load_config({"rules": {"holdout_percent": 50, "large_order_amount": None}})
    third_window = T0 + timedelta(days=1)  # Tuesday morning: the reminded twin had 2 SMS by now
    plan = plan_reminders(
        [unpaid("held"), unpaid("reminded")],
        now=third_window,
        config=config,
        ledger={
            # held out of both its reminders, the last one where its twin got reminder 2
            "held": ReminderState(
                "held", held_out=True, held_out_count=2, held_out_last_at=T0 + timedelta(hours=5)
            ),
            "reminded": ReminderState("reminded", reminders_sent=2),
        },
    )
    reasons = {d.order_id: d.reason for d in plan.decisions}
    assert reasons["reminded"] is Reason.MAX_REMINDERS
    assert reasons["held"] is reasons["reminded"], reasons


# The rule: the holdout group is held back exactly where its texted twin is texted (same windows,
# same number of reminders), so both groups' attribution windows start at the same time and the
# lift is not biased. Before, the held-out order was held out (and re-marked) in every window until
# it expired, so its last mark, and its attribution window, ran days past its twin's last SMS.
def test_a_held_out_order_is_held_back_exactly_where_its_twin_is_texted():
    config = load_config({"rules": {"holdout_percent": 50, "large_order_amount": None}})
    held = next(f"h{i}" for i in range(100) if in_holdout(f"h{i}", 50))
    texted = next(f"t{i}" for i in range(100) if not in_holdout(f"t{i}", 50))

    def order(oid: str, phone: str) -> Order:
        return Order(oid, f"b-{oid}", phone, "unpaid", T0 - timedelta(hours=3), Decimal(100))

    orders = [order(held, "+8613800138001"), order(texted, "+8613800138002")]
    ledger: dict[str, ReminderState] = {}
    recent: list[SentReminder] = []
    marks, sends = [], []
    windows = [T0 + timedelta(days=d, hours=h) for d in range(3) for h in (0, 5 + 10 / 60)]  # 09:50, 15:00
    for at in windows:  # Monday to Wednesday; both orders expire on Thursday morning
        plan = plan_reminders(orders, now=at, config=config, ledger=ledger, recent=recent)
        by_id = {d.order_id: d for d in plan.decisions}
        if by_id[texted].action is Action.SEND:
            attempt = by_id[texted].attempt
            ledger[texted] = ReminderState(texted, reminders_sent=attempt)
            recent.append(SentReminder(texted, f"b-{texted}", "+8613800138002", at, attempt))
            sends.append((at, attempt))
        if by_id[held].reason is Reason.HOLDOUT:
            attempt = plan.holdout_attempts[held]
            ledger[held] = ReminderState(held, held_out=True, held_out_count=attempt, held_out_last_at=at)
            marks.append((at, attempt))
    assert len(sends) == 2 and marks == sends
