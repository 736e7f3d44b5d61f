"""Buyers' replies end to end on moto: End User Messaging's two-way payload through the real
replies handler; an opt-out reaches the next plan, any other reply reaches the staff topic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import MORNING_OPENS, QUIET, numbered_order

pytestmark = pytest.mark.aws


def inbound(phone: str, body: str) -> dict:
    """Shaped like AWS's example two-way SMS payload."""
    return {
        "originationNumber": phone,
        "destinationNumber": "+12125550101",
        "messageKeyword": "KEYWORD_111122223333",
        "messageBody": body,
        "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
        "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }


def test_an_opt_out_reply_reaches_the_next_plan_and_other_replies_the_staff():
    orders = [numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2)]
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders(orders)
        assert p.inbound_sms(inbound("+8613800138001", "退订")) == {"results": ["opted_out"]}
        assert p.inbound_sms(inbound("+8613800138002", "Not now, pay tomorrow")) == {"results": ["forwarded"]}
        assert p.inbound_sms({"messageBody": "STOP"}) == {
            "results": ["unreadable"]
        }  # no number: nothing written
        plan = p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        decisions = {d["order_id"]: d["reason"] for d in plan["decisions"]}
        assert decisions == {"o-1": "opted_out", "o-2": None}
        assert [phone for phone, _ in p.sent_sms()] == ["+8613800138002"]
        ((_subject, body),) = p.staff_digests()
        assert "Not now, pay tomorrow" in body and "8613800138002" not in body
