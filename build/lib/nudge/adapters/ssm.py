"""The operators' pause switch in SSM Parameter Store."""

from __future__ import annotations


def read_pause_switch(parameter_name: str, *, max_age: int = 60) -> bool:
    """The operators' pause switch: an SSM parameter they flip without a deploy (cached).

    No name (a stack without the parameter) means never paused. A read error propagates: the
    function fails and its alarm fires, rather than sending while the switch is unknown.
    """
    if not parameter_name:
        return False
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(parameter_name, max_age=max_age)
    return str(value).strip().lower() == "true"
