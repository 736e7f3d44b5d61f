"""The one way an SMS gateway adapter makes its single call: what every gateway shares.

A request that never left (could not connect) sent nothing: ``TransientSendError``. A read timeout
or a dropped connection is left as botocore raised it: the SMS may have gone out, so the sender
keeps its claim and reports it unconfirmed, never sending it again. An answered error is the
adapter's to classify (its own table of codes), into ``TransientSendError``,
``PermanentSendError`` or ``OptedOutError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from nudge.services.ports import TransientSendError

__all__ = ["call_once", "error_text"]


def error_text(service: str, exc: ClientError) -> str:
    """``<service> <Code>[ <Reason>]: <Message>``: what the ledger's skip and the logs keep."""
    response = exc.response
    code = response.get("Error", {}).get("Code", "")
    reason = response.get("Reason") or ""
    return f"{service} {code}{f' {reason}' if reason else ''}: {response.get('Error', {}).get('Message')}"


def call_once(
    fn: Callable[..., dict[str, Any]],
    *,
    service: str,
    classify: Callable[[ClientError], type[Exception]],
    **kwargs: Any,
) -> dict[str, Any]:
    try:
        return fn(**kwargs)
    except (ConnectTimeoutError, EndpointConnectionError) as exc:  # the request never left
        raise TransientSendError(f"{service} unreachable: {exc}") from exc
    # ReadTimeoutError / ConnectionClosedError propagate: the SMS may have been sent.
    except ClientError as exc:
        raise classify(exc)(error_text(service, exc)) from exc
