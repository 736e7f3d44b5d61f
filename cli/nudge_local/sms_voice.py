"""A local stand-in for the End User Messaging SMS client (``pinpoint-sms-voice-v2``): moto has no
backend for it. Only what Nudge calls, with the service's real request and error shapes:
``send_text_message`` validates its parameters against botocore's model of the service, answers
``{"MessageId": ...}``, and refuses an opted-out number with the service's ``ConflictException``
(``DESTINATION_PHONE_NUMBER_OPTED_OUT``). Like moto's SNS, a number ending in ``99`` is opted out.

``serve(client)`` puts the stand-in behind a real ``pinpoint-sms-voice-v2`` botocore client (the
one the send function builds, with its own config): botocore serializes and signs each request as
for AWS, the stand-in answers it on the wire (JSON 1.0, errors as ``__type`` + modeled fields), and
botocore parses the answer. A fault on the way (a connect or read timeout, throttling) is then
injected on the client's own events, as for SNS on moto.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

__all__ = ["LocalSmsVoiceClient", "SentText"]

_MODEL = botocore.session.get_session().get_service_model("pinpoint-sms-voice-v2")
_MODELED_ERROR_FIELDS = ("Reason", "ResourceType", "ResourceId", "Fields")


class _Body:
    """The raw body of an answer, as botocore reads it (``stream()``)."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


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

    def serve(self, client: Any) -> Any:
        """Answer ``client``'s requests (a botocore ``pinpoint-sms-voice-v2`` client); returns it."""
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}", self._answer, unique_id="nudge-sms-voice")
        return client

    def _answer(self, request: Any, **_: Any) -> AWSResponse:
        target = request.headers.get("X-Amz-Target") or b""
        operation = (target.decode() if isinstance(target, bytes) else target).rpartition(".")[2]
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "{}")
        status, answer = 200, {}
        try:
            if operation != "SendTextMessage":
                raise ClientError(
                    {
                        "Error": {"Code": "UnknownOperationException", "Message": operation},
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    operation,
                )
            answer = {
                k: v for k, v in self.send_text_message(**json.loads(body)).items() if k != "ResponseMetadata"
            }
        except ClientError as exc:
            error: dict[str, Any] = dict(exc.response)
            status = error["ResponseMetadata"]["HTTPStatusCode"]
            answer = {
                "__type": error["Error"]["Code"],
                "Message": error["Error"]["Message"],
                **{k: error[k] for k in _MODELED_ERROR_FIELDS if k in error},
            }
        headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": str(uuid.uuid4())}
        return AWSResponse(request.url, status, headers, _Body(json.dumps(answer).encode()))
