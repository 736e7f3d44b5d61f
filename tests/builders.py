"""The one place tests build orders, configs and instants (``from tests.builders import ...``).

Every order a test writes starts from ``order_record``: unpaid, three hours old at the standard
instant, a valid CN mobile. Tests override only what they are about.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from nudge.domain.config import Config, load_config
from nudge.domain.models import Order
from nudge.services.ports import OutgoingSms

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the default shop zone
# The standard instant: Monday 2026-11-23 10:00 in Shanghai, inside the default morning window
# (09:50-10:40), a workday on the CN calendar.
AT = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
MORNING_OPENS = datetime(2026, 11, 23, 9, 50, tzinfo=SHANGHAI)  # when that window's schedule fires
# Handler logs and metrics off, so a failing test's output is the test's own.
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order_record(*, age: timedelta = timedelta(hours=3), now: datetime = AT, **fields: Any) -> dict[str, Any]:
    """An order record as the shop writes it (JSON types; see docs/RULES.md, "The order record").

    Unpaid, placed ``age`` before ``now`` (3 h: past the 120-minute wait), a valid CN mobile;
    ``fields`` override or add any field.
    """
    record: dict[str, Any] = {
        "order_id": "o-1",
        "buyer_id": "b-1",
        "phone": "+8613800138000",
        "status": "unpaid",
        "created_at": (now - age).isoformat(),
        "amount": "100.00",
    }
    record.update(fields)
    return record


def numbered_order(
    i: int, *, created: datetime, phone_prefix: str = "+86138001380", **fields: Any
) -> dict[str, Any]:
    """Order ``o-<i>`` of buyer ``b-<i>`` with a phone of its own (``<phone_prefix><i:02d>``)."""
    numbered = {
        "order_id": f"o-{i}",
        "buyer_id": f"b-{i}",
        "phone": f"{phone_prefix}{i:02d}",
        "created_at": created.isoformat(),
        "amount": 100,
    }
    return order_record(**{**numbered, **fields})


def order_model(*, age: timedelta = timedelta(hours=3), now: datetime = AT, **fields: Any) -> Order:
    """``order_record`` as the parsed ``Order`` the pure rules and messages take (aware datetimes,
    ``Decimal`` amounts); ``fields`` are ``Order`` fields."""
    base: dict[str, Any] = {
        **order_record(age=age, now=now),
        "created_at": now - age,
        "amount": Decimal("100"),
    }
    return Order(**{**base, **fields})


def config(**sections: Any) -> Config:
    """The rules config with some sections or keys overridden, e.g. ``config(rules={"wait_minutes": 150})``."""
    return load_config(sections)


def outgoing(phone: str = "+8613800138000", text: str = "hi", **fields: Any) -> OutgoingSms:
    """One SMS as the sender hands it to a gateway (``SmsGateway.publish``)."""
    base: dict[str, Any] = {
        "order_id": "o-1",
        "attempt": 1,
        "claim_token": "token-1",
        "not_after": AT + timedelta(minutes=40),
        "handed_at": AT,
    }
    return OutgoingSms(phone=phone, text=text, **{**base, **fields})
