"""LedgerTtlDays end to end on moto (stack from template.yaml): a value the stack accepts never
makes the window's sends fail; an unusable one stops at load time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from nudge.domain.config import ConfigError
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import SHANGHAI

pytestmark = pytest.mark.aws

SH = SHANGHAI
MORNING = "09:50-10:40@11:00"
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday, the morning window opens
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


# The rule: the pipeline refuses to start (ConfigError naming LEDGER_TTL_DAYS), as for any bad
# setting. Before the fix, it starts, plans and queues the SMS, and then every claim raises OverflowError in
# DynamoReminderLedger.claim (``now + self._ttl``): no SMS of the window goes out, each message is
# retried until the DLQ.
def test_a_large_ledger_ttl_days_never_fails_the_sends():
    orders = [
        {
            "order_id": f"o-{i}",
            "buyer_id": f"b-{i}",
            "phone": f"+86138001380{i:02d}",
            "status": "unpaid",
            "created_at": (AT - timedelta(hours=3)).isoformat(),
            "amount": 100,
        }
        for i in range(1, 4)
    ]
    try:
        with LocalPipeline(clock=FakeClock(AT), env={**QUIET, "LEDGER_TTL_DAYS": "999999999"}) as p:
            p.load_orders(orders)
            summary = p.fire_window(MORNING, AT)
            p.drain_queue(max_rounds=3)
            sent = p.sent_sms()
    except ConfigError as exc:
        assert "LEDGER_TTL_DAYS" in str(exc)
        return
    pytest.fail(f"started with LEDGER_TTL_DAYS=999999999: enqueued {summary['enqueued']}, sent {len(sent)}")
