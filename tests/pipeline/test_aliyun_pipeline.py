"""SmsGateway=aliyun end to end on moto: the stack's secret, the plan's template values and the
local dysmsapi (``nudge_local.dysmsapi``, the real SDK's signed requests). The send path's promises
run for aliyun in tests/pipeline/test_pipeline.py; these are the aliyun-only ones."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from nudge.domain.config import ConfigError
from nudge_local.pipeline import (
    ALIYUN_KEYS,
    FakeClock,
    LambdaContextStub,
    LocalPipeline,
    sqs_event,
)
from tests.builders import SHANGHAI

pytestmark = pytest.mark.aws

AT = datetime(2026, 11, 23, 9, 50, tzinfo=SHANGHAI)
MORNING = "09:50-10:40@11:00"
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
ORDER = {
    "order_id": "o-1",
    "buyer_id": "b-1",
    "phone": "+8613800138001",
    "status": "unpaid",
    "created_at": (AT - timedelta(hours=3)).isoformat(),
    "closes_at": (AT + timedelta(hours=5)).isoformat(),
    "amount": 199,
    "buyer_name": "王芳",
    "item_title": "羊毛围巾",
}


def test_an_sms_goes_out_as_the_registered_template_with_the_plans_values_and_the_claim():
    with LocalPipeline(clock=FakeClock(AT), env=QUIET, gateway="aliyun") as p:
        p.load_orders([ORDER])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        (sms,) = p.dysmsapi.accepted
        assert sms.template_code == "SMS_480010001" and sms.sign_name == "Nudge Shop"
        assert sms.params == {
            "name": "王芳",
            "item": "羊毛围巾",
            "amount": "199.00",
            "cutoff": "11:00",
            "closes": "14:50",
        }
        assert all(seen.signature_ok for seen in p.dysmsapi.seen)  # signed with the secret's AccessKey
        item = p.ledger_item("o-1")
        assert item["message_id_1"] == sms.biz_id  # what a receipt (SmsReport) names...
        assert sms.out_id == "1.o-1"  # ...with the SMS's order and reminder as OutId
        # What the buyer reads: the registered template filled in by Alibaba Cloud (the stand-in).
        assert p.sent_sms() == [
            (
                "+8613800138001",
                "【Nudge Shop】王芳您好，您拍下的宝贝「羊毛围巾」（¥199.00）还未付款，"
                "请问是付款过程中遇到了什么困难吗？需要帮助请随时联系客服哦。",
            )
        ]


def test_an_accesskey_not_put_in_yet_stops_the_send_function_and_the_sms_waits_in_the_queue():
    with LocalPipeline(clock=FakeClock(AT), env=QUIET, gateway="aliyun") as p:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = p.resources.secrets["AliyunCredentialsSecret"]
        secrets.put_secret_value(
            SecretId=arn, SecretString='{"access_key_id": "...", "access_key_secret": "..."}'
        )
        parameters.clear_caches()
        p.load_orders([ORDER])
        p.fire_window(MORNING, AT)
        send = p.cold_send_container()  # a new container: its app is built on this invocation
        batch = p.receive()
        with pytest.raises(
            ConfigError, match="ALIYUN_CREDENTIALS_SECRET_ARN: the secret's access_key_id is still"
        ):
            send.lambda_handler(sqs_event(batch, p.queue_arn), LambdaContextStub("send"))
        assert p.dysmsapi.seen == [] and p.ledger_item("o-1") is None  # nothing claimed, nothing sent
        # The invocation failed: SQS makes the message visible again after its timeout. The shop
        # puts its AccessKey in; the next cold start sends.
        secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(ALIYUN_KEYS))
        parameters.clear_caches()  # a new container (or 5 minutes: the secret's cache)
        for m in batch:
            p.sqs.change_message_visibility(
                QueueUrl=p.resources.send_queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
            )
        redelivered = p.receive()
        assert [m["Body"] for m in redelivered] == [m["Body"] for m in batch]
        assert send.lambda_handler(sqs_event(redelivered, p.queue_arn), LambdaContextStub("send")) == {
            "batchItemFailures": []
        }
        assert [phone for phone, _ in p.sent_sms()] == ["+8613800138001"]


def test_template_codes_that_do_not_match_the_variants_stop_the_plan_before_anything_is_queued():
    variants = {
        "messages": {
            "variants": {"1": [{"name": "A", "template": "{greeting} a"}, {"name": "B", "template": "b"}]}
        }
    }
    with (
        pytest.raises(ConfigError, match="ALIYUN_TEMPLATE_CODES: reminder 1 has 2 text variants"),
        LocalPipeline(
            clock=FakeClock(AT), env={**QUIET, "EXTRA_CONFIG_JSON": json.dumps(variants)}, gateway="aliyun"
        ),
    ):
        pass
