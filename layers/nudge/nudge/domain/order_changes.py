"""An order's new state as a write to the orders table: what the webhook and `nudge import` apply.

Pure: the record has passed ``parse_order`` (or is a status-only change); its version is the
signed time that orders the writes (see ``nudge.services.ingest``). The digest tells a repeat of
the same state from a new one at the same version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from nudge.domain.instants import utc_iso
from nudge.domain.platforms import ORDER_RECORD_FIELDS


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One order's new state (whole record, or status only) and the time it is the state of."""

    order_id: str
    attributes: dict[str, Any]  # order-record fields to set, without order_id
    full: bool
    version: str  # UTC ISO, see VERSION_ATTR
    digest: str

    @property
    def status(self) -> str:
        return self.attributes["status"]


def _value(name: str, value: Any) -> Any:
    if name == "amount":
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:  # parse_order has refused such records before they get here
            raise ValueError(f"amount: not a number: {value!r}") from None
    if name == "buyer_flags":
        return sorted(str(v) for v in value)
    return value.strip() if isinstance(value, str) else value


def order_change(record: Mapping[str, Any], *, full: bool, version: datetime) -> OrderChange:
    """An ``OrderChange`` from a record that passed ``parse_order`` (or a status-only change)."""
    attrs = {
        k: _value(k, record[k])
        for k in ORDER_RECORD_FIELDS
        if k != "order_id" and record.get(k) not in (None, "", [])
    }
    if attrs.get("status") not in ("unpaid", "paid", "closed"):
        raise ValueError("status: unpaid, paid or closed")
    canonical = json.dumps([full, attrs], sort_keys=True, default=str, ensure_ascii=False)
    return OrderChange(
        order_id=str(record["order_id"]),
        attributes=attrs,
        full=full,
        version=utc_iso(version),
        digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32],
    )
