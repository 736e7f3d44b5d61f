"""Local AWS resources built from ``template.yaml`` itself, for tests and ``nudge demo`` on moto.

The tables, queues and the pause parameter are created straight from the template's resource
``Properties``, and the functions' environment is resolved from the template's ``Globals`` and
function ``Environment``, so the local stack cannot drift from what SAM deploys::

    with moto.mock_aws():
        stack = provision("template.yaml")
        os.environ.update(stack.env)

Only the intrinsics these resources use are resolved (Ref, Sub, GetAtt, Join, Select, Split, If,
Equals, Not, And, Or, Condition, FindInMap). Nothing here imports moto: the caller starts the mock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["StackResources", "evaluate", "function_env", "load_template", "provision", "resolve_parameters"]

# ------------------------------------------------------------------------------------------ loading


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that reads CloudFormation's short tags (``!Ref X`` -> ``{"Ref": "X"}``)."""


def _construct_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"!{tag_suffix}: unexpected node", node.start_mark
        )
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM YAML template (short tags become their long JSON form)."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_CfnLoader)
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return data


# ---------------------------------------------------------------------------------------- resolving

_NO_VALUE = object()  # AWS::NoValue: the property or list item is dropped


class _Unresolved(LookupError):
    """A reference to a resource that is not created (yet)."""


def resolve_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Each template parameter's value: its override, else its Default; checked like CloudFormation does.

    Raises ValueError for an unknown parameter, a missing value, or one that breaks its
    AllowedValues / AllowedPattern / MinValue / MaxValue / MinLength / MaxLength.
    """
    declared: Mapping[str, Any] = template.get("Parameters") or {}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ValueError(f"unknown template parameter(s): {', '.join(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise ValueError(f"parameter {name} has no Default and no value was given")
        value = _to_str(raw)
        _check_parameter(name, spec, value)
        values[name] = value
    _check_rules(template, values)
    return values


def _check_rules(template: Mapping[str, Any], values: dict[str, str]) -> None:
    """The template's Rules, as CloudFormation checks them before creating anything: each rule
    whose RuleCondition holds (or that has none) must have every Assert true. Raises ValueError
    with the first failed AssertDescription."""
    resolver = _Resolver(template, values, "nudge-local", "us-east-1", "123456789012")
    for name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not resolver.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not resolver.resolve(assertion["Assert"]):
                raise ValueError(f"rule {name}: {assertion.get('AssertDescription', 'failed')}")


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [_to_str(v) for v in allowed]:
        raise ValueError(f"parameter {name}={value!r}: not one of {allowed}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise ValueError(f"parameter {name}={value!r}: does not match {pattern}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise ValueError(f"parameter {name}={value!r}: shorter than {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise ValueError(f"parameter {name}={value!r}: longer than {spec['MaxLength']}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"parameter {name}={value!r}: not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise ValueError(f"parameter {name}={value!r}: below {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise ValueError(f"parameter {name}={value!r}: above {spec['MaxValue']}")


@dataclass
class _Resolver:
    template: Mapping[str, Any]
    parameters: dict[str, str]
    stack_name: str
    region: str
    account_id: str
    # logical id -> {"Ref": physical id, "Arn": ..., other GetAtt attributes}
    physical: dict[str, dict[str, str]] = field(default_factory=dict)
    _conditions: dict[str, bool] = field(default_factory=dict)

    @property
    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
        }

    # -- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise ValueError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def is_active(self, logical_id: str) -> bool:
        cond = (self.template["Resources"].get(logical_id) or {}).get("Condition")
        return cond is None or self.condition(cond)

    # -- references
    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        if name in self.template["Resources"]:
            raise _Unresolved(name)
        raise ValueError(f"Ref to unknown name {name}")

    def get_att(self, resource: str, attribute: str) -> str:
        if resource not in self.physical:
            if resource in self.template["Resources"]:
                raise _Unresolved(resource)
            raise ValueError(f"GetAtt on unknown resource {resource}")
        attrs = self.physical[resource]
        if attribute not in attrs:
            raise ValueError(f"GetAtt {resource}.{attribute}: not available locally")
        return attrs[attribute]

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _to_str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, _, attribute = name.partition(".")
                return self.get_att(resource, attribute)
            return _to_str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # -- the walk
    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out


def _fn_sub(r: _Resolver, arg: Any) -> str:
    if isinstance(arg, str):
        return r.sub(arg, {})
    text, variables = arg
    return r.sub(text, {k: r.resolve(v) for k, v in variables.items()})


def _fn_get_att(r: _Resolver, arg: Any) -> str:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    resource, attribute = arg
    return r.get_att(resource, r.resolve(attribute))


def _fn_join(r: _Resolver, arg: Any) -> str:
    delimiter, items = arg
    return delimiter.join(_to_str(v) for v in r.resolve(items))


def _fn_select(r: _Resolver, arg: Any) -> Any:
    index, items = arg
    return r.resolve(items)[int(r.resolve(index))]


def _fn_split(r: _Resolver, arg: Any) -> list[str]:
    delimiter, text = arg
    return _to_str(r.resolve(text)).split(delimiter)


def _fn_if(r: _Resolver, arg: Any) -> Any:
    name, if_true, if_false = arg
    return r.resolve(if_true if r.condition(name) else if_false)


def _fn_equals(r: _Resolver, arg: Any) -> bool:
    a, b = (r.resolve(v) for v in arg)
    return _to_str(a) == _to_str(b)


def _fn_find_in_map(r: _Resolver, arg: Any) -> Any:
    name, top, second = (r.resolve(v) for v in arg)
    return r.template["Mappings"][name][top][second]


_INTRINSICS = {
    "Ref": lambda r, arg: r.ref(arg),
    "Condition": lambda r, arg: r.condition(arg),
    "Fn::Sub": _fn_sub,
    "Fn::GetAtt": _fn_get_att,
    "Fn::Join": _fn_join,
    "Fn::Select": _fn_select,
    "Fn::Split": _fn_split,
    "Fn::If": _fn_if,
    "Fn::Equals": _fn_equals,
    "Fn::Not": lambda r, arg: not r.resolve(arg[0]),
    "Fn::And": lambda r, arg: all(r.resolve(v) for v in arg),
    "Fn::Or": lambda r, arg: any(r.resolve(v) for v in arg),
    "Fn::FindInMap": _fn_find_in_map,
}


def evaluate(
    template: Mapping[str, Any],
    node: Any,
    *,
    parameters: Mapping[str, Any] | None = None,
    stack_name: str = "nudge-local",
    region: str = "us-east-1",
    account_id: str = "123456789012",
    physical: Mapping[str, Mapping[str, str]] | None = None,
) -> Any:
    """Resolve one template expression offline, e.g. a schedule's cron for given window parameters.

    ``physical`` gives resources' attributes ({"LedgerTable": {"Ref": name, "Arn": arn}}); a
    reference to any other resource raises ValueError.
    """
    resolver = _Resolver(
        template,
        resolve_parameters(template, parameters),
        stack_name,
        region,
        account_id,
        {k: dict(v) for k, v in (physical or {}).items()},
    )
    try:
        return resolver.resolve(node)
    except _Unresolved as exc:
        raise ValueError(
            f"the expression refers to resource {exc.args[0]}; pass its attributes in physical="
        ) from None


# ------------------------------------------------------------------------------------- provisioning


@dataclass
class StackResources:
    """What ``provision`` created, by physical name, and the functions' resolved environment."""

    orders_table: str
    ledger_table: str
    idempotency_table: str
    send_queue_url: str
    send_dlq_url: str
    paused_parameter: str
    env: dict[str, str]  # Globals.Function.Environment merged with every function's own variables
    scheduler_dlq_url: str | None = None
    tables: dict[str, str] = field(default_factory=dict)  # logical id -> table name
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue URL
    ssm_parameters: dict[str, str] = field(default_factory=dict)  # logical id -> parameter name
    secrets: dict[str, str] = field(default_factory=dict)  # logical id -> secret ARN
    function_envs: dict[str, dict[str, str]] = field(default_factory=dict)  # function logical id -> env
    parameters: dict[str, str] = field(default_factory=dict)  # the template parameters used
    stack_name: str = "nudge-local"


def provision(
    template_path: str | Path,
    *,
    stack_name: str = "nudge-local",
    parameters: Mapping[str, Any] | None = None,
    session: Any | None = None,
) -> StackResources:
    """Create the template's DynamoDB tables, SQS queues, SSM parameters and SNS topics on (mocked) AWS.

    Call it inside an active ``moto.mock_aws()``. Physical names are the template's own name
    property when it sets one (resolved), else ``f"{stack_name}-{LogicalId}"``. Resources whose
    Condition is false are skipped (e.g. OrdersTable when ExistingOrdersTableName is set: the
    caller then creates or brings that table).
    """
    import boto3

    session = session or boto3.session.Session()
    region = session.region_name or "us-east-1"
    template = load_template(template_path)
    account_id = session.client("sts", region_name=region).get_caller_identity()["Account"]
    resolver = _Resolver(template, resolve_parameters(template, parameters), stack_name, region, account_id)

    creators = {
        "AWS::DynamoDB::Table": _create_table,
        "AWS::SQS::Queue": _create_queue,
        "AWS::SSM::Parameter": _create_ssm_parameter,
        "AWS::SNS::Topic": _create_topic,
        "AWS::SecretsManager::Secret": _create_secret,
        "AWS::SMSVOICE::ConfigurationSet": _name_sms_configuration_set,
    }
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, region_name=region)
        return clients[service]

    pending = [
        (logical_id, spec)
        for logical_id, spec in template["Resources"].items()
        if spec.get("Type") in creators and resolver.is_active(logical_id)
    ]
    created: dict[str, str] = {}  # logical id -> type
    while pending:  # resources may refer to each other (a queue's RedrivePolicy -> its DLQ)
        waiting = []
        for logical_id, spec in pending:
            try:
                props = resolver.resolve(spec.get("Properties") or {})
            except _Unresolved:
                waiting.append((logical_id, spec))
                continue
            resolver.physical[logical_id] = creators[spec["Type"]](client, logical_id, props, stack_name)
            created[logical_id] = spec["Type"]
        if len(waiting) == len(pending):
            names = ", ".join(logical_id for logical_id, _ in waiting)
            raise ValueError(f"cannot create {names}: they refer to resources that are not created locally")
        pending = waiting

    function_envs = {
        logical_id: _function_env(template, logical_id, resolver)
        for logical_id, spec in template["Resources"].items()
        if spec.get("Type") == "AWS::Serverless::Function" and resolver.is_active(logical_id)
    }
    merged: dict[str, str] = {}
    for env in function_envs.values():
        merged.update(env)

    def physical_of(kind: str) -> dict[str, str]:
        return {lid: resolver.physical[lid]["Ref"] for lid, t in created.items() if t == kind}

    tables = physical_of("AWS::DynamoDB::Table")
    queues = physical_of("AWS::SQS::Queue")
    ssm_parameters = physical_of("AWS::SSM::Parameter")
    return StackResources(
        orders_table=merged.get("ORDERS_TABLE") or tables.get("OrdersTable", ""),
        ledger_table=tables["LedgerTable"],
        idempotency_table=tables["IdempotencyTable"],
        send_queue_url=queues["SendQueue"],
        send_dlq_url=queues["SendDLQ"],
        paused_parameter=ssm_parameters["PausedParameter"],
        env=merged,
        scheduler_dlq_url=queues.get("SchedulerDLQ"),
        tables=tables,
        queues=queues,
        ssm_parameters=ssm_parameters,
        secrets=physical_of("AWS::SecretsManager::Secret"),
        function_envs=function_envs,
        parameters=dict(resolver.parameters),
        stack_name=stack_name,
    )


def function_env(
    template: Mapping[str, Any], function_logical_id: str, resources: StackResources
) -> dict[str, str]:
    """One function's environment (Globals merged with its own), as provisioned in ``resources``."""
    if function_logical_id in resources.function_envs:
        return dict(resources.function_envs[function_logical_id])
    raise KeyError(f"{function_logical_id} is not a function of this stack")


def _function_env(template: Mapping[str, Any], logical_id: str, resolver: _Resolver) -> dict[str, str]:
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    own_env = (template["Resources"][logical_id].get("Properties") or {}).get("Environment") or {}
    variables = {**(globals_env.get("Variables") or {}), **(own_env.get("Variables") or {})}
    env: dict[str, str] = {}
    for name, expr in variables.items():
        try:
            value = resolver.resolve(expr)
        except _Unresolved as exc:
            raise ValueError(
                f"{logical_id} env {name}: refers to {exc.args[0]}, which is not created locally"
            ) from None
        if value is _NO_VALUE:
            continue
        if isinstance(value, dict | list):
            raise ValueError(f"{logical_id} env {name}: unresolved expression {value!r}")
        env[name] = _to_str(value)
    return env


# -- one creator per resource type: each returns the GetAtt attributes plus "Ref"


def _physical_name(props: Mapping[str, Any], key: str, logical_id: str, stack_name: str) -> str:
    return props.get(key) or f"{stack_name}-{logical_id}"


def _create_table(client: Any, logical_id: str, props: Mapping[str, Any], stack_name: str) -> dict[str, str]:
    ddb = client("dynamodb")
    name = _physical_name(props, "TableName", logical_id, stack_name)
    billing = props.get("BillingMode", "PROVISIONED")
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": gsi["IndexName"],
                "KeySchema": gsi["KeySchema"],
                "Projection": gsi["Projection"],
                **(
                    {"ProvisionedThroughput": _throughput(gsi.get("ProvisionedThroughput"))}
                    if billing == "PROVISIONED"
                    else {}
                ),
            }
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        kwargs["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {"Enabled": _truthy(sse.get("SSEEnabled"))}
    resp = ddb.create_table(**kwargs)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _truthy(ttl.get("Enabled")):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and _truthy(pitr.get("PointInTimeRecoveryEnabled")):
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    attrs = {"Ref": name, "Arn": resp["TableArn"]}
    if resp.get("LatestStreamArn"):
        attrs["StreamArn"] = resp["LatestStreamArn"]
    return attrs


def _throughput(spec: Mapping[str, Any] | None) -> dict[str, int]:
    spec = spec or {}
    return {
        "ReadCapacityUnits": int(spec.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(spec.get("WriteCapacityUnits", 5)),
    }


def _truthy(value: Any) -> bool:
    return value is True or _to_str(value).lower() == "true"


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


def _create_queue(client: Any, logical_id: str, props: Mapping[str, Any], stack_name: str) -> dict[str, str]:
    sqs = client("sqs")
    name = props.get("QueueName") or f"{stack_name}-{logical_id}" + (
        ".fifo" if _truthy(props.get("FifoQueue")) else ""
    )
    attributes = {key: _to_str(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            value = props[key]
            attributes[key] = value if isinstance(value, str) else json.dumps(value)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}


def _name_sms_configuration_set(
    client: Any, logical_id: str, props: Mapping[str, Any], stack_name: str
) -> dict[str, str]:
    """End User Messaging has no moto backend: the configuration set is only named (the local
    client, ``nudge_local.sms_voice``, takes any name)."""
    name = _physical_name(props, "ConfigurationSetName", logical_id, stack_name)
    return {"Ref": name, "ConfigurationSetName": name}


def _create_topic(client: Any, logical_id: str, props: Mapping[str, Any], stack_name: str) -> dict[str, str]:
    name = props.get("TopicName") or f"{stack_name}-{logical_id}"
    attributes = {"DisplayName": _to_str(props["DisplayName"])} if props.get("DisplayName") else {}
    arn = client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return {"Ref": arn, "TopicArn": arn, "TopicName": name}


def _create_ssm_parameter(
    client: Any, logical_id: str, props: Mapping[str, Any], stack_name: str
) -> dict[str, str]:
    ssm = client("ssm")
    name = _physical_name(props, "Name", logical_id, stack_name)
    kwargs: dict[str, Any] = {
        "Name": name,
        "Type": props.get("Type", "String"),
        "Value": _to_str(props["Value"]),
    }
    if props.get("Description"):
        kwargs["Description"] = props["Description"]
    if props.get("AllowedPattern"):
        kwargs["AllowedPattern"] = props["AllowedPattern"]
    ssm.put_parameter(**kwargs)
    return {"Ref": name, "Type": kwargs["Type"], "Value": kwargs["Value"]}


def _create_secret(client: Any, logical_id: str, props: Mapping[str, Any], stack_name: str) -> dict[str, str]:
    """A Secrets Manager secret: its SecretString, a generated one, or (neither) none yet, as on AWS."""
    import secrets as random_source
    import string

    kwargs: dict[str, Any] = {"Name": _physical_name(props, "Name", logical_id, stack_name)}
    if props.get("Description"):
        kwargs["Description"] = props["Description"]
    generate = props.get("GenerateSecretString")
    if "SecretString" in props:
        kwargs["SecretString"] = _to_str(props["SecretString"])
    elif generate is not None:
        alphabet = string.ascii_letters + string.digits
        if not _truthy(generate.get("ExcludePunctuation", False)):
            alphabet += "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
        length = int(generate.get("PasswordLength", 32))
        kwargs["SecretString"] = "".join(random_source.choice(alphabet) for _ in range(length))
    arn = client("secretsmanager").create_secret(**kwargs)["ARN"]
    return {"Ref": arn, "Id": arn, "Name": kwargs["Name"]}
