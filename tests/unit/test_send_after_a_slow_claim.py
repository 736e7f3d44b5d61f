"""The deadline holds at the real hand-off: a slow claim (TransactionConflict backoff, up to ~3 s of
sleeps plus the calls) is followed by a second check, and End User Messaging's TimeToLive counts
from the hand-off itself."""

from __future__ import annotations

from datetime import timedelta

from nudge.services.ports import OutgoingSms, SendRequest
from nudge_local.pipeline import FakeClock
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSmsGateway
from tests.unit.test_send_timing import AT, make_sender, record


class SlowClaimLedger(FakeReminderLedger):
    def __init__(self, clock: FakeClock):
        super().__init__()
        self.clock = clock

    def claim(self, *args, **kwargs):
        self.clock.advance(5)  # conflict retries on the day's quota item
        return super().claim(*args, **kwargs)


class Recording(FakeSmsGateway):
    checks_opt_out = True  # End User Messaging

    def __init__(self, clock: FakeClock):
        super().__init__()
        self.clock = clock
        self.handed: list[tuple] = []

    def publish(self, sms: OutgoingSms) -> str:
        self.handed.append((self.clock.now(), sms.handed_at))
        return super().publish(sms)


def test_the_deadline_holds_for_the_publish_as_it_really_starts_after_a_slow_claim():
    clock = FakeClock(AT + timedelta(minutes=49, seconds=46))  # 14 s before 10:40
    sms = Recording(clock)
    sender = make_sender(clock, FakeOrderRepository([record(1, AT - timedelta(hours=3))]), sms)
    sender.ledger = SlowClaimLedger(clock)
    sender.publish_timeout = timedelta(seconds=12)
    not_after = AT + timedelta(minutes=50)
    request = SendRequest(
        "o-1", "b-1", "+8613800138001", 1, "text", 1, not_after, AT.date(), "09:50-10:40", AT
    )
    sender.start_batch([request]).deliver(request)
    for called_at, handed_at in sms.handed:
        assert handed_at == called_at, "TimeToLive counts from before the claim"
        assert called_at + sender.publish_timeout < not_after, (
            "a publish as slow as its timeout ends past the deadline"
        )
