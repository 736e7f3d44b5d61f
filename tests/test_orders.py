"""The order record contract: a bad field becomes `invalid_order` naming it; good lines still parse."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from nudge.domain.models import InvalidOrder, Order
from nudge.domain.orders import HistoryError, parse_order, read_history_jsonl, read_orders_jsonl

GOOD = {
    "order_id": "o-1",
    "buyer_id": "b-1",
    "phone": "+8613800138000",
    "status": "unpaid",
    "created_at": "2026-11-23T07:00:00+08:00",
    "amount": "199.00",
}


def test_a_valid_record_parses_with_defaults():
    order = parse_order(GOOD)
    assert isinstance(order, Order)
    assert order.amount == Decimal("199.00")
    assert order.created_at == datetime(2026, 11, 23, 7, tzinfo=timezone(timedelta(hours=8)))
    assert (order.channel, order.payment_method, order.currency, order.buyer_flags) == (
        "direct",
        "online",
        None,
        frozenset(),
    )


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"phone": None}, "phone", "missing"),
        ({"phone": ""}, "phone", "missing"),
        ({"order_id": None}, "order_id", "missing"),
        ({"buyer_id": 7}, "buyer_id", "must be a string"),
        ({"amount": -5}, "amount", "must be >= 0"),
        ({"amount": "abc"}, "amount", "not a number"),
        ({"amount": "NaN"}, "amount", "not a number"),
        ({"amount": True}, "amount", "must be a number"),
        ({"amount": None}, "amount", "missing"),
        ({"status": "pending"}, "status", "unknown status"),
        ({"created_at": "2026-11-23T07:00:00"}, "created_at", "needs a UTC offset"),
        ({"created_at": "yesterday"}, "created_at", "not an ISO-8601"),
        ({"closes_at": "soon"}, "closes_at", "not an ISO-8601"),
        ({"payment_method": "card"}, "payment_method", "expected online or cod"),
        ({"buyer_flags": "blocked"}, "buyer_flags", "list of strings"),
        ({"currency": "yuan"}, "currency", "ISO 4217"),
    ],
)
def test_a_broken_field_is_named_with_its_problem(change, field, problem):
    result = parse_order({**GOOD, **change})
    assert isinstance(result, InvalidOrder)
    assert result.field == field
    assert problem in result.problem


def test_amount_accepts_numbers_strings_and_decimals():
    for value in (0, 12, 12.5, "12.50", Decimal("12.50")):
        assert isinstance(parse_order({**GOOD, "amount": value}), Order)


def test_bad_json_lines_are_invalid_and_good_lines_still_parse():
    lines = [
        '{"order_id": "o-1"',
        "",
        '{"order_id": "o-2", "buyer_id": "b", "phone": "1", '
        '"status": "paid", "created_at": "2026-11-23T07:00:00Z", "amount": 1}',
        "[1, 2]",
    ]
    results = list(read_orders_jsonl(lines))
    assert [type(r).__name__ for r in results] == ["InvalidOrder", "Order", "InvalidOrder"]
    assert results[0].line == 1 and "not valid JSON" in results[0].problem
    assert results[2].field == "record" and results[2].line == 4


def test_history_lines_parse_and_a_bad_one_names_its_line_and_field():
    ok = '{"order_id": "o-1", "buyer_id": "b-1", "phone": "+8613800138000", "sent_at": "2026-11-22T10:00:00+08:00", "attempt": 1}'
    assert read_history_jsonl([ok])[0].attempt == 1
    with pytest.raises(HistoryError, match="history line 2: attempt"):
        read_history_jsonl([ok, ok.replace('"attempt": 1', '"attempt": 0')])
