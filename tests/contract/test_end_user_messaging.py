"""The End User Messaging SMS gateway on botocore's Stubber: the real request and response shapes
of ``pinpoint-sms-voice-v2`` (moto has no backend for it), and its error table."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from nudge.adapters.end_user_messaging import EUM_CLIENT_CONFIG, EndUserMessagingGateway, time_to_live
from nudge.services.ports import OptedOutError, PermanentSendError, TransientSendError
from tests.builders import AT, outgoing


@pytest.fixture
def client():
    return boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1", config=EUM_CLIENT_CONFIG)


def gateway(client, **kw) -> EndUserMessagingGateway:
    return EndUserMessagingGateway(client, configuration_set="nudge-sms", **kw)


def test_the_request_carries_the_deadline_the_context_and_the_settings(client):
    sms = outgoing(
        "+14155550100", "Hi, your order is unpaid", not_after=AT + timedelta(minutes=40), variant="caring"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "send_text_message",
            {"MessageId": "msg-1"},
            expected_params={
                "DestinationPhoneNumber": "+14155550100",
                "MessageBody": "Hi, your order is unpaid",
                "MessageType": "TRANSACTIONAL",
                "ConfigurationSetName": "nudge-sms",
                "OriginationIdentity": "pool-123",
                "MaxPrice": "0.05",
                "TimeToLive": 2400,  # the SMS dies at the carrier when its window closes
                "Context": {"order_id": "o-1", "attempt": "1", "variant": "caring"},
            },
        )
        assert gateway(client, origination_identity="pool-123", max_price="0.05").publish(sms) == "msg-1"
        stub.assert_no_pending_responses()


def test_no_variant_no_optional_settings(client):
    with Stubber(client) as stub:
        stub.add_response(
            "send_text_message",
            {"MessageId": "msg-2"},
            expected_params={
                "DestinationPhoneNumber": "+8613800138000",
                "MessageBody": "hi",
                "MessageType": "TRANSACTIONAL",
                "TimeToLive": 2400,
                "Context": {"order_id": "o-1", "attempt": "1"},
            },
        )
        assert EndUserMessagingGateway(client).publish(outgoing()) == "msg-2"


@pytest.mark.parametrize(
    ("left", "ttl"),
    [(timedelta(seconds=1), 5), (timedelta(minutes=50), 3000), (timedelta(days=4), 259_200)],
)
def test_time_to_live_is_the_time_left_within_the_apis_bounds(left, ttl):
    assert time_to_live(outgoing(not_after=AT + left, handed_at=AT)) == ttl


def test_it_keeps_its_own_opt_out_list():
    assert EndUserMessagingGateway(object()).checks_opt_out is True


@pytest.mark.parametrize(
    ("code", "status", "fields", "raised"),
    [
        ("ThrottlingException", 400, {}, TransientSendError),
        ("InternalServerException", 500, {}, TransientSendError),
        (
            "ConflictException",
            400,
            {
                "Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT",
                "ResourceType": "opt-out-list",
                "ResourceId": "Default",
            },
            OptedOutError,
        ),
        (
            "ConflictException",
            400,
            {"Reason": "MESSAGE_TYPE_MISMATCH", "ResourceType": "pool", "ResourceId": "p"},
            PermanentSendError,
        ),
        ("ValidationException", 400, {"Reason": "PRICE_OVER_THRESHOLD"}, PermanentSendError),
        (
            "ServiceQuotaExceededException",
            402,
            {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"},
            PermanentSendError,
        ),
        (
            "ResourceNotFoundException",
            404,
            {"ResourceType": "configuration-set", "ResourceId": "nudge-sms"},
            PermanentSendError,
        ),
        ("AccessDeniedException", 403, {}, PermanentSendError),
    ],
)
def test_each_error_means_what_the_sender_needs(client, code, status, fields, raised):
    with Stubber(client) as stub:
        stub.add_client_error(
            "send_text_message",
            service_error_code=code,
            service_message="no",
            http_status_code=status,
            modeled_fields={"Message": "no", **fields} if fields else None,
        )
        with pytest.raises(raised) as caught:
            gateway(client).publish(outgoing())
    if raised is PermanentSendError:
        assert not isinstance(caught.value, OptedOutError)
    assert code in str(caught.value)


class Raising:
    def __init__(self, error: Exception):
        self.error = error

    def send_text_message(self, **_):
        raise self.error


def test_unreachable_is_transient_but_a_lost_answer_is_not():
    with pytest.raises(TransientSendError):
        EndUserMessagingGateway(Raising(EndpointConnectionError(endpoint_url="https://sms-voice"))).publish(
            outgoing()
        )
    # A read timeout: the SMS may be out. Giving the claim back could send it twice: propagate as is.
    with pytest.raises(ReadTimeoutError):
        EndUserMessagingGateway(Raising(ReadTimeoutError(endpoint_url="https://sms-voice"))).publish(
            outgoing()
        )
