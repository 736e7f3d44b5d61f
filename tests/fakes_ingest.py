"""In-memory twins of the ingest adapters: the orders store and the webhook secrets.

Same semantics as ``nudge.adapters.orders.DynamoOrdersStore`` (kept honest by the contract
tests in ``tests/test_orders_store.py``) and ``nudge.adapters.secrets.SecretsManagerSecrets``.
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from typing import Any

from nudge.adapters.orders import DELIVERY_TTL, HASH_ATTR, KEEP_ON_REWRITE, ORDER_TTL, VERSION_ATTR
from nudge.domain.order_changes import OrderChange
from nudge.domain.platforms import ORDER_RECORD_FIELDS
from nudge.services.ports import DalError, WriteOutcome


class FakeOrdersStore:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.deliveries: dict[str, datetime] = {}  # key -> expires at
        self.writes = 0  # changes that changed the table
        self.fail_next = 0  # the next N applies raise DalError, as a throttled table would
        self._lock = threading.Lock()

    def item(self, order_id: str) -> dict[str, Any] | None:
        found = self.items.get(order_id)
        return copy.deepcopy(found) if found is not None else None

    def apply(
        self, change: OrderChange, *, delivery: str | None = None, now: datetime | None = None
    ) -> WriteOutcome:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise DalError("storing order failed (fake)")
            if delivery is not None:
                if now is None:
                    raise ValueError("a delivery key needs now")
                expires = self.deliveries.get(delivery)
                if expires is not None and expires > now:
                    return WriteOutcome.DUPLICATE
            stored = self.items.get(change.order_id)
            if self._accepts(stored, change):
                item = dict(stored or {"order_id": change.order_id})
                if change.full:
                    for name in ORDER_RECORD_FIELDS:
                        if name not in change.attributes and name not in KEEP_ON_REWRITE:
                            item.pop(name, None)
                item.update(copy.deepcopy(change.attributes))
                item[VERSION_ATTR] = change.version
                item[HASH_ATTR] = change.digest
                item["expires_at"] = int((datetime.fromisoformat(change.version) + ORDER_TTL).timestamp())
                self.items[change.order_id] = item
                if delivery is not None:
                    self.deliveries[delivery] = now + DELIVERY_TTL  # type: ignore[operator]
                self.writes += 1
                return WriteOutcome.WRITTEN
            # Not newer: a stub known only by its status is filled in by an older whole record.
            assert stored is not None
            fields = {k: v for k, v in change.attributes.items() if k != "status"}
            if change.full and fields and "created_at" not in stored:
                for name, value in fields.items():
                    stored.setdefault(name, copy.deepcopy(value))
                self.writes += 1
                return WriteOutcome.FILLED
            return WriteOutcome.UNCHANGED

    @staticmethod
    def _accepts(stored: dict[str, Any] | None, change: OrderChange) -> bool:
        if stored is None:
            return True
        version = stored.get(VERSION_ATTR)
        newer = (
            version is None
            or version < change.version
            or (version == change.version and stored.get(HASH_ATTR) != change.digest)
        )
        backwards = change.status == "unpaid" and stored.get("status", "unpaid") != "unpaid"
        return newer and not backwards


class FakeSecrets:
    """Route -> secret; a route without one is "not set" (the stack creates them empty)."""

    def __init__(self, secrets: dict[str, str] | None = None):
        self.secrets = dict(secrets or {})
        self.reads = 0

    def secret(self, route: str) -> str | None:
        self.reads += 1
        value = self.secrets.get(route)
        return value if value and value.strip() else None
