"""Orders in by webhook: accept -> verify -> map -> validate -> store, one delivery at a time.

The handler hands over the route, the headers and the raw body bytes; the answer says which HTTP
status to give. Nothing is parsed before the signature holds; nothing is stored unless the record
keeps the order contract; only a failure to store (or to read the secret) asks the sender to retry.

| answer       | HTTP | when                                                            |
|--------------|------|-----------------------------------------------------------------|
| accepted     | 200  | stored (or it completed an order known only by its status)       |
| duplicate    | 200  | this delivery was stored before                                   |
| unchanged    | 200  | older than what is stored, or it would go from paid back to unpaid |
| ignored      | 200  | genuine, with nothing to store (another topic, no phone)          |
| ping         | 200  | WooCommerce's unsigned creation ping                              |
| unauthorized | 401  | missing, wrong or stale signature, or the route's secret not set  |
| invalid      | 400  | not JSON, or the record breaks the order contract (names the field) |
| too_large    | 413  | body over 1 MB                                                    |
| unavailable  | 503  | the secret or the orders table could not be reached: retry        |
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from nudge.adapters.common import DalError
from nudge.adapters.orders_store import OrderChange, WriteOutcome, delivery_key, order_change
from nudge.adapters.secrets import SecretsUnavailable
from nudge.domain.models import InvalidOrder
from nudge.domain.orders import parse_order
from nudge.domain.platforms import Ignored, MappingError, OrderEvent
from nudge.domain.platforms.shopify import map_shopify
from nudge.domain.platforms.standard import map_standard
from nudge.domain.platforms.woocommerce import map_woocommerce
from nudge.domain.webhooks import (
    SignatureError,
    is_woocommerce_ping,
    lower_headers,
    verify_shopify,
    verify_standard,
    verify_woocommerce,
)

MAX_BODY_BYTES = 1024 * 1024
ROUTES = ("nudge", "shopify", "woocommerce")  # POST /webhooks/<route>


class Answer(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"
    PING = "ping"
    UNAUTHORIZED = "unauthorized"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"


HTTP_STATUS = {
    Answer.UNAUTHORIZED: 401,
    Answer.INVALID: 400,
    Answer.TOO_LARGE: 413,
    Answer.UNAVAILABLE: 503,
}


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one delivery. Every field is safe to log: no phone, name or body in it."""

    answer: Answer
    route: str
    reason: str | None = None  # a fixed code: the signature failure, why ignored, the store's outcome
    field: str | None = None  # for `invalid`: the offending field
    problem: str | None = None
    order_id: str | None = None

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.answer, 200)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.answer.value}
        if self.order_id:
            out["order_id"] = self.order_id
        if self.answer is Answer.INVALID:
            out["error"] = f"{self.field}: {self.problem}"
            out["field"] = self.field
        elif self.answer is Answer.UNAUTHORIZED:
            out["error"] = "signature missing, wrong or stale"
        elif self.answer is Answer.TOO_LARGE:
            out["error"] = f"body over {MAX_BODY_BYTES} bytes"
        elif self.answer is Answer.UNAVAILABLE:
            out["error"] = "could not store the order now; retry"
        elif self.answer is Answer.IGNORED and self.reason:
            out["reason"] = self.reason
        return out


class WebhookSecrets(Protocol):
    def secret(self, route: str) -> str | None:
        """The route's secret, None while it is not set. Raises SecretsUnavailable."""
        ...


class OrdersStore(Protocol):
    def apply(
        self, change: OrderChange, *, delivery: str | None = None, now: datetime | None = None
    ) -> WriteOutcome: ...


_FRACTION = re.compile(r"(\.\d{6})\d+")  # Shopify sends nanoseconds; datetime keeps microseconds


def _header_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return at if at.tzinfo else None


def _verify(
    route: str, secret: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> datetime | None:
    """Raises SignatureError; returns the signed delivery time when the scheme signs one."""
    if route == "nudge":
        return verify_standard(secret, headers, body, now=now).sent_at
    if route == "shopify":
        verify_shopify(secret, headers, body)
    else:
        verify_woocommerce(secret, headers, body)
    return None


def _map(route: str, h: Mapping[str, str], payload: Any) -> OrderEvent | Ignored:
    if route == "nudge":
        return map_standard(payload)
    topic_header = "x-shopify-topic" if route == "shopify" else "x-wc-webhook-topic"
    topic = h.get(topic_header, "").strip()
    if not topic:
        raise MappingError(topic_header, "missing")
    return map_shopify(topic, payload) if route == "shopify" else map_woocommerce(topic, payload)


def _dedupe_key(route: str, h: Mapping[str, str], event: OrderEvent, change: OrderChange) -> str | None:
    if route == "nudge":
        return h.get("webhook-id")
    if route == "shopify":
        # The event id is shared by the deliveries of one merchant action across topics: with the topic.
        event_id = h.get("x-shopify-event-id", "").strip()
        if event_id:
            return f"{h.get('x-shopify-topic', '').strip()}#{event_id}"
        return h.get("x-shopify-webhook-id", "").strip() or None
    return f"{event.order_id}#{change.version}"  # WooCommerce: no stable delivery id; the state's time


def ingest(
    route: str,
    headers: Mapping[str, str] | None,
    body: bytes,
    *,
    secrets: WebhookSecrets,
    store: OrdersStore,
    now: datetime,
) -> IngestResult:
    """Handle one webhook delivery (see the module docstring for the answers)."""
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}")
    if len(body) > MAX_BODY_BYTES:
        return IngestResult(Answer.TOO_LARGE, route)
    h = lower_headers(headers)
    if route == "woocommerce" and is_woocommerce_ping(h, body):
        return IngestResult(Answer.PING, route)
    try:
        secret = secrets.secret(route)
    except SecretsUnavailable:
        return IngestResult(Answer.UNAVAILABLE, route, reason="secret_unavailable")
    if secret is None:
        return IngestResult(Answer.UNAUTHORIZED, route, reason="secret_not_set")
    try:
        signed_at = _verify(route, secret, h, body, now)
    except SignatureError as exc:
        return IngestResult(Answer.UNAUTHORIZED, route, reason=exc.reason)

    # Authentic from here on.
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return IngestResult(Answer.INVALID, route, field="body", problem="not UTF-8")
    except json.JSONDecodeError as exc:
        return IngestResult(Answer.INVALID, route, field="body", problem=f"not valid JSON ({exc.msg})")
    except RecursionError:
        return IngestResult(Answer.INVALID, route, field="body", problem="JSON nested too deeply")
    try:
        event = _map(route, h, payload)
    except MappingError as exc:
        return IngestResult(Answer.INVALID, route, field=exc.field, problem=exc.problem)
    if isinstance(event, Ignored):
        return IngestResult(Answer.IGNORED, route, reason=event.reason, order_id=event.detail.get("order_id"))
    if event.full:
        checked = parse_order(event.record)
        if isinstance(checked, InvalidOrder):
            return IngestResult(
                Answer.INVALID, route, field=checked.field, problem=checked.problem, order_id=event.order_id
            )
    version = event.updated_at or signed_at or _header_time(h.get("x-shopify-triggered-at")) or now
    change = order_change(event.record, full=event.full, version=version)
    key = _dedupe_key(route, h, event, change)
    try:
        outcome = store.apply(change, delivery=delivery_key(route, key) if key else None, now=now)
    except DalError:
        return IngestResult(Answer.UNAVAILABLE, route, reason="store_failed", order_id=event.order_id)
    answer = {
        WriteOutcome.WRITTEN: Answer.ACCEPTED,
        WriteOutcome.FILLED: Answer.ACCEPTED,
        WriteOutcome.DUPLICATE: Answer.DUPLICATE,
        WriteOutcome.UNCHANGED: Answer.UNCHANGED,
    }[outcome]
    return IngestResult(answer, route, reason=outcome.value, order_id=event.order_id)
