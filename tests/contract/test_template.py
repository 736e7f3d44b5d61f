"""template.yaml: lint-clean, translates with SAM as designed, and provisions on moto via nudge_local.moto_env."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from nudge_local.moto_env import evaluate, load_template, provision

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# The contract other code depends on (docs/RULES.md and the handlers read these exact names).
PARAMETERS = {
    "ShopName", "ShopTimezone", "Locale", "Window1", "Window2", "Window3", "CalendarCountry",
    "DailySmsCap", "LargeOrderAmount", "DryRun", "SmsSenderId", "SmsOriginationNumber", "SmsType",
    "SmsPerSecond", "ExtraConfigJson", "ExistingOrdersTableName", "LedgerTtlDays", "AlarmEmail",
    "ExistingOrdersStreamArn", "StaffEmail",  # outcomes and the staff call list
    "TracingEnabled",
}  # fmt: skip
COMMON_ENV = {
    "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL", "SHOP_NAME", "SHOP_TIMEZONE",
    "LOCALE", "WINDOWS", "CALENDAR_COUNTRY", "DAILY_SMS_CAP", "LARGE_ORDER_AMOUNT", "DRY_RUN",
    "EXTRA_CONFIG_JSON", "ORDERS_TABLE", "ORDERS_STATUS_INDEX", "LEDGER_TABLE", "LEDGER_DAY_INDEX",
    "IDEMPOTENCY_TABLE", "SEND_QUEUE_URL", "PAUSED_PARAMETER", "LEDGER_TTL_DAYS", "POWERTOOLS_TRACE_DISABLED",
}  # fmt: skip
SEND_ENV = {
    "SMS_SENDER_ID", "SMS_ORIGINATION_NUMBER", "SMS_TYPE", "SMS_PER_SECOND",
    "SMS_GATEWAY", "SMS_CONFIGURATION_SET", "SMS_ORIGINATION_IDENTITY", "SMS_MAX_PRICE",
}  # fmt: skip
OUTPUTS = {
    "OrdersTableName", "LedgerTableName", "IdempotencyTableName", "SendQueueUrl", "SendDLQUrl",
    "SchedulerDLQUrl", "PausedParameterName", "PlanFunctionName", "SendFunctionName", "AlarmTopicArn",
    "AuditFunctionName",
    "OutcomesFunctionName", "OutcomesDLQUrl", "StaffTopicArn", "DashboardName",  # outcomes, calls, dashboard
}  # fmt: skip
# Orders in (webhooks): the ingest function's parameter and outputs.
PARAMETERS |= {"IngestReservedConcurrency"}
PARAMETERS |= {"SmsGateway", "SmsOriginationIdentity", "SmsMaxPrice"}  # the SMS gateway (docs/GATEWAYS.md)
PARAMETERS |= {"AliyunSignName", "AliyunTemplateCodes", "AliyunEndpoint"}  # SmsGateway=aliyun
ALIYUN = {"SmsGateway": "aliyun", "AliyunSignName": "Nudge小店", "AliyunTemplateCodes": "1=SMS_111,2=SMS_222"}
ALIYUN_ENV = {"ALIYUN_SIGN_NAME", "ALIYUN_TEMPLATE_CODES", "ALIYUN_CREDENTIALS_SECRET_ARN"}
OUTPUTS |= {
    "AliyunPushUrls",
    "AliyunPushTokenCommand",
    "AliyunCredentialsSecretCommand",
}  # SmsGateway=aliyun: the push URLs (no token)
OUTPUTS |= {"InboundSmsTopicArn"}  # buyers' replies (End User Messaging two-way SMS)
PARAMETERS |= {"SnsDeliveryStatusLogs"}  # receipts from SNS's SMS delivery-status logs
OUTPUTS |= {"SnsDeliveryStatusLogsCommand"}
OUTPUTS |= {
    "IngestUrl", "StandardWebhooksUrl", "ShopifyWebhookUrl", "WooCommerceWebhookUrl",
    "StandardWebhooksSecretCommand", "ShopifySecretCommand", "WooCommerceSecretCommand",
}  # fmt: skip
# Actions that have no resource-level permissions: "*" is the only resource IAM takes for them.
SMS_ACTIONS = {"sns:Publish", "sns:CheckIfPhoneNumberIsOptedOut"}
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
EUM_ACTIONS = {"sms-voice:SendTextMessage"}  # checked against identities registered outside the stack
STAR_ACTIONS = SMS_ACTIONS | XRAY_ACTIONS | EUM_ACTIONS
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate()


def translate(parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation SAM deploys (samtranslator, offline: no managed-policy lookups)."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    sam = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    for resource in sam["Resources"].values():  # local code paths are uploaded by `sam deploy`
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                props[key] = "s3://bucket/key"
    with pytest.MonkeyPatch.context() as mp:  # the translator insists on a session region
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return transform(sam, {"AWS::Region": "us-east-1", **(parameters or {})}, NoManagedPolicies())


def of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in cfn["Resources"].items() if r["Type"] == kind}


def refs(node: Any) -> set[str]:
    """Every name a template expression refers to (Ref and ${Name} inside Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else value
                found |= set(re.findall(r"\$\{([A-Za-z0-9:]+)\}", text)) - set(local)
                found |= refs(local)
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return found


# ------------------------------------------------------------------------------------------- lint


def test_cfn_lint_reports_nothing():
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)
    assert not matches, "\n".join(str(m) for m in matches)


def test_contract_names(template):
    assert set(template["Parameters"]) == PARAMETERS
    assert set(template["Outputs"]) == OUTPUTS
    for name, spec in template["Parameters"].items():
        assert spec.get("Description"), f"{name} has no Description"
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert set(env) >= COMMON_ENV
    send_env = template["Resources"]["SendFunction"]["Properties"]["Environment"]["Variables"]
    assert set(send_env) >= SEND_ENV
    assert env["POWERTOOLS_SERVICE_NAME"] == "nudge" and env["POWERTOOLS_METRICS_NAMESPACE"] == "Nudge"


# ------------------------------------------------------------------------------- SAM translation


def test_one_schedule_per_window_from_the_same_parameter(template, translated):
    schedules = {
        lid: s
        for lid, s in of_type(translated, "AWS::Scheduler::Schedule").items()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["PlanFunction", "Arn"]}
    }
    windows = sorted(p for p in PARAMETERS if re.fullmatch(r"Window\d", p))
    assert len(schedules) == len(windows) == 3
    seen = {}
    for lid, schedule in schedules.items():
        props = schedule["Properties"]
        target = props["Target"]
        (window,) = refs(target["Input"]) & set(windows)
        seen[window] = lid
        # The cron and the Input come from the same parameter, and nothing else.
        assert refs(props["ScheduleExpression"]) == {window}, lid
        assert props["ScheduleExpressionTimezone"] == {"Ref": "ShopTimezone"}
        assert SCHEDULED_TIME in json.dumps(target["Input"])
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 300}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SchedulerDLQ", "Arn"]}}
        assert target["Arn"] == {"Fn::GetAtt": ["PlanFunction", "Arn"]}
        assert props["State"] == "ENABLED"
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert "AWS::StackName" in refs(props["Name"])
        # Evaluated like CloudFormation would: the Input carries the window text verbatim.
        value = "19:05-21:00"
        data = json.loads(evaluate(template, target["Input"], parameters={window: value}))
        assert data == {"window": value, "scheduled_time": SCHEDULED_TIME}
        assert (
            evaluate(template, props["ScheduleExpression"], parameters={window: value})
            == "cron(5 19 * * ? *)"
        )
    assert set(seen) == set(windows)
    assert schedules[seen["Window3"]].get("Condition") == "HasWindow3"
    assert "Condition" not in schedules[seen["Window1"]] and "Condition" not in schedules[seen["Window2"]]
    names = {json.dumps(s["Properties"]["Name"]) for s in schedules.values()}
    assert len(names) == 3


@pytest.mark.parametrize(
    ("window", "cron"),
    [
        ("09:50-10:40", "cron(50 9 * * ? *)"),
        ("09:50-10:40@11:00", "cron(50 9 * * ? *)"),  # the shipping cut-off does not move the schedule
        ("15:00-16:50", "cron(0 15 * * ? *)"),
        ("00:00-01:00", "cron(0 0 * * ? *)"),
        ("00:05-00:30", "cron(5 0 * * ? *)"),
        ("10:10-11:00", "cron(10 10 * * ? *)"),
        ("20:30-21:00", "cron(30 20 * * ? *)"),
        ("23:59-23:59", "cron(59 23 * * ? *)"),
    ],
)
def test_cron_is_built_from_the_window_start_without_leading_zeros(template, window, cron):
    expr = template["Resources"]["PlanFunction"]["Properties"]["Events"]["Window1"]["Properties"]
    assert evaluate(template, expr["ScheduleExpression"], parameters={"Window1": window}) == cron


def test_windows_env_is_the_same_parameter_values(template):
    windows = template["Globals"]["Function"]["Environment"]["Variables"]["WINDOWS"]
    assert evaluate(template, windows) == "09:50-10:40@11:00,15:00-16:50@17:00"
    three = {"Window1": "09:30-11:00", "Window2": "14:30-17:00", "Window3": "19:00-21:00"}
    assert evaluate(template, windows, parameters=three) == "09:30-11:00,14:30-17:00,19:00-21:00"


def test_window_parameters_refuse_bad_text(template):
    with pytest.raises(ValueError, match="Window1"):
        evaluate(template, {"Ref": "Window1"}, parameters={"Window1": "9:50-10:40"})
    with pytest.raises(ValueError, match="Window3"):
        evaluate(template, {"Ref": "Window3"}, parameters={"Window3": "19:00"})


def test_plan_is_not_retried_by_lambda(translated):
    configs = of_type(translated, "AWS::Lambda::EventInvokeConfig")
    (config,) = [c for c in configs.values() if c["Properties"]["FunctionName"] == {"Ref": "PlanFunction"}]
    assert config["Properties"]["MaximumRetryAttempts"] == 0


def test_send_function_consumes_the_queue_with_partial_batch_failures(template, translated):
    (mapping,) = [  # the outcomes function has its own (tests/test_outcomes_template.py)
        m
        for m in of_type(translated, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": "SendFunction"}
    ]
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": "SendFunction"}
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["SendQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == 10 and props["MaximumBatchingWindowInSeconds"] == 1
    assert str(evaluate(template, props["ScalingConfig"]["MaximumConcurrency"])) == "2"
    send = translated["Resources"]["SendFunction"]["Properties"]
    assert "ReservedConcurrentExecutions" not in send
    visibility = int(translated["Resources"]["SendQueue"]["Properties"]["VisibilityTimeout"])
    assert visibility >= 6 * int(send["Timeout"])


def test_functions_share_globals(translated):
    for name, timeout in (("PlanFunction", 300), ("SendFunction", 60)):
        props = translated["Resources"][name]["Properties"]
        assert props["Runtime"] == "python3.12" and props["Architectures"] == ["x86_64"]
        assert props["MemorySize"] == 512
        # X-Ray off unless the operator turns it on: the code's tracer follows the same switch.
        assert props["TracingConfig"] == {"Mode": {"Fn::If": ["TracingOn", "Active", "PassThrough"]}}
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingOn", "false", "true"]}
        assert props["Handler"] == "app.lambda_handler" and props["Timeout"] == timeout
        # The send function's second entry is the Alibaba Cloud SDK, with SmsGateway=aliyun only.
        layer, *conditional = props["Layers"]
        assert [c["Fn::If"][0] for c in conditional] == (["UseAliyun"] if name == "SendFunction" else [])
        assert translated["Resources"][layer["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"
        assert set(props["Environment"]["Variables"]) >= COMMON_ENV
    assert set(translated["Resources"]["SendFunction"]["Properties"]["Environment"]["Variables"]) >= SEND_ENV


def _branches(statement: dict[str, Any]):
    """A statement, or each real branch of an ``Fn::If`` one (every case a stack can deploy)."""
    if "Fn::If" in statement:
        for branch in statement["Fn::If"][1:]:
            if branch != {"Ref": "AWS::NoValue"}:
                yield branch
    else:
        yield statement


def iam_statements(cfn: dict[str, Any]):
    for lid, role in of_type(cfn, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for conditional in policy["PolicyDocument"]["Statement"]:
                for statement in _branches(conditional):
                    yield lid, statement
    for lid, policy in of_type(cfn, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield lid, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_least_privilege(translated):
    statements = list(iam_statements(translated))
    assert statements
    for lid, statement in statements:
        actions = set(as_list(statement["Action"]))
        if "dynamodb:Scan" in actions:  # the daily audit only, on the orders table, never an index
            assert lid == "AuditFunctionRole" and actions == {"dynamodb:Scan"}, lid
            assert "index" not in json.dumps(statement["Resource"])
        assert not any(a.endswith("*") for a in actions), (lid, actions)
        if "*" in as_list(statement.get("Resource")) and statement["Effect"] == "Allow":
            assert actions <= STAR_ACTIONS, (lid, statement)
    star = [(lid, s) for lid, s in statements if "*" in as_list(s.get("Resource"))]
    assert {lid for lid, _ in star} == {"SendFunctionRole"}
    assert sorted(sorted(as_list(s["Action"])) for _, s in star) == sorted(
        sorted(actions) for actions in (SMS_ACTIONS, XRAY_ACTIONS, EUM_ACTIONS)
    )
    plan_actions = {a for lid, s in statements if lid == "PlanFunctionRole" for a in as_list(s["Action"])}
    assert {"dynamodb:Query", "sqs:SendMessage", "ssm:GetParameter", "dynamodb:BatchGetItem"} <= plan_actions
    # The plan publishes only the staff call digest, to its own topic.
    plan_sns = [s for lid, s in statements if lid == "PlanFunctionRole" and "sns:" in json.dumps(s["Action"])]
    assert [(s["Action"], s["Resource"]) for s in plan_sns] == [("sns:Publish", {"Ref": "StaffTopic"})]
    assert "dynamodb:Scan" not in plan_actions


def test_the_send_role_is_its_own_and_as_narrow_as_aws_allows(translated):
    res = translated["Resources"]
    send = res["SendFunction"]["Properties"]
    assert send["Role"] == {"Fn::GetAtt": ["SendFunctionRole", "Arn"]}
    role = res["SendFunctionRole"]["Properties"]
    # No managed policy: SAM's AWSLambdaSQSQueueExecutionRole grants SQS on every queue ("*"),
    # AWSLambdaBasicExecutionRole every log group.
    assert "ManagedPolicyArns" not in role and "SendFunctionRolePolicy" not in res
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    statements = [s for lid, s in iam_statements(translated) if lid == "SendFunctionRole"]
    by_action: dict[str, list[dict]] = {}
    for statement in statements:
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).append(statement)
    sqs = {a for a in by_action if a.startswith("sqs:")}
    assert sqs == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    for action in sqs:
        assert [s["Resource"] for s in by_action[action]] == [{"Fn::GetAtt": ["SendQueue", "Arn"]}]
    # sns:Publish: allowed on "*" (an SMS has no ARN), denied on every SNS ARN (topics, endpoints).
    publish = {s["Effect"]: s["Resource"] for s in by_action["sns:Publish"]}
    assert publish == {"Allow": "*", "Deny": {"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}}
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert as_list(deny["Action"]) == ["sns:Publish"]
    logs = {a for a in by_action if a.startswith("logs:")}
    assert logs == {"logs:CreateLogStream", "logs:PutLogEvents"}
    for action in logs:  # its own log group only (LoggingConfig), never logs:CreateLogGroup
        assert [s["Resource"] for s in by_action[action]] == [{"Fn::GetAtt": ["SendLogGroup", "Arn"]}]
    assert send["LoggingConfig"] == {"LogGroup": {"Ref": "SendLogGroup"}}
    assert {a for a in by_action if a.startswith("xray:")} == XRAY_ACTIONS  # Tracing: Active
    # secretsmanager:GetSecretValue: Alibaba Cloud's AccessKey (SmsGateway=aliyun only).
    assert set(by_action) == sqs | logs | XRAY_ACTIONS | SMS_ACTIONS | EUM_ACTIONS | {
        "secretsmanager:GetSecretValue",
        "dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem",
        "ssm:GetParameter",
    }  # fmt: skip


def test_personal_data_expires(template, translated):
    res = translated["Resources"]
    orders = res["OrdersTable"]["Properties"]
    assert orders["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    dlq = int(res["SendDLQ"]["Properties"]["MessageRetentionPeriod"])
    queue = int(res["SendQueue"]["Properties"]["MessageRetentionPeriod"])
    # Dead letters hold phone numbers and texts: days, not SQS's 14-day maximum; but above the
    # queue's own retention, since a dead letter's age counts from its first enqueue.
    assert queue < dlq <= 4 * 86400
    env = json.dumps(template["Globals"]) + json.dumps(template["Resources"])
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in env  # it would log every SQS body: phones and texts
    for name in ("plan", "send", "audit", "outcomes", "ingest"):
        code = (ROOT / "functions" / name / "app.py").read_text(encoding="utf-8")
        assert "inject_lambda_context(clear_state=True, log_event=False)" in code, name
    # The operator is told both: never log events whole, and how orders expire.
    assert "POWERTOOLS_LOGGER_LOG_EVENT" in (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    assert "expires_at" in (ROOT / "docs" / "RULES.md").read_text(encoding="utf-8")


def test_the_audit_runs_daily_at_a_quiet_hour_in_the_shop_zone(template, translated):
    schedules = of_type(translated, "AWS::Scheduler::Schedule")
    (audit,) = [
        s["Properties"]
        for s in schedules.values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["AuditFunction", "Arn"]}
    ]
    assert audit["ScheduleExpression"] == "cron(30 3 * * ? *)"
    assert audit["ScheduleExpressionTimezone"] == {"Ref": "ShopTimezone"}
    assert audit["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SchedulerDLQ", "Arn"]}}
    # 03:30 is inside no default window, so the Scan never competes with a plan's Query.
    windows = evaluate(template, template["Globals"]["Function"]["Environment"]["Variables"]["WINDOWS"])
    for window in windows.split(","):
        start, end = window.split("@")[0].split("-")
        assert not start <= "03:30" < end
    props = translated["Resources"]["AuditFunction"]["Properties"]
    assert props["Timeout"] == 900 and props["Handler"] == "app.lambda_handler"


def test_tables_and_indexes(template, translated):
    res = translated["Resources"]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    orders, ledger = res["OrdersTable"], res["LedgerTable"]["Properties"]
    assert orders["Condition"] == "CreateOrdersTable"
    (orders_gsi,) = orders["Properties"]["GlobalSecondaryIndexes"]
    assert orders_gsi["IndexName"] == env["ORDERS_STATUS_INDEX"] == "status-created_at"
    assert [k["AttributeName"] for k in orders_gsi["KeySchema"]] == ["status", "created_at"]
    assert orders["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    ledger_gsi = ledger["GlobalSecondaryIndexes"][0]  # [1]: held-out orders (outcomes)
    assert ledger_gsi["IndexName"] == env["LEDGER_DAY_INDEX"] == "sent_day-last_sent_at"
    assert [k["AttributeName"] for k in ledger_gsi["KeySchema"]] == ["sent_day", "last_sent_at"]
    assert ledger["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    idem = res["IdempotencyTable"]["Properties"]
    assert idem["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert idem["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_alarms(translated):
    alarms = of_type(translated, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 13
    # The custom-metric alarms watch metrics the handlers really emit (Powertools, namespace Nudge).
    custom = {
        a["Properties"]["MetricName"] for a in alarms.values() if a["Properties"].get("Namespace") == "Nudge"
    }
    assert custom == {
        "DailyLimitSkipped",
        "SendUnconfirmed",
        "InvalidOrders",
        "Send_rejected",
        "Webhook_error",
        "DeliveryUnknownUnfinished",
    }
    handlers = "".join(
        (ROOT / "functions" / f / "app.py").read_text(encoding="utf-8")
        for f in ("plan", "send", "audit", "ingest", "receipts")
    )
    from nudge.services.sending import SendOutcome

    for metric in custom:
        if metric.startswith("Send_"):  # the send handler's name=f"Send_{outcome}", one per SendOutcome
            assert 'name=f"Send_{outcome}"' in handlers and metric.removeprefix("Send_") in set(SendOutcome)
        else:
            assert f'name="{metric}"' in handlers, metric
    for lid, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["TreatMissingData"] == "notBreaching", lid
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], lid
        assert props["Threshold"] == 0 and props["ComparisonOperator"] == "GreaterThanThreshold", lid
    (cap,) = [
        a["Properties"] for a in alarms.values() if a["Properties"]["MetricName"] == "DailyLimitSkipped"
    ]
    assert cap["Namespace"] == "Nudge" and cap["Dimensions"] == [{"Name": "service", "Value": "nudge"}]
    assert cap["Statistic"] == "Sum"
    watched = {json.dumps(a["Properties"]["Dimensions"][0]["Value"]) for a in alarms.values()}
    for target in (
        "SendDLQ",
        "SchedulerDLQ",
        "PlanFunction",
        "SendFunction",
        "AuditFunction",
        "OutcomesDLQ",
        "IngestFunction",  # the webhooks: a failure there makes a platform retry or disable the webhook
    ):
        assert any(target in w for w in watched), target
    assert translated["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    # The daily unknown-after-72-h run stopped before the end: only where that run exists.
    unfinished = translated["Resources"]["DeliveryUnknownUnfinishedAlarm"]
    assert (
        unfinished["Condition"] == translated["Resources"]["ReceiptsFunction"]["Condition"] == "HasReceipts"
    )
    assert unfinished["Properties"]["Dimensions"] == [{"Name": "service", "Value": "nudge"}]
    assert unfinished["Properties"]["Period"] == 86400  # one run a day


def test_the_receipts_function_has_time_for_its_daily_run(translated):
    from nudge.services.receipt_deadline import RUN_MARGIN

    timeout = translated["Resources"]["ReceiptsFunction"]["Properties"]["Timeout"]
    assert timeout >= 300 and timeout > 10 * RUN_MARGIN  # the margin is a small part of the run


# ------------------------------------------------------------------------------------------- moto


@pytest.fixture
def aws(monkeypatch):
    import moto

    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def test_provision_builds_the_stack_from_the_template(aws):
    stack = provision(TEMPLATE, session=aws)
    ddb, sqs, ssm = aws.client("dynamodb"), aws.client("sqs"), aws.client("ssm")

    orders = ddb.describe_table(TableName=stack.orders_table)["Table"]
    assert [i["IndexName"] for i in orders["GlobalSecondaryIndexes"]] == ["status-created_at"]
    assert orders["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ledger = ddb.describe_table(TableName=stack.ledger_table)["Table"]
    assert [i["IndexName"] for i in ledger["GlobalSecondaryIndexes"]] == [
        "sent_day-last_sent_at",
        "held_out_day-held_out_at",
    ]
    ttl = ddb.describe_time_to_live(TableName=stack.ledger_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    ttl = ddb.describe_time_to_live(TableName=stack.idempotency_table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiration"

    attrs = sqs.get_queue_attributes(QueueUrl=stack.send_queue_url, AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=stack.send_dlq_url, AttributeNames=["QueueArn"])
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 5}
    assert int(attrs["VisibilityTimeout"]) >= 360
    assert stack.scheduler_dlq_url and stack.scheduler_dlq_url in sqs.list_queues()["QueueUrls"]
    assert ssm.get_parameter(Name=stack.paused_parameter)["Parameter"]["Value"] == "false"

    env = stack.env
    assert set(env) >= COMMON_ENV | SEND_ENV
    assert all(isinstance(v, str) for v in env.values())
    assert not [k for k, v in env.items() if "Fn::" in v or "${" in v or "Ref" in v]
    assert env["ORDERS_TABLE"] == stack.orders_table and env["LEDGER_TABLE"] == stack.ledger_table
    assert env["IDEMPOTENCY_TABLE"] == stack.idempotency_table
    assert env["SEND_QUEUE_URL"] == stack.send_queue_url
    assert env["PAUSED_PARAMETER"] == stack.paused_parameter == "/nudge-local/paused"
    assert env["WINDOWS"] == "09:50-10:40@11:00,15:00-16:50@17:00"
    assert env["DAILY_SMS_CAP"] == "500" and env["LEDGER_TTL_DAYS"] == "35" and env["DRY_RUN"] == "false"
    assert env["LARGE_ORDER_AMOUNT"] == "1000" and env["EXTRA_CONFIG_JSON"] == "{}"
    assert set(stack.function_envs["PlanFunction"]) == COMMON_ENV | {"STAFF_TOPIC_ARN"}
    assert set(stack.function_envs["SendFunction"]) >= SEND_ENV


def test_provision_with_an_existing_orders_table_and_a_third_window(aws):
    parameters = {
        "ExistingOrdersTableName": "shop-orders",
        "Window3": "19:00-21:00",
        "DryRun": "true",
        "LargeOrderAmount": "",
    }
    stack = provision(TEMPLATE, stack_name="shop", parameters=parameters, session=aws)
    assert "OrdersTable" not in stack.tables
    assert stack.orders_table == stack.env["ORDERS_TABLE"] == "shop-orders"
    assert "shop-orders" not in aws.client("dynamodb").list_tables()["TableNames"]
    assert stack.env["WINDOWS"] == "09:50-10:40@11:00,15:00-16:50@17:00,19:00-21:00"
    assert stack.env["DRY_RUN"] == "true" and stack.env["LARGE_ORDER_AMOUNT"] == ""
    assert stack.ledger_table == "shop-LedgerTable"


def test_provision_refuses_bad_parameters(aws):
    with pytest.raises(ValueError, match="DryRun"):
        provision(TEMPLATE, parameters={"DryRun": "yes"}, session=aws)
    with pytest.raises(ValueError, match="unknown"):
        provision(TEMPLATE, parameters={"Windows": "09:00-10:00"}, session=aws)


def test_template_is_not_mutated_by_evaluation(template):
    before = copy.deepcopy(template)
    events = template["Resources"]["PlanFunction"]["Properties"]["Events"]
    expr = events["Window1"]["Properties"]["ScheduleExpression"]
    assert evaluate(template, expr, parameters={"Window1": "08:00-09:00"}) == "cron(0 8 * * ? *)"
    assert template == before
    with pytest.raises(ValueError, match="SchedulerRole"):
        evaluate(template, events)


# ------------------------------------------------------------------------------ the SMS gateway


def test_end_user_messaging_is_a_parameter_away_and_sns_stays_the_default(template):
    params = template["Parameters"]["SmsGateway"]
    assert params["Default"] == "sns" and params["AllowedValues"] == ["sns", "end-user-messaging", "aliyun"]
    env = template["Resources"]["SendFunction"]["Properties"]["Environment"]["Variables"]
    assert evaluate(template, env["SMS_GATEWAY"]) == "sns"
    assert evaluate(template, env["SMS_CONFIGURATION_SET"]) == ""  # no configuration set with SNS
    assert template["Resources"]["SmsConfigurationSet"]["Condition"] == "UseEndUserMessaging"
    eum = {"SmsGateway": "end-user-messaging"}
    assert evaluate(template, env["SMS_GATEWAY"], parameters=eum) == "end-user-messaging"
    created = {"SmsConfigurationSet": {"Ref": "nudge-local-sms"}}
    assert (
        evaluate(template, env["SMS_CONFIGURATION_SET"], parameters=eum, physical=created)
        == "nudge-local-sms"
    )


def test_the_send_role_may_send_text_messages_only_with_end_user_messaging(translated):
    policy = translated["Resources"]["SendFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (conditional,) = [s for s in policy["Statement"] if s.get("Fn::If", [""])[0] == "UseEndUserMessaging"]
    _, statement, otherwise = conditional["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "sms-voice:SendTextMessage" and statement["Effect"] == "Allow"


def test_bad_gateway_parameters_are_refused(template):
    for name, value in (("SmsGateway", "aliyun-someday"), ("SmsMaxPrice", "1"), ("SmsMaxPrice", "abc")):
        with pytest.raises(ValueError, match=name):
            evaluate(template, {"Ref": name}, parameters={name: value})


def test_parameters_that_only_work_together_are_refused_at_deploy(template, translated):
    """CloudFormation's Rules (kept by SAM's transform) refuse these before creating anything; the
    local stack checks the same rules (nudge_local.moto_env.resolve_parameters)."""
    assert translated["Rules"] == template["Rules"]
    refused = (
        ({"SmsGateway": "aliyun", "AliyunTemplateCodes": "1=SMS_1,2=SMS_2"}, "AliyunSignName"),
        ({"SmsGateway": "aliyun", "AliyunSignName": "Nudge小店"}, "AliyunTemplateCodes"),
        ({"SmsGateway": "end-user-messaging", "SnsDeliveryStatusLogs": "100"}, "SnsDeliveryStatusLogs"),
        ({"SmsGateway": "aliyun", **ALIYUN, "SnsDeliveryStatusLogs": "0"}, "SnsDeliveryStatusLogs"),
    )
    for parameters, named in refused:
        with pytest.raises(ValueError, match=f"rule .*{named}"):
            evaluate(template, {"Ref": "SmsGateway"}, parameters=parameters)
    for fine in ({}, ALIYUN, {"SnsDeliveryStatusLogs": "100"}, {"SmsGateway": "end-user-messaging"}):
        evaluate(template, {"Ref": "SmsGateway"}, parameters=fine)


def test_the_receipts_function_hears_end_user_messaging_delivery_events_only(template, translated):
    receipts = template["Resources"]["ReceiptsFunction"]
    assert receipts["Condition"] == "HasReceipts"  # End User Messaging, SNS with delivery logs, aliyun
    assert template["Conditions"]["HasReceipts"] == {
        "Fn::Or": [{"Condition": c} for c in ("UseEndUserMessaging", "UseSnsDeliveryLogs", "UseAliyun")]
    }
    # Its only SAM event is the daily run; each delivery source has its own condition.
    assert set(receipts["Properties"]["Events"]) == {"UnknownAfter72h"}
    assert template["Resources"]["ReceiptsFunctionDelivery"]["Properties"]["EventPattern"] == {
        "source": ["aws.sms-voice"],
        "detail-type": ["Text Message Delivery Status Updated"],
    }
    statements = [s for lid, s in iam_statements(translated) if lid == "ReceiptsFunctionRole"]
    actions = {a for s in statements for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
    # its SMS's ledger item, and the day index for the daily unknown-after-72-h run: nothing else
    assert actions == {"dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query"}
    (query,) = [s for s in statements if "dynamodb:Query" in as_list(s["Action"])]
    assert as_list(query["Action"]) == ["dynamodb:Query"]
    assert query["Resource"] == {
        "Fn::Sub": "${LedgerTable.Arn}/index/sent_day-last_sent_at"
    }  # that index only
    daily = receipts["Properties"]["Events"]["UnknownAfter72h"]["Properties"]
    assert daily["ScheduleExpression"] == "cron(10 4 * * ? *)" and daily["RoleArn"] == {
        "Fn::GetAtt": ["SchedulerRole", "Arn"]
    }
    (rule,) = [
        r for r in of_type(translated, "AWS::Events::Rule").values() if "aws.sms-voice" in json.dumps(r)
    ]
    assert rule["Condition"] == "UseEndUserMessaging"


def test_replies_reach_the_replies_function_from_end_user_messaging_only(template, translated):
    res = template["Resources"]
    for lid in ("InboundSmsTopic", "InboundSmsTopicPolicy", "RepliesFunction"):
        assert res[lid]["Condition"] == "UseEndUserMessaging", lid
    (statement,) = res["InboundSmsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sms-voice.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = [s for lid, s in iam_statements(translated) if lid == "RepliesFunctionRole"]
    granted = {
        (a, json.dumps(s["Resource"]))
        for s in statements
        for a in as_list(s["Action"])
        if ":" in a and not a.startswith(("logs:", "xray:"))
    }
    assert granted == {
        ("dynamodb:UpdateItem", json.dumps({"Fn::GetAtt": ["LedgerTable", "Arn"]})),
        ("sns:Publish", json.dumps({"Ref": "StaffTopic"})),
    }


def test_sns_delivery_logs_are_off_by_default_and_on_only_with_sns(template):
    spec = template["Parameters"]["SnsDeliveryStatusLogs"]
    assert spec["Default"] == "off"
    env = template["Resources"]["SendFunction"]["Properties"]["Environment"]["Variables"]
    receipts_env = template["Resources"]["ReceiptsFunction"]["Properties"]["Environment"]["Variables"]
    on = {"SnsDeliveryStatusLogs": "25"}
    for variables in (env, receipts_env):
        assert evaluate(template, variables["SNS_DELIVERY_LOGS"]) == "false"
        assert evaluate(template, variables["SNS_DELIVERY_LOGS"], parameters=on) == "true"
        eum_on = {**on, "SmsGateway": "end-user-messaging"}  # its own receipts: refused at deploy
        with pytest.raises(ValueError, match="rule SnsDeliveryLogsNeedSns"):
            evaluate(template, variables["SNS_DELIVERY_LOGS"], parameters=eum_on)
    for value in ("on", "101", "-1", "50%"):
        with pytest.raises(ValueError, match="SnsDeliveryStatusLogs"):
            evaluate(template, {"Ref": "SnsDeliveryStatusLogs"}, parameters={"SnsDeliveryStatusLogs": value})


def test_sns_delivery_logs_stack_pieces(template, translated):
    res = translated["Resources"]
    pieces = {
        "SnsSmsDeliveryLogGroup", "SnsSmsFailureLogGroup", "SnsDeliveryLogsRole",
        "SnsSmsDeliveryLogsPermission", "SnsSmsFailureLogsPermission",
        "SnsSmsDeliveryLogsSubscription", "SnsSmsFailureLogsSubscription",
    }  # fmt: skip
    for lid in pieces:
        assert res[lid]["Condition"] == "UseSnsDeliveryLogs", lid
    assert template["Outputs"]["SnsDeliveryStatusLogsCommand"]["Condition"] == "UseSnsDeliveryLogs"
    names = {
        lid: res[lid]["Properties"]["LogGroupName"]["Fn::Sub"]
        for lid in ("SnsSmsDeliveryLogGroup", "SnsSmsFailureLogGroup")
    }
    assert names == {  # the names SNS writes to: fixed by SNS
        "SnsSmsDeliveryLogGroup": "sns/${AWS::Region}/${AWS::AccountId}/DirectPublishToPhoneNumber",
        "SnsSmsFailureLogGroup": "sns/${AWS::Region}/${AWS::AccountId}/DirectPublishToPhoneNumber/Failure",
    }
    for lid in names:  # phone numbers: kept no longer than SNS takes to report
        assert res[lid]["Properties"]["RetentionInDays"] <= 3
    for group, kind in (("SnsSmsDeliveryLogGroup", "Delivery"), ("SnsSmsFailureLogGroup", "Failure")):
        permission = res[f"SnsSms{kind}LogsPermission"]["Properties"]
        assert permission["Principal"] == "logs.amazonaws.com"
        assert permission["SourceArn"] == {"Fn::GetAtt": [group, "Arn"]}  # that log group only
        subscription = res[f"SnsSms{kind}LogsSubscription"]
        assert subscription["Properties"]["DestinationArn"] == {"Fn::GetAtt": ["ReceiptsFunction", "Arn"]}
        assert subscription["Properties"]["LogGroupName"] == {"Ref": group}
        assert subscription["DependsOn"] == f"SnsSms{kind}LogsPermission"
    role = res["SnsDeliveryLogsRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sns.amazonaws.com"}
    (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert statement["Resource"] == [{"Fn::GetAtt": [g, "Arn"]} for g in names]  # never "*"
    command = template["Outputs"]["SnsDeliveryStatusLogsCommand"]["Value"]
    assert "aws sns set-sms-attributes" in str(command) and "DeliveryStatusSuccessSamplingRate" in str(
        command
    )


def test_the_template_translates_with_sns_delivery_logs_on():
    cfn = translate({"SnsDeliveryStatusLogs": "100", "SmsGateway": "sns"})
    assert cfn["Resources"]["ReceiptsFunction"]["Condition"] == "HasReceipts"
    assert of_type(cfn, "AWS::Logs::SubscriptionFilter").keys() == {
        "SnsSmsDeliveryLogsSubscription",
        "SnsSmsFailureLogsSubscription",
    }


# ------------------------------------------------------------------- SmsGateway=aliyun


def test_cfn_lint_reports_nothing_with_each_gateway():
    from cfnlint.api import ManualArgs, lint_file

    for parameters in ({"SmsGateway": "end-user-messaging"}, ALIYUN):
        matches = lint_file(TEMPLATE, config=ManualArgs(parameters=[parameters]))
        assert not matches, (parameters, "\n".join(str(m) for m in matches))


def test_aliyun_is_a_parameter_away_and_the_default_stack_is_unchanged(template):
    assert template["Conditions"]["UseAliyun"] == {"Fn::Equals": [{"Ref": "SmsGateway"}, "aliyun"]}
    res = template["Resources"]
    for lid in ("AliyunLayer", "AliyunCredentialsSecret"):
        assert res[lid]["Condition"] == "UseAliyun", lid
    # The secret is created empty: the shop puts its AccessKey in it, never in a parameter.
    assert "SecretString" not in res["AliyunCredentialsSecret"]["Properties"]
    assert "GenerateSecretString" not in res["AliyunCredentialsSecret"]["Properties"]
    layer = res["AliyunLayer"]
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/aliyun"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    plan_env = res["PlanFunction"]["Properties"]["Environment"]["Variables"]
    send_env = res["SendFunction"]["Properties"]["Environment"]["Variables"]
    secret = {"AliyunCredentialsSecret": {"Ref": "arn:aws:secretsmanager:us-east-1:1:secret:aliyun"}}
    # The default stack: none of these variables (the plan's environment is as it was).
    for env, names in (
        (plan_env, ALIYUN_ENV | {"SMS_GATEWAY"}),
        (send_env, ALIYUN_ENV | {"ALIYUN_ENDPOINT"}),
    ):
        for name in names:
            assert env[name]["Fn::If"][0] == "UseAliyun" and env[name]["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    resolved = {n: evaluate(template, plan_env[n], parameters=ALIYUN, physical=secret) for n in ALIYUN_ENV}
    assert resolved == {
        "ALIYUN_SIGN_NAME": "Nudge小店",
        "ALIYUN_TEMPLATE_CODES": "1=SMS_111,2=SMS_222",
        "ALIYUN_CREDENTIALS_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:aliyun",
    }
    assert evaluate(template, send_env["ALIYUN_ENDPOINT"], parameters=ALIYUN) == "dysmsapi.aliyuncs.com"


def test_the_sdk_layer_is_the_send_functions_and_only_with_aliyun(translated):
    res = translated["Resources"]
    layers = res["SendFunction"]["Properties"]["Layers"]
    assert layers[0]["Ref"].startswith("NudgeLayer")
    condition, aliyun, otherwise = layers[1]["Fn::If"]
    assert condition == "UseAliyun" and aliyun["Ref"].startswith("AliyunLayer")
    assert otherwise == {"Ref": "AWS::NoValue"}
    for lid, spec in of_type(translated, "AWS::Lambda::Function").items():
        if lid != "SendFunction":
            assert "AliyunLayer" not in json.dumps(spec["Properties"].get("Layers")), lid


def test_the_send_role_reads_the_aliyun_secret_only_with_aliyun(translated):
    policy = translated["Resources"]["SendFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (conditional,) = [s for s in policy["Statement"] if s.get("Fn::If", [""])[0] == "UseAliyun"]
    _, statement, otherwise = conditional["Fn::If"]
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "secretsmanager:GetSecretValue" and statement["Effect"] == "Allow"
    assert statement["Resource"] == {"Ref": "AliyunCredentialsSecret"}  # this secret, nothing else
    readers = [
        lid
        for lid, s in iam_statements(translated)
        if "AliyunCredentialsSecret" in json.dumps(s.get("Resource"))
    ]
    assert readers == ["SendFunctionRole"]


def test_provision_with_aliyun_and_without(aws):
    default = provision(TEMPLATE, session=aws)
    assert "AliyunCredentialsSecret" not in default.secrets
    for function in ("PlanFunction", "SendFunction"):
        assert not set(default.function_envs[function]) & (ALIYUN_ENV | {"ALIYUN_ENDPOINT"}), function
    assert "SMS_GATEWAY" not in default.function_envs["PlanFunction"]  # the plan's env as before

    stack = provision(TEMPLATE, stack_name="cn", parameters=ALIYUN, session=aws)
    arn = stack.secrets["AliyunCredentialsSecret"]
    for function in ("PlanFunction", "SendFunction"):
        env = stack.function_envs[function]
        assert env["SMS_GATEWAY"] == "aliyun" and env["ALIYUN_CREDENTIALS_SECRET_ARN"] == arn, function
        assert env["ALIYUN_TEMPLATE_CODES"] == "1=SMS_111,2=SMS_222"
    # Created without a value, as on AWS: reading it says so.
    with pytest.raises(aws.client("secretsmanager").exceptions.ResourceNotFoundException):
        aws.client("secretsmanager").get_secret_value(SecretId=arn)
