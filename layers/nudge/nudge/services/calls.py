"""The staff call list: large orders go to staff, not SMS (seeds 002, 003). After each window with
new calls, one digest goes to the staff topic: order id, amount, item, closing time, buyer name.

The digest is built by a pure function; it is published through the small ``StaffNotifier`` port.
A digest that cannot be published never stops the plan (its SMS are already queued): it comes
back as a warning, and `nudge calls` still lists the calls.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from nudge.domain.config import Config
from nudge.domain.messages import format_amount
from nudge.domain.models import InvalidOrder, Order
from nudge.services.ports import StaffNotifier

__all__ = [
    "DIGEST_MAX_LINES",
    "CallEntry",
    "build_digest",
    "call_entries",
    "send_call_digest",
]

DIGEST_MAX_LINES = 200  # an e-mail a person reads; the rest are in `nudge calls`
_NAME_MAX = 40


@dataclass(frozen=True, slots=True)
class CallEntry:
    order_id: str
    amount: Decimal
    currency: str
    item_title: str | None
    closes_at: datetime  # the earlier of the shop's closing time and the order's maximum age
    buyer_name: str | None


def staff_text(text: str | None, limit: int = _NAME_MAX) -> str | None:
    """Buyer-written text for a staff e-mail: no control, format (bidi, zero-width) characters."""
    if not text:
        return None
    kept = "".join(ch if not unicodedata.category(ch).startswith("C") else " " for ch in text)
    kept = " ".join(kept.split())
    return (kept[: limit - 1] + "…" if len(kept) > limit else kept) or None


def call_entries(
    records: Iterable[Order | InvalidOrder], call_ids: Sequence[str], *, config: Config
) -> list[CallEntry]:
    """The calls' orders, the one closing first at the top."""
    wanted = set(call_ids)
    max_age = timedelta(hours=config.rules.max_age_hours)
    out = []
    for order in records:
        if not isinstance(order, Order) or order.order_id not in wanted:
            continue
        closes = order.created_at + max_age
        if order.closes_at is not None and order.closes_at < closes:
            closes = order.closes_at
        out.append(
            CallEntry(
                order_id=order.order_id,
                amount=order.amount,
                currency=order.currency or config.shop.currency,
                item_title=staff_text(order.item_title, 60),
                closes_at=closes,
                buyer_name=staff_text(order.buyer_name),
            )
        )
    return sorted(out, key=lambda e: (e.closes_at, -e.amount, e.order_id))


def build_digest(
    entries: Sequence[CallEntry], *, window: str, now: datetime, config: Config
) -> tuple[str, str]:
    """(subject, body) of one window's digest. The subject is ASCII (SNS e-mail subjects must be)."""
    zone = config.shop.zone
    day = now.astimezone(zone).date()
    subject = f"Nudge: {len(entries)} order(s) to call ({window}, {day.isoformat()})"
    lines = [
        f"{config.shop.name}: {len(entries)} large order(s) to call in window {window} on {day.isoformat()} "
        f"({config.shop.timezone}). They get no SMS. Closing first at the top.",
        "",
    ]
    for e in entries[:DIGEST_MAX_LINES]:
        amount = format_amount(e.amount, e.currency, config.shop.locale)
        lines.append(
            f"- {e.order_id}  {amount}  closes {e.closes_at.astimezone(zone):%m-%d %H:%M}"
            f"  buyer: {e.buyer_name or '-'}  item: {e.item_title or '-'}"
        )
    if len(entries) > DIGEST_MAX_LINES:
        lines.append(f"... and {len(entries) - DIGEST_MAX_LINES} more: run `nudge calls`.")
    lines += ["", "When a call is made: nudge calls done ORDER --by NAME --note TEXT"]
    return subject[:99], "\n".join(lines)


def send_call_digest(
    notifier: StaffNotifier,
    records: Iterable[Order | InvalidOrder],
    call_ids: Sequence[str],
    *,
    window: str,
    now: datetime,
    config: Config,
) -> str | None:
    """Publish the digest of these new calls; returns a warning when it could not be sent."""
    entries = call_entries(records, call_ids, config=config)
    if not entries:
        return None
    subject, body = build_digest(entries, window=window, now=now, config=config)
    try:
        notifier.publish(subject, body)
    except Exception as exc:  # the SMS are queued already; staff still find the calls in `nudge calls`
        return f"staff call digest not sent ({len(entries)} calls): {type(exc).__name__}: {exc}"
    return None
