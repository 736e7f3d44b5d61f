"""The send path's time promises ("never outside a window or at the buyer's night"), with the
in-memory fakes of the ports.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from nudge.domain.config import load_config
from nudge.domain.restdays import RestDayCalendar
from nudge.services.planning import WindowRun, plan_window
from nudge.services.ports import OutgoingSms, SendRequest
from nudge.services.sending import Pacer, Sender, SendOutcome, TooEarlyError
from nudge_local.pipeline import FakeClock
from tests.builders import SHANGHAI, numbered_order
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue, FakeSmsGateway

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday, the morning window opens


def record(i: int, created: datetime) -> dict:
    return numbered_order(i, created=created)


def make_sender(clock: FakeClock, orders: FakeOrderRepository, sms: FakeSmsGateway) -> Sender:
    return Sender(
        orders=orders,
        ledger=FakeReminderLedger(),
        sms=sms,
        clock=clock.now,
        pacer=Pacer(100.0, clock=clock.now, sleep=clock.sleep),
        daily_cap=500,
        buyer_min_interval=timedelta(hours=24),
        max_age=timedelta(hours=72),
        new_token=iter(f"t{i}" for i in range(1000)).__next__,
    )


class SlowOptOutCheck(FakeSmsGateway):
    """CheckIfPhoneNumberIsOptedOut answers after 11 s (within the SNS client's 2 s connect + 10 s
    read timeouts), and publish records the instant it was called."""

    def __init__(self, clock: FakeClock):
        super().__init__()
        self.clock = clock
        self.published_at: list[datetime] = []

    def is_opted_out(self, phone: str) -> bool:
        self.clock.advance(11)
        return super().is_opted_out(phone)

    def publish(self, sms: OutgoingSms) -> str:
        self.published_at.append(self.clock.now())
        return super().publish(sms)


# The rule: no SMS is published at or after its not_after (the window's end or the start of the
# buyer's night). SendBatch.deliver checks the deadline once, before the order re-read, the SNS
# opt-out check and the claim, and never again: a slow opt-out check (or order read) carries the
# publish past the deadline.
def test_no_publish_after_not_after_when_the_opt_out_check_is_slow():
    clock = FakeClock(AT + timedelta(minutes=49, seconds=55))  # 10:39:55, window ends 10:40
    sms = SlowOptOutCheck(clock)
    sender = make_sender(clock, FakeOrderRepository([record(1, AT - timedelta(hours=3))]), sms)
    not_after = AT + timedelta(minutes=50)
    request = SendRequest(
        "o-1", "b-1", "+8613800138001", 1, "text", 1, not_after, AT.date(), "09:50-10:40", AT
    )
    outcome = sender.start_batch([request]).deliver(request)
    late = [at for at in sms.published_at if at >= not_after]
    assert not late, (
        f"{outcome}: published at {late[0].astimezone(SH):%H:%M:%S}, deadline {not_after:%H:%M:%S}"
    )
    assert outcome is SendOutcome.PAST_DEADLINE


# The rule: no SMS before its window opens. judged_at() judges a run that starts up to CLOCK_SKEW
# (60 s) before its scheduled time at the scheduled time, so it plans normally, and the sender has
# no "not before": the SMS go out as soon as they are queued, up to a minute before the window
# start (and before the buyer's 08:00 when the window opens at the buyer's 08:00).
def test_no_sms_goes_out_before_the_window_opens():
    config = load_config({})
    orders = FakeOrderRepository([record(1, AT - timedelta(hours=3))])
    started = AT - timedelta(seconds=50)  # invoked 50 s early (a skewed clock or a manual run)
    clock = FakeClock(started)
    queue = FakeSendQueue()
    plan_window(
        WindowRun("09:50-10:40@11:00", AT),
        config=config,
        calendar=RestDayCalendar(config.calendar),
        orders=orders,
        ledger=FakeReminderLedger(),
        queue=queue,
        started_at=started,
    )
    sms = SlowOptOutCheck(clock)
    sms.is_opted_out = FakeSmsGateway.is_opted_out.__get__(sms)  # an instant opt-out check here
    sender = make_sender(clock, orders, sms)
    assert queue.delays == [50]  # SQS holds the messages back until the window opens
    requests = queue.drain()
    assert [r.not_before for r in requests] == [AT]
    batch = sender.start_batch(requests)
    for r in requests:  # delivered early anyway (the queue's delay lost): retried, never sent early
        with pytest.raises(TooEarlyError):
            batch.deliver(r)
    early = [at for at in sms.published_at if at < AT]
    assert not early, f"published at {early[0].astimezone(SH):%H:%M:%S}, window opens {AT:%H:%M:%S}"
    clock.set(AT)  # the retry after the window opened goes out
    assert [sender.start_batch([r]).deliver(r) for r in requests] == [SendOutcome.SENT]


def test_no_claim_when_a_publish_as_slow_as_its_timeout_would_end_past_the_deadline():
    clock = FakeClock(AT + timedelta(minutes=49, seconds=50))  # 10:39:50, window ends 10:40
    sms = SlowOptOutCheck(clock)
    sms.is_opted_out = FakeSmsGateway.is_opted_out.__get__(sms)  # an instant opt-out check
    sender = make_sender(clock, FakeOrderRepository([record(1, AT - timedelta(hours=3))]), sms)
    sender.publish_timeout = timedelta(seconds=12)  # the SNS client's connect + read timeouts
    request = SendRequest(
        "o-1", "b-1", "+8613800138001", 1, "text", 1, AT + timedelta(minutes=50), AT.date(), "09:50-10:40", AT
    )
    assert sender.start_batch([request]).deliver(request) is SendOutcome.PAST_DEADLINE
    assert sms.published_at == [] and sender.ledger.sent_on(AT.date()) == 0
    clock.set(AT + timedelta(minutes=49, seconds=47))  # 13 s before the deadline: still in time
    sender = make_sender(clock, FakeOrderRepository([record(1, AT - timedelta(hours=3))]), sms)
    sender.publish_timeout = timedelta(seconds=12)
    assert sender.start_batch([request]).deliver(request) is SendOutcome.SENT
