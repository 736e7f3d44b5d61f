"""Fuzz: `nudge plan` on arbitrary bytes and arbitrary JSON lines, and the plan function's item
parsing on arbitrary DynamoDB items. Never a traceback; good orders mixed in are decided as alone."""

from __future__ import annotations

import io
import json
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudge.adapters.dynamo_io import item_from_ddb
from nudge.domain.config import load_config
from nudge.domain.models import InvalidOrder, Order
from nudge.domain.orders import parse_order
from nudge.domain.rules import plan_reminders
from nudge_cli.cli import main

AT = "2026-11-23T10:00:00+08:00"
GOOD = {
    "order_id": "o-good",
    "buyer_id": "b-good",
    "phone": "+8613800138000",
    "status": "unpaid",
    "created_at": "2026-11-23T07:00:00+08:00",
    "amount": "199.00",
    "buyer_name": "王芳",
}
GOOD_LINE = json.dumps(GOOD, ensure_ascii=False).encode()
FIELDS = [
    "order_id",
    "buyer_id",
    "phone",
    "status",
    "created_at",
    "amount",
    "currency",
    "channel",
    "payment_method",
    "paid_at",
    "closes_at",
    "buyer_flags",
    "buyer_name",
    "item_title",
    "pay_url",
]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def plan_file(content: bytes, *, json_out: bool = True) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.jsonl"
        path.write_bytes(content)
        out = io.StringIO()
        code = main(["plan", "--orders", str(path), "--at", AT, *(["--json"] if json_out else [])], out=out)
    return code, out.getvalue()


_, _ALONE = plan_file(GOOD_LINE)
GOOD_DECISION = json.loads(_ALONE)["decisions"][0]
assert GOOD_DECISION["action"] == "send"


def check_mixed(fuzz: bytes, json_out: bool) -> None:
    code, out = plan_file(GOOD_LINE + b"\n" + fuzz, json_out=json_out)
    assert code == 0
    if json_out:
        decisions = json.loads(out)["decisions"]
        assert decisions[0] == GOOD_DECISION
    else:
        assert out.rstrip().splitlines()[-1].endswith(")") or " orders: " in out


@FUZZ
@given(fuzz=st.binary(max_size=400), json_out=st.booleans())
def test_plan_never_fails_on_raw_bytes(fuzz, json_out):
    check_mixed(fuzz, json_out)


# Values that have broken parsers before: far dates, odd offsets, huge and odd numbers, markup,
# control and bidi characters, URLs.
HOSTILE_TEXT = st.sampled_from(
    [
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+14:00",
        "2026-11-23T07:00:00+08:00",
        "2026-11-23T07:00:00",
        "-0",
        "1e999999",
        "NaN",
        "sNaN",
        "[/]",
        "[bold]",
        "\x1b[31m",
        "\u202e",
        "\u200b",
        "\ud800",
        "https://evil.example/x",
        "unpaid",
        "paid",
        "cod",
        "ДЕН",
        "",
    ]
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**20, max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | HOSTILE_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ORDER_LIKE = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=len(FIELDS))
# Mostly-good orders with one or two fields replaced: they reach the rules, not just the parser.
NEAR_GOOD = st.builds(
    lambda i, changes: {
        **GOOD,
        "order_id": f"o-{i}",
        "buyer_id": f"b-{i}",
        "phone": "+8613800138001",
        **changes,
    },
    st.integers(0, 50),
    st.dictionaries(st.sampled_from(FIELDS[1:]), JSON_VALUES, max_size=2),
)


def _dump(value, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@FUZZ
@given(
    records=st.lists(JSON_VALUES | ORDER_LIKE | NEAR_GOOD, max_size=6),
    ascii_only=st.booleans(),
    json_out=st.booleans(),
)
def test_plan_never_fails_on_arbitrary_json_lines(records, ascii_only, json_out):
    fuzz = b"\n".join(_dump(r, ascii_only) for r in records)
    check_mixed(fuzz, json_out)


# ---- DynamoDB items, as the plan function reads them -----------------------------------------

# What DynamoDB can hold and return: up to 38 significant digits.
NUMBERS = st.integers(-(10**38) + 1, 10**38 - 1).map(str) | st.decimals(
    min_value=-(10**30), max_value=10**30, allow_nan=False, allow_infinity=False, places=4
).map(str)
SCALAR_ATTRS = (
    st.builds(lambda s: {"S": s}, st.text(max_size=20) | HOSTILE_TEXT)
    | st.builds(lambda n: {"N": n}, NUMBERS)
    | st.builds(lambda b: {"B": b}, st.binary(max_size=8))
    | st.builds(lambda b: {"BOOL": b}, st.booleans())
    | st.just({"NULL": True})
    | st.builds(lambda v: {"SS": sorted(v)}, st.sets(st.text(max_size=5), min_size=1, max_size=3))
    | st.builds(lambda v: {"NS": sorted(v)}, st.sets(NUMBERS, min_size=1, max_size=3))
    | st.builds(lambda v: {"BS": sorted(v)}, st.sets(st.binary(max_size=4), min_size=1, max_size=3))
)
ATTRS = st.recursive(
    SCALAR_ATTRS,
    lambda inner: (
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3))
        | st.builds(lambda v: {"M": v}, st.dictionaries(st.text(max_size=6), inner, max_size=3))
    ),
    max_leaves=8,
)
GOOD_ITEM = {k: {"S": v} for k, v in GOOD.items()} | {"amount": {"N": "199.00"}}


@FUZZ
@given(
    items=st.lists(
        st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), ATTRS, max_size=8), max_size=5
    )
)
def test_item_parsing_never_raises_and_good_items_are_decided_as_alone(items):
    records = [parse_order(item_from_ddb(item)) for item in [GOOD_ITEM, *items]]
    assert all(isinstance(r, Order | InvalidOrder) for r in records)
    good = records[0]
    assert isinstance(good, Order) and good.amount == Decimal("199.00")
    now = __import__("datetime").datetime.fromisoformat(AT)
    plan = plan_reminders(records, now=now, config=CONFIG)
    assert plan.decisions[0].to_json() == GOOD_DECISION


CONFIG = load_config()
