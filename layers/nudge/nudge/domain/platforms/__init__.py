"""Platform payloads -> Nudge's order record (pure). One small module per sender:

- ``standard``: Standard Webhooks ``order.*`` events carrying Nudge's own order record;
- ``shopify``: Shopify's ``orders/*`` webhooks (the REST order resource);
- ``woocommerce``: WooCommerce's ``order.*`` webhooks (the REST v3 order resource).

A mapping only reshapes: the full records it makes are validated by ``nudge.domain.orders.parse_order``
like every other order, so there is one contract and one validator (with its bounds: the times
here are held to the same years, the ids to the same length).

Order ids are kept apart by source: a platform's order id is stored as ``<platform>:<id>``
(``shopify:5921873412345``, ``woocommerce:4217``), while Standard Webhooks and ``nudge import``
records keep the shop's own id as it is. WooCommerce order 1001 and a shop's own order "1001" are
two orders; a shop that imports a platform's backlog names those orders with the prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nudge.domain.orders import text_problem, time_problem
from nudge.domain.phones import phone_info

# The order record (docs/RULES.md): the only attributes an event may write (anything else in a payload is dropped).
ORDER_RECORD_FIELDS = (
    "order_id",
    "buyer_id",
    "phone",
    "status",
    "created_at",
    "paid_at",
    "closes_at",
    "amount",
    "currency",
    "channel",
    "payment_method",
    "buyer_flags",
    "buyer_name",
    "item_title",
    "pay_url",
)


class MappingError(ValueError):
    """The payload cannot become an order record: ``field`` names what is wrong (answer 400)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One change to one order, as a platform reported it."""

    order_id: str
    record: dict[str, Any]  # order-record fields; the whole record when ``full``
    full: bool  # False: a status change only (``status`` and maybe ``paid_at``)
    updated_at: datetime | None  # the platform's own time of this state; None: the delivery's time
    kind: str = ""  # e.g. "orders/paid", "order.updated": for logs


@dataclass(frozen=True, slots=True)
class Ignored:
    """A genuine delivery with nothing to store (another topic, an order without a phone, a status
    Nudge does not know): answer 2xx. ``detail`` may name ``order_id``, ``field`` and ``problem``."""

    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


def _never(headers: Mapping[str, str], body: bytes) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Platform:
    """Everything the ingest function knows of one sender, in one place (``registry.PLATFORMS``).

    ``headers`` are lower-cased. ``verify`` raises ``nudge.domain.webhooks.SignatureError`` and
    returns the delivery's signed time when the scheme signs one. ``delivery_id`` is the stable
    part of what a delivery is (the service joins it with a digest of the signed body).
    """

    route: str  # POST /webhooks/<route>
    verify: Callable[[str, Mapping[str, str], bytes, datetime], datetime | None]
    map: Callable[[Mapping[str, str], Any], OrderEvent | Ignored]
    delivery_id: Callable[[Mapping[str, str]], str]
    secret_setting: str  # the ``nudge.settings.Settings`` field holding its secret's ARN
    stack_secret: str  # the secret's logical id in template.yaml (the local harness reads it)
    secret_prefix: str = ""  # what the secret's value is shown with (Standard Webhooks: "whsec_")
    is_ping: Callable[[Mapping[str, str], bytes], bool] = _never  # unsigned set-up calls: 200


def topic(headers: Mapping[str, str], name: str) -> str:
    """The platform's topic header (``x-shopify-topic``...), required."""
    value = headers.get(name, "").strip()
    if not value:
        raise MappingError(name, "missing")
    return value


def as_object(payload: Any, name: str = "record") -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise MappingError(name, f"must be a JSON object, got {type(payload).__name__}")
    return payload


def text(value: Any) -> str | None:
    """A platform string or id as text; None for null, "" and non-scalars."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    out = str(value).strip()
    return out or None


def aware(value: Any, name: str, *, utc_if_naive: bool = False) -> datetime | None:
    """An ISO-8601 time from a payload. ``utc_if_naive``: WooCommerce's ``*_gmt`` fields carry no offset."""
    raw = text(value)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise MappingError(name, f"not an ISO-8601 timestamp: {raw[:40]!r}") from None
    if parsed.tzinfo is None and utc_if_naive:
        parsed = parsed.replace(tzinfo=UTC)
    problem = time_problem(parsed)  # the orders' bound: no UTC conversion or TTL can overflow
    if problem:
        raise MappingError(name, problem)
    return parsed


def platform_order_id(source: str, value: Any, name: str = "id") -> str:
    """The stored id of a platform's order: ``<source>:<the platform's id>`` (see the module doc)."""
    raw = text(value)
    if raw is None:
        raise MappingError(name, "missing")
    order_id = f"{source}:{raw}"
    problem = text_problem("order_id", order_id)
    if problem:
        raise MappingError(name, problem)
    return order_id


def shop_order_id(value: Any, name: str) -> str:
    """A shop's own order id (Standard Webhooks): a non-empty string within the orders' bound."""
    if not isinstance(value, str) or not value.strip():
        raise MappingError(name, "missing" if value in (None, "") else "must be a string")
    problem = text_problem("order_id", value)
    if problem:
        raise MappingError(name, problem)
    return value


def first_phone(candidates: list[tuple[Any, Any]]) -> str | None:
    """The first non-empty phone of (phone, ISO country) pairs, in E.164 when it reads with that country.

    A number known to be a landline (valid, but no SMS) is passed over for a later one that takes
    SMS: buyers often give a home number on the billing address and a mobile for the courier.
    With none better it is kept, and so is a number the country cannot make valid: the planner
    decides ``invalid_phone`` for both.
    """
    fallback = None
    for raw, country in candidates:
        phone = text(raw)
        if phone is None:
            continue
        region = (text(country) or "").upper()
        national = not phone.startswith("+")
        info = phone_info(phone, region if len(region) == 2 else "ZZ")  # "+..." ignores the region
        chosen = info.e164 if (info.valid and info.e164 and national) else phone
        if info.valid and not info.takes_sms:
            fallback = fallback or chosen
            continue
        return chosen
    return fallback


def compact_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Only the order-record fields, without empty values."""
    return {k: record[k] for k in ORDER_RECORD_FIELDS if k in record and record[k] not in (None, "", [])}
