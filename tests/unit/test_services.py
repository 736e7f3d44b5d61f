"""The plan and send services over the in-memory fakes: fast checks of what the shell decides."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from nudge.domain.config import load_config
from nudge.domain.restdays import RestDayCalendar
from nudge.services.planning import UnknownWindowError, WindowRun, plan_window
from nudge.services.ports import PermanentSendError, SendRequest, TransientSendError
from nudge.services.sending import (
    Pacer,
    RetryLaterError,
    Sender,
    SendOutcome,
    TooLittleTimeError,
    UnconfirmedSendError,
)
from nudge_local.pipeline import FakeClock
from tests.builders import SHANGHAI, numbered_order
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue, FakeSmsGateway

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
CONFIG = load_config({"windows": "09:50-10:40@11:00,15:00-16:50@17:00"})


def record(i: int, **extra) -> dict:
    return numbered_order(i, created=AT - timedelta(hours=3), **extra)


def plan(orders, *, started_at=AT, window="09:50-10:40@11:00", **kwargs):
    queue, ledger = FakeSendQueue(), FakeReminderLedger()
    result = plan_window(
        WindowRun(window, AT),
        config=CONFIG,
        calendar=RestDayCalendar(CONFIG.calendar),
        orders=orders,
        ledger=ledger,
        queue=queue,
        started_at=started_at,
        **kwargs,
    )
    return result, queue, ledger


def test_a_window_the_stack_does_not_have_is_refused():
    with pytest.raises(UnknownWindowError, match="not one of this stack's windows"):
        plan(FakeOrderRepository(), window="08:00-09:00")


def test_dry_run_decides_but_queues_and_lists_nothing():
    (_p, summary), queue, ledger = plan(
        FakeOrderRepository([record(1), record(2, amount=5000)]), dry_run=True
    )
    assert summary.by_reason == {"send": 1, "large_order": 1} and summary.dry_run
    assert queue.requests == [] and summary.enqueued == 0
    assert ledger.states(["o-2"]) == {}  # the call list is untouched too


def test_a_run_started_after_its_window_is_judged_at_its_real_start():
    orders = FakeOrderRepository([record(1)])
    (p, summary), queue, _ = plan(orders, started_at=datetime(2026, 11, 23, 10, 41, tzinfo=SH))
    assert p is None and summary.run_skipped == "outside_window"
    assert orders.planning_calls == 0 and queue.requests == []


def test_a_late_start_inside_the_window_is_judged_at_the_scheduled_time():
    (_p, summary), queue, _ = plan(FakeOrderRepository([record(1)]), started_at=AT + timedelta(minutes=5))
    assert summary.judged_at == AT and len(queue.requests) == 1
    assert queue.requests[0].not_after == datetime(2026, 11, 23, 10, 40, tzinfo=SH)


def test_send_requests_carry_what_the_sender_needs():
    (_p, summary), queue, _ = plan(FakeOrderRepository([record(1)]))
    (req,) = queue.requests
    assert (req.order_id, req.attempt, req.phone, req.day, req.window) == (
        "o-1",
        1,
        "+8613800138001",
        AT.date(),
        "09:50-10:40",
    )
    assert req.text.startswith("【Nudge Shop】") and req.segments >= 1
    assert summary.decisions == [{"order_id": "o-1", "action": "send", "reason": None}]


# ---- sender ------------------------------------------------------------------------------------


def request(i: int = 1, attempt: int = 1, not_after: datetime | None = None) -> SendRequest:
    return SendRequest(
        f"o-{i}",
        f"b-{i}",
        f"+86138001380{i:02d}",
        attempt,
        f"text {i}",
        1,
        not_after or AT + timedelta(minutes=50),
        AT.date(),
        "09:50-10:40",
        AT,
    )


def sender(*, orders=None, sms=None, per_second=100.0, dry_run=False, cap=500, ledger=None):
    clock = FakeClock(AT)
    orders = orders or FakeOrderRepository([record(i) for i in range(1, 6)])
    s = Sender(
        orders=orders,
        ledger=ledger or FakeReminderLedger(),
        sms=sms or FakeSmsGateway(),
        clock=clock.now,
        pacer=Pacer(per_second, clock=clock.now, sleep=clock.sleep),
        daily_cap=cap,
        buyer_min_interval=timedelta(hours=24),
        max_age=timedelta(hours=72),
        new_token=iter(f"t{i}" for i in range(1000)).__next__,
        dry_run=dry_run,
    )
    return s, clock


def deliver(s: Sender, req: SendRequest, **batch) -> SendOutcome:
    """One SMS in a batch of its own, as an SQS batch of one message is delivered."""
    return s.start_batch([req], **batch).deliver(req)


def test_the_pacer_spaces_publishes_to_the_ceiling():
    s, clock = sender(per_second=2)
    batch = s.start_batch([request(i) for i in range(1, 5)])
    for i in range(1, 5):
        assert batch.deliver(request(i)) is SendOutcome.SENT
    assert clock.now() - AT == timedelta(seconds=1.5)  # 4 SMS at 2/s: 0, 0.5, 1.0, 1.5 s


def test_a_status_read_for_one_batch_is_not_trusted_by_the_next():
    orders = FakeOrderRepository([record(1)])
    s, _ = sender(orders=orders)
    first = s.start_batch([request(1)])
    orders.set_status("o-1", "paid")  # paid after that batch was read
    later = s.start_batch([request(1)])  # a later batch on the same warm container
    assert later.deliver(request(1)) is SendOutcome.NOT_UNPAID
    assert first.orders_now["o-1"].status == "unpaid"  # each batch holds its own read
    assert orders.current_calls == 2


def test_a_rejected_number_releases_its_claim_and_is_not_retried():
    class Rejecting(FakeSmsGateway):
        def publish(self, sms):
            raise PermanentSendError("InvalidParameter")

    s, _ = sender(sms=Rejecting())
    assert deliver(s, request(1)) is SendOutcome.REJECTED
    assert s.ledger.sent_on(AT.date()) == 0
    assert s.ledger.items["o-1"]["skips"][0]["reason"].startswith("rejected")


def test_a_throttled_opt_out_check_is_retried_later_without_a_claim():
    class Throttled(FakeSmsGateway):
        def is_opted_out(self, phone):
            raise TransientSendError("Throttling")

    s, _ = sender(sms=Throttled())
    with pytest.raises(RetryLaterError):
        deliver(s, request(1))
    assert s.ledger.sent_on(AT.date()) == 0 and "claimed_attempt" not in s.ledger.items.get("o-1", {})


def test_dry_run_sends_and_claims_nothing():
    sms = FakeSmsGateway()
    s, _ = sender(sms=sms, dry_run=True)
    assert deliver(s, request(1)) is SendOutcome.DRY_RUN
    assert sms.sent == [] and s.ledger.sent_on(AT.date()) == 0


def test_pacing_that_runs_past_the_deadline_drops_the_sms():
    s, _ = sender(per_second=0.1)  # one SMS every 10 s
    deadline = AT + timedelta(seconds=15)
    outcomes = [deliver(s, request(i, not_after=deadline)) for i in range(1, 4)]
    assert outcomes == [SendOutcome.SENT, SendOutcome.SENT, SendOutcome.PAST_DEADLINE]


def test_a_publish_without_an_answer_keeps_the_claim_and_is_unconfirmed():
    class Silent(FakeSmsGateway):
        def publish(self, sms):
            raise TimeoutError("read timeout")

    s, _ = sender(sms=Silent())
    with pytest.raises(UnconfirmedSendError, match="publish outcome unknown"):
        deliver(s, request(1))
    assert s.ledger.items["o-1"]["claimed_attempt"] == 1  # held: this attempt is never published again
    s.sms = FakeSmsGateway()
    assert deliver(s, request(1)) is SendOutcome.DUPLICATE


def test_a_send_that_is_not_recorded_is_unconfirmed_and_never_repeated():
    s, _ = sender()

    def broken(*args, **kwargs):
        raise RuntimeError("DynamoDB unavailable")

    s.ledger.record_sent = broken
    with pytest.raises(UnconfirmedSendError, match="but not recorded"):
        deliver(s, request(1))
    assert len(s.sms.sent) == 1
    assert deliver(s, request(1)) is SendOutcome.DUPLICATE and len(s.sms.sent) == 1


def test_a_failure_before_the_claim_is_not_unconfirmed_and_a_retry_sends():
    orders = FakeOrderRepository([record(1)])
    s, _ = sender(orders=orders)
    real = orders.current
    orders.current = lambda ids: (_ for _ in ()).throw(RuntimeError("DynamoDB unavailable"))
    with pytest.raises(RuntimeError) as info:
        deliver(s, request(1))
    assert not isinstance(info.value, UnconfirmedSendError)
    assert "o-1" not in s.ledger.items  # nothing claimed
    orders.current = real
    assert deliver(s, request(1)) is SendOutcome.SENT


def test_a_number_sns_refuses_to_check_is_rejected_not_retried():
    class Refusing(FakeSmsGateway):
        def is_opted_out(self, phone):
            raise PermanentSendError("InvalidParameter")

    s, _ = sender(sms=Refusing())
    assert deliver(s, request(1)) is SendOutcome.REJECTED
    assert s.ledger.sent_on(AT.date()) == 0 and s.sms.sent == []


# ---- sender: the buyer's contact slots ----------------------------------------------------------

AFTERNOON = AT + timedelta(hours=5, minutes=10)  # 15:00, the afternoon window


def of_buyer_1(i: int, *, phone_of: int = 1, not_after: datetime | None = None) -> SendRequest:
    """Order o-i, bought by b-1 (each planned in its own window: a plan never queues both)."""
    return replace(
        request(i),
        buyer_id="b-1",
        phone=f"+86138001380{phone_of:02d}",
        not_after=not_after or AT + timedelta(hours=7),
    )


def test_a_second_order_of_a_buyer_texted_today_is_dropped_at_send_time():
    s, clock = sender()
    assert deliver(s, of_buyer_1(1)) is SendOutcome.SENT
    clock.set(AFTERNOON)
    assert deliver(s, of_buyer_1(2, phone_of=2)) is SendOutcome.BUYER_RECENTLY_CONTACTED  # same buyer id
    assert deliver(s, replace(of_buyer_1(3), buyer_id="b-3")) is SendOutcome.BUYER_RECENTLY_CONTACTED
    assert s.ledger.items["o-2"]["skips"][0]["reason"] == "buyer_recently_contacted"
    assert len(s.sms.sent) == 1 and s.ledger.sent_on(AT.date()) == 1


def test_a_throttled_publish_gives_the_buyers_slot_back():
    sms = FakeSmsGateway()
    s, clock = sender(sms=sms)
    sms.fail_next(1)
    with pytest.raises(RetryLaterError):
        deliver(s, of_buyer_1(1))
    clock.set(AFTERNOON)
    assert deliver(s, of_buyer_1(2)) is SendOutcome.SENT  # nothing went out this morning


def test_a_publish_of_unknown_outcome_keeps_the_buyer_from_another_sms_for_24_hours():
    class Silent(FakeSmsGateway):
        def publish(self, sms):
            raise TimeoutError("read timeout")

    s, clock = sender(sms=Silent())
    with pytest.raises(UnconfirmedSendError):
        deliver(s, of_buyer_1(1))
    s.sms = FakeSmsGateway()
    clock.set(AFTERNOON)
    assert deliver(s, of_buyer_1(2)) is SendOutcome.BUYER_RECENTLY_CONTACTED
    clock.set(AT + timedelta(hours=24))
    tomorrow = replace(of_buyer_1(2), not_after=AT + timedelta(hours=24, minutes=50))
    assert deliver(s, tomorrow) is SendOutcome.SENT
    assert len(s.sms.sent) == 1


# ---- sender: the order as it is now -------------------------------------------------------------


def test_an_order_closed_or_aged_out_since_planning_gets_no_sms():
    orders = FakeOrderRepository(
        [
            record(1, closes_at=(AT + timedelta(minutes=5)).isoformat()),
            record(2, created_at=(AT - timedelta(hours=71, minutes=59)).isoformat()),
            record(3, closes_at="soon"),
            record(4),
        ]
    )
    sms = FakeSmsGateway()
    s, clock = sender(orders=orders, sms=sms)
    sms.fail_next(2)  # throttled: SQS brings both back after the visibility timeout (~6 min)
    for i in (1, 2):
        with pytest.raises(RetryLaterError):
            deliver(s, request(i))
    clock.advance(370)
    assert deliver(s, request(1)) is SendOutcome.EXPIRED  # its closes_at passed meanwhile
    assert deliver(s, request(2)) is SendOutcome.EXPIRED  # 72 h old by now
    assert deliver(s, request(3)) is SendOutcome.INVALID_ORDER
    assert [sk["reason"] for sk in s.ledger.items["o-1"]["skips"]] == [
        f"expired: closed at {(AT + timedelta(minutes=5)).isoformat()}"
    ]
    assert s.ledger.items["o-3"]["skips"][0]["reason"] == "invalid_order: closes_at"
    orders.update("o-4", closes_at=clock.now().isoformat())  # closed right now: closes_at <= now
    assert deliver(s, request(4)) is SendOutcome.EXPIRED
    assert sms.sent == [] and s.ledger.sent_on(AT.date()) == 0


# ---- sender: a sender that died, and the time left ----------------------------------------------


class Crash(BaseException):
    """The process dies (Lambda timeout, out of memory): no handler gets to run."""


def test_a_sender_that_died_after_its_claim_is_reported_once_as_unconfirmed():
    class Dying(FakeSmsGateway):
        def publish(self, sms):
            raise Crash

    s, clock = sender(sms=Dying())
    with pytest.raises(Crash):
        deliver(s, request(1))
    s.sms = FakeSmsGateway()
    clock.advance(30)  # a concurrent duplicate while it could still be publishing
    assert deliver(s, request(1)) is SendOutcome.DUPLICATE
    clock.advance(370)  # SQS redelivers the dead sender's message after the visibility timeout
    assert deliver(s, request(1)) is SendOutcome.UNCONFIRMED
    assert s.ledger.items["o-1"]["skips"][-1]["reason"] == "unconfirmed: claimed, never recorded as sent"
    assert deliver(s, request(1)) is SendOutcome.DUPLICATE  # reported once
    assert s.sms.sent == []


def test_an_unknown_publish_is_recorded_so_its_redelivery_is_a_plain_duplicate():
    class Silent(FakeSmsGateway):
        def publish(self, sms):
            raise TimeoutError("read timeout")

    s, clock = sender(sms=Silent())
    with pytest.raises(UnconfirmedSendError):
        deliver(s, request(1))
    assert s.ledger.items["o-1"]["skips"][0]["reason"].startswith("unconfirmed: publish outcome unknown")
    clock.advance(370)
    assert deliver(s, request(1)) is SendOutcome.DUPLICATE  # already reported: not counted twice


def test_an_unknown_publish_that_cannot_be_recorded_is_reported_by_its_redelivery():
    class Silent(FakeSmsGateway):
        def publish(self, sms):
            raise TimeoutError("read timeout")

    s, clock = sender(sms=Silent())
    s.ledger.record_unconfirmed = lambda *a: (_ for _ in ()).throw(RuntimeError("DynamoDB unavailable"))
    with pytest.raises(UnconfirmedSendError):
        deliver(s, request(1))
    del s.ledger.record_unconfirmed
    clock.advance(370)
    assert deliver(s, request(1)) is SendOutcome.UNCONFIRMED


def test_too_little_time_left_retries_later_without_a_claim():
    s, _ = sender()
    with pytest.raises(TooLittleTimeError):
        deliver(s, request(1), remaining_ms=lambda: 19_999)
    assert "o-1" not in s.ledger.items and s.ledger.sent_on(AT.date()) == 0 and s.sms.sent == []
    assert deliver(s, request(1), remaining_ms=lambda: 20_000) is SendOutcome.SENT


# ------------------------------------------------------- a gateway that keeps its own opt-out list


def test_a_gateway_with_its_own_opt_out_list_saves_the_check_call_and_keeps_the_promise():
    """End User Messaging refuses an opted-out number at publish: the sender asks nothing first,
    releases the claim, remembers the number for later plans, and never retries the SMS."""
    sms = FakeSmsGateway(opted_out={"+8613800138002"})
    sms.checks_opt_out = True
    s, _ = sender(sms=sms)
    assert deliver(s, request(1)) is SendOutcome.SENT
    assert deliver(s, request(2)) is SendOutcome.OPTED_OUT
    assert sms.opt_out_checks == []  # one call per SMS fewer than with SNS
    assert [p for p, _ in sms.sent] == ["+8613800138001"]
    assert "+8613800138002" in s.ledger.opted_out_phones()
    assert s.ledger.sent_on(AT.date()) == 1  # the refused SMS gave its unit of the cap back
    assert deliver(s, request(2)) is SendOutcome.OPTED_OUT and len(sms.sent) == 1


def test_the_gateway_gets_the_claim_the_deadline_and_the_variant():
    sms = FakeSmsGateway()
    s, _ = sender(sms=sms)
    req = replace(request(1), variant="cutoff")
    assert deliver(s, req) is SendOutcome.SENT
    (handed,) = sms.handed
    assert (handed.order_id, handed.attempt, handed.variant) == ("o-1", 1, "cutoff")
    assert handed.not_after == req.not_after and handed.handed_at == AT
    assert handed.claim_token == s.ledger.items["o-1"]["claim_token"]


def test_a_ledger_error_on_an_sns_log_line_raises_so_lambda_retries_the_whole_event():
    import json
    from pathlib import Path

    from nudge.services.receipts import record_sns_delivery_logs

    class LedgerDown:
        def apply_receipt(self, receipt):
            raise ConnectionError("DynamoDB unreachable")

        def add_opted_out(self, phone, at):  # the port's other method
            raise AssertionError("not called")

    sample = Path(__file__).resolve().parents[2] / "events" / "sns-sms-delivery-log-success.json"
    with pytest.raises(ConnectionError):
        record_sns_delivery_logs(json.loads(sample.read_text(encoding="utf-8")), LedgerDown())


def test_for_a_template_gateway_each_queued_sms_carries_its_templates_values_and_otherwise_nothing_new():
    """SmsGateway=aliyun: the plan app passes template_params=True (settings.sends_templates); the
    values are judged at the window's instant like the text. Any other gateway: the message body is
    byte for byte what it was (no template_params key at all)."""
    orders = [record(1, buyer_name="王小明", item_title="羊毛围巾", amount=199)]
    _, plain, _ = plan(FakeOrderRepository(orders))
    _, templated, _ = plan(FakeOrderRepository(orders), template_params=True)
    (body,) = plain.bodies
    assert "template_params" not in body
    (request,) = templated.requests
    assert request.template_params == {
        "name": "王小明",
        "item": "羊毛围巾",
        "amount": "199.00",
        "cutoff": "11:00",
    }
    assert replace(request, template_params=None) == plain.requests[0]  # the rest is the same SMS
