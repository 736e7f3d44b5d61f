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


# ------------------------------------------------------------------ SmsGateway=aliyun's settings
ALIYUN = {
    **BASE,
    "SMS_GATEWAY": "aliyun",
    "ALIYUN_SIGN_NAME": "Nudge小店",
    "ALIYUN_TEMPLATE_CODES": "1=SMS_111,2=SMS_222",
    "ALIYUN_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nudge-aliyun",
}
TWO_ARMS = (
    '{"messages": {"variants": {"1": [{"name": "A", "template": "{greeting} a"},'
    ' {"name": "B", "template": "{greeting} b"}]}}}'
)


def test_aliyun_settings_are_read_with_one_code_per_reminder_and_variant():
    s = load_settings(ALIYUN)
    assert s.sms_gateway == "aliyun" and s.sends_templates
    assert s.aliyun_template_codes == {1: ("SMS_111",), 2: ("SMS_222",)}
    assert s.aliyun_endpoint == "dysmsapi.aliyuncs.com"  # the central endpoint unless told
    s = load_settings(
        {
            **ALIYUN,
            "ALIYUN_TEMPLATE_CODES": " 1=SMS_111 | SMS_112 , 2=SMS_222",
            "EXTRA_CONFIG_JSON": TWO_ARMS,
            "ALIYUN_ENDPOINT": "dysmsapi.ap-southeast-1.aliyuncs.com",
        }
    )
    assert s.aliyun_template_codes == {1: ("SMS_111", "SMS_112"), 2: ("SMS_222",)}
    assert s.aliyun_endpoint == "dysmsapi.ap-southeast-1.aliyuncs.com"
    assert not load_settings(BASE).sends_templates  # sns: the texts themselves, as before


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"ALIYUN_SIGN_NAME": ""}, "ALIYUN_SIGN_NAME: missing"),
        ({"ALIYUN_TEMPLATE_CODES": " "}, "ALIYUN_TEMPLATE_CODES: missing"),
        ({"ALIYUN_CREDENTIALS_SECRET_ARN": ""}, "ALIYUN_CREDENTIALS_SECRET_ARN: missing"),
        ({"ALIYUN_TEMPLATE_CODES": "1=SMS_111"}, "ALIYUN_TEMPLATE_CODES: no template for reminder 2"),
        ({"ALIYUN_TEMPLATE_CODES": "SMS_111,SMS_222"}, "ALIYUN_TEMPLATE_CODES: 'SMS_111': expected 1="),
        ({"ALIYUN_TEMPLATE_CODES": "1=SMS_1,3=SMS_3"}, "ALIYUN_TEMPLATE_CODES: '3=SMS_3': expected"),
        ({"ALIYUN_TEMPLATE_CODES": "1=SMS_1,1=SMS_2"}, "reminder 1 is given twice"),
        ({"ALIYUN_TEMPLATE_CODES": "1=sms-111,2=SMS_2"}, "'sms-111' is not a template code"),
        ({"ALIYUN_TEMPLATE_CODES": "1=SMS_1|,2=SMS_2"}, "'' is not a template code"),
        ({"ALIYUN_TEMPLATE_CODES": "1=SMS_1|SMS_2,2=SMS_3"}, "reminder 1 has no text variants: give one"),
        ({"EXTRA_CONFIG_JSON": TWO_ARMS}, "reminder 1 has 2 text variants (A, B): give one template code"),
        ({"ALIYUN_ENDPOINT": "https://dysmsapi.aliyuncs.com"}, "ALIYUN_ENDPOINT"),
        ({"SMS_GATEWAY": "aliyun-someday"}, "SMS_GATEWAY"),
    ],
)
def test_a_bad_aliyun_setting_stops_at_load_naming_it(change, problem):
    with pytest.raises(ConfigError) as caught:
        load_settings({**ALIYUN, **change})
    assert problem in str(caught.value)


def test_the_other_gateways_need_no_aliyun_settings_but_a_bad_code_list_is_still_refused():
    assert load_settings({**BASE, "SMS_GATEWAY": "end-user-messaging"}).aliyun_template_codes == {}
    with pytest.raises(ConfigError, match="ALIYUN_TEMPLATE_CODES"):
        load_settings({**BASE, "ALIYUN_TEMPLATE_CODES": "1=oops"})
