"""The send and outcomes handlers read each record once (not once to start the batch and again in
the record handler), and a record that does not parse still fails alone."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from nudge.services import outcomes as outcomes_service
from nudge.services.ports import SendRequest
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import SHANGHAI, numbered_order

pytestmark = pytest.mark.aws

SH = SHANGHAI
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(i: int) -> dict:
    return numbered_order(i, created=AT - timedelta(hours=3))


def test_the_send_handler_reads_each_message_once(monkeypatch):
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders([order(i) for i in range(1, 4)])
        p.fire_window("09:50-10:40@11:00", AT)
        messages = p.receive()
        bad = dict(
            messages[0], Body="{not json", MessageId="bad-1", ReceiptHandle=messages[0]["ReceiptHandle"]
        )
        reads: Counter = Counter()
        original = SendRequest.__dict__["from_json"].__func__

        def counting(cls, data):
            reads[data.get("order_id")] += 1
            return original(cls, data)

        monkeypatch.setattr(SendRequest, "from_json", classmethod(counting))
        failed = p.deliver([*messages, bad])
        assert failed == {"bad-1"}  # the unreadable one fails alone
        assert reads == {f"o-{i}": 1 for i in range(1, 4)} and len(p.sent_sms()) == 3


def test_the_outcomes_handler_reads_each_record_once(monkeypatch):
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        p.load_orders([order(i) for i in range(1, 4)])
        p.fire_window("09:50-10:40@11:00", AT)
        p.drain_queue()
        reads: Counter = Counter()
        original = outcomes_service.payment_from_change

        def counting(new, old, **kwargs):
            reads[new.get("order_id")] += 1
            return original(new, old, **kwargs)

        module = p.outcomes_module
        monkeypatch.setattr(module, "payment_from_change", counting)
        changes = []
        for i in range(1, 4):
            old, new = p.pay_order(f"o-{i}", AT + timedelta(hours=1))
            changes.append((old, new))
        p.play_stream(changes)
        assert reads == {f"o-{i}": 1 for i in range(1, 4)}
