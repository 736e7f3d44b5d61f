"""Orders in by webhook: accept -> verify -> map -> validate -> store, one delivery at a time.

The handler hands over the route, the headers and the raw body bytes; the answer says which HTTP
status to give. Nothing is parsed before the signature holds; nothing is stored unless the record
keeps the order contract; only a failure to store (or to read the secret) asks the sender to retry.

| answer       | HTTP | when                                                            |
|--------------|------|-----------------------------------------------------------------|
| accepted     | 200  | stored (or it completed an order known only by its status)       |
| duplicate    | 200  | this delivery was stored before                                   |
| unchanged    | 200  | older than what is stored, or it would go from paid back to unpaid |
| ignored      | 200  | genuine, with nothing to store (another topic, no phone, a status   |
|              |      | Nudge does not know: the platform must not disable the webhook)   |
| ping         | 200  | WooCommerce's unsigned creation ping                              |
| unauthorized | 401  | missing, wrong or stale signature, or the route's secret not set  |
| invalid      | 400  | not JSON (or a number too long to read), or the record breaks the  |
|              |      | order contract, its bounds included (names the field)             |
| too_large    | 413  | body over 1 MB                                                    |
| unavailable  | 503  | the secret or the orders table could not be reached: retry        |

Write order: only signed data decides it. A change's version is the platform's updated time from
the body (Shopify ``updated_at``, WooCommerce ``date_modified_gmt``, Standard ``timestamp``), else
the signed ``webhook-timestamp`` (Standard Webhooks), else the order's ``created_at``; never a
header the signature does not cover, and never the time it arrived.

Deduplication: a delivery is what it carries. Its key is the platform's delivery id where it has a
stable one (Standard ``webhook-id``, which is signed; Shopify's topic and ``X-Shopify-Event-Id``,
else ``X-Shopify-Webhook-Id``) joined with a digest of the signed body, and for WooCommerce (whose
delivery id is a hash of the webhook and the second, not stable and not unique) the topic and the
digest alone. So no header, signed or not, can make other content count as a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from nudge.domain.models import InvalidOrder
from nudge.domain.order_changes import OrderChange, order_change
from nudge.domain.orders import JsonProblem, load_json, parse_order
from nudge.domain.platforms import Ignored, MappingError, Platform
from nudge.domain.platforms.registry import PLATFORMS
from nudge.domain.webhooks import SignatureError, lower_headers
from nudge.services.ports import DalError, OrdersStore, SecretsUnavailable, WebhookSecrets, WriteOutcome

MAX_BODY_BYTES = 1024 * 1024
DIGEST_CHARS = 32


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
            if self.field:
                out["field"] = self.field
                out["problem"] = self.problem
        return out


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def prepare_change(
    record: Mapping[str, Any], *, full: bool, version: datetime | None, line: int | None = None
) -> OrderChange | InvalidOrder:
    """Parse -> change: the one way an incoming record becomes a write, for webhooks and
    `nudge import` alike (the store's ``apply`` is the third step).

    A whole record must keep the order contract (``parse_order``, bounds included); a status-only
    change carries just the status. ``version`` is the signed time of this state; without one, a
    whole record's own latest time stands for it (``paid_at`` if later than ``created_at``).
    """
    if full:
        checked = parse_order(record, line=line)
        if isinstance(checked, InvalidOrder):
            return checked
        version = version or max(t for t in (checked.created_at, checked.paid_at) if t is not None)
    if version is None:
        raise ValueError("a status-only change needs a signed version")
    try:
        return order_change(record, full=full, version=version)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        return InvalidOrder(
            str(record.get("order_id")) if record.get("order_id") else None, field, problem, line
        )


def delivery_key(route: str, key: str) -> str:
    """The marker the store writes beside a delivery's change (``OrdersStore.apply``)."""
    return f"ingest#{route}#{key}"


def dedupe_key(platform: Platform, h: Mapping[str, str], body: bytes) -> str:
    """What a delivery is (see the module doc): its stable delivery id, if any, and its body's digest."""
    return f"{platform.delivery_id(h)}#{_digest(body)}"


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
    platform = PLATFORMS.get(route)
    if platform is None:
        raise ValueError(f"unknown route {route!r}")
    if len(body) > MAX_BODY_BYTES:
        return IngestResult(Answer.TOO_LARGE, route)
    h = lower_headers(headers)
    if platform.is_ping(h, body):
        return IngestResult(Answer.PING, route)
    try:
        secret = secrets.secret(route)
    except SecretsUnavailable:
        return IngestResult(Answer.UNAVAILABLE, route, reason="secret_unavailable")
    if secret is None:
        return IngestResult(Answer.UNAUTHORIZED, route, reason="secret_not_set")
    try:
        signed_at = platform.verify(secret, h, body, now)
    except SignatureError as exc:
        return IngestResult(Answer.UNAUTHORIZED, route, reason=exc.reason)

    # Authentic from here on.
    try:
        payload = load_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        return IngestResult(Answer.INVALID, route, field="body", problem="not UTF-8")
    except JsonProblem as exc:  # bad syntax, nested too deeply, or an integer too long to read
        return IngestResult(Answer.INVALID, route, field="body", problem=str(exc))
    try:
        event = platform.map(h, payload)
    except MappingError as exc:
        return IngestResult(Answer.INVALID, route, field=exc.field, problem=exc.problem)
    if isinstance(event, Ignored):
        detail = event.detail
        return IngestResult(
            Answer.IGNORED,
            route,
            reason=event.reason,
            field=detail.get("field"),
            problem=detail.get("problem"),
            order_id=detail.get("order_id"),
        )
    # Only signed data orders the writes (see the module doc): the body's updated time, else the
    # signed delivery time; a status-only change comes only by Standard Webhooks, which signs it.
    change = prepare_change(event.record, full=event.full, version=event.updated_at or signed_at)
    if isinstance(change, InvalidOrder):
        return IngestResult(
            Answer.INVALID, route, field=change.field, problem=change.problem, order_id=event.order_id
        )
    key = delivery_key(route, dedupe_key(platform, h, body))
    try:
        outcome = store.apply(change, delivery=key, now=now)
    except DalError:
        return IngestResult(Answer.UNAVAILABLE, route, reason="store_failed", order_id=event.order_id)
    answer = {
        WriteOutcome.WRITTEN: Answer.ACCEPTED,
        WriteOutcome.FILLED: Answer.ACCEPTED,
        WriteOutcome.DUPLICATE: Answer.DUPLICATE,
        WriteOutcome.UNCHANGED: Answer.UNCHANGED,
    }[outcome]
    return IngestResult(answer, route, reason=outcome.value, order_id=event.order_id)
