"""SMS through AWS End User Messaging SMS (``pinpoint-sms-voice-v2`` ``SendTextMessage``).

What it adds over SNS: ``TimeToLive`` (an SMS not handed to the carrier before the SMS's own
deadline is dropped, rather than leaving hours late; a carrier that has it may still deliver
late), ``Context`` (the
order, the attempt and the text variant come back on every delivery event), ``MaxPrice``, a
configuration set whose delivery events reach EventBridge, and the service's own opt-out list: a
number that answered STOP is refused at ``SendTextMessage`` (``DESTINATION_PHONE_NUMBER_OPTED_OUT``),
so the sender needs no per-SMS opt-out check call (``checks_opt_out``).

Errors, by what they mean for the claim (``nudge.services.sending``):

| answer | raised | the sender |
|---|---|---|
| ThrottlingException, InternalServerException, any 5xx, could not connect | TransientSendError | gives the claim back, SQS retries |
| ConflictException DESTINATION_PHONE_NUMBER_OPTED_OUT | OptedOutError | gives the claim back, remembers the number |
| ValidationException (bad number, MaxPrice exceeded, country blocked), other ConflictException, ServiceQuotaExceededException (monthly spend limit), AccessDenied, ResourceNotFound (no such configuration set or identity) | PermanentSendError | gives the claim back, records the refusal (`Send_rejected` alarm) |
| a read timeout or a dropped connection | propagates | keeps the claim: the SMS may be out (unconfirmed, never resent) |
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from nudge.adapters.hand_off import call_once
from nudge.services.ports import OptedOutError, OutgoingSms, PermanentSendError, TransientSendError

__all__ = [
    "EUM_CLIENT_CONFIG",
    "EUM_PUBLISH_TIMEOUT",
    "MAX_TTL_SECONDS",
    "MIN_TTL_SECONDS",
    "EndUserMessagingGateway",
    "time_to_live",
]

# One attempt, short timeouts: a hung call ends as "outcome unknown" well inside the function.
EUM_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 1})
EUM_PUBLISH_TIMEOUT = timedelta(seconds=2 + 10)
MIN_TTL_SECONDS, MAX_TTL_SECONDS = 5, 259_200  # the API's bounds: 5 s .. 72 h
_TRANSIENT_CODES = frozenset({"ThrottlingException", "InternalServerException"})
_OPTED_OUT = "DESTINATION_PHONE_NUMBER_OPTED_OUT"


def _classify(exc: ClientError) -> type[Exception]:
    """End User Messaging's error table (the module docstring)."""
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    if code in _TRANSIENT_CODES or status >= 500:
        return TransientSendError
    if code == "ConflictException" and exc.response.get("Reason") == _OPTED_OUT:
        return OptedOutError
    return PermanentSendError


_CONTEXT_VALUE_MAX = 800


def _context_value_ok(value: str) -> bool:
    return 0 < len(value) <= _CONTEXT_VALUE_MAX and value == value.strip()


def time_to_live(sms: OutgoingSms) -> int:
    """Seconds from the hand-off to the SMS's deadline, within the API's bounds."""
    seconds = int((sms.not_after - sms.handed_at).total_seconds())
    return max(MIN_TTL_SECONDS, min(MAX_TTL_SECONDS, seconds))


class EndUserMessagingGateway:
    """``SmsGateway`` over End User Messaging SMS (a ``pinpoint-sms-voice-v2`` client)."""

    checks_opt_out = True  # the service's opt-out list refuses the number at SendTextMessage

    def __init__(
        self,
        client: Any,
        *,
        configuration_set: str | None = None,
        origination_identity: str | None = None,
        max_price: str | Decimal | None = None,
        message_type: str = "TRANSACTIONAL",
    ):
        if message_type not in ("TRANSACTIONAL", "PROMOTIONAL"):
            raise ValueError("message_type must be TRANSACTIONAL or PROMOTIONAL")
        self._client = client
        # What every SendTextMessage carries besides the SMS itself (the stack's settings).
        self.fixed_parameters: dict[str, Any] = {"MessageType": message_type}
        if configuration_set:
            self.fixed_parameters["ConfigurationSetName"] = configuration_set
        if origination_identity:
            self.fixed_parameters["OriginationIdentity"] = origination_identity
        if max_price is not None:
            self.fixed_parameters["MaxPrice"] = str(max_price)

    def is_opted_out(self, phone: str) -> bool:
        return False  # never asked: the service refuses opted-out numbers at send (checks_opt_out)

    def publish(self, sms: OutgoingSms) -> str:
        # Context values the service takes (ContextValue: 1-800 characters, no space at either end).
        # An order id it would refuse (possible by the order contract) is left out rather than
        # have the SMS refused: it goes out, and its receipts are counted as for no known SMS.
        candidates = {"order_id": sms.order_id, "attempt": str(sms.attempt), "variant": sms.variant}
        context = {k: v for k, v in candidates.items() if v is not None and _context_value_ok(v)}
        if "order_id" not in context:
            context.pop("attempt", None)  # an attempt alone names no SMS
        resp = call_once(
            self._client.send_text_message,
            service="End User Messaging",
            classify=_classify,
            DestinationPhoneNumber=sms.phone,
            MessageBody=sms.text,
            TimeToLive=time_to_live(sms),
            Context=context,
            **self.fixed_parameters,
        )
        return resp["MessageId"]
