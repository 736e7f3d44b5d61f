"""The gateways bench at a tiny size: it runs, and what it reports holds (calls per SMS by
gateway, the sustained send rate against SmsPerSecond)."""

from __future__ import annotations

from bench import gateways


def test_end_user_messaging_makes_three_calls_per_sms_and_sns_four():
    eum = gateways.calls_per_sms("end-user-messaging", 20)
    sns = gateways.calls_per_sms("sns", 20)
    assert eum["sms_sent"] == sns["sms_sent"] == 20
    assert eum["per_sms_operations"] == 3.0  # claim, hand-off, record: the opt-out check is the service's
    assert sns["per_sms_operations"] == 4.0  # and SNS's CheckIfPhoneNumberIsOptedOut
    assert "sns.CheckIfPhoneNumberIsOptedOut" not in eum["calls"]


def test_sns_with_delivery_logs_writes_one_pointer_more_per_sms():
    sns = gateways.calls_per_sms("sns", 20)
    logs = gateways.calls_per_sms(gateways.SNS_WITH_LOGS, 20)
    assert logs["sms_sent"] == 20
    assert logs["per_sms_operations"] == sns["per_sms_operations"] + 1 == 5.0
    assert logs["calls"]["dynamodb.UpdateItem"] == sns["calls"]["dynamodb.UpdateItem"] + 20


def test_the_pacer_holds_the_configured_rate_for_a_whole_window():
    r = gateways.sustained_rate(minutes=1)
    assert r["share_of_rate"] >= 0.95 and r["max_in_one_second"] <= r["configured_per_second"]
    verdicts = gateways.verdicts({"calls": [], "rate": r})
    assert all(ok for _, _, ok in verdicts if ok is not None)
