"""What a deployed Nudge stack says about itself: its outputs, and the config its functions run.

`nudge report --stack` and `nudge calls --stack` read the shop's config from the plan function's
environment (the stack parameters and ``ExtraConfigJson``, as template.yaml passes them) through
``config_from_env``, the very code the functions load it with: the report's time zone, currency and
price per segment are then the deployed ones, not the defaults. ``--config FILE`` still wins.
"""

from __future__ import annotations

from typing import Any

from nudge.domain.config import Config

__all__ = ["StackError", "stack_config", "stack_output"]

PLAN_FUNCTION = "PlanFunction"  # its logical id in template.yaml: every function gets the same config


class StackError(Exception):
    """The stack could not be read; the message names the stack and the problem."""


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message") or exc)
    return str(exc)


def stack_output(cloudformation: Any, stack: str, *keys: str) -> tuple[str, ...]:
    """The values of the stack's outputs ``keys``, in order (StackError if the stack or one is missing)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise StackError(f"--stack {stack}: {_message(exc)}") from None
    if not stacks:
        raise StackError(f"--stack {stack}: no such stack")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}
    missing = [k for k in keys if k not in outputs]
    if missing:
        raise StackError(f"--stack {stack}: no {missing[0]} output (is it a Nudge stack?)")
    return tuple(outputs[k] for k in keys)


def stack_config(cloudformation: Any, lambda_client: Any, stack: str) -> Config:
    """The config the stack's functions run with (raises StackError naming the bad setting)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from nudge.domain.config import ConfigError
    from nudge.settings import config_from_env

    try:
        resource = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=PLAN_FUNCTION)
        function = resource["StackResourceDetail"]["PhysicalResourceId"]
        env = lambda_client.get_function_configuration(FunctionName=function)
    except (BotoCoreError, ClientError) as exc:
        raise StackError(
            f"--stack {stack}: cannot read its config: {_message(exc)} (or pass --config)"
        ) from None
    environment = env.get("Environment") or {}
    if environment.get("Error"):  # e.g. its KMS key cannot decrypt the variables
        problem = environment["Error"].get("Message") or environment["Error"].get("ErrorCode")
        raise StackError(
            f"--stack {stack}: its function's environment cannot be read: {problem} (or pass --config)"
        )
    variables = environment.get("Variables") or {}
    if "LEDGER_TABLE" not in variables:  # template.yaml sets it: without it these are not Nudge's settings
        raise StackError(f"--stack {stack}: {function} has no Nudge environment (or pass --config)")
    try:
        return config_from_env(variables)
    except ConfigError as exc:
        raise StackError(f"--stack {stack}: its config: {exc}") from None
