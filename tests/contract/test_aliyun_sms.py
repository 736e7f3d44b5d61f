"""The Alibaba Cloud SMS gateway through the real SDK (``alibabacloud-dysmsapi20170525``) against a
local HTTP server on 127.0.0.1 that answers like ``dysmsapi`` (``nudge_local.dysmsapi``, the same
stand-in the local pipeline uses): it checks the signed request the SDK sends (action, version, the
SendSms parameters, the ACS3-HMAC-SHA256 signature, recomputed from Alibaba Cloud's documented
algorithm) and answers with Alibaba Cloud's shapes and codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from nudge.adapters.aliyun_sms import AliyunNoAnswerError, AliyunSmsGateway, aliyun_phone, make_client
from nudge.domain.delivery import parse_aliyun_out_id
from nudge.services.ports import OptedOutError, PermanentSendError, TransientSendError
from nudge.services.sending import SendOutcome
from nudge_local.dysmsapi import Answer, FakeDysmsapi
from tests.builders import outgoing
from tests.unit.test_services import deliver, request, sender

ROOT = Path(__file__).resolve().parents[2]
KEY_ID, SECRET = "LTAI-test-key", "test-secret"
PARAMS = {"name": "王小明", "item": "羊毛围巾", "amount": "199.00", "closes": "23:59"}


@pytest.fixture
def dysmsapi() -> Iterator[FakeDysmsapi]:
    fake = FakeDysmsapi(KEY_ID, SECRET)
    yield fake
    fake.close()


def gateway(endpoint: str, *, read_timeout_ms: int = 2_000) -> AliyunSmsGateway:
    client = make_client(KEY_ID, SECRET, endpoint=endpoint, protocol="http", read_timeout_ms=read_timeout_ms)
    return AliyunSmsGateway(
        client, sign_name="Nudge小店", template_codes={1: "SMS_46250001", 2: "SMS_46250002"}
    )


def test_send_sms_carries_the_template_the_values_and_the_sms_ledger_key(dysmsapi):
    sms = outgoing("+8613800138000", "【Nudge小店】...", order_id="web-1001", template_params=PARAMS)

    assert gateway(dysmsapi.endpoint).publish(sms) == "900619746936498440^0"

    (seen,) = dysmsapi.seen  # one request: the SDK's retries are off
    assert seen.method == "POST"
    assert seen.headers["x-acs-action"] == "SendSms"
    assert seen.headers["x-acs-version"] == "2017-05-25"
    assert seen.signature_ok  # signed with the key, over exactly what arrived
    assert seen.query == {
        "PhoneNumbers": "13800138000",  # a mainland number without +86, as Alibaba Cloud takes it
        "SignName": "Nudge小店",
        "TemplateCode": "SMS_46250001",  # reminder 1's registered template
        "TemplateParam": json.dumps(PARAMS, ensure_ascii=False, separators=(",", ":")),
        "OutId": "1.web-1001",  # reminder and order: the receipt (SmsReport) finds the SMS by it
    }
    assert json.loads(seen.query["TemplateParam"]) == PARAMS


def test_reminder_2_uses_its_own_template_and_an_international_number_keeps_its_country_code(dysmsapi):
    sms = outgoing(
        "+85291234567", attempt=2, template_params={"name": "亲", "item": "商品", "amount": "99.00"}
    )
    gateway(dysmsapi.endpoint).publish(sms)
    (seen,) = dysmsapi.seen
    assert seen.query["TemplateCode"] == "SMS_46250002"
    assert seen.query["PhoneNumbers"] == "85291234567"


def test_an_order_id_too_long_for_out_id_sends_the_claim_instead_and_its_receipt_names_no_sms():
    long_id = "shop:" + "9" * 40  # over OUT_ID_MAX_LENGTH with its reminder number
    sms = outgoing(order_id=long_id, claim_token="fea780f996e74a299cdc53e3c70d9d05", template_params=PARAMS)
    fields = gateway("127.0.0.1:1").request_fields(sms)  # builds the request, calls nothing
    assert fields["OutId"] == "fea780f996e74a299cdc53e3c70d9d05"
    assert parse_aliyun_out_id(fields["OutId"]) is None  # its SmsReport is counted and dropped


def test_a_wrong_secret_does_not_verify(dysmsapi):
    """The server's check is real: a request signed with another secret fails it, and is answered
    as Alibaba Cloud answers it (refused for good: nothing sent)."""
    client = make_client(KEY_ID, "another-secret", endpoint=dysmsapi.endpoint, protocol="http")
    with pytest.raises(PermanentSendError, match="SignatureDoesNotMatch"):
        AliyunSmsGateway(client, sign_name="s", template_codes={1: "a", 2: "b"}).publish(
            outgoing(template_params=PARAMS)
        )
    assert dysmsapi.seen and not dysmsapi.seen[0].signature_ok and dysmsapi.accepted == []


@pytest.mark.parametrize(
    ("status", "code", "raised"),
    [
        # SendSms answers its own refusals with HTTP 200 and a Code other than OK.
        (200, "isv.BUSINESS_LIMIT_CONTROL", TransientSendError),  # per-number flow control
        (200, "isp.SYSTEM_ERROR", TransientSendError),
        (200, "isp.GATEWAY_ERROR", TransientSendError),
        (200, "isv.MOBILE_NUMBER_ILLEGAL", PermanentSendError),
        (200, "isv.BLACK_KEY_CONTROL_LIMIT", PermanentSendError),  # a blocked word in a value
        (200, "isv.TEMPLATE_MISSING_PARAMETERS", PermanentSendError),
        (200, "isv.PARAM_LENGTH_LIMIT", PermanentSendError),
        (200, "isv.SMS_TEMPLATE_ILLEGAL", PermanentSendError),
        (200, "isv.SMS_SIGNATURE_ILLEGAL", PermanentSendError),
        (200, "isv.AMOUNT_NOT_ENOUGH", PermanentSendError),
        (200, "isv.DAY_LIMIT_CONTROL", PermanentSendError),  # the account's own cap: not today
        # The API gateway's answers: HTTP errors with a code.
        (400, "Throttling.User", TransientSendError),
        (429, "Throttling", TransientSendError),
        (503, "ServiceUnavailable", TransientSendError),
        (500, "InternalError", TransientSendError),
        (404, "InvalidAccessKeyId.NotFound", PermanentSendError),
        (400, "SignatureDoesNotMatch", PermanentSendError),
        (403, "Forbidden.RAM", PermanentSendError),
    ],
)
def test_the_error_table(dysmsapi, status, code, raised):
    dysmsapi.answers.append(Answer(status, {"Code": code, "Message": "refused", "RequestId": "R-1"}))
    with pytest.raises(raised) as caught:
        gateway(dysmsapi.endpoint).publish(outgoing(template_params=PARAMS))
    assert type(caught.value) is raised  # never OptedOutError: Alibaba Cloud refuses no number as opted out
    assert code in str(caught.value)
    assert len(dysmsapi.seen) == 1  # one attempt, whatever the answer


@pytest.mark.parametrize("status", [200, 400])  # a SendSms refusal, an API gateway error
def test_a_refusal_that_quotes_the_number_is_logged_with_the_number_masked(dysmsapi, status):
    message = "号码13800138000不合法 (+8613800138000)"
    dysmsapi.answers.append(Answer(status, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": message}))
    with pytest.raises(PermanentSendError) as caught:
        gateway(dysmsapi.endpoint).publish(outgoing("+8613800138000", template_params=PARAMS))
    text = str(caught.value)
    assert "13800138000" not in text and "138****8000" in text
    # the SDK's exception (the whole answer) is not shown in a logged traceback
    shown = caught.value.__cause__ or (
        None if caught.value.__suppress_context__ else caught.value.__context__
    )
    assert shown is None


def test_a_read_timeout_propagates_the_sms_may_be_out(dysmsapi):
    dysmsapi.answers.append(Answer(delay=1.5))
    with pytest.raises(Exception) as caught:
        gateway(dysmsapi.endpoint, read_timeout_ms=300).publish(outgoing(template_params=PARAMS))
    assert not isinstance(caught.value, (TransientSendError, PermanentSendError))
    assert "timed out" in str(caught.value).lower()
    assert len(dysmsapi.seen) == 1  # and never sent again


def test_an_answer_that_cannot_be_read_propagates(dysmsapi):
    dysmsapi.answers.append(Answer(200, b"<html>proxy error</html>"))
    with pytest.raises(Exception) as caught:
        gateway(dysmsapi.endpoint).publish(outgoing(template_params=PARAMS))
    assert not isinstance(caught.value, (TransientSendError, PermanentSendError))


def test_ok_without_a_message_id_propagates(dysmsapi):
    dysmsapi.answers.append(Answer(200, {"Code": "OK", "Message": "OK", "RequestId": "R-2"}))
    with pytest.raises(RuntimeError, match="without a result"):
        gateway(dysmsapi.endpoint).publish(outgoing(template_params=PARAMS))


def test_nobody_listening_is_transient_nothing_was_sent():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientSendError, match="unreachable"):
        gateway(f"127.0.0.1:{port}").publish(outgoing(template_params=PARAMS))


def _told(exc: BaseException) -> str:
    """Everything the send function's log of this error shows (its traceback, chain included)."""
    return "".join(traceback.format_exception(exc))


def test_an_unreachable_or_unanswered_send_never_logs_the_phone_or_the_buyer(dysmsapi):
    # The SDK sends SendSms's parameters in the URL's query, and the HTTP library's errors quote it.
    sms = outgoing("+8613800138000", claim_token="claim-7f3a", template_params=PARAMS)
    with socket.socket() as s:  # a port nothing listens on: nothing sent, retried later
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TransientSendError) as unreachable:
        gateway(f"127.0.0.1:{port}").publish(sms)
    # TLS to a server speaking plain HTTP: the request may have left, so its outcome is unknown.
    tls = AliyunSmsGateway(
        make_client(KEY_ID, SECRET, endpoint=dysmsapi.endpoint, protocol="https"),
        sign_name="Nudge小店",
        template_codes={1: "SMS_46250001", 2: "SMS_46250002"},
    )
    with pytest.raises(AliyunNoAnswerError) as unanswered:
        tls.publish(sms)
    for caught in (unreachable.value, unanswered.value):
        told = _told(caught)
        assert "13800138000" not in told and quote(PARAMS["name"]) not in told and PARAMS["name"] not in told
        assert "request withheld" in told


def test_refused_before_any_call(dysmsapi):
    gw = gateway(dysmsapi.endpoint)
    with pytest.raises(PermanentSendError, match="no template parameters"):
        gw.publish(outgoing())  # planned without the template's values
    with pytest.raises(PermanentSendError, match="reminder 3"):
        gw.publish(outgoing(attempt=3, template_params=PARAMS))
    with pytest.raises(PermanentSendError, match=r"E\.164"):
        gw.publish(outgoing("13800138000", template_params=PARAMS))
    assert dysmsapi.seen == []
    assert not issubclass(PermanentSendError, OptedOutError)


def test_each_text_variant_goes_out_under_its_own_template(dysmsapi):
    client = make_client(KEY_ID, SECRET, endpoint=dysmsapi.endpoint, protocol="http")
    gw = AliyunSmsGateway(
        client, sign_name="Nudge小店", template_codes={1: {"A": "SMS_1001", "B": "SMS_1002"}, 2: "SMS_2001"}
    )
    gw.publish(outgoing(variant="B", template_params=PARAMS))
    gw.publish(outgoing(attempt=2, variant="B", template_params=PARAMS))
    assert [seen.query["TemplateCode"] for seen in dysmsapi.seen] == ["SMS_1002", "SMS_2001"]
    for variant in ("C", None):  # queued before the variants changed: no template says its text
        with pytest.raises(PermanentSendError, match="variant"):
            gw.publish(outgoing(variant=variant, template_params=PARAMS))
    assert len(dysmsapi.seen) == 2  # refused before any call


def test_settings_are_checked_when_built():
    with pytest.raises(ValueError, match="sign_name"):
        AliyunSmsGateway(object(), sign_name=" ", template_codes={1: "a", 2: "b"})
    with pytest.raises(ValueError, match="reminder 2"):
        AliyunSmsGateway(object(), sign_name="s", template_codes={1: "a"})


@pytest.mark.parametrize(
    ("e164", "sent"),
    [("+8613800138000", "13800138000"), ("+85291234567", "85291234567"), ("+14155550100", "14155550100")],
)
def test_numbers_as_alibaba_cloud_takes_them(e164, sent):
    assert aliyun_phone(e164) == sent


def test_the_other_gateways_never_load_the_sdk():
    """The SDK is imported only when this gateway sends: importing the adapter, the composition
    root and the send handler's modules loads none of it."""
    code = (
        "import sys; import nudge.bootstrap, nudge.adapters.aliyun_sms, nudge.services.sending; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('alibabacloud_dysmsapi20170525', 'alibabacloud_tea_openapi', 'darabonba', 'Tea', 'aiohttp')); "
        "print(loaded); assert not loaded"
    )
    env = {"PYTHONPATH": str(ROOT / "layers" / "nudge"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------ the send path's promises
# Timeouts before and after delivery, flow control and a sender's death after its claim are the
# same promises for every gateway: tests/contract/test_send_promises.py runs them on this one too.


def aliyun_request(i: int = 1):
    return replace(request(i), template_params=PARAMS)


def test_through_the_sender_an_accepted_sms_is_recorded_with_alibabas_id(dysmsapi):
    s, _ = sender(sms=gateway(dysmsapi.endpoint))
    assert deliver(s, aliyun_request()) is SendOutcome.SENT
    assert s.ledger.items["o-1"]["message_id_1"] == "900619746936498440^0"  # the receipt names it
    (seen,) = dysmsapi.seen
    assert seen.query["OutId"] == "1.o-1"  # the SMS's ledger key: its receipt finds it
    assert deliver(s, aliyun_request()) is SendOutcome.DUPLICATE  # a redelivery sends nothing
    assert len(dysmsapi.seen) == 1


def test_through_the_sender_a_refused_number_is_recorded_not_retried(dysmsapi):
    dysmsapi.answers.append(Answer(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}))
    s, _ = sender(sms=gateway(dysmsapi.endpoint))
    assert deliver(s, aliyun_request()) is SendOutcome.REJECTED
    assert "isv.MOBILE_NUMBER_ILLEGAL" in s.ledger.items["o-1"]["skips"][-1]["reason"]
