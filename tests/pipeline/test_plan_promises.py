"""What the plan side guarantees, end to end through the real handlers on moto.

A window planned twice never texts twice: the same minute as other event text, a plan that failed
after queueing and is re-run, a scheduler retry. A scheduled time in the future is never trusted.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from nudge.domain.config import load_config
from nudge.services.planning import WindowRun, run_key
from nudge_local.pipeline import FakeClock, LambdaContextStub, LocalPipeline
from tests.builders import SHANGHAI, numbered_order

pytestmark = pytest.mark.aws

SH = SHANGHAI
MORNING = "09:50-10:40@11:00"
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday, the morning window opens
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(i: int, created: datetime) -> dict:
    return numbered_order(i, created=created)


FIVE = [order(i, AT - timedelta(hours=3, minutes=i)) for i in range(1, 6)]


def pipeline() -> LocalPipeline:
    return LocalPipeline(clock=FakeClock(AT), env=QUIET)


def invoke(p: LocalPipeline, event: dict, started_at: datetime) -> dict:
    """The plan function invoked with exactly this event text."""
    p.clock.set(started_at)
    return p.plan_module.lambda_handler(event, LambdaContextStub("plan"))


def texts_per_phone(p: LocalPipeline) -> Counter:
    return Counter(phone for phone, _ in p.sent_sms())


# ------------------------------------------------------------------------- the same plan twice


@pytest.mark.parametrize(
    "again",
    [
        {"window": MORNING, "scheduled_time": "2026-11-23T09:50:00+08:00"},  # the offset written out
        {"window": "09:50-10:40", "scheduled_time": "2026-11-23T01:50:00Z"},  # without "@11:00"
        {"window": " 09:50-10:40@11:00", "scheduled_time": "2026-11-23T01:50:30.5Z"},  # same minute
    ],
)
def test_the_same_window_as_different_event_text_plans_once(again):
    with pipeline() as p:
        p.load_orders(FIVE)
        first = invoke(p, {"window": MORNING, "scheduled_time": "2026-11-23T01:50:00Z"}, AT)
        p.drain_queue()
        assert first["enqueued"] == 5 and len(p.sent_sms()) == 5
        # Ten minutes later, after every SMS of the window went out, the same window again.
        second = invoke(p, again, AT + timedelta(minutes=10))
        p.drain_queue()
        assert second == first  # the first plan's answer, from its idempotency record
        assert len(p.sent_sms()) == 5 and set(texts_per_phone(p).values()) == {1}


def test_the_idempotency_key_is_the_parsed_window_and_minute():
    config = load_config({"windows": "09:50-10:40@11:00,15:00-16:50@17:00"})
    utc = datetime.fromisoformat("2026-11-23T01:50:00Z")
    keys = {
        tuple(sorted(run_key(WindowRun(window, at), config=config, started_at=AT).items()))
        for window in ("09:50-10:40", "09:50-10:40@11:00")
        for at in (utc, AT, AT + timedelta(seconds=59))
    }
    assert keys == {(("judged_at", "2026-11-23T01:50Z"), ("window", "09:50-10:40"))}
    later = AT + timedelta(minutes=1)
    other = run_key(WindowRun(MORNING, later), config=config, started_at=later + timedelta(seconds=5))
    assert other["judged_at"] == "2026-11-23T01:51Z"  # a manual run a minute later is another plan
    early = run_key(WindowRun(MORNING, AT), config=config, started_at=AT - timedelta(hours=12))
    assert early["judged_at"] == "2026-11-22T13:50Z"  # from the future: keyed by its real start


class EnqueueThenFail:
    """The real queue, then an error: the plan dies after its sends are on the queue."""

    def __init__(self, real):
        self.real = real

    def enqueue(self, requests, *, delay_seconds=0):
        self.real.enqueue(requests, delay_seconds=delay_seconds)
        raise ConnectionError("lost after SendMessageBatch")


@pytest.mark.parametrize("sends_before_rerun", [False, True])
def test_a_plan_that_failed_after_queueing_is_rerun_without_texting_anyone_twice(sends_before_rerun):
    event = {"window": MORNING, "scheduled_time": "2026-11-23T01:50:00Z"}
    with pipeline() as p:
        p.load_orders(FIVE)
        real = p.plan_app.queue
        p.plan_app.queue = EnqueueThenFail(real)
        with pytest.raises(ConnectionError):
            invoke(p, event, AT)
        p.plan_app.queue = real
        assert p.queue_depth() == 5
        if sends_before_rerun:
            p.drain_queue()  # the window's SMS go out before anyone re-runs it
            assert len(p.sent_sms()) == 5
        # The failed plan left no idempotency record: the identical event plans again.
        rerun = invoke(p, event, AT + timedelta(minutes=3))
        p.drain_queue()
        if sends_before_rerun:
            # Judged at 09:50, but its sends of 09:50+ are in the ledger: every buyer was just texted.
            assert rerun["enqueued"] == 0 and rerun["by_reason"] == {"buyer_recently_contacted": 5}
        else:
            assert rerun["enqueued"] == 5  # queued twice; the ledger claim lets each out once
        assert len(p.sent_sms()) == 5 and set(texts_per_phone(p).values()) == {1}
        assert {int(p.ledger_item(o["order_id"])["reminders_sent"]) for o in FIVE} == {1}


def test_a_scheduler_retry_of_a_planned_window_queues_nothing_more():
    event = {"window": MORNING, "scheduled_time": "2026-11-23T01:50:00Z"}
    with pipeline() as p:
        p.load_orders(FIVE)
        first = invoke(p, event, AT)
        retry = invoke(p, event, AT + timedelta(seconds=20))  # before the sender ran
        assert retry == first and p.queue_depth() == 5


# ------------------------------------------------------------------------ a time from the future

SUNDAY_NIGHT = datetime(2026, 11, 22, 22, 0, tzinfo=SH)
MONDAY_NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=SH)
EARLY_ORDERS = [order(i, SUNDAY_NIGHT - timedelta(hours=4, minutes=i)) for i in range(1, 6)]


@pytest.mark.parametrize(
    ("scheduled", "started", "skipped"),
    [
        (AT, SUNDAY_NIGHT, "rest_day"),  # Monday's event invoked on Sunday night
        (AT + timedelta(days=1), MONDAY_NIGHT, "outside_window"),  # Tuesday's, on Monday night
    ],
)
def test_a_scheduled_time_in_the_future_is_judged_at_the_real_start(scheduled, started, skipped):
    with pipeline() as p:
        p.load_orders(EARLY_ORDERS)
        summary = p.fire_window(MORNING, scheduled, started_at=started)
        p.drain_queue()
        assert summary["run_skipped"] == skipped and datetime.fromisoformat(summary["judged_at"]) == started
        assert "after the real start" in summary["warnings"][0]
        assert p.sent_sms() == [] and p.queue_depth() == 0


def test_an_event_from_the_future_does_not_stand_in_for_the_real_run():
    with pipeline() as p:
        p.load_orders(EARLY_ORDERS)
        early = p.fire_window(MORNING, AT, started_at=SUNDAY_NIGHT)
        real = p.fire_window(MORNING, AT)  # Monday 09:50 itself
        p.drain_queue()
        assert early["enqueued"] == 0 and real["enqueued"] == 5 and len(p.sent_sms()) == 5


# ------------------------------------------------------------------ one run judges one window

AFTERNOON = "15:00-16:50@17:00"
MONDAY_AFTERNOON = datetime(2026, 11, 23, 15, 0, tzinfo=SH)
TUESDAY_MORNING = datetime(2026, 11, 24, 9, 57, tzinfo=SH)
MONDAY_LATE_AFTERNOON = datetime(2026, 11, 23, 16, 12, tzinfo=SH)


@pytest.mark.parametrize(
    ("window", "scheduled", "started", "orders_created"),
    [
        # events/schedule-window2.json (Monday 15:00) invoked at 09:57 the next workday, inside
        # window 1: it must not plan window 1 with window 2's not_before (every SMS would wait
        # for 15:00, find its 10:40 deadline passed, and retry into the DLQ).
        (AFTERNOON, MONDAY_AFTERNOON, TUESDAY_MORNING, TUESDAY_MORNING),
        # Monday's window-1 event run at 16:12, inside window 2: it must not send window 2's SMS
        # under the label 09:50-10:40.
        (MORNING, AT, MONDAY_LATE_AFTERNOON, MONDAY_LATE_AFTERNOON),
    ],
)
def test_a_run_judged_inside_another_window_is_outside_its_own(window, scheduled, started, orders_created):
    with pipeline() as p:
        p.load_orders([order(i, orders_created - timedelta(hours=3, minutes=i)) for i in range(1, 6)])
        summary = p.fire_window(window, scheduled, started_at=started)
        delivered = p.drain_queue()
        assert summary["run_skipped"] == "outside_window" and summary["enqueued"] == 0
        assert delivered["messages"] == 0 and p.sent_sms() == []
        assert p.queue_depth(p.resources.send_dlq_url) == 0
        assert all(p.ledger_item(f"o-{i}") is None for i in range(1, 6))


def test_the_window_fired_for_is_the_window_planned_and_labelled():
    """The other window's own event, at its own time, plans it: the refusal above costs no SMS."""
    with pipeline() as p:
        p.load_orders([order(i, MONDAY_AFTERNOON - timedelta(hours=3, minutes=i)) for i in range(1, 6)])
        summary = p.fire_window(AFTERNOON, MONDAY_AFTERNOON)
        p.drain_queue()
        assert summary["window"] == "15:00-16:50" and summary["enqueued"] == 5 and len(p.sent_sms()) == 5
        assert {p.ledger_item(f"o-{i}")["window_1"] for i in range(1, 6)} == {"15:00-16:50"}
