"""Buyers' replies (nudge.services.replies) and the shop's list at send time, over the fakes."""

from __future__ import annotations

from datetime import timedelta

from nudge.domain.delivery import Reply
from nudge.services.ports import SendRequest
from nudge.services.replies import ReplyOutcome, handle_reply
from nudge.services.sending import Pacer, Sender, SendOutcome
from nudge_local.pipeline import FakeClock
from tests.builders import AT, numbered_order
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSmsGateway


class Staff:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, body: str) -> str:
        self.sent.append((subject, body))
        return "staff-1"


def test_an_opt_out_reply_goes_on_the_list_and_nowhere_else():
    ledger, staff = FakeReminderLedger(), Staff()
    result = handle_reply(Reply("+14155550100", " Stop. "), ledger=ledger, staff=staff, now=AT)
    assert result.outcome is ReplyOutcome.OPTED_OUT and ledger.opted_out_phones() == {"+14155550100"}
    assert staff.sent == []


def test_any_other_reply_goes_to_the_staff_with_the_number_masked():
    ledger, staff = FakeReminderLedger(), Staff()
    reply = Reply("+8613800138001", "付款页面打不开\n\x1b[31m", in_reply_to="msg-9")
    assert handle_reply(reply, ledger=ledger, staff=staff, now=AT).outcome is ReplyOutcome.FORWARDED
    ((_subject, body),) = staff.sent
    assert "13800138001" not in body and "8001" in body and "msg-9" in body and "付款页面打不开" in body
    assert "\x1b" not in body and ledger.opted_out_phones() == set()
    no_staff = handle_reply(reply, ledger=ledger, staff=None, now=AT)
    assert no_staff.outcome is ReplyOutcome.NOT_FORWARDED


def request(i: int) -> SendRequest:
    return SendRequest(
        f"o-{i}",
        f"b-{i}",
        f"+86138001380{i:02d}",
        1,
        "hi",
        1,
        AT + timedelta(minutes=40),
        AT.date(),
        "09:50-10:40",
        AT,
    )


def test_a_gateway_that_keeps_its_own_list_still_never_texts_a_number_on_the_shops_list():
    """A buyer answered 退订 after the plan queued their SMS: End User Messaging's own list does not
    know 退订, so the sender reads the shop's list once per batch and drops the SMS."""
    clock = FakeClock(AT)
    ledger, sms = FakeReminderLedger(), FakeSmsGateway()
    sms.checks_opt_out = True
    ledger.add_opted_out("+8613800138002", AT)
    sender = Sender(
        orders=FakeOrderRepository([numbered_order(i, created=AT - timedelta(hours=3)) for i in (1, 2)]),
        ledger=ledger,
        sms=sms,
        clock=clock.now,
        pacer=Pacer(100, clock=clock.now, sleep=clock.sleep),
        daily_cap=500,
        buyer_min_interval=timedelta(hours=24),
        max_age=timedelta(hours=72),
        new_token=iter(f"t{i}" for i in range(10)).__next__,
    )
    batch = sender.start_batch([request(1), request(2)])
    assert [batch.deliver(request(i)) for i in (1, 2)] == [SendOutcome.SENT, SendOutcome.OPTED_OUT]
    assert [p for p, _ in sms.sent] == ["+8613800138001"]
