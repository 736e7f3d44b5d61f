"""Settings at their limits: the loader refuses each bad value with one line naming the key.

Promise: bad config stops at load time with one line naming the key (nudge.settings.load_settings).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nudge.domain.config import ConfigError
from nudge.settings import load_settings

BASE = {
    "ORDERS_TABLE": "orders",
    "ORDERS_STATUS_INDEX": "status-created_at",
    "LEDGER_TABLE": "ledger",
    "LEDGER_DAY_INDEX": "sent_day-last_sent_at",
    "IDEMPOTENCY_TABLE": "idem",
    "SEND_QUEUE_URL": "https://sqs.example/q",
}


# The rule: refused at load time naming LEDGER_TTL_DAYS. template.yaml's LedgerTtlDays has a
# MinValue but no MaxValue and Settings.ledger_ttl_days only ge=1, so a large value deploys; then
# every ledger write computes ``now + timedelta(days=ttl)`` (DynamoReminderLedger.claim,
# mark_held_out, request_calls, record_skip): the first send of the window raises OverflowError,
# and so does every retry. (A value over 999999999 fails even earlier, in the ledger's constructor
# at the cold start, as a traceback.)
def test_a_huge_ledger_ttl_is_refused_at_load():
    ttl = 999_999_999
    with pytest.raises(OverflowError):  # what each ledger write does with it
        datetime(2026, 11, 23, 2, 0, tzinfo=UTC) + timedelta(days=ttl)
    with pytest.raises(ConfigError, match="LEDGER_TTL_DAYS"):
        load_settings({**BASE, "LEDGER_TTL_DAYS": str(ttl)})


# The rule: a ConfigError naming EXTRA_CONFIG_JSON. config_from_env catches only
# json.JSONDecodeError, so deeply nested JSON (a few KB, within the 4 KB parameter limit) escapes
# as a RecursionError traceback from json.loads.
def test_deeply_nested_extra_config_json_is_one_line():
    with pytest.raises(ConfigError, match="EXTRA_CONFIG_JSON"):
        load_settings({**BASE, "EXTRA_CONFIG_JSON": '{"rules":' + "[" * 3000 + "]" * 3000 + "}"})
