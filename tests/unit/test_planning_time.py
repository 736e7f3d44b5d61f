"""The instant a run is judged at, over the in-memory fakes (fast; the moto versions are in
test_plan_promises.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from nudge.domain.config import load_config
from nudge.domain.models import SentReminder
from nudge.domain.restdays import RestDayCalendar
from nudge.services.planning import WindowRun, judged_at, plan_window, resolve_window
from tests.builders import SHANGHAI, numbered_order
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday
CONFIG = load_config({"windows": "09:50-10:40@11:00,15:00-16:50@17:00"})
WINDOW = resolve_window(CONFIG, "09:50-10:40")


@pytest.mark.parametrize(
    ("started", "judged"),
    [
        (AT, AT),
        (AT + timedelta(minutes=5), AT),  # late inside the window: the scheduled time
        (AT + timedelta(minutes=50), AT + timedelta(minutes=50)),  # after the window: the real start
        (AT - timedelta(hours=12), AT - timedelta(hours=12)),  # from the future: the real start
        (AT - timedelta(seconds=1), AT),  # clock skew, not the future: the window is not lost
        (AT - timedelta(seconds=60), AT),
        (AT - timedelta(seconds=61), AT - timedelta(seconds=61)),  # beyond skew: the real start
    ],
)
def test_a_run_is_judged_at_most_at_its_real_start(started, judged):
    assert judged_at(WindowRun("09:50-10:40", AT), WINDOW, started, CONFIG) == judged


def record(i: int) -> dict:
    return numbered_order(i, created=AT - timedelta(hours=3))


def run(orders, ledger, started_at):
    return plan_window(
        WindowRun("09:50-10:40", AT),
        config=CONFIG,
        calendar=RestDayCalendar(CONFIG.calendar),
        orders=orders,
        ledger=ledger,
        queue=FakeSendQueue(),
        started_at=started_at,
    )


def test_a_future_scheduled_time_is_named_in_the_warnings():
    _plan, summary = run(FakeOrderRepository([record(1)]), FakeReminderLedger(), AT - timedelta(hours=12))
    assert summary.run_skipped == "rest_day" and summary.judged_at == AT - timedelta(hours=12)  # Sunday
    assert summary.warnings[0] == "scheduled_time is 43200 s after the real start: judged at the real start"


def test_sends_after_the_judged_instant_still_count_for_the_buyer_rule():
    ledger = FakeReminderLedger()
    # An SMS of this window went out at 09:52; the run is judged at 09:50 but starts at 09:55.
    ledger.recent_sends = lambda since, days: [  # type: ignore[method-assign]
        SentReminder("o-1", "b-1", "+8613800138001", AT + timedelta(minutes=2), 1)
    ]
    _plan, summary = run(FakeOrderRepository([record(1)]), ledger, AT + timedelta(minutes=5))
    assert summary.judged_at == AT and summary.by_reason == {"buyer_recently_contacted": 1}
