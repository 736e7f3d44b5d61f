"""The benchmark's synthetic shop (bench/generate.py): reproducible, realistic, in the rules contract's (docs/RULES.md) shape."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

# `bench` is a top-level package of the repository, not installed: pytest puts only tests/ on the path.
from bench.generate import SHARES, generate_orders, is_deliberately_invalid_phone
from nudge.domain.models import Order
from nudge.domain.orders import parse_order
from nudge.domain.phones import phone_info

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=CST)  # a Monday, inside the 09:50-10:40 window
N = 12_000


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return generate_orders(N, seed=7, now=NOW)


@pytest.fixture(scope="module")
def orders(records: list[dict]) -> list[Order]:
    parsed = [parse_order(r) for r in records]
    assert all(isinstance(o, Order) for o in parsed), [o for o in parsed if not isinstance(o, Order)][:3]
    return parsed  # type: ignore[return-value]


def test_same_seed_same_output() -> None:
    a = generate_orders(2_000, seed=42, now=NOW)
    b = generate_orders(2_000, seed=42, now=NOW)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    c = generate_orders(2_000, seed=43, now=NOW)
    assert a != c


def test_size_ids_and_order(records: list[dict]) -> None:
    assert len(records) == N
    assert len({r["order_id"] for r in records}) == N
    assert generate_orders(0, seed=1, now=NOW) == []
    assert len(generate_orders(1, seed=1, now=NOW)) == 1


def test_every_record_parses(orders: list[Order]) -> None:
    assert len(orders) == N  # the fixture asserts none is InvalidOrder


def test_only_the_deliberately_invalid_phones_are_invalid(records: list[dict], orders: list[Order]) -> None:
    invalid = 0
    for record, order in zip(records, orders, strict=True):
        valid = phone_info(order.phone, "CN").valid
        assert valid != is_deliberately_invalid_phone(record["phone"]), record["phone"]
        invalid += not valid
    share = invalid / N
    assert 0.002 < share < 0.03, share


def test_created_within_three_days_before_now(orders: list[Order]) -> None:
    ages = [NOW - o.created_at for o in orders]
    assert min(ages) > timedelta(0)
    assert max(ages) < timedelta(hours=72)
    days = Counter(o.created_at.astimezone(CST).date() for o in orders)
    assert len(days) == 4  # Friday 10:00 .. Monday 10:00, shop time
    offsets = Counter(o.created_at.utcoffset() for o in orders)
    assert offsets[timedelta(hours=8)] / N > 0.8
    assert offsets[timedelta(0)] > 0 and offsets[timedelta(hours=-5)] > 0


def _share(orders: list[Order], predicate) -> float:
    return sum(1 for o in orders if predicate(o)) / len(orders)


@pytest.mark.parametrize(
    ("name", "predicate", "target", "tolerance"),
    [
        ("paid", lambda o: o.status == "paid", SHARES["paid"], 0.02),
        ("unpaid", lambda o: o.status == "unpaid", 1 - SHARES["paid"] - SHARES["closed"], 0.02),
        ("distribution", lambda o: o.channel == "distribution", SHARES["distribution"], 0.01),
        ("cod", lambda o: o.payment_method == "cod", SHARES["cod"], 0.01),
        ("closes_at", lambda o: o.closes_at is not None, SHARES["closes_at"], 0.02),
        ("us", lambda o: o.phone.startswith("+1"), SHARES["us"], 0.03),
        ("large", lambda o: o.amount >= Decimal(1000), 0.015, 0.01),
        ("blocked/low_credit", lambda o: bool(o.buyer_flags & {"blocked", "low_credit"}), 0.02, 0.015),
    ],
)
def test_shares(orders: list[Order], name: str, predicate, target: float, tolerance: float) -> None:
    assert abs(_share(orders, predicate) - target) <= tolerance, name


def test_buyers_repeat_zipf_like(orders: list[Order]) -> None:
    per_buyer = Counter(o.buyer_id for o in orders)
    assert N / 4 < len(per_buyer) < N / 2.2  # about n/3 buyers
    counts = sorted(per_buyer.values(), reverse=True)
    singles = sum(1 for c in counts if c == 1)
    assert singles / len(counts) > 0.4  # most buyers order once ...
    assert counts[0] >= 20  # ... a few order a lot


def test_same_day_multi_orders(orders: list[Order]) -> None:
    per_buyer_day = Counter((o.buyer_id, o.created_at.astimezone(CST).date()) for o in orders)
    multi = sum(1 for c in per_buyer_day.values() if c > 1)
    assert multi / len(per_buyer_day) > 0.15
    unpaid_twice = Counter(
        (o.buyer_id, o.created_at.astimezone(CST).date()) for o in orders if o.status == "unpaid"
    )
    assert sum(1 for c in unpaid_twice.values() if c > 1) > 50  # "superseded" gets exercised


def test_amount_forms_and_phone_forms(records: list[dict]) -> None:
    kinds = Counter(type(r["amount"]).__name__ for r in records)
    assert {"str", "int", "float"} <= set(kinds)
    assert sum(1 for r in records if r["phone"].startswith("1")) > 0  # national CN numbers
    assert sum(1 for r in records if r["phone"].startswith("+86")) / N > 0.6
