"""Webhook secrets in Secrets Manager, read through Powertools Parameters (cached per warm Lambda).

The stack generates the Standard Webhooks secret and creates the Shopify and WooCommerce ones
empty: the operator pastes each platform's secret. A secret with no value yet is "not set" (its
route answers 401); that answer is kept for a minute so that unsigned noise on a route not yet
connected does not cost a Secrets Manager call per request. Any other failure to read a secret is
``SecretsUnavailable`` (answer 5xx, so the sender retries).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from nudge.services.ports import SecretsUnavailable

__all__ = ["SECRET_MAX_AGE_SECONDS", "SecretsManagerSecrets"]

SECRET_MAX_AGE_SECONDS = 300  # a pasted or rotated secret is used within 5 minutes
NOT_SET_MAX_AGE_SECONDS = 60
_NOT_SET_CODES = {"ResourceNotFoundException"}  # also: a secret created without a value


def _not_set(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in _NOT_SET_CODES


class SecretsManagerSecrets:
    """Route name -> its secret's value (or None when not set yet)."""

    def __init__(
        self,
        secret_ids: Mapping[str, str],
        *,
        max_age: int = SECRET_MAX_AGE_SECONDS,
        fetch: Callable[..., Any] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._ids = {route: sid for route, sid in secret_ids.items() if sid}
        self._max_age = max_age
        self._fetch = fetch or parameters.get_secret
        self._monotonic = monotonic
        self._not_set_until: dict[str, float] = {}

    def forget(self) -> None:
        """Drop the remembered "not set" answers (after a secret was just stored)."""
        self._not_set_until.clear()

    def secret(self, route: str) -> str | None:
        secret_id = self._ids.get(route)
        if secret_id is None:
            return None
        if self._not_set_until.get(route, 0.0) > self._monotonic():
            return None
        try:
            value = self._fetch(secret_id, max_age=self._max_age)
        except GetParameterError as exc:
            if _not_set(exc):
                self._not_set_until[route] = self._monotonic() + NOT_SET_MAX_AGE_SECONDS
                return None
            raise SecretsUnavailable(f"cannot read the {route} secret") from None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        value = (value or "").strip()
        return value or None
