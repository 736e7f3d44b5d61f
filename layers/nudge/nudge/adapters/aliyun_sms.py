"""SMS through Alibaba Cloud SMS (``dysmsapi`` 2017-05-25 ``SendSms``, the official Python SDK).

For mainland China: every SMS is a registered notification template (``TemplateCode``, one per
reminder number) under the shop's registered signature (``SignName``), filled with
``TemplateParam`` (``nudge.domain.messages.template_params``: name, item, amount, cut-off, closing
time, cleaned like Nudge's own texts, never a link). ``OutId`` names the SMS's ledger key, its
reminder number and order id (``nudge.domain.delivery.aliyun_out_id``): it comes back on the
delivery receipt (``SmsReport``), which finds the SMS by it. An order id too long for it is left
out (the OutId is then the claim token, and that SMS's receipts are counted and dropped as naming
no known SMS). ``SendSms`` is not idempotent (Alibaba Cloud says so):
only the sender's claim before the call keeps an SMS at most once, so this adapter makes exactly
one attempt (the SDK's retries off) with short timeouts.

The SDK (``alibabacloud-dysmsapi20170525``) is imported only when this gateway sends or builds its
client: the default gateway's cold start never loads it.

Phone numbers: Alibaba Cloud takes mainland numbers without a prefix ("13800138000") and other
numbers as country code + number without "+" ("85291234567").

Errors, by what they mean for the claim (``nudge.services.sending``):

| answer | raised | the sender |
|---|---|---|
| ``isv.BUSINESS_LIMIT_CONTROL`` (per-number flow control), ``isp.SYSTEM_ERROR``, ``isp.GATEWAY_ERROR``, ``isp.UNKNOWN``, ``Throttling*``, ``ServiceUnavailable``, any 5xx, could not connect | TransientSendError | gives the claim back, SQS retries |
| every other answered code (``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.BLACK_KEY_CONTROL_LIMIT``, ``isv.SMS_TEMPLATE_ILLEGAL``, ``isv.SMS_SIGNATURE_ILLEGAL``, ``isv.TEMPLATE_MISSING_PARAMETERS``, ``isv.PARAM_LENGTH_LIMIT``, ``isv.AMOUNT_NOT_ENOUGH``, ``isv.OUT_OF_SERVICE``, ``isv.DAY_LIMIT_CONTROL``, ``isv.MONTH_LIMIT_CONTROL``, ``isv.DENY_IP_RANGE``, ``isp.RAM_PERMISSION_DENY``...) | PermanentSendError | gives the claim back, records the refusal (`Send_rejected` alarm) |
| a read timeout, a dropped connection, an answer that cannot be read | AliyunNoAnswerError (any other exception: the outcome is unknown) | keeps the claim: the SMS may be out (unconfirmed, never resent) |

``checks_opt_out`` is True: Alibaba Cloud has no per-number opt-out check call, so the sender asks
nothing per SMS and instead reads the shop's own do-not-contact list once per batch (fed by
replies, ``SmsUp``); the carriers' own unsubscribe lists show up on the receipts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from nudge.domain.delivery import aliyun_out_id
from nudge.domain.privacy import mask_digit_runs
from nudge.services.ports import OutgoingSms, PermanentSendError, TransientSendError

__all__ = [
    "ALIYUN_CONNECT_TIMEOUT_MS",
    "ALIYUN_ENDPOINT",
    "ALIYUN_PUBLISH_TIMEOUT",
    "ALIYUN_READ_TIMEOUT_MS",
    "AliyunNoAnswerError",
    "AliyunSmsGateway",
    "aliyun_phone",
    "classify_code",
    "make_client",
    "parse_credentials",
    "protocol_for",
]

ALIYUN_ENDPOINT = "dysmsapi.aliyuncs.com"  # the central endpoint (the SDK's own for mainland regions)
# One attempt, short timeouts (Alibaba Cloud advises >= 1 s for domestic SMS): a hung call ends as
# "outcome unknown" well inside the send function, as with the AWS gateways.
ALIYUN_CONNECT_TIMEOUT_MS, ALIYUN_READ_TIMEOUT_MS = 2_000, 10_000
ALIYUN_PUBLISH_TIMEOUT = timedelta(milliseconds=ALIYUN_CONNECT_TIMEOUT_MS + ALIYUN_READ_TIMEOUT_MS)

_OK = "OK"
# Nothing was sent and a later try may work: flow control and the platform's own failures.
_TRANSIENT_CODES = frozenset(
    {
        "isv.BUSINESS_LIMIT_CONTROL",  # per-number flow control (minute / hour / day)
        "BUSINESS_LIMIT_CONTROL_MINUTE",
        "isv.BUSINESS_LIMIT_HOUR",
        "isp.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "isp.UNKNOWN",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "Throttling.Concurrent",
        "ServiceUnavailable",
        "InternalError",
    }
)


def classify_code(code: str, status: int = 200) -> type[Exception]:
    """Alibaba Cloud's error table (the module docstring): transient or permanent."""
    if code in _TRANSIENT_CODES or code.startswith("Throttling") or status >= 500:
        return TransientSendError
    return PermanentSendError


def aliyun_phone(e164: str) -> str:
    """``+8613800138000`` -> ``13800138000``; ``+85291234567`` -> ``85291234567``."""
    if not (e164.startswith("+") and e164[1:].isascii() and e164[1:].isdigit()):
        raise PermanentSendError("Alibaba Cloud: the number is not in E.164 form")
    return e164[3:] if e164.startswith("+86") else e164[1:]


def parse_credentials(value: str | None) -> tuple[str, str]:
    """The AccessKey pair from its secret's value, ``{"access_key_id": ..., "access_key_secret": ...}``.

    Raises ValueError saying what is wrong (no value yet, not that shape, a placeholder left in)
    without ever quoting the value.
    """
    if not value or not value.strip():
        raise ValueError("the secret holds no AccessKey yet")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to read
        raise ValueError("the secret is not a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("the secret is not a JSON object")
    pair = []
    for key in ("access_key_id", "access_key_secret"):
        item = data.get(key)
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"the secret has no {key}")
        item = item.strip()
        if item.startswith("<") or set(item) <= set(".*x-_ ") or item.upper().startswith(("REPLACE", "YOUR")):
            raise ValueError(f"the secret's {key} is still a placeholder")
        pair.append(item)
    return pair[0], pair[1]


def protocol_for(endpoint: str) -> str:
    """https, except plain http to a local stand-in on this machine (127.0.0.1 or localhost:port)."""
    host, _, port = endpoint.partition(":")
    return "http" if host in ("127.0.0.1", "localhost") and port.isdigit() else "https"


def make_client(
    access_key_id: str,
    access_key_secret: str,
    *,
    endpoint: str = ALIYUN_ENDPOINT,
    protocol: str = "https",
    connect_timeout_ms: int = ALIYUN_CONNECT_TIMEOUT_MS,
    read_timeout_ms: int = ALIYUN_READ_TIMEOUT_MS,
) -> Any:
    """The SDK's dysmsapi client: one attempt (no retry options), these timeouts, this endpoint
    (``127.0.0.1:<port>`` over ``http`` in the tests)."""
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(
        Config(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            endpoint=endpoint,
            protocol=protocol,
            connect_timeout=connect_timeout_ms,
            read_timeout=read_timeout_ms,
            retry_options=None,  # the SDK's default: a single attempt; never retry SendSms
        )
    )


class AliyunSmsGateway:
    """``SmsGateway`` over Alibaba Cloud SMS ``SendSms`` (a client from ``make_client``)."""

    checks_opt_out = True  # no per-SMS check call exists: the sender reads the shop's list per batch

    def __init__(self, client: Any, *, sign_name: str, template_codes: Mapping[int, str | Mapping[str, str]]):
        """``template_codes``: reminder number -> its registered template code, or (a reminder with
        text variants) variant name -> the code registered for that variant's text."""
        if not sign_name.strip():
            raise ValueError("sign_name: the registered signature is required")
        missing = [n for n in (1, 2) if not template_codes.get(n)]
        if missing:
            raise ValueError(f"template_codes: no registered template for reminder {missing[0]}")
        self._client = client
        self.sign_name = sign_name
        self.template_codes = {n: c if isinstance(c, str) else dict(c) for n, c in template_codes.items()}

    def is_opted_out(self, phone: str) -> bool:
        return False  # never asked (checks_opt_out)

    def template_code(self, sms: OutgoingSms) -> str:
        """The registered template of this SMS's reminder, and of its text variant when that
        reminder has variants. An SMS whose variant has no template (queued before the variants
        were changed) is refused before any call: another variant's text would be sent under its
        name."""
        codes = self.template_codes.get(sms.attempt)
        if not codes:
            raise PermanentSendError(f"Alibaba Cloud: no registered template for reminder {sms.attempt}")
        if isinstance(codes, str):
            return codes
        code = codes.get(sms.variant or "")
        if not code:
            raise PermanentSendError(
                f"Alibaba Cloud: no registered template for reminder {sms.attempt} variant {sms.variant!r}"
            )
        return code

    def request_fields(self, sms: OutgoingSms) -> dict[str, str]:
        """The ``SendSms`` parameters for this SMS, as the API names them."""
        code = self.template_code(sms)
        if sms.template_params is None:
            raise PermanentSendError("Alibaba Cloud: the SMS carries no template parameters")
        return {
            "PhoneNumbers": aliyun_phone(sms.phone),
            "SignName": self.sign_name,
            "TemplateCode": code,
            "TemplateParam": json.dumps(dict(sms.template_params), ensure_ascii=False, separators=(",", ":")),
            # The receipt's way back to the SMS's ledger item; the claim when the order id is too long.
            "OutId": aliyun_out_id(sms.order_id, sms.attempt) or sms.claim_token,
        }

    def publish(self, sms: OutgoingSms) -> str:
        fields = self.request_fields(sms)  # refuses before any call: nothing is sent
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest
        from darabonba.runtime import RuntimeOptions

        request = SendSmsRequest(
            phone_numbers=fields["PhoneNumbers"],
            sign_name=fields["SignName"],
            template_code=fields["TemplateCode"],
            template_param=fields["TemplateParam"],
            out_id=fields["OutId"],
        )
        try:
            response = self._client.send_sms_with_options(request, RuntimeOptions())
        except Exception as exc:
            _raise_classified(exc)
            # An outcome nobody knows: the SMS may be out. Raised afresh, without the SDK's chain:
            # the HTTP library's errors quote the request's URL, whose query holds the phone number
            # and the template's values (the buyer's name), and the send function logs tracebacks.
            raise AliyunNoAnswerError(f"Alibaba Cloud: no answer: {_without_request(str(exc))}") from None
        body = response.body
        code = getattr(body, "code", None)
        if code == _OK and getattr(body, "biz_id", None):
            return str(body.biz_id)
        if not isinstance(code, str) or not code or code == _OK:
            # Answered, but not in a shape that says whether it was taken: the SMS may be out.
            raise RuntimeError(f"Alibaba Cloud answered without a result: code={code!r}")
        raise classify_code(code)(f"Alibaba Cloud {code}: {_provider_text(getattr(body, 'message', ''))}")


def _raise_classified(exc: Exception) -> None:
    """Raise the send error an SDK exception means; return when its outcome is unknown."""
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException
    from darabonba.exceptions import RetryError, UnretryableException

    if isinstance(exc, ThrottlingException):
        raise TransientSendError(f"Alibaba Cloud throttled: {exc.code}") from exc
    if isinstance(exc, AlibabaCloudException):  # an answered error: HTTP 4xx / 5xx with a code
        code, status = str(exc.code or ""), int(exc.status_code or 0)
        message = _provider_text(exc.message)
        # Not chained: the SDK's exception text carries the whole answer and request details.
        raise classify_code(code, status)(f"Alibaba Cloud {code} (HTTP {status}): {message}") from None
    if isinstance(exc, UnretryableException):
        inner = exc.inner_exception
        # The SDK turns the HTTP library's error into RetryError(str(error)), raised while handling
        # it: the original is its __context__.
        cause = inner.__context__ if isinstance(inner, RetryError) else inner
        if _never_left(cause):
            raise TransientSendError(f"Alibaba Cloud unreachable: {_without_request(str(cause))}") from None


class AliyunNoAnswerError(RuntimeError):
    """``SendSms`` got no readable answer (a read timeout, a dropped connection, a TLS failure):
    the SMS may be out, so the sender keeps its claim. Its text never quotes the request."""


_URL = re.compile(r"(url: |https?://)\S+")


def _provider_text(message: object) -> str:
    """Alibaba Cloud's own message for a refusal, as it goes into logs and the ledger's skip
    reasons: short, and with any phone-like digit run masked (some messages quote the number)."""
    return mask_digit_runs(_without_request(str(message or "")))[:200]


def _without_request(text: str) -> str:
    """An HTTP library's error text without the request's URL (its query is the SMS's parameters)."""
    return _URL.sub(r"\1(request withheld)", text)


def _never_left(exc: BaseException | None) -> bool:
    """Whether the request certainly never reached Alibaba Cloud: no connection was made."""
    import requests
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(
        exc, requests.exceptions.Timeout
    ):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return isinstance(reason, NewConnectionError)  # refused, or the name did not resolve
    return False
