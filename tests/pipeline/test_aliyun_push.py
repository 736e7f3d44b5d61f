"""Alibaba Cloud's receipts (SmsReport) and replies (SmsUp) by HTTP push, through the real ingest
handler on moto (stack from template.yaml, SmsGateway=aliyun, the local dysmsapi stand-in)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from nudge_local.dysmsapi import sms_report, sms_up
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.builders import MORNING_OPENS, QUIET, numbered_order
from tests.pipeline.test_ingest import Logs

pytestmark = pytest.mark.aws

ACCEPTED = {"code": 0, "msg": "接收成功"}


def answer(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def ledger_keys(p: LocalPipeline) -> list[str]:
    table = p.dynamodb.Table(p.resources.ledger_table)
    return sorted(i["order_id"] for i in table.scan(ConsistentRead=True)["Items"])


@pytest.fixture
def sent():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET, gateway="aliyun") as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2, 3)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        yield p


def test_receipts_land_on_their_sms_once_and_name_no_other(sent):
    p = sent
    by_order = {s.out_id: s for s in p.dysmsapi.accepted}
    one, two, three = by_order["1.o-1"], by_order["1.o-2"], by_order["1.o-3"]
    assert answer(p.aliyun_push("report", [sms_report(one)])) == (200, ACCEPTED)
    assert answer(
        p.aliyun_push(
            "report",
            [
                sms_report(two, success=False, code="UNDELIV"),
                sms_report(three, success=False, code="EXPIRED"),
            ],
        )
    ) == (200, ACCEPTED)
    items = {o: p.ledger_item(o) for o in ("o-1", "o-2", "o-3")}
    assert [(items[o]["delivery_1"], items[o]["delivery_code_1"]) for o in ("o-1", "o-2", "o-3")] == [
        ("delivered", "DELIVERED"),
        ("failed", "UNDELIV"),
        ("expired", "EXPIRED"),
    ]
    before = {o: p.ledger_item(o) for o in ("o-1", "o-2", "o-3")}
    keys = ledger_keys(p)
    # A replay, a contradicting late report, a forged biz_id, an unknown order or attempt, an
    # unreadable item: answered 0, nothing changes, no item is created.
    pushed = [
        sms_report(one),
        sms_report(one, success=False, code="UNDELIV"),
        sms_report(two, success=True, biz_id="forged^0"),
        sms_report(one, out_id="1.o-404"),
        sms_report(one, out_id="2.o-1"),
        {"biz_id": "x"},
        "not an object",
    ]
    assert answer(p.aliyun_push("report", pushed)) == (200, ACCEPTED)
    assert {o: p.ledger_item(o) for o in ("o-1", "o-2", "o-3")} == before
    assert ledger_keys(p) == keys and p.ledger_item("o-404") is None


def test_a_receipt_settles_an_unconfirmed_send(sent):
    p = sent
    table = p.dynamodb.Table(p.resources.ledger_table)
    sms = next(s for s in p.dysmsapi.accepted if s.out_id == "1.o-1")
    # The send's answer was lost: no BizId recorded, the attempt reported unconfirmed.
    table.update_item(
        Key={"order_id": "o-1"},
        UpdateExpression="REMOVE message_id_1 ADD unconfirmed_attempts :a",
        ExpressionAttributeValues={":a": {1}},
    )
    assert answer(p.aliyun_push("report", [sms_report(sms)])) == (200, ACCEPTED)
    item = p.ledger_item("o-1")
    assert (item["delivery_1"], item["message_id_1"]) == ("delivered", sms.biz_id)


def test_a_wrong_or_missing_token_is_401_writes_nothing_and_logs_no_token_or_phone(sent):
    p = sent
    sms = p.dysmsapi.accepted[0]
    token = p.aliyun_push_token()
    assert len(token) == 40 and token.isalnum()
    before = {o: p.ledger_item(o) for o in ("o-1", "o-2", "o-3")}
    keys = ledger_keys(p)
    logs = Logs()
    try:
        for wrong in ("", "x", token[:-1], token + "x", token.swapcase()):
            for kind, items in (("report", [sms_report(sms)]), ("up", [sms_up(sms.phone, "退订")])):
                status, body = answer(p.aliyun_push(kind, items, token=wrong))
                assert status == 401 and body["code"] != 0, wrong
        assert {o: p.ledger_item(o) for o in ("o-1", "o-2", "o-3")} == before
        assert ledger_keys(p) == keys  # no do-not-contact item either
        assert answer(p.aliyun_push("up", [sms_up(sms.phone, "退订")])) == (200, ACCEPTED)
        assert ledger_keys(p) != keys  # the right token: the opt-out is written
        text = logs.text()
    finally:
        logs.close()
    assert token not in text and token[:-1] not in text
    assert sms.phone not in text and sms.phone[-8:] not in text


def test_an_opt_out_reply_stops_the_queued_sms_and_other_replies_reach_the_staff_masked():
    orders = [numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2)]
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET, gateway="aliyun") as p:
        p.load_orders(orders)
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)  # both SMS queued, none sent yet
        known = answer(p.aliyun_push("up", [sms_up("13800138001", "退订")]))
        unknown = answer(p.aliyun_push("up", [sms_up("13900009999", "TD")]))
        assert known == unknown == (200, ACCEPTED)  # never tells whether the number is known
        assert answer(p.aliyun_push("up", [sms_up("13800138002", "付款页面打不开")])) == (200, ACCEPTED)
        p.drain_queue()
        assert [phone for phone, _ in p.sent_sms()] == ["+8613800138002"]  # o-1's SMS dropped
        ((_subject, body),) = p.staff_digests()
        assert "付款页面打不开" in body and "13800138002" not in body
