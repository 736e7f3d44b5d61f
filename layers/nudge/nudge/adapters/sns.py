"""SMS through SNS, behind ``nudge.services.ports.SmsGateway``."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from nudge.adapters.hand_off import call_once
from nudge.services.ports import OutgoingSms, PermanentSendError, TransientSendError

# The SNS client of the send function. botocore's defaults (60 s read timeout, retries) would let
# a hung Publish run into the send function's own 60 s timeout: the invocation dies with its
# claim held and nothing reports the unknown outcome. With these, a hung Publish ends after ~12 s
# as a ReadTimeoutError, which the sender keeps as unconfirmed. One attempt only: a retried
# Publish after a lost answer could send the SMS twice (SQS redelivery plus the claim retry).
SNS_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 1})
# The longest one Publish can take with that config: the sender claims only while an SMS published
# this slowly would still go out before its deadline.
SNS_PUBLISH_TIMEOUT = timedelta(seconds=2 + 10)

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottling",
        "RequestLimitExceeded",
    }
)


def _classify(exc: ClientError) -> type[Exception]:
    """SNS's error table: throttling and 5xx are transient, every other answer permanent."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return TransientSendError if code in _TRANSIENT_CODES or status >= 500 else PermanentSendError


class SnsSmsGateway:
    """SMS through SNS ``Publish`` to a phone number.

    Errors: throttling / 5xx / could-not-connect -> ``TransientSendError`` (nothing was sent; the
    claim may be released and retried). Other ClientErrors (e.g. InvalidParameter for a bad
    number) -> ``PermanentSendError``. A read timeout or a dropped connection is left as the
    botocore error: the SMS may have gone out, so the caller must keep its claim, never retry.
    """

    def __init__(
        self,
        client: Any,
        sender_id: str | None = None,
        origination_number: str | None = None,
        sms_type: str = "Transactional",
        max_price: str | Decimal | None = None,
    ):
        if sms_type not in ("Transactional", "Promotional"):
            raise ValueError("sms_type must be Transactional or Promotional")
        self._client = client
        attrs = {"AWS.SNS.SMS.SMSType": sms_type}
        if sender_id:
            attrs["AWS.SNS.SMS.SenderID"] = sender_id
        if origination_number:
            attrs["AWS.MM.SMS.OriginationNumber"] = origination_number
        if max_price is not None:
            attrs["AWS.SNS.SMS.MaxPrice"] = str(max_price)
        self._attributes = {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()}

    checks_opt_out = False  # SNS publishes to an opted-out number: the sender asks first

    def is_opted_out(self, phone: str) -> bool:
        resp = call_once(
            self._client.check_if_phone_number_is_opted_out,
            service="SNS",
            classify=_classify,
            phoneNumber=phone,
        )
        return bool(resp.get("isOptedOut"))

    def publish(self, sms: OutgoingSms) -> str:
        resp = call_once(
            self._client.publish,
            service="SNS",
            classify=_classify,
            PhoneNumber=sms.phone,
            Message=sms.text,
            MessageAttributes=self._attributes,
        )
        return resp["MessageId"]
