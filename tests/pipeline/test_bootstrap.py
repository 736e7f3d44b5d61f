"""One composition root: settings parsed once by one model, apps built lazily, nothing at import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nudge import bootstrap
from nudge.domain.config import ConfigError
from nudge.settings import Settings, load_settings
from nudge_local.pipeline import LambdaContextStub, schedule_event
from tests.builders import SHANGHAI

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ["plan", "send", "audit", "receipts", "replies"]
ENV = {
    "ORDERS_TABLE": "orders",
    "ORDERS_STATUS_INDEX": "status-created_at",
    "LEDGER_TABLE": "ledger",
    "LEDGER_DAY_INDEX": "sent_day-last_sent_at",
    "IDEMPOTENCY_TABLE": "idempotency",
    "SEND_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/send",
    "WINDOWS": "09:50-10:40@11:00,15:00-16:50@17:00",
}


# ------------------------------------------------------------------------------------ settings


def test_settings_keep_the_template_variable_names_and_defaults():
    s = load_settings({**ENV, "PAUSED_PARAMETER": "/nudge/paused", "SMS_SENDER_ID": ""})
    assert isinstance(s, Settings)
    assert (s.orders_table, s.ledger_table, s.idempotency_table) == ("orders", "ledger", "idempotency")
    assert s.paused_parameter == "/nudge/paused" and s.sms_sender_id == ""
    assert (s.ledger_ttl_days, s.dry_run, s.sms_type, s.sms_per_second, s.send_pollers) == (
        35,
        False,
        "Transactional",
        5.0,
        2,
    )
    assert [w.name for w in s.config.windows] == ["09:50-10:40", "15:00-16:50"]
    assert load_settings({**ENV, "DRY_RUN": "true", "SEND_MAX_CONCURRENCY": "3"}).send_pollers == 3


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ORDERS_TABLE", "", "ORDERS_TABLE: missing: template.yaml sets it"),
        ("SEND_QUEUE_URL", "  ", "SEND_QUEUE_URL: missing: template.yaml sets it"),
        ("DRY_RUN", "yes", "DRY_RUN: expected true or false, got 'yes'"),
        ("SMS_PER_SECOND", "fast", "SMS_PER_SECOND: not a number: 'fast'"),
        ("SMS_PER_SECOND", "0", "SMS_PER_SECOND: Input should be greater than or equal to 0.01"),
        ("LEDGER_TTL_DAYS", "3.5", "LEDGER_TTL_DAYS: not a whole number: '3.5'"),
        ("SEND_MAX_CONCURRENCY", "0", "SEND_MAX_CONCURRENCY: Input should be greater than or equal to 1"),
        ("SMS_TYPE", "Spam", "SMS_TYPE: String should match pattern"),
        ("DAILY_SMS_CAP", "lots", "DAILY_SMS_CAP: not a whole number: 'lots'"),
        ("EXTRA_CONFIG_JSON", "[1]", "EXTRA_CONFIG_JSON: must be a JSON object"),
        (
            "SMS_GATEWAY",
            "aliyun-someday",
            "SMS_GATEWAY: Input should be 'sns', 'end-user-messaging' or 'aliyun'",
        ),
        ("SMS_MAX_PRICE", "1", "SMS_MAX_PRICE: String should match pattern"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(variable, value, message):
    env = {**ENV, variable: value}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_send_app_takes_the_stacks_gateway():
    from nudge.adapters.end_user_messaging import EUM_PUBLISH_TIMEOUT, EndUserMessagingGateway
    from nudge.adapters.sns import SnsSmsGateway

    made: list[tuple[str, object]] = []

    def clients(service_name, *, config=None):
        made.append((service_name, config))
        return object()

    sns = bootstrap.build_send_app(load_settings(ENV), clients=clients)
    assert isinstance(sns.sender.sms, SnsSmsGateway) and "pinpoint-sms-voice-v2" not in dict(made)
    eum_env = {
        **ENV,
        "SMS_GATEWAY": "end-user-messaging",
        "SMS_CONFIGURATION_SET": "shop-sms",
        "SMS_ORIGINATION_IDENTITY": "pool-1",
        "SMS_MAX_PRICE": "0.05",
    }
    eum = bootstrap.build_send_app(load_settings(eum_env), clients=clients).sender
    assert isinstance(eum.sms, EndUserMessagingGateway) and eum.sms.checks_opt_out
    assert eum.publish_timeout == EUM_PUBLISH_TIMEOUT
    assert eum.sms.fixed_parameters == {  # what every SendTextMessage carries
        "MessageType": "TRANSACTIONAL",
        "ConfigurationSetName": "shop-sms",
        "OriginationIdentity": "pool-1",
        "MaxPrice": "0.05",
    }
    assert (
        dict(made)["pinpoint-sms-voice-v2"].retries["total_max_attempts"] == 1
    )  # one attempt, never retried


ALIYUN_ENV = {
    **ENV,
    "SMS_GATEWAY": "aliyun",
    "ALIYUN_SIGN_NAME": "Nudge小店",
    "ALIYUN_TEMPLATE_CODES": "1=SMS_111|SMS_112,2=SMS_222",
    "ALIYUN_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:aliyun",
    "EXTRA_CONFIG_JSON": json.dumps(
        {
            "messages": {
                "variants": {"1": [{"name": "A", "template": "{greeting} a"}, {"name": "B", "template": "b"}]}
            }
        }
    ),
}
KEYS = json.dumps({"access_key_id": "LTAI-test-key", "access_key_secret": "test-secret"})


def test_the_aliyun_gateway_is_built_from_its_secret_with_a_template_per_reminder_and_variant():
    from nudge.adapters.aliyun_sms import ALIYUN_PUBLISH_TIMEOUT, AliyunSmsGateway
    from tests.builders import outgoing

    asked: list[str] = []
    gateway, timeout = bootstrap.aliyun_gateway(
        load_settings(ALIYUN_ENV), read_secret=lambda route: asked.append(route) or KEYS
    )
    assert isinstance(gateway, AliyunSmsGateway) and timeout == ALIYUN_PUBLISH_TIMEOUT
    assert asked == ["aliyun"] and gateway.sign_name == "Nudge小店"
    assert gateway.template_codes == {1: {"A": "SMS_111", "B": "SMS_112"}, 2: "SMS_222"}
    code = lambda attempt, variant: gateway.template_code(outgoing(attempt=attempt, variant=variant))  # noqa: E731
    assert (code(1, "A"), code(1, "B"), code(2, "A"), code(2, "B"), code(2, None)) == (
        "SMS_111",
        "SMS_112",
        "SMS_222",  # reminder 2 has no variants: its one template, whatever the order's arm
        "SMS_222",
        "SMS_222",
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "the secret holds no AccessKey yet"),  # created empty by the stack
        ("not json", "the secret is not a JSON object"),
        ("[" * 100_000, "the secret is not a JSON object"),  # too deep for the JSON reader
        ('{"access_key_id": "LTAI5t"}', "the secret has no access_key_secret"),
        (
            '{"access_key_id": "...", "access_key_secret": "..."}',
            "the secret's access_key_id is still a placeholder",
        ),
        (
            '{"access_key_id": "<id>", "access_key_secret": "s"}',
            "the secret's access_key_id is still a placeholder",
        ),
    ],
)
def test_an_unusable_aliyun_secret_stops_the_cold_start_naming_it(value, problem):
    with pytest.raises(ConfigError) as caught:
        bootstrap.aliyun_gateway(load_settings(ALIYUN_ENV), read_secret=lambda route: value)
    message = str(caught.value)
    assert message.startswith(f"ALIYUN_CREDENTIALS_SECRET_ARN: {problem}") and "GATEWAYS.md" in message
    assert "LTAI5t" not in message  # never quotes the secret


def test_plain_http_only_to_a_stand_in_on_this_machine():
    from nudge.adapters.aliyun_sms import protocol_for

    assert protocol_for("127.0.0.1:8080") == protocol_for("localhost:9") == "http"
    for endpoint in ("dysmsapi.aliyuncs.com", "127.0.0.1", "127.0.0.1.evil.example:80", "localhost"):
        assert protocol_for(endpoint) == "https", endpoint


# ------------------------------------------------------------------------------------ imports

PROBE = """
import importlib.util, json, sys
import botocore.session

created = []
original = botocore.session.Session.create_client
botocore.session.Session.create_client = lambda self, *a, **k: created.append(a) or original(self, *a, **k)
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({
    "clients": len(created),
    "xray": sorted(m for m in sys.modules if m.startswith("aws_xray_sdk"))[:3],
    "app": hasattr(module, "APP"),
}))
"""


@pytest.mark.parametrize("name", HANDLERS)
def test_importing_a_handler_reads_no_setting_creates_no_client_and_loads_no_xray(name):
    # No table names, no region, no credentials: a cold import must still succeed, and build nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDERS_", "LEDGER_"))}
    env = {**env, "POWERTOOLS_TRACE_DISABLED": "true", "PYTHONPATH": str(ROOT / "layers" / "nudge")}
    for key in ENV:
        env.pop(key, None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / name / "app.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"clients": 0, "xray": [], "app": True}


def test_a_disabled_tracer_keeps_the_decorators_as_no_ops():
    tracer = bootstrap.handler_tracer({"POWERTOOLS_TRACE_DISABLED": "true"})

    def handler(event, context):
        return {"ok": event}

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(capture_response=False)(handler) is handler
    tracer.put_annotation("window", "09:50-10:40")  # no-ops, no error


def test_an_enabled_tracer_is_powertools_tracer():
    from aws_lambda_powertools import Tracer

    assert isinstance(bootstrap.handler_tracer({"POWERTOOLS_TRACE_DISABLED": "false"}), Tracer)


def test_the_app_is_built_once_on_first_use():
    builds = []
    lazy = bootstrap.Lazy(lambda: builds.append(1) or object())
    assert builds == []
    first = lazy.get()
    assert lazy.get() is first and builds == [1]
    ready = object()
    lazy.set(ready)
    assert lazy.get() is ready and builds == [1]


# --------------------------------------------------------------------- the real cold-start path


@pytest.mark.aws
def test_a_handler_builds_its_app_from_the_environment_on_first_invocation(monkeypatch):
    """What Lambda does: nothing handed in, the app built from os.environ and a default session."""
    import boto3
    import moto

    from nudge_local.moto_env import provision
    from nudge_local.pipeline import TEMPLATE, _load_handler

    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        stack = provision(TEMPLATE, session=boto3.session.Session(region_name="us-east-1"))
        for key, value in stack.function_envs["PlanFunction"].items():
            monkeypatch.setenv(key, value)
        module = _load_handler("plan", ROOT / "functions" / "plan" / "app.py")
        at = datetime(2025, 11, 24, 9, 50, tzinfo=SHANGHAI)  # long past
        before = datetime.now(UTC)
        summary = module.lambda_handler(schedule_event("09:50-10:40", at), LambdaContextStub("plan"))
        # judged by the real clock (the window closed long ago), against the stack's empty tables
        assert datetime.fromisoformat(summary["judged_at"]) >= before and summary["enqueued"] == 0
        app = module.APP.get()
        assert isinstance(app, bootstrap.PlanApp) and app.settings.ledger_table == stack.ledger_table
        assert app.clock is bootstrap.system_clock
