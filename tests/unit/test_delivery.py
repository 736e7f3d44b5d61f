"""Delivery receipts and replies (nudge.domain.delivery), on the sample events in events/."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nudge.domain.delivery import (
    FINAL,
    OUT_ID_MAX_LENGTH,
    RECEIPT_DEADLINE,
    AwaitedSms,
    DeliveryStatus,
    ReceiptError,
    aliyun_out_id,
    cloudwatch_log_messages,
    is_opt_out_reply,
    overdue,
    parse_aliyun_out_id,
    receipt_from_aliyun_report,
    receipt_from_eum_event,
    receipt_from_sns_delivery_log,
    reply_from_aliyun_up,
    status_at,
    sweep_span,
    takes,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
S = DeliveryStatus


def event(name: str):
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_an_end_user_messaging_delivery_event():
    r = receipt_from_eum_event(event("eum-text-delivered.json"))
    assert (r.message_id, r.status, r.code) == (
        "862a8790-60c0-4430-9b2b-658bdexample",
        S.DELIVERED,
        "DELIVERED",
    )
    assert (r.order_id, r.attempt) == ("o-1001", 1)  # the Context the gateway sent
    assert r.at == datetime(2026, 11, 23, 1, 50, 9, 377000, tzinfo=UTC)


def test_an_end_user_messaging_failure_keeps_its_code():
    r = receipt_from_eum_event(event("eum-text-carrier-unreachable.json"))
    assert (r.status, r.code) == (S.FAILED, "CARRIER_UNREACHABLE")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("TEXT_SUCCESSFUL", S.DELIVERED),
        ("TEXT_QUEUED", S.PENDING),
        ("TEXT_PENDING", S.PENDING),
        ("TEXT_TTL_EXPIRED", S.EXPIRED),
        ("TEXT_SPAM", S.BLOCKED),
        ("TEXT_CARRIER_BLOCKED", S.BLOCKED),
        ("TEXT_INVALID", S.FAILED),
        ("TEXT_UNKNOWN", S.UNKNOWN),
    ],
)
def test_every_text_event_type_has_a_status(kind, status):
    e = event("eum-text-delivered.json")
    e["detail"]["eventType"] = kind
    assert receipt_from_eum_event(e).status is status


@pytest.mark.parametrize(
    "change",
    [
        {"detail-type": "Voice Message Delivery Status Updated"},
        {"detail": {"eventType": "TEXT_DELIVERED", "eventTimestamp": 1}},  # no messageId
        {"detail": {"messageId": "m", "eventType": "VOICE_COMPLETED", "eventTimestamp": 1}},
        {"detail": {"messageId": "m", "eventType": "TEXT_DELIVERED", "eventTimestamp": "soon"}},
    ],
)
def test_an_unreadable_event_is_refused_not_guessed(change):
    with pytest.raises(ReceiptError):
        receipt_from_eum_event({**event("eum-text-delivered.json"), **change})


def test_alibaba_reports_in_beijing_time_naming_their_sms_by_out_id():
    delivered, failed = (receipt_from_aliyun_report(i) for i in event("aliyun-sms-report.json"))
    assert (delivered.status, delivered.message_id) == (S.DELIVERED, "900619746936498440^0")
    assert (delivered.order_id, delivered.attempt) == ("web-1001", 1)  # OutId "1.web-1001"
    assert (failed.order_id, failed.attempt) == ("shopify:5551234567890", 2)
    assert delivered.at == datetime(2026, 11, 23, 1, 50, 8, tzinfo=UTC)  # 09:50:08 Beijing
    assert (failed.status, failed.code) == (S.FAILED, "UNDELIV")
    expired = receipt_from_aliyun_report({**event("aliyun-sms-report.json")[1], "err_code": "EXPIRED"})
    assert expired.status is S.EXPIRED
    with pytest.raises(ReceiptError):
        receipt_from_aliyun_report({**event("aliyun-sms-report.json")[0], "report_time": "yesterday"})


@pytest.mark.parametrize(
    "out_id",
    [
        "fea780f996e74a299cdc53e3c70d9d05",  # a claim token (an order id too long for OutId)
        None,
        "",
        7,
        "1.",
        "0.web-1",
        "01.web-1",
        "100.web-1",
        "1 .web-1",
        "1.web 1",
        "1~",
        "1~***",
        "1~d2ViLTE=",  # padded: not the one encoding (it is "1.web-1")
        "1~d2ViLTE",  # base64 of a plain id: its one encoding is "1.web-1"
        "1~_w",  # not UTF-8
        "1." + "x" * 31,  # over OUT_ID_MAX_LENGTH
        "１.web-1",  # a full-width digit
    ],
)
def test_an_out_id_nudge_did_not_write_names_no_sms(out_id):
    item = {**event("aliyun-sms-report.json")[0], "out_id": out_id}
    receipt = receipt_from_aliyun_report(item)  # still read: the ledger counts it as unknown
    assert (receipt.order_id, receipt.attempt) == (None, None)
    assert parse_aliyun_out_id(out_id) is None


@pytest.mark.parametrize(
    ("order_id", "attempt", "out_id"),
    [
        ("web-1001", 1, "1.web-1001"),
        ("shopify:5551234567890", 2, "2.shopify:5551234567890"),
        ("woocommerce:1001", 99, "99.woocommerce:1001"),
        ("a.b", 1, "1.a.b"),  # a dot in the id: the reminder number is digits only, cut at the first
        ("订单1", 1, "1~6K6i5Y2VMQ"),
        ("o 1/2", 2, "2~byAxLzI"),
        ("x" * 30, 1, "1." + "x" * 30),  # exactly OUT_ID_MAX_LENGTH
        ("1.web", 1, "1.1.web"),
        ("~", 1, "1~fg"),
    ],
)
def test_out_id_round_trips_the_sms_ledger_key(order_id, attempt, out_id):
    assert aliyun_out_id(order_id, attempt) == out_id
    assert len(out_id) <= OUT_ID_MAX_LENGTH and out_id.isascii()
    assert parse_aliyun_out_id(out_id) == (order_id, attempt)


@pytest.mark.parametrize(
    ("order_id", "attempt"),
    [
        ("x" * 31, 1),  # "1." + 31: one over
        ("订单" * 8, 1),  # 48 bytes of UTF-8: 64 characters of base64
        ("", 1),
        ("\ud800", 1),  # a lone surrogate
        ("o-1", 0),
        ("o-1", 100),
        ("o-1", True),
    ],
)
def test_an_sms_key_that_does_not_fit_has_no_out_id(order_id, attempt):
    assert aliyun_out_id(order_id, attempt) is None


def test_receipts_never_go_backwards_and_the_first_final_status_stays():
    assert takes(None, S.PENDING) and takes(S.PENDING, S.DELIVERED)
    assert not takes(S.DELIVERED, S.PENDING)  # a late "queued" after "delivered"
    assert not takes(S.PENDING, S.PENDING)
    for first in FINAL:
        assert not any(takes(first, other) for other in S), first  # replayed or contradicting


def test_no_final_receipt_in_72_hours_is_unknown():
    sent = datetime(2026, 11, 23, 1, 50, tzinfo=UTC)
    assert status_at(S.PENDING, sent, sent + timedelta(hours=71)) is S.PENDING
    assert status_at(S.PENDING, sent, sent + timedelta(hours=72)) is S.UNKNOWN
    assert status_at(None, sent, sent + timedelta(hours=72)) is S.UNKNOWN
    assert status_at(S.DELIVERED, sent, sent + timedelta(days=9)) is S.DELIVERED


@pytest.mark.parametrize(
    "reply",
    [
        "STOP",
        "stop",
        "Stop.",
        " ｓｔｏｐ ",
        "退订",
        "退订！",
        "TD",
        "t",
        "R",
        "n",
        "Unsubscribe",
        "QUIT",
        "remove",
        "Arrêt",
        "ARRET",
        "opt-out",
    ],
)
def test_opt_out_replies(reply):
    assert is_opt_out_reply(reply)


@pytest.mark.parametrize(
    "reply", ["Not now", "Thanks", "stop sending me this please", "付款页面打不开", "", "NO", "STOPPED"]
)
def test_other_replies_go_to_the_staff(reply):
    assert not is_opt_out_reply(reply)


def test_alibaba_cloud_replies_by_push():
    stop, question = (reply_from_aliyun_up(i) for i in event("aliyun-sms-up.json"))
    assert (stop.phone, stop.body) == ("+8613800138003", "退订")
    assert is_opt_out_reply(stop.body)
    assert (question.phone, question.body) == ("+8613800138004", "付款页面打不开")
    assert not is_opt_out_reply(question.body)
    assert reply_from_aliyun_up({"phone_number": "+8613800138003", "content": "TD"}).phone == "+8613800138003"


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"phone_number": "85291234567", "content": "T"}, "phone_number"),
        ({"phone_number": 13800138003, "content": "T"}, "phone_number"),
        ({"phone_number": "1380013800", "content": "T"}, "phone_number"),
        ({"phone_number": "13800138003"}, "content"),
    ],
)
def test_an_unreadable_alibaba_cloud_reply_names_its_field(item, field):
    with pytest.raises(ReceiptError, match=field):
        reply_from_aliyun_up(item)


# ------------------------------------------------------------- SNS SMS delivery-status logs


def sns_log_lines(name: str) -> list[dict]:
    """The SNS log lines inside a CloudWatch Logs subscription sample event in events/."""
    return [json.loads(m) for m in cloudwatch_log_messages(event(name))]


def test_the_subscription_samples_decode_to_sns_log_lines_shaped_like_aws():
    import base64
    import gzip

    raw = event("sns-sms-delivery-log-failure.json")
    payload = json.loads(gzip.decompress(base64.b64decode(raw["awslogs"]["data"])))
    assert payload["messageType"] == "DATA_MESSAGE"
    assert payload["logGroup"] == "sns/us-east-1/123456789012/DirectPublishToPhoneNumber/Failure"
    assert set(payload) == {
        "messageType",
        "owner",
        "logGroup",
        "logStream",
        "subscriptionFilters",
        "logEvents",
    }
    assert set(payload["logEvents"][0]) == {"id", "timestamp", "message"}
    (line,) = sns_log_lines("sns-sms-delivery-log-failure.json")
    assert set(line) == {"notification", "delivery", "status"}
    assert set(line["notification"]) == {"messageId", "timestamp"}
    assert {"destination", "providerResponse", "priceInUSD", "smsType", "dwellTimeMs"} <= set(
        line["delivery"]
    )


def test_an_sns_success_line_is_delivered_and_names_only_the_message():
    (line,) = sns_log_lines("sns-sms-delivery-log-success.json")
    r = receipt_from_sns_delivery_log(line)
    assert (r.message_id, r.status, r.code) == (
        "34d9b400-c6dd-5444-820d-fbeb0f1f54cf",
        S.DELIVERED,
        "Message has been accepted by phone carrier",
    )
    assert r.at == datetime(2026, 11, 23, 2, 0, 34, 558000, tzinfo=UTC)
    assert r.order_id is None and r.attempt is None  # the ledger's pointer finds the SMS
    assert "+1206" not in repr(r)  # the phone number is never carried on


@pytest.mark.parametrize(
    ("response", "status"),
    [
        ("Phone carrier has blocked this message", S.BLOCKED),
        ("Phone has blocked SMS", S.BLOCKED),
        ("Phone number is opted out", S.OPTED_OUT),
        ("Phone is currently unreachable/unavailable", S.FAILED),
        ("Invalid phone number", S.FAILED),
        ("This delivery would exceed max price", S.FAILED),
        ("Unknown error attempting to reach phone", S.UNKNOWN),
        ("Message ttl expired", S.EXPIRED),
        ("Something SNS never said before", S.FAILED),
    ],
)
def test_an_sns_failure_line_is_read_from_its_provider_response(response, status):
    (line,) = sns_log_lines("sns-sms-delivery-log-failure.json")
    line["delivery"]["providerResponse"] = response
    r = receipt_from_sns_delivery_log(line)
    assert (r.status, r.code) == (status, response)


def test_an_sns_failure_code_is_the_text_truncated_and_a_missing_text_is_the_status():
    (line,) = sns_log_lines("sns-sms-delivery-log-failure.json")
    line["delivery"]["providerResponse"] = "Phone  is\ncurrently " + "x" * 200
    code = receipt_from_sns_delivery_log(line).code
    assert code is not None and len(code) == 80 and code.startswith("Phone is currently x")
    del line["delivery"]["providerResponse"]
    assert receipt_from_sns_delivery_log(line).code == "FAILURE"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["notification"].pop("messageId"), "notification.messageId"),
        (lambda r: r["notification"].update(timestamp="yesterday"), "notification.timestamp"),
        (lambda r: r["notification"].update(timestamp="2026-13-45 00:00:00.000"), "notification.timestamp"),
        (lambda r: r.update(status="DELIVERED"), "status"),
        (lambda r: r.pop("delivery"), "not an SNS SMS delivery log record"),
    ],
)
def test_an_unreadable_sns_line_names_its_field(change, field):
    (line,) = sns_log_lines("sns-sms-delivery-log-success.json")
    change(line)
    with pytest.raises(ReceiptError, match=field):
        receipt_from_sns_delivery_log(line)


def test_a_subscription_event_that_is_not_base64_gzip_json_is_refused_and_a_control_message_is_empty():
    import base64
    import gzip

    for data in ("not base64!", base64.b64encode(b"plain").decode(), None):
        with pytest.raises(ReceiptError, match=r"awslogs\.data"):
            cloudwatch_log_messages({"awslogs": {"data": data}})
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "", "timestamp": 1, "message": "hi"}]}
    data = base64.b64encode(gzip.compress(json.dumps(control).encode())).decode()
    assert cloudwatch_log_messages({"awslogs": {"data": data}}) == []


# ---------------------------------------------------------------------- unknown after 72 h

SENT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "hours", "due"),
    [
        (None, 71, False),  # a receipt may still come
        (None, 72, True),  # the deadline itself: unknown
        (None, 73, True),
        (S.PENDING, 73, True),  # queued and never heard of again
        (S.DELIVERED, 73, False),  # a final status stays
        (S.FAILED, 500, False),
        (S.UNKNOWN, 73, False),  # already unknown (the provider said so, or a sweep did): nothing to write
    ],
)
def test_an_sms_is_due_for_unknown_72_hours_after_its_send_without_a_final_status(status, hours, due):
    sms = AwaitedSms("o-1", 1, SENT, status)
    assert overdue(sms, SENT + timedelta(hours=hours)) is due
    assert timedelta(hours=72) == RECEIPT_DEADLINE


def test_a_sweep_reads_the_shop_days_of_the_sends_past_the_deadline():
    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 11, 26, 20, 10, tzinfo=UTC)  # 04:10 on the 27th in Shanghai
    since, until, days = sweep_span(now, shanghai, timedelta(days=2))
    assert until == now - timedelta(hours=72) and since == until - timedelta(days=2)
    # [21st 20:10 UTC, 23rd 20:10 UTC] is the 22nd 04:10 .. 24th 04:10 in Shanghai: three index days
    assert days == [date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)]
    with pytest.raises(ValueError, match="now"):
        sweep_span(now.replace(tzinfo=None), shanghai)
    with pytest.raises(ValueError, match="lookback"):
        sweep_span(now, shanghai, timedelta(0))
