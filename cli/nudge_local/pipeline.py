"""The whole pipeline in one process on moto: `nudge demo`, the integration tests and the bench.

It builds the stack from template.yaml (``nudge_local.moto_env``), imports the real handlers from
``functions/`` with the template's environment, hands each the app ``nudge.bootstrap`` builds for
it (moto clients, the fake clock), and plays the AWS services that moto does not:
EventBridge Scheduler (an event shaped like the schedule's Input) and the SQS event source
mapping (batches of up to 10, partial batch failures, redelivery after the visibility timeout).
Time is a ``FakeClock`` the handlers read, so a run is the same whatever day it is run on.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

# template.yaml, functions/ and events/ ship inside this package (``stack/``: links to the repo's
# own files in a checkout, copies in a built wheel), so `nudge demo` runs from an installed package.
STACK = Path(__file__).resolve().parent / "stack"
TEMPLATE = STACK / "template.yaml"
FUNCTIONS = STACK / "functions"
EVENTS = STACK / "events"
REGION = "us-east-1"
ACCOUNT = "123456789012"

# SmsGateway=aliyun locally: the AccessKey the harness puts in the stack's secret (and the stand-in
# checks every signature with), and two registered templates as docs/GATEWAYS.md suggests a shop
# registers them, with Nudge's variable names (name, item, amount; cutoff and closes are left out
# by the plan when unknown or past, so these templates do not name them).
ALIYUN_KEYS = {"access_key_id": "LTAI-local-key", "access_key_secret": "local-secret"}
ALIYUN_SIGN_NAME = "Nudge Shop"  # the sample shop's name, as its registered signature
ALIYUN_TEMPLATES = {
    "SMS_480010001": "${name}您好，您拍下的宝贝「${item}」（¥${amount}）还未付款，"
    "请问是付款过程中遇到了什么困难吗？需要帮助请随时联系客服哦。",
    "SMS_480010002": "${name}您好，您拍下的宝贝「${item}」（¥${amount}）还未付款哦。库存有限，先付先得。",
}
ALIYUN_PARAMETERS = {
    "AliyunSignName": ALIYUN_SIGN_NAME,
    "AliyunTemplateCodes": "1=SMS_480010001,2=SMS_480010002",
}


class FakeClock:
    """An aware UTC clock that moves only when told to (``sleep`` moves it too)."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = at.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


@dataclass
class LambdaContextStub:
    """What Powertools reads from a Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def schedule_event(window: str, scheduled_at: datetime) -> dict[str, str]:
    """The Input template.yaml gives a schedule, with <aws.scheduler.scheduled-time> filled in."""
    return {"window": window, "scheduled_time": scheduled_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """An SQS event as the event source mapping delivers it to Lambda."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def stream_record(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    sequence: int,
    at: datetime,
    stream_arn: str,
) -> dict[str, Any]:
    """One DynamoDB stream record (NEW_AND_OLD_IMAGES) as Lambda receives it, from plain images."""
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()

    def plain(value: Any) -> Any:  # DynamoDB numbers are Decimal; floats are not allowed
        if isinstance(value, float):
            return Decimal(str(value))
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    def image(item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: ser.serialize(plain(v)) for k, v in item.items()}

    key = (new or old or {})["order_id"]
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": int(at.timestamp()),
        "Keys": {"order_id": {"S": key}},
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": 256,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        body["NewImage"] = image(new)
    if old is not None:
        body["OldImage"] = image(old)
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": "REMOVE" if new is None else ("INSERT" if old is None else "MODIFY"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }


def matches_filter(record: Mapping[str, Any], pattern: Mapping[str, Any]) -> bool:
    """Lambda's event filtering, for the pattern forms the template uses: lists of values,
    ``{"exists": false}`` and ``{"anything-but": [...]}`` (a missing field matches only exists:false)."""
    for key, want in pattern.items():
        value = record.get(key) if isinstance(record, Mapping) else None
        if isinstance(want, Mapping):
            if not matches_filter(value if isinstance(value, Mapping) else {}, want):
                return False
            continue
        ok = False
        for option in want:
            if isinstance(option, Mapping) and "exists" in option:
                ok = (value is not None) == bool(option["exists"])
            elif isinstance(option, Mapping) and "anything-but" in option:
                ok = value is not None and value not in option["anything-but"]
            else:
                ok = value == option
            if ok:
                break
        if not ok:
            return False
    return True


def storable_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects with an order_id in a JSON Lines file, and how many lines were refused:
    any other line cannot be stored in DynamoDB (a shop's import would refuse it too)."""
    good, refused = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            refused += bool(line.strip())
            continue
        if isinstance(record, dict) and isinstance(record.get("order_id"), str):
            good.append(record)
        else:
            refused += 1
    return good, refused


FUNCTION_URL_HOST = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"


def function_url_event(
    path: str,
    body: bytes,
    headers: dict[str, str],
    *,
    base64_body: bool = False,
    at: datetime | None = None,
    method: str = "POST",
) -> dict[str, Any]:
    """A Function URL request event (AuthType NONE): lower-cased headers, body as text or base64."""
    at = at or datetime.now(UTC)
    user_agent = headers.get("user-agent", "curl/8.5.0")
    all_headers = {
        "content-length": str(len(body)),
        "x-amzn-tls-version": "TLSv1.3",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "x-forwarded-for": "34.23.12.1",
        "accept": "*/*",
        "x-amzn-tls-cipher-suite": "TLS_AES_128_GCM_SHA256",
        "x-amzn-trace-id": "Root=1-67cf1a2b-3c4d5e6f7a8b9c0d1e2f3a4b",
        "host": FUNCTION_URL_HOST,
        "content-type": "application/json",
        "user-agent": user_agent,
        **{k.lower(): v for k, v in headers.items()},
    }
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": FUNCTION_URL_HOST.split(".")[0],
            "domainName": FUNCTION_URL_HOST,
            "domainPrefix": FUNCTION_URL_HOST.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "34.23.12.1",
                "userAgent": user_agent,
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": at.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "body": base64.b64encode(body).decode() if base64_body else body.decode("utf-8"),
        "isBase64Encoded": base64_body,
    }


def _load_handler(name: str, path: Path) -> ModuleType:
    """Import a handler file fresh, as a cold start would (its Powertools objects are new)."""
    module_name = f"nudge_local_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[module_name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class LocalPipeline:
    """``with LocalPipeline(clock=...) as p:`` a fresh moto account with the stack in it."""

    def __init__(
        self,
        *,
        clock: FakeClock,
        parameters: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        template: Path = TEMPLATE,
        retry_delay_seconds: float = 370,  # the send queue's visibility timeout in template.yaml
        gateway: str = "sns",  # the SmsGateway parameter: "sns", "end-user-messaging" or "aliyun"
        aliyun_templates: Mapping[str, str] | None = None,  # code -> text registered at the stand-in
    ):
        from nudge_local.sms_voice import LocalSmsVoiceClient

        self.clock = clock
        self.gateway = gateway
        self.sms_voice = LocalSmsVoiceClient()  # End User Messaging's stand-in (moto has none)
        # Alibaba Cloud's stand-in (a dysmsapi on 127.0.0.1, started with the pipeline).
        self.dysmsapi: Any = None
        self._aliyun_templates = dict(ALIYUN_TEMPLATES if aliyun_templates is None else aliyun_templates)
        aliyun = ALIYUN_PARAMETERS if gateway == "aliyun" else {}
        self._parameters = {**aliyun, **(parameters or {}), "SmsGateway": gateway}
        self._env_overrides = dict(env or {})
        self._template = template
        self.retry_delay_seconds = retry_delay_seconds
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> LocalPipeline:
        import boto3
        from moto import mock_aws

        from nudge import bootstrap
        from nudge.settings import load_settings
        from nudge_local.moto_env import provision

        base = {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        self._set_env(base)
        self._mock = mock_aws()
        self._mock.start()
        try:
            self._start(boto3, provision, bootstrap, load_settings)
        except BaseException:
            self.__exit__()  # a failed start (e.g. a bad setting) must not leave the mock running
            raise
        return self

    def _start(self, boto3: Any, provision: Any, bootstrap: Any, load_settings: Any) -> None:
        boto3.setup_default_session()  # a session made inside the mock, with the fake creds
        self.resources = provision(self._template, parameters=self._parameters)
        if self.gateway == "aliyun":
            self._start_aliyun(boto3)
        self._set_env({**self.resources.env, **self._env_overrides})
        self._clear_powertools_caches()
        # The handlers as Lambda imports them; then each gets its app, built by the same
        # composition root a cold start uses, with this pipeline's clock instead of the real one.
        self.plan_module = _load_handler("plan", FUNCTIONS / "plan" / "app.py")
        self.send_module = _load_handler("send", FUNCTIONS / "send" / "app.py")
        self.audit_module = _load_handler("audit", FUNCTIONS / "audit" / "app.py")
        real = bootstrap.session_clients(boto3.session.Session(region_name=REGION))

        def clients(service_name: str, *, config: Any = None) -> Any:
            client = real(service_name, config=config)
            # End User Messaging: the real client, answered on the wire by the stand-in.
            return self.sms_voice.serve(client) if service_name == "pinpoint-sms-voice-v2" else client

        self._clients = clients
        self._build_apps()
        self._stream_sequence = 0
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dynamodb = boto3.resource("dynamodb", region_name=REGION)
        self.queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.send_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def _start_aliyun(self, boto3: Any) -> None:
        """Alibaba Cloud's stand-in on 127.0.0.1, the send function pointed at it (plain http is
        used for a loopback endpoint only), and the AccessKey put in the stack's secret as a shop
        does after deploying (docs/GATEWAYS.md)."""
        from nudge_local.dysmsapi import FakeDysmsapi

        keys = ALIYUN_KEYS
        self.dysmsapi = FakeDysmsapi(
            keys["access_key_id"], keys["access_key_secret"], templates=self._aliyun_templates
        )
        self._env_overrides.setdefault("ALIYUN_ENDPOINT", self.dysmsapi.endpoint)
        secret = self.resources.secrets["AliyunCredentialsSecret"]
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(
            SecretId=secret, SecretString=json.dumps(keys)
        )

    def _build_apps(self) -> None:
        """Each function's app from its environment, as a cold start builds it (the handler modules
        stay loaded, so a warm container's module state is kept)."""
        from nudge import bootstrap
        from nudge.settings import load_settings

        clients = self._clients

        def settings(function: str) -> Any:
            return load_settings({**self.resources.function_envs[function], **self._env_overrides})

        self._build_ingest_app = lambda: bootstrap.build_ingest_app(
            settings("IngestFunction"), clients=clients, clock=self.clock.now
        )
        self._new_send_app = lambda: bootstrap.build_send_app(
            settings("SendFunction"), clients=clients, clock=self.clock.now, sleep=self.clock.sleep
        )
        self.plan_app = bootstrap.build_plan_app(
            settings("PlanFunction"), clients=clients, clock=self.clock.now
        )
        self.send_app = self._new_send_app()
        self.audit_app = bootstrap.build_audit_app(settings("AuditFunction").orders_table, clients=clients)
        self.plan_module.APP.set(self.plan_app)
        self.send_module.APP.set(self.send_app)
        self.audit_module.APP.set(self.audit_app)
        # The outcomes function exists when the orders table has a stream (template condition).
        self.outcomes_module = getattr(self, "outcomes_module", None)
        self.outcomes_app = None
        if "OutcomesFunction" in self.resources.function_envs:
            if self.outcomes_module is None:
                self.outcomes_module = _load_handler("outcomes", FUNCTIONS / "outcomes" / "app.py")
            self.outcomes_app = bootstrap.build_outcomes_app(
                settings("OutcomesFunction"), clients=clients, clock=self.clock.now
            )
            self.outcomes_module.APP.set(self.outcomes_app)

    def redeploy(self, env: Mapping[str, str]) -> None:
        """The operator updates the stack (e.g. HoldoutPercent, ExtraConfigJson): every function's
        next cold start reads the new environment. Tables, queues and their data are kept."""
        self._env_overrides = {**self._env_overrides, **env}
        self._set_env({**self.resources.env, **self._env_overrides})
        self._clear_powertools_caches()
        self._build_apps()
        if getattr(self, "ingest_module", None) is not None:
            self.ingest_app = self._build_ingest_app()
            self.ingest_module.APP.set(self.ingest_app)

    def cold_send_container(self) -> ModuleType:
        """A new send function whose app is built on its first invocation, as Lambda builds it
        (a setting or secret it cannot use fails that invocation, before any message is taken)."""
        module = _load_handler("send", FUNCTIONS / "send" / "app.py")
        module.APP.build_with(self._new_send_app)
        return module

    def another_send_container(self) -> ModuleType:
        """A second warm send function (its own module and app), e.g. for concurrent pollers."""
        module = _load_handler("send", FUNCTIONS / "send" / "app.py")
        module.APP.set(self._new_send_app())
        return module

    def __exit__(self, *exc: object) -> None:
        if self.dysmsapi is not None:
            self.dysmsapi.close()
            self.dysmsapi = None
        self._mock.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _set_env(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    @staticmethod
    def _clear_powertools_caches() -> None:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()

    # -- data -----------------------------------------------------------------------------------
    def load_orders(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write order records as a shop would (numbers as DynamoDB numbers)."""
        table = self.dynamodb.Table(self.resources.orders_table)
        count = 0
        with table.batch_writer(overwrite_by_pkeys=["order_id"]) as batch:
            for record in records:
                batch.put_item(Item=json.loads(json.dumps(record), parse_float=Decimal))
                count += 1
        return count

    def load_orders_file(self, path: Path) -> tuple[int, int]:
        """Load a JSON Lines file (see ``storable_records``): (loaded, refused)."""
        good, refused = storable_records(path)
        return self.load_orders(good), refused

    def set_order_status(self, order_id: str, status: str) -> None:
        self.dynamodb.Table(self.resources.orders_table).update_item(
            Key={"order_id": order_id},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status},
        )

    def pay_order(self, order_id: str, paid_at: datetime) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The shop marks an order paid; returns its (old, new) images for ``play_stream``."""
        table = self.dynamodb.Table(self.resources.orders_table)
        old = table.get_item(Key={"order_id": order_id}, ConsistentRead=True).get("Item")
        new = table.update_item(
            Key={"order_id": order_id},
            UpdateExpression="SET #s = :s, paid_at = :p",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": "paid", ":p": paid_at.isoformat()},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return old, new

    def play_stream(
        self,
        changes: Iterable[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]],
        *,
        batch_size: int = 100,
        max_retries: int = 5,
    ) -> dict[str, int]:
        """The DynamoDB event source mapping: each change becomes a stream record, the template's
        FilterCriteria drop the rest, batches go to the outcomes function, and a batch with
        failures is retried from its first failed record (as Lambda does for streams)."""
        if self.outcomes_module is None:
            raise RuntimeError("this stack has no outcomes function (no orders stream)")
        from nudge_local.moto_env import load_template

        events = load_template(self._template)["Resources"]["OutcomesFunction"]["Properties"]["Events"]
        filters = [
            json.loads(f["Pattern"]) for f in events["Payments"]["Properties"]["FilterCriteria"]["Filters"]
        ]
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.resources.orders_table}/stream/local"
        records = []
        for old, new in changes:
            self._stream_sequence += 1
            record = stream_record(
                old, new, sequence=self._stream_sequence, at=self.clock.now(), stream_arn=arn
            )
            if any(matches_filter(record, f) for f in filters):
                records.append(record)
        stats = {"records": len(records), "invocations": 0, "failed": 0}
        context = LambdaContextStub("nudge-local-OutcomesFunction")
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            for _ in range(max_retries + 1):
                stats["invocations"] += 1
                try:
                    response = self.outcomes_module.lambda_handler({"Records": batch}, context)
                except Exception:  # a function error: Lambda retries the whole batch
                    response = {
                        "batchItemFailures": [
                            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in batch
                        ]
                    }
                failed = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
                if not failed:
                    break
                stats["failed"] += len(failed)
                first = min(failed)
                batch = [r for r in batch if r["dynamodb"]["SequenceNumber"] >= first]
        return stats

    def load_history(self, history: Iterable[Any], shop_zone: Any) -> int:
        """Write earlier reminders into the ledger through the ledger's own claim/record path."""
        from nudge.services.ports import SendRequest

        ledger = self.plan_app.ledger
        count = 0
        for sent in sorted(history, key=lambda s: (s.order_id, s.attempt)):
            request = SendRequest(
                order_id=sent.order_id,
                buyer_id=sent.buyer_id,
                phone=sent.phone,
                attempt=sent.attempt,
                text="(history)",
                segments=1,
                not_after=sent.sent_at + timedelta(hours=1),
                day=sent.sent_at.astimezone(shop_zone).date(),
                window="history",
                planned_at=sent.sent_at,
            )
            token = f"history-{uuid.uuid4().hex}"
            ledger.claim(request, token, 10**9, sent.sent_at)
            ledger.record_sent(request, token, f"history-{sent.order_id}-{sent.attempt}", sent.sent_at)
            count += 1
        return count

    def set_paused(self, paused: bool) -> None:
        import boto3

        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=self.resources.paused_parameter, Value="true" if paused else "false", Overwrite=True
        )
        self._clear_powertools_caches()

    # -- orders in by webhook: the ingest function behind its Function URL -----------------------
    def ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        """One Function URL request (payload 2.0) to the ingest function; returns its HTTP response."""
        module = getattr(self, "ingest_module", None)
        if module is None:  # loaded on first use, so stacks that never take webhooks do not pay for it
            module = self.ingest_module = _load_handler("ingest", FUNCTIONS / "ingest" / "app.py")
            self.ingest_app = self._build_ingest_app()
            module.APP.set(self.ingest_app)
        return module.lambda_handler(event, LambdaContextStub("nudge-local-IngestFunction"))

    def delivery_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """End User Messaging's EventBridge rule invoking the receipts function with one delivery
        event, or a CloudWatch Logs subscription with SNS's delivery-status log lines. The function
        exists with SmsGateway=end-user-messaging or SnsDeliveryStatusLogs on; it reads the ledger
        with the send function's settings, so the harness plays it whatever gateway sent."""
        return self._receipts().lambda_handler(dict(event), LambdaContextStub("nudge-local-ReceiptsFunction"))

    def mark_unknown(self, context: LambdaContextStub | None = None) -> dict[str, Any]:
        """The receipts function's daily schedule: ``unknown`` on the SMS with no final status 72 h
        after their send (at the pipeline clock's now); ``context``: e.g. one whose time runs out."""
        event = {"task": "mark_unknown"}
        return self._receipts().lambda_handler(
            event, context or LambdaContextStub("nudge-local-ReceiptsFunction")
        )

    def _receipts(self) -> ModuleType:
        module = getattr(self, "receipts_module", None)
        if module is None:
            from nudge import bootstrap
            from nudge.settings import load_settings

            module = self.receipts_module = _load_handler("receipts", FUNCTIONS / "receipts" / "app.py")
            env = {**self.resources.function_envs["SendFunction"], **self._env_overrides}
            module.APP.set(
                bootstrap.build_receipts_app(load_settings(env), clients=self._clients, clock=self.clock.now)
            )
        return module

    def inbound_sms(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A buyer's SMS to the shop's number: End User Messaging publishes it to the stack's inbound
        topic, whose subscription invokes the replies function (one SNS record)."""
        module = getattr(self, "replies_module", None)
        if module is None:
            from nudge import bootstrap
            from nudge.settings import load_settings

            module = self.replies_module = _load_handler("replies", FUNCTIONS / "replies" / "app.py")
            env = {
                **self.resources.function_envs["PlanFunction"],
                **self._env_overrides,
            }  # has the staff topic
            app = bootstrap.build_replies_app(load_settings(env), clients=self._clients, clock=self.clock.now)
            module.APP.set(app)
        event = {
            "Records": [
                {
                    "EventSource": "aws:sns",
                    "EventVersion": "1.0",
                    "EventSubscriptionArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:nudge-inbound:local",
                    "Sns": {
                        "Type": "Notification",
                        "MessageId": str(uuid.uuid4()),
                        "TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:nudge-inbound",
                        "Subject": None,
                        "Message": json.dumps(payload, ensure_ascii=False),
                        "Timestamp": self.clock.now().isoformat(),
                    },
                }
            ]
        }
        return module.lambda_handler(event, LambdaContextStub("nudge-local-RepliesFunction"))

    def aliyun_push_token(self) -> str:
        """The token in Alibaba Cloud's push URLs, as the stack's AliyunPushTokenCommand prints it."""
        import boto3

        arn = self.resources.secrets["AliyunPushToken"]
        value = boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=arn)
        return str(value["SecretString"])

    def aliyun_push(self, kind: str, items: Any, *, token: str | None = None) -> dict[str, Any]:
        """Alibaba Cloud pushing ``items`` (a JSON array: SmsReport or SmsUp, ``kind`` "report" or
        "up") to ``/receipts/aliyun/<kind>/<token>`` (the stack's token unless given); the answer."""
        body = json.dumps(items, ensure_ascii=False).encode("utf-8")
        path = f"/receipts/aliyun/{kind}/{self.aliyun_push_token() if token is None else token}"
        return self.ingest(function_url_event(path.rstrip("/"), body, {}, at=self.clock.now()))

    def webhook_secret(self, route: str) -> str | None:
        """The route's secret as the sender is given it (Standard Webhooks: "whsec_" + the stored value)."""
        import boto3
        from botocore.exceptions import ClientError

        from nudge.domain.platforms.registry import PLATFORMS

        platform = PLATFORMS[route]
        arn = self.resources.secrets[platform.stack_secret]
        try:
            value = boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=arn)
        except ClientError:
            return None
        return platform.secret_prefix + value["SecretString"]

    def set_webhook_secret(self, route: str, value: str) -> None:
        """What the operator does once: paste the platform's secret into its Secrets Manager secret."""
        import boto3

        from nudge.domain.platforms.registry import PLATFORMS

        arn = self.resources.secrets[PLATFORMS[route].stack_secret]
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=arn, SecretString=value)
        self._clear_powertools_caches()
        from nudge.adapters.secrets import SecretsManagerSecrets

        secrets = getattr(getattr(self, "ingest_app", None), "secrets", None)
        if isinstance(secrets, SecretsManagerSecrets):  # the real adapter remembers "not set" a while
            secrets.forget()

    # -- the services moto does not play --------------------------------------------------------
    def fire_window(
        self, window: str, scheduled_at: datetime, *, started_at: datetime | None = None
    ) -> dict[str, Any]:
        """EventBridge Scheduler invoking the plan function for one window."""
        return self.fire_event(schedule_event(window, scheduled_at), started_at=started_at or scheduled_at)

    def fire_event(self, event: Mapping[str, Any], *, started_at: datetime) -> dict[str, Any]:
        """The plan function invoked with this event (any text: a replay, a manual run) at ``started_at``."""
        self.clock.set(started_at)
        context = LambdaContextStub("nudge-local-PlanFunction")
        return self.plan_module.lambda_handler(dict(event), context)

    def run_audit(self) -> dict[str, Any]:
        """The daily audit schedule invoking the audit function."""
        context = LambdaContextStub("nudge-local-AuditFunction")
        return self.audit_module.lambda_handler({}, context)

    def receive(self, max_messages: int = 10) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.resources.send_queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
        ).get("Messages", [])

    def deliver(self, messages: list[dict[str, Any]]) -> set[str]:
        """One invocation of the send function, as the event source mapping makes it: deletes
        what succeeded; returns the message ids it reported as failed."""
        if not messages:
            return set()
        context = LambdaContextStub("nudge-local-SendFunction")
        response = self.send_module.lambda_handler(sqs_event(messages, self.queue_arn), context)
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.resources.send_queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        return failed

    def drain_queue(self, max_rounds: int = 100_000) -> dict[str, int]:
        """Deliver until the queue is empty. Failed messages come back once the visibility
        timeout has passed on the clock; after maxReceiveCount they go to the DLQ (moto)."""
        stats = {"invocations": 0, "messages": 0, "failed": 0}
        for _ in range(max_rounds):
            messages = self.receive()
            if not messages:
                break
            failed = self.deliver(messages)
            stats["invocations"] += 1
            stats["messages"] += len(messages)
            stats["failed"] += len(failed)
            if failed:
                for m in messages:
                    if m["MessageId"] in failed:
                        self.sqs.change_message_visibility(
                            QueueUrl=self.resources.send_queue_url,
                            ReceiptHandle=m["ReceiptHandle"],
                            VisibilityTimeout=0,
                        )
                self.clock.advance(self.retry_delay_seconds)
        return stats

    def queue_depth(self, url: str | None = None) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.resources.send_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def sent_sms(self) -> list[tuple[str, str]]:
        """The SMS the gateway took, oldest first: [(phone, text)] (moto's SNS, End User
        Messaging's stand-in, or Alibaba Cloud's: its registered template filled with the SMS's
        values under the signature, as the buyer would read it; the template code and values
        are on ``self.dysmsapi.accepted``)."""
        if self.gateway == "end-user-messaging":
            return [(t.phone, t.body) for t in self.sms_voice.sent]
        if self.gateway == "aliyun":
            from nudge_local.dysmsapi import e164_of

            return [(e164_of(s.phone), s.text) for s in self.dysmsapi.accepted]
        return moto_sent_sms(ACCOUNT, REGION)

    def staff_digests(self) -> list[tuple[str | None, str]]:
        """The call digests moto's SNS received on the staff topic, oldest first: [(subject, body)]."""
        from moto.sns.models import sns_backends

        arn = self.resources.env.get("STAFF_TOPIC_ARN", "")
        topic = sns_backends[ACCOUNT][REGION].topics.get(arn)
        return [(subject, message) for _, message, subject, *_ in (topic.sent_notifications if topic else [])]

    def ledger_item(self, order_id: str) -> dict[str, Any] | None:
        return (
            self.dynamodb.Table(self.resources.ledger_table)
            .get_item(Key={"order_id": order_id}, ConsistentRead=True)
            .get("Item")
        )


def moto_sent_sms(account_id: str = "123456789012", region: str = "us-east-1") -> list[tuple[str, str]]:
    """The SMS moto's SNS backend accepted, oldest first: [(phone, text)] (inside ``mock_aws``)."""
    from moto.sns.models import sns_backends

    return list(sns_backends[account_id][region].sms_messages.values())
