"""Every Context value sent is one End User Messaging accepts, whatever order id the contract let in
(the service refuses a value over 800 characters or with a space at either end)."""

from __future__ import annotations

import re

import botocore.session
import pytest

from nudge.adapters.end_user_messaging import EndUserMessagingGateway
from nudge.domain.platforms.standard import map_standard
from tests.builders import outgoing

# What the service checks and botocore's client-side validation (and the local stand-in) does not.
_CONTEXT_VALUE = (
    botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2").shape_for("ContextValue")
)


def _service_accepts(value: str) -> bool:
    m = _CONTEXT_VALUE.metadata
    return len(value) <= m["max"] and re.fullmatch(m["pattern"], value) is not None


class _Capture:
    def __init__(self):
        self.params = {}

    def send_text_message(self, **params):
        self.params = params
        return {"MessageId": "m-1"}


@pytest.mark.parametrize("order_id", ["A-1001 ", " A-1001", "x" * 801])
def test_context_values_are_ones_the_service_accepts(order_id):
    # The Standard Webhooks mapping (and parse_order, so nudge import) accept this order id ...
    event = map_standard(
        {"type": "order.paid", "timestamp": "2026-03-02T10:00:00+08:00", "data": {"order_id": order_id}}
    )
    assert event.order_id == order_id
    # ... and the gateway puts it in SendTextMessage's Context as it is.
    client = _Capture()
    EndUserMessagingGateway(client).publish(outgoing("+14155550100", "hi", order_id=order_id))
    bad = {k: v[:20] for k, v in client.params["Context"].items() if not _service_accepts(v)}
    assert not bad, f"SendTextMessage would answer ValidationException -> PermanentSendError: {bad}"
