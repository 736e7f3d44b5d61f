"""The send path's promises with each SMS gateway: the real ``Sender`` over the in-memory ledger,
handing off through the real adapter to its provider's local stand-in (SNS on moto, End User
Messaging's stand-in behind a real botocore client, Alibaba Cloud's official SDK against a local
dysmsapi), faults injected at that provider's boundary (``tests.gateways``). What is checked is
what the provider received: never two SMS for one (order, attempt)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from nudge.services.ports import SendRequest
from nudge.services.sending import RetryLaterError, SendOutcome, UnconfirmedSendError
from tests.gateways import GATEWAYS, Died, Provider, gateway_provider
from tests.unit.test_send_after_a_slow_claim import SlowClaimLedger
from tests.unit.test_services import AFTERNOON, AT, deliver, of_buyer_1, request, sender

# Alibaba Cloud sends registered templates: every request carries the template's values.
PARAMS = {"name": "王小明", "item": "羊毛围巾", "amount": "199.00", "closes": "23:59"}
VISIBILITY = 370  # the send queue's visibility timeout: SQS redelivers a failed message after it
PUBLISH_TIMEOUT = timedelta(seconds=12)  # each gateway's connect + read timeout (test_send_faults)


@pytest.fixture(params=GATEWAYS)
def provider(request: pytest.FixtureRequest) -> Iterator[Provider]:
    with gateway_provider(request.param) as provider:
        yield provider


def sms(i: int = 1) -> SendRequest:
    return replace(request(i), template_params=PARAMS)


def test_an_sms_is_handed_off_once_and_its_redelivery_sends_nothing(provider):
    s, _ = sender(sms=provider.gateway)
    assert deliver(s, sms()) is SendOutcome.SENT
    assert deliver(s, sms()) is SendOutcome.DUPLICATE
    assert provider.received() == ["+8613800138001"]
    assert s.ledger.items["o-1"]["message_id_1"]  # the provider's id, for its receipts


def test_a_timeout_before_delivery_gives_the_claim_back_and_the_retry_sends_once(provider):
    """The connection was never made: nothing was sent, so the attempt is free to go again."""
    provider.fail_next("unreachable")
    s, clock = sender(sms=provider.gateway)
    with pytest.raises(RetryLaterError, match="unreachable"):
        deliver(s, sms())
    assert provider.received() == []
    assert "claimed_attempt" not in s.ledger.items["o-1"] and s.ledger.sent_on(AT.date()) == 0
    clock.advance(VISIBILITY)
    assert deliver(s, sms()) is SendOutcome.SENT
    assert provider.received() == ["+8613800138001"]


def test_a_timeout_after_delivery_is_unconfirmed_and_never_resent(provider):
    """The provider took the SMS and its answer was lost: the claim stays, nothing goes again."""
    provider.fail_next("answer_lost")
    s, clock = sender(sms=provider.gateway)
    with pytest.raises(UnconfirmedSendError, match="publish outcome unknown"):
        deliver(s, sms())
    assert provider.received() == ["+8613800138001"]
    assert s.ledger.items["o-1"]["claimed_attempt"] == 1
    clock.advance(VISIBILITY)
    assert deliver(s, sms()) is SendOutcome.DUPLICATE  # the redelivery: already reported
    assert provider.received() == ["+8613800138001"]


def test_throttling_gives_the_claim_back_and_a_later_retry_sends_once(provider):
    provider.fail_next("throttled", "throttled")
    s, clock = sender(sms=provider.gateway)
    for _ in range(2):
        with pytest.raises(RetryLaterError):
            deliver(s, sms())
        assert s.ledger.sent_on(AT.date()) == 0  # the claim gave its unit of the cap back
        clock.advance(VISIBILITY)
    assert provider.received() == []  # a throttled request is refused, not taken
    assert deliver(s, sms()) is SendOutcome.SENT
    assert provider.received() == ["+8613800138001"]


@pytest.mark.parametrize(("fault", "received"), [("dies", []), ("dies_after_delivery", ["+8613800138001"])])
def test_a_sender_that_dies_after_its_claim_is_reported_once_and_never_resent(provider, fault, received):
    provider.fail_next(fault)
    s, clock = sender(sms=provider.gateway)
    with pytest.raises(Died):
        deliver(s, sms())
    assert s.ledger.items["o-1"]["claimed_attempt"] == 1  # the claim stays with the dead sender
    clock.advance(30)  # a duplicate while it could still be handing off
    assert deliver(s, sms()) is SendOutcome.DUPLICATE
    clock.advance(VISIBILITY)  # SQS redelivers the dead invocation's message
    assert deliver(s, sms()) is SendOutcome.UNCONFIRMED
    assert deliver(s, sms()) is SendOutcome.DUPLICATE  # reported once
    assert provider.received() == received  # never a second hand-off


def test_a_throttled_hand_off_gives_the_buyers_slot_back(provider):
    provider.fail_next("throttled")
    s, clock = sender(sms=provider.gateway)
    with pytest.raises(RetryLaterError):
        deliver(s, replace(of_buyer_1(1), template_params=PARAMS))
    clock.set(AFTERNOON)
    assert deliver(s, replace(of_buyer_1(2), template_params=PARAMS)) is SendOutcome.SENT
    assert provider.received() == ["+8613800138001"]  # the afternoon's, the first was refused


def test_a_lost_answer_keeps_the_buyer_from_another_sms_for_24_hours(provider):
    provider.fail_next("answer_lost")
    s, clock = sender(sms=provider.gateway)
    with pytest.raises(UnconfirmedSendError):
        deliver(s, replace(of_buyer_1(1), template_params=PARAMS))
    clock.set(AFTERNOON)
    assert deliver(s, replace(of_buyer_1(2), template_params=PARAMS)) is SendOutcome.BUYER_RECENTLY_CONTACTED
    assert provider.received() == ["+8613800138001"]  # the one the provider took, nothing more


def test_a_claim_that_ate_the_time_left_hands_nothing_off(provider):
    """A slow claim (conflict retries): the deadline is checked again with the gateway's own worst
    case before the hand-off, and the claim is given back."""
    s, clock = sender(sms=provider.gateway)
    clock.set(AT + timedelta(minutes=49, seconds=46))  # 14 s before the window closes at 10:40
    s.ledger = SlowClaimLedger(clock)  # the claim takes 5 s
    s.publish_timeout = PUBLISH_TIMEOUT
    assert deliver(s, sms()) is SendOutcome.PAST_DEADLINE
    assert provider.received() == [] and "claimed_attempt" not in s.ledger.items["o-1"]
