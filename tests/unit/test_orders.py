"""The order record contract: a bad field becomes `invalid_order` naming it; good lines still parse."""

import json
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


# ---- bounds: no later arithmetic can fail on a parsed order ------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        # Converting this one to UTC would overflow past year 9999.
        ({"created_at": "9999-12-31T23:00:00-05:00"}, "created_at", "year 9999 is outside 2000-2199"),
        ({"created_at": "0001-01-01T00:00:00+05:00"}, "created_at", "year 1 is outside"),
        ({"paid_at": "2200-01-01T00:00:00+00:00"}, "paid_at", "year 2200 is outside"),
        ({"closes_at": "1999-12-31T23:59:00+08:00"}, "closes_at", "year 1999 is outside"),
        ({"amount": "-0"}, "amount", "must be >= 0, got -0"),
        ({"amount": -0.0}, "amount", "must be >= 0"),
        ({"amount": "1000000000000.01"}, "amount", "must be at most 1,000,000,000,000"),
        ({"amount": 10**30}, "amount", "must be at most"),
        ({"amount": 10**5000}, "amount", "not a number"),  # past the int-to-text digit limit
        ({"amount": "1e999999"}, "amount", "must be at most"),
        ({"currency": "ДЕН"}, "currency", "ISO 4217"),  # letters, but not A-Z
        ({"currency": "元元元"}, "currency", "ISO 4217"),
        ({"currency": "US1"}, "currency", "ISO 4217"),
        ({"buyer_name": "a\ud800b"}, "buyer_name", "unpaired surrogate"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(change, field, problem):
    result = parse_order({**GOOD, **change})
    assert isinstance(result, InvalidOrder)
    assert (result.field, result.order_id) == (field, "o-1")
    assert problem in result.problem


def test_the_bounds_themselves_are_accepted():
    for change in (
        {"created_at": "2000-01-01T00:00:00+00:00"},
        {"closes_at": "2199-12-31T23:59:59-12:00"},
        {"amount": "1000000000000"},
        {"amount": "0"},
        {"currency": "usd"},
    ):
        assert isinstance(parse_order({**GOOD, **change}), Order), change
    assert parse_order({**GOOD, "currency": "usd"}).currency == "USD"


def test_an_order_id_that_is_not_clean_text_is_not_reported_as_the_id():
    result = parse_order({**GOOD, "order_id": "o-\udc80"})
    assert isinstance(result, InvalidOrder) and result.order_id is None and result.field == "order_id"


def test_raw_lines_each_decoded_on_their_own():
    good = json.dumps(GOOD).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    lines = [
        b"\xef\xbb\xbf" + good,  # a UTF-8 byte order mark before the first line
        b'{"order_id": "o-\xff"}',
        deep,
        b'{"order_id": "o-big", "amount": ' + b"9" * 5000 + b"}",
        json.dumps({**GOOD, "order_id": "o-2"}).encode(),
    ]
    results = list(read_orders_jsonl(lines))
    assert [getattr(r, "order_id", None) for r in results] == ["o-1", None, None, None, "o-2"]
    assert isinstance(results[0], Order) and isinstance(results[4], Order)
    assert "not UTF-8 text (byte 0xff at column 17)" in results[1].problem
    assert results[2].problem == "JSON nested too deeply"
    assert "not usable JSON" in results[3].problem and results[3].line == 4


def test_a_text_bom_is_ignored_too():
    assert isinstance(next(read_orders_jsonl(["\ufeff" + json.dumps(GOOD)])), Order)


def test_history_may_hold_a_line_separator_inside_a_string_and_start_with_a_bom():
    line = json.dumps(
        {
            "order_id": "o-1\u2028x",
            "buyer_id": "b-1",
            "phone": "+8613800138000",
            "sent_at": "2026-11-22T10:00:00+08:00",
            "attempt": 1,
        },
        ensure_ascii=False,
    )
    text = "\ufeff" + line + "\n" + line.replace("o-1", "o-2") + "\n"
    history = read_history_jsonl(text.split("\n"))
    assert [h.order_id for h in history] == ["o-1\u2028x", "o-2\u2028x"]
    with pytest.raises(HistoryError):  # what str.splitlines would have made of it
        read_history_jsonl(text.splitlines())


def test_history_json_nested_too_deeply_is_a_history_error():
    with pytest.raises(HistoryError, match="history line 1: record: JSON nested too deeply"):
        read_history_jsonl(["[" * 100_000 + "]" * 100_000])


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"order_id": "x" * 1025}, "order_id", "longer than 1024 bytes"),
        ({"order_id": "訂" * 342}, "order_id", "longer than 1024 bytes"),  # 1026 bytes in UTF-8
        ({"buyer_id": "b" * 1025}, "buyer_id", "longer than 1024 bytes"),
        ({"phone": "1" * 257}, "phone", "longer than 256 bytes"),
        ({"item_title": "t" * 4097}, "item_title", "longer than 4096 bytes"),
        ({"buyer_name": "名" * 1366}, "buyer_name", "longer than 4096 bytes"),
        ({"pay_url": "https://x/" + "p" * 5000}, "pay_url", "longer than 4096 bytes"),
        ({"buyer_flags": [f"f{i}" for i in range(65)]}, "buyer_flags", "more than 64 flags"),
        ({"buyer_flags": ["f" * 257]}, "buyer_flags", "longer than 256 bytes"),
        ({"amount": "1.0000000000001"}, "amount", "more than 12 digits after the point"),
        ({"amount": "1E-200"}, "amount", "more than 12 digits after the point"),
    ],
)
def test_values_the_orders_table_cannot_hold_are_named(change, field, problem):
    """Every record that parses can be stored: keys under DynamoDB's 2048 bytes, items far under
    400 KB, numbers within its 38 digits."""
    result = parse_order({**GOOD, **change})
    assert isinstance(result, InvalidOrder) and result.field == field and problem in result.problem


def test_values_at_the_bounds_still_parse():
    at_bounds = {
        "order_id": "x" * 1024,
        "buyer_id": "訂" * 341,
        "item_title": "t" * 4096,
        "buyer_flags": [f"{i:0256d}" for i in range(64)],
        "amount": "1000000000000.000000000000",
    }
    assert isinstance(parse_order({**GOOD, **at_bounds}), Order)
    assert isinstance(parse_order({**GOOD, "amount": "0.000000000001"}), Order)
