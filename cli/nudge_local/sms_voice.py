"""A local stand-in for the End User Messaging SMS client (``pinpoint-sms-voice-v2``): moto has no
backend for it. Only what Nudge calls, with the service's real request and error shapes:
``send_text_message`` validates its parameters against botocore's model of the service, answers
``{"MessageId": ...}``, and refuses an opted-out number with the service's ``ConflictException``
(``DESTINATION_PHONE_NUMBER_OPTED_OUT``). Like moto's SNS, a number ending in ``99`` is opted out.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

__all__ = ["LocalSmsVoiceClient", "SentText"]

_MODEL = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2")


@dataclass(frozen=True)
class SentText:
    message_id: str
    phone: str
    body: str
    params: dict[str, Any]


@dataclass
class LocalSmsVoiceClient:
    opted_out: set[str] = field(default_factory=set)
    sent: list[SentText] = field(default_factory=list)

    def send_text_message(self, **params: Any) -> dict[str, Any]:
        validate_parameters(params, _MODEL.operation_model("SendTextMessage").input_shape)
        # botocore checks minimum lengths only; the service also holds each Context value to its
        # maximum and pattern (no space at either end), and answers ValidationException.
        rule = _MODEL.shape_for("ContextValue").metadata
        for key, value in (params.get("Context") or {}).items():
            if len(value) > rule["max"] or not re.fullmatch(rule["pattern"], value):
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ValidationException",
                            "Message": f"Context.{key}: not a valid value",
                        },
                        "Reason": "INVALID_PARAMETER",
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "SendTextMessage",
                )
        phone = params["DestinationPhoneNumber"]
        if phone.endswith("99") or phone in self.opted_out:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ConflictException",
                        "Message": "The destination phone number is opted out.",
                    },
                    "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                    "ResourceType": "opt-out-list",
                    "ResourceId": "Default",
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "SendTextMessage",
            )
        message_id = str(uuid.uuid4())
        self.sent.append(SentText(message_id, phone, params["MessageBody"], dict(params)))
        return {"MessageId": message_id, "ResponseMetadata": {"HTTPStatusCode": 200}}
