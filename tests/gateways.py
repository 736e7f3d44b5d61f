"""Each SMS gateway behind its real adapter, with faults injected at that gateway's own boundary.

The send path's promise tests run once per gateway (``SmsGateway``) through one parametrization,
``GATEWAYS``: the handlers on the local stack (``pipeline_provider``) and the adapter under the real
``Sender`` (``gateway_provider``). A test asks a ``Provider`` for faults
on the next hand-offs and reads back what the provider itself received:

- SNS (moto) and End User Messaging (its stand-in answering on the wire, ``nudge_local.sms_voice``):
  the send function's own botocore client with its own config; faults on its events. ``unreachable``
  raises botocore's ConnectTimeoutError before the request leaves; ``answer_lost`` lets the provider
  take the SMS, then raises ReadTimeoutError; ``throttled`` answers the service's throttling error on
  the wire, parsed by botocore.
- Alibaba Cloud: the official SDK against the local ``dysmsapi`` server. ``unreachable`` closes the
  server's socket for that call (connection refused); ``answer_lost`` makes the server answer after
  the client's read timeout; ``throttled`` answers ``isv.BUSINESS_LIMIT_CONTROL`` (flow control).
- Everywhere: ``dies`` kills the process as the hand-off starts (nothing left), ``dies_after_delivery``
  once the provider took the SMS (``Died``, a BaseException: no handler of ours runs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Any, Protocol

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.parsers import create_parser

# The SmsGateway values: the local stack (LocalPipeline) plays each; the adapters under the Sender.
GATEWAYS = ("sns", "end-user-messaging", "aliyun")
FAULTS = ("unreachable", "answer_lost", "throttled", "dies", "dies_after_delivery")
ALIYUN_READ_TIMEOUT_MS = 200  # the adapter's own 10 s, shortened so a lost answer costs a test 0.5 s


class Died(BaseException):
    """The process dies (Lambda timeout, out of memory): no handler of ours runs."""


class Provider(Protocol):
    gateway: Any  # the adapter (SmsGateway) whose client the faults are on

    def fail_next(self, *faults: str) -> None:
        """The next hand-offs meet these faults, one each, in order (``FAULTS``)."""

    def received(self) -> list[str]:
        """The numbers (E.164) the provider took an SMS for, oldest first (a request it refused,
        e.g. throttled, took none)."""


class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


# service id -> (the hand-off operation, its throttling answer: HTTP status, body)
_BOTOCORE = {
    "sns": (
        "Publish",
        400,
        b'<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>'
        b"<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
        b"<RequestId>6f1c2b8e-throttled</RequestId></ErrorResponse>",
    ),
    "pinpoint-sms-voice-v2": (
        "SendTextMessage",
        400,
        b'{"__type":"ThrottlingException","Message":"Rate exceeded"}',
    ),
}


class BotocoreProvider:
    """Faults on a botocore client's hand-off operation (SNS Publish, SendTextMessage)."""

    def __init__(self, gateway: Any, received: Callable[[], list[str]]):
        self.gateway, self._received = gateway, received
        self.client = gateway._client
        self.service = self.client.meta.service_model.service_id.hyphenize()
        self.operation, self._status, self._throttling = _BOTOCORE[self.service]
        self._faults: list[str] = []
        self._after: str | None = None
        events, suffix = self.client.meta.events, f"{self.service}.{self.operation}"
        events.register(f"before-call.{suffix}", self._before_call)
        events.register(f"before-send.{suffix}", self._before_send)  # before moto / the stand-in
        events.register(f"after-call.{suffix}", self._after_call)

    def fail_next(self, *faults: str) -> None:
        assert set(faults) <= set(FAULTS), faults
        self._faults.extend(faults)

    def received(self) -> list[str]:
        return self._received()

    def _before_call(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self._faults or self._faults[0] != "throttled":
            return None
        self._faults.pop(0)
        headers = {"x-amzn-requestid": "throttled"}
        raw = {"status_code": self._status, "headers": headers, "body": self._throttling}
        parsed = create_parser(self.client.meta.service_model.protocol).parse(raw, model.output_shape)
        return AWSResponse("https://throttled", self._status, headers, _Body(self._throttling)), parsed

    def _before_send(self, request: Any, **_: Any) -> None:
        if not self._faults:
            return
        fault = self._faults.pop(0)
        if fault == "unreachable":
            raise ConnectTimeoutError(endpoint_url=request.url)
        if fault == "dies":
            raise Died
        self._after = fault  # the provider takes it; the answer is lost or the process dies

    def _after_call(self, **_: Any) -> None:
        fault, self._after = self._after, None
        if fault == "answer_lost":
            raise ReadTimeoutError(endpoint_url=self.client.meta.endpoint_url)
        if fault == "dies_after_delivery":
            raise Died


class AliyunProvider:
    """Faults between the official SDK's client and the local dysmsapi server."""

    def __init__(self, gateway: Any, server: Any):
        from nudge_local.dysmsapi import Answer

        self.gateway, self.server = gateway, server
        self._faults: list[str] = []
        client = gateway._client
        real = client.send_sms_with_options

        def send_sms_with_options(*args: Any, **kwargs: Any) -> Any:
            fault = self._faults.pop(0) if self._faults else None
            if fault == "dies":
                raise Died
            if fault == "unreachable":
                return self._refusing(lambda: real(*args, **kwargs))
            if fault == "answer_lost":  # the server answers after the client's own read timeout
                server.answers.append(Answer(delay=client._read_timeout / 1000 + 0.3))
            if fault == "throttled":
                server.answers.append(
                    Answer(200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控"})
                )
            response = real(*args, **kwargs)
            if fault == "dies_after_delivery":
                raise Died
            return response

        client.send_sms_with_options = send_sms_with_options

    def fail_next(self, *faults: str) -> None:
        assert set(faults) <= set(FAULTS), faults
        self._faults.extend(faults)

    def received(self) -> list[str]:
        from nudge_local.dysmsapi import e164_of

        return [e164_of(s.phone) for s in self.server.accepted]  # answered OK (a refusal took none)

    def _refusing(self, call: Callable[[], Any]) -> Any:
        """Nothing listens on the server's port during ``call``: the connection is refused."""
        old = self.server.server
        port = old.server_port
        old.shutdown()
        old.server_close()
        try:
            return call()
        finally:
            new = ThreadingHTTPServer(("127.0.0.1", port), old.RequestHandlerClass)
            threading.Thread(target=new.serve_forever, daemon=True).start()
            self.server.server = new


def client_timeouts(client: Any) -> tuple[float, float, int]:
    """(connect timeout s, read timeout s, attempts per call) of a gateway's client."""
    if hasattr(client, "meta"):  # botocore
        config = client.meta.config
        return config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]
    attempts = 1 if client._retry_options is None else client._retry_options.max_attempts
    return client._connect_timeout / 1000, client._read_timeout / 1000, attempts


def pipeline_provider(p: Any) -> Provider:
    """The provider behind a LocalPipeline's send function, with its faults on that function's client."""
    gateway = p.send_app.sender.sms
    if p.gateway == "aliyun":
        return AliyunProvider(gateway, p.dysmsapi)
    return BotocoreProvider(gateway, received=lambda: [phone for phone, _ in p.sent_sms()])


@contextmanager
def gateway_provider(name: str) -> Iterator[Provider]:
    """The adapter the send function builds for ``name``, on its provider's local stand-in."""
    if name == "aliyun":
        from nudge_local.dysmsapi import FakeDysmsapi
        from tests.contract.test_aliyun_sms import KEY_ID, SECRET, gateway

        server = FakeDysmsapi(KEY_ID, SECRET)
        try:
            yield AliyunProvider(gateway(server.endpoint, read_timeout_ms=ALIYUN_READ_TIMEOUT_MS), server)
        finally:
            server.close()
        return
    import boto3
    from moto import mock_aws

    from nudge.adapters.end_user_messaging import EUM_CLIENT_CONFIG, EndUserMessagingGateway
    from nudge.adapters.sns import SNS_CLIENT_CONFIG, SnsSmsGateway
    from nudge_local.pipeline import moto_sent_sms
    from nudge_local.sms_voice import LocalSmsVoiceClient

    with mock_aws():
        if name == "sns":
            client = boto3.client("sns", region_name="us-east-1", config=SNS_CLIENT_CONFIG)
            yield BotocoreProvider(
                SnsSmsGateway(client), received=lambda: [phone for phone, _ in moto_sent_sms()]
            )
        elif name == "end-user-messaging":
            stand_in = LocalSmsVoiceClient()
            client = boto3.client("pinpoint-sms-voice-v2", region_name="us-east-1", config=EUM_CLIENT_CONFIG)
            yield BotocoreProvider(
                EndUserMessagingGateway(stand_in.serve(client), configuration_set="nudge-sms"),
                received=lambda: [t.phone for t in stand_in.sent],
            )
        else:
            raise ValueError(f"no such gateway: {name}")
