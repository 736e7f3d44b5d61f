"""The report's statistics and aggregation: Newcombe's interval against published examples, and
report rows that add up to the totals."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from nudge.domain.outcomes import HoldoutMark, Outcome, SmsSent
from nudge.domain.report import ADDITIVE, build_report, recovered_orders, roi
from nudge.domain.stats import newcombe, wilson
from tests.builders import SHANGHAI

# Newcombe (1998) Statistics in Medicine 17:873-890, Table II, method 10 (4 decimals as printed);
# (a), (b), (g) are also DescTools' tests (WUSS 2016 / SAS PROC FREQ), (d) ratesci's.
NEWCOMBE_TABLE_II = [
    (56, 70, 48, 80, 0.0524, 0.3339),  # (a)
    (9, 10, 3, 10, 0.1705, 0.8090),  # (b)
    (6, 7, 2, 7, 0.0582, 0.8062),  # (c)
    (5, 56, 0, 29, -0.0381, 0.1926),  # (d)
    (0, 10, 0, 20, -0.1611, 0.2775),  # (e)
    (0, 10, 0, 10, -0.2775, 0.2775),  # (f)
    (10, 10, 0, 20, 0.6791, 1.0000),  # (g)
    (10, 10, 0, 10, 0.6075, 1.0000),  # (h)
]
# Other published values at the precision their sources print.
OTHER_REFERENCES = [
    (84, 101, 89, 105, -0.1177, 0.0851, 4),  # DescTools tests (HIV trial, SAS PROC FREQ)
    (3, 29, 6, 36, -0.2298067, 0.1197196, 7),  # mergeron-extra's comparison to R
    (0, 10, 0, 20, -0.16112516, 0.27753280, 8),
    (10, 10, 20, 20, -0.27753280, 0.16112516, 8),
]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "lo", "hi"), NEWCOMBE_TABLE_II)
def test_newcombe_table_ii_method_10(x1, n1, x2, n2, lo, hi):
    r = newcombe(x1, n1, x2, n2)
    assert r.difference == pytest.approx(x1 / n1 - x2 / n2, abs=1e-12)
    assert round(r.lower, 4) == pytest.approx(lo, abs=1e-9)
    assert round(r.upper, 4) == pytest.approx(hi, abs=1e-9)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "lo", "hi", "digits"), OTHER_REFERENCES)
def test_newcombe_other_references(x1, n1, x2, n2, lo, hi, digits):
    r = newcombe(x1, n1, x2, n2)
    assert r.lower == pytest.approx(lo, abs=0.5 * 10**-digits)
    assert r.upper == pytest.approx(hi, abs=0.5 * 10**-digits)


def test_fagerland_example():  # statsmodels' test, Fagerland et al. 2015: 0.019 to 0.340
    r = newcombe(7, 34, 1, 34)
    assert r.lower == pytest.approx(0.019, abs=0.005) and r.upper == pytest.approx(0.340, abs=0.005)


@pytest.mark.parametrize(
    ("x", "n", "lo", "hi"), [(0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718), (15, 148, 0.0624, 0.1605)]
)
def test_wilson_examples_from_newcombe_1998(x, n, lo, hi):
    r = wilson(x, n)
    assert (round(r.lower, 4), round(r.upper, 4)) == (lo, hi)


def test_interval_input_errors():
    with pytest.raises(ValueError, match="trials"):
        wilson(0, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson(5, 4)
    with pytest.raises(TypeError):
        wilson(True, 4)
    with pytest.raises(ValueError, match="confidence"):
        newcombe(1, 2, 1, 2, confidence=1.0)


# ----------------------------------------------------------------------------------- the report

ZONE = SHANGHAI
DAY = date(2026, 11, 23)
PRICE = Decimal("0.045")
W1, W2 = "09:50-10:40", "15:00-16:50"


def at(day_offset: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, 23, hh, mm, tzinfo=ZONE) + timedelta(days=day_offset)


def sms(oid, attempt, when, window=W1, segments=1):
    return SmsSent(oid, attempt, when, window, segments)


def outcome(oid, attempt, sms_at, minutes, amount="100", currency="CNY", window=W1, holdout=False):
    return Outcome(
        order_id=oid,
        holdout=holdout,
        attempt=attempt,
        sms_at=sms_at,
        paid_at=sms_at + timedelta(minutes=minutes),
        minutes_to_pay=float(minutes),
        amount=Decimal(amount),
        currency=currency,
        window=window,
        attribution_hours=72,
    )


def report(sms_records, outcomes, held_out=(), days=7, **kw):
    return build_report(
        sms=sms_records,
        outcomes=outcomes,
        held_out=held_out,
        first_day=DAY,
        last_day=DAY + timedelta(days=days - 1),
        zone=ZONE,
        price_per_segment=PRICE,
        currency="CNY",
        **kw,
    )


def assert_rows_add_up(r):
    for key in ("by_day", "by_window", "by_attempt"):
        for field in ADDITIVE:
            if field == "recovered":
                sums: dict[str, Decimal] = {}
                for row in r[key]:
                    for cur, amount in row["recovered"].items():
                        sums[cur] = sums.get(cur, Decimal(0)) + Decimal(amount)
                assert sums == {c: Decimal(a) for c, a in r["recovered"].items()}, key
            elif field == "cost":
                assert sum(Decimal(row["cost"]) for row in r[key]) == Decimal(r["cost"]), key
            else:
                assert sum(row[field] for row in r[key]) == r[field], (key, field)


def test_json_keys_are_the_contract():
    r = report([sms("a", 1, at(0, 10))], [])
    assert list(r) == [
        "from", "to", "reminded", "sms", "segments", "cost", "paid", "paid_rate", "recovered",
        "median_minutes_to_pay", "cost_currency", "holdout", "by_day", "by_window", "by_attempt", "by_variant",
    ]  # fmt: skip
    assert r["from"] == "2026-11-23" and r["to"] == "2026-11-29" and r["holdout"] is None


def test_a_small_shop_week():
    a1, a2 = at(0, 10), at(0, 15, 30)
    records = [
        sms("a", 1, a1, segments=2),
        sms("a", 2, a2, W2, segments=2),  # reminded twice, paid after the second
        sms("b", 1, a1),  # paid after the first
        sms("c", 1, at(1, 10)),  # never paid
    ]
    outs = [outcome("a", 2, a2, 30, "250.50", window=W2), outcome("b", 1, a1, 90, "99.90")]
    r = report(records, outs)
    assert (r["reminded"], r["sms"], r["segments"], r["paid"]) == (3, 4, 6, 2)
    assert r["cost"] == "0.270" and r["recovered"] == {"CNY": "350.40"}
    assert r["paid_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["median_minutes_to_pay"] == 60.0
    attempts = {row["attempt"]: row for row in r["by_attempt"]}
    # "a" counts once, under reminder 2, the one its payment is credited to; its first SMS still
    # counts as an SMS of reminder 1.
    assert (attempts[1]["reminded"], attempts[1]["sms"], attempts[1]["paid"]) == (2, 3, 1)
    assert (attempts[2]["reminded"], attempts[2]["sms"], attempts[2]["paid"]) == (1, 1, 1)
    days = {row["day"]: row for row in r["by_day"]}
    assert days["2026-11-23"]["paid"] == 2 and days["2026-11-24"]["reminded"] == 1
    assert days["2026-11-23"]["roi"] == pytest.approx(float(Decimal("350.40") / Decimal("0.225")), abs=0.01)
    assert roi(r, "CNY") == pytest.approx(float(Decimal("350.40") / Decimal("0.270")), abs=0.01)
    assert_rows_add_up(r)


def test_outside_the_period_is_left_out():
    records = [sms("old", 1, at(-1, 10)), sms("in", 1, at(0, 10)), sms("late", 1, at(7, 10))]
    outs = [outcome("old", 1, at(-1, 10), 10), outcome("in", 1, at(0, 10), 10)]
    r = report(records, outs)
    assert (r["reminded"], r["paid"]) == (1, 1)
    # Paid after a reminder sent before the period (credited there), reminded again inside: the
    # order counts as reminded here, not as paid.
    r = report([sms("x", 1, at(-1, 15)), sms("x", 2, at(0, 10))], [outcome("x", 1, at(-1, 15), 5)])
    assert (r["reminded"], r["paid"]) == (1, 0)


def test_currencies_are_kept_apart_and_roi_counts_the_cost_currency_only():
    records = [sms("a", 1, at(0, 10)), sms("b", 1, at(0, 10))]
    outs = [outcome("a", 1, at(0, 10), 5, "10", "USD"), outcome("b", 1, at(0, 10), 5, "100", "CNY")]
    r = report(records, outs)
    assert r["recovered"] == {"CNY": "100", "USD": "10"}
    assert r["by_day"][0]["roi"] == pytest.approx(100 / 0.09, abs=0.01)


def test_nothing_sent():
    r = report([], [])
    assert (r["reminded"], r["sms"], r["cost"], r["paid_rate"], r["median_minutes_to_pay"]) == (
        0,
        0,
        "0",
        None,
        None,
    )
    assert r["by_day"] == [] and r["holdout"] is None


def test_holdout_under_100_orders_per_arm_is_not_enough_data():
    records = [sms(f"r{i}", 1, at(0, 10)) for i in range(150)]
    held = [HoldoutMark(f"h{i}", at(0, 10), at(0, 10), W1) for i in range(99)]
    outs = [outcome("h1", None, at(0, 10), 20, holdout=True)]
    h = report(records, outs, held)["holdout"]
    assert h == {"orders": 99, "paid": 1, "paid_rate": round(1 / 99, 4), "lift": None, "ci95": None}


def test_holdout_lift_with_newcombe_interval():
    # Newcombe's example (a) as a shop: 56 of 70 reminded paid... scaled to 100+ per arm.
    records = [sms(f"r{i}", 1, at(0, 10)) for i in range(140)]
    outs = [outcome(f"r{i}", 1, at(0, 10), 30) for i in range(112)]
    held = [HoldoutMark(f"h{i}", at(0, 10), at(0, 15), W1) for i in range(160)]
    outs += [outcome(f"h{i}", None, at(0, 15), 60, holdout=True) for i in range(96)]
    r = report(records, outs, held)
    h = r["holdout"]
    assert (h["orders"], h["paid"], h["paid_rate"]) == (160, 96, 0.6)
    assert h["lift"] == pytest.approx(0.2)
    expected = newcombe(112, 140, 96, 160)
    assert h["ci95"] == [round(expected.lower, 4), round(expected.upper, 4)]
    assert h["ci95"][0] < 0.2 < h["ci95"][1]
    # Held-out payments are not recovered revenue: the totals count reminded orders only.
    assert r["paid"] == 112 and r["recovered"] == {"CNY": str(112 * 100)}


def test_random_shops_add_up():
    rng = random.Random(7)
    for _ in range(30):
        records, outs = [], []
        for n in range(rng.randrange(1, 60)):
            first = at(rng.randrange(-2, 9), rng.choice((10, 15)), rng.randrange(0, 40))
            sends = [sms(f"o{n}", 1, first, rng.choice((W1, W2)), rng.randrange(1, 3))]
            if rng.random() < 0.4:
                sends.append(sms(f"o{n}", 2, first + timedelta(hours=rng.randrange(5, 48)), W2, 2))
            records += sends
            if rng.random() < 0.5:
                credited = rng.choice(sends)
                outs.append(outcome(f"o{n}", credited.attempt, credited.sent_at, rng.randrange(1, 600),
                                    str(rng.randrange(1, 999)), rng.choice(("CNY", "USD"))))  # fmt: skip
        r = report(records, outs)
        assert_rows_add_up(r)
        assert r["paid"] <= r["reminded"] <= r["sms"]


def test_recovered_orders_are_the_ones_counted():
    records = [sms("a", 1, at(0, 10)), sms("b", 1, at(-3, 10))]
    outs = [
        outcome("a", 1, at(0, 10), 5),
        outcome("b", 1, at(-3, 10), 5),
        outcome("h", None, at(0, 10), 5, holdout=True),
    ]
    listed = recovered_orders(outs, records, first_day=DAY, last_day=DAY, zone=ZONE)
    assert [o.order_id for o in listed] == ["a"]


def test_bad_period():
    with pytest.raises(ValueError, match="last_day"):
        build_report(sms=[], outcomes=[], first_day=DAY, last_day=DAY - timedelta(days=1), zone=ZONE,
                     price_per_segment=PRICE, currency="CNY")  # fmt: skip


# ------------------------------------------------------------------------- by text variant


def variant_week(counts: dict[str | None, tuple[int, int]]) -> tuple[list[SmsSent], list[Outcome]]:
    """``counts``: variant -> (orders reminded, orders paid); one SMS per order."""
    records, paid = [], []
    for name, (n, k) in counts.items():
        for i in range(n):
            oid = f"{name}-{i}"
            s = SmsSent(order_id=oid, attempt=1, sent_at=at(i % 7, 10), window=W1, segments=1, variant=name)
            records.append(s)
            if i < k:
                paid.append(replace(outcome(oid, 1, s.sent_at, 30), variant=name))
    return records, paid


def test_no_variant_no_rows():
    r = report([sms("a", 1, at(0, 10))], [])
    assert r["by_variant"] == []


def test_each_variant_is_compared_with_the_first_configured_with_newcombe():
    records, paid = variant_week({"urgent": (150, 45), "caring": (160, 64)})
    r = report(records, paid, variants=["caring", "urgent"])  # the config lists caring first
    rows = {row["variant"]: row for row in r["by_variant"]}
    assert [row["variant"] for row in r["by_variant"]] == ["caring", "urgent"]
    assert rows["caring"]["diff"] is None and rows["caring"]["ci95"] is None  # the baseline
    ci = newcombe(45, 150, 64, 160)
    assert rows["urgent"]["diff"] == round(ci.difference, 4) == round(45 / 150 - 64 / 160, 4)
    assert rows["urgent"]["ci95"] == [round(ci.lower, 4), round(ci.upper, 4)]
    assert (rows["urgent"]["reminded"], rows["urgent"]["paid"], rows["urgent"]["paid_rate"]) == (150, 45, 0.3)


def test_a_baseline_with_no_sms_keeps_its_row_and_nothing_is_compared_with_another_variant():
    records, paid = variant_week({"b": (150, 30), "c": (150, 60)})
    rows = report(records, paid, variants=["a", "b", "c"])["by_variant"]
    assert [row["variant"] for row in rows] == ["a", "b", "c"]
    assert (rows[0]["reminded"], rows[0]["paid_rate"], rows[0]["diff"]) == (0, None, None)
    assert all(row["diff"] is None and row["ci95"] == "not enough data" for row in rows[1:])


def test_under_100_orders_a_variant_is_not_enough_data():
    records, paid = variant_week({"a": (150, 30), "b": (99, 30)})
    rows = {row["variant"]: row for row in report(records, paid, variants=["a", "b"])["by_variant"]}
    assert rows["b"]["diff"] is None and rows["b"]["ci95"] == "not enough data"


def test_variant_rows_add_up_to_the_totals_with_sms_sent_before_the_test():
    records, paid = variant_week({None: (20, 5), "a": (30, 10), "b": (40, 8)})
    r = report(records, paid, variants=["a", "b"])
    assert [row["variant"] for row in r["by_variant"]] == ["a", "b", None]
    for field in ("reminded", "sms", "segments", "paid"):
        assert sum(row[field] for row in r["by_variant"]) == r[field], field
    assert sum(Decimal(row["cost"]) for row in r["by_variant"]) == Decimal(r["cost"])


# ------------------------------------------------------------------- holdout, analysed as assigned


def test_a_held_out_order_texted_later_counts_in_the_holdout_group_only():
    """The share went to 0 after "h" was held out: "h" was texted and paid. An outcome recorded
    before the as-assigned rule credited that payment to the SMS; either way it is the holdout's."""
    mark = HoldoutMark("h", first_at=at(0, 10), last_at=at(0, 10), window=W1)
    records = [sms("a", 1, at(0, 10)), sms("h", 1, at(1, 10))]
    for credited_to_the_sms in (True, False):
        paid = outcome(
            "h", 1 if credited_to_the_sms else None, at(1, 10), 20, holdout=not credited_to_the_sms
        )
        r = report(records, [paid], held_out=[mark])
        assert (r["reminded"], r["paid"], r["recovered"]) == (1, 0, {})  # only "a" was reminded
        assert (r["holdout"]["orders"], r["holdout"]["paid"]) == (1, 1)
        assert (r["sms"], r["segments"]) == (2, 2)  # "h"'s SMS still cost money
        assert r["cost_currency"] == "CNY"
        listed = recovered_orders(
            [paid], records, first_day=DAY, last_day=DAY + timedelta(days=6), zone=ZONE, held_out=[mark]
        )
        assert listed == []  # `nudge report --orders` agrees with the totals


# ------------------------------------------------------------------------ delivery receipts


def test_without_receipts_the_report_says_nothing_about_delivery():
    assert "delivered" not in report([sms("a", 1, at(0, 10))], [])


def test_delivery_figures_from_receipts():
    sent = [
        replace(sms("a", 1, at(0, 10)), delivery="delivered", delivery_code="DELIVERED"),
        replace(sms("b", 1, at(0, 10)), delivery="delivered", delivery_code="DELIVERED"),
        replace(sms("c", 1, at(0, 10)), delivery="failed", delivery_code="CARRIER_UNREACHABLE"),
        replace(sms("d", 1, at(0, 10)), delivery="blocked", delivery_code="SPAM"),
        replace(sms("e", 1, at(0, 10)), delivery="expired", delivery_code="TTL_EXPIRED"),
        replace(sms("f", 1, at(0, 10)), delivery="pending", delivery_code="PENDING"),  # on its way
        sms("g", 1, at(0, 10)),  # no receipt yet
        replace(sms("h", 1, at(0, 10)), delivery="unknown", delivery_code="NO_RECEIPT_72H"),
    ]
    r = report(sent, [outcome("a", 1, at(0, 10), 15), outcome("c", 1, at(0, 10), 30)])
    assert (r["delivered"], r["expired"], r["unknown"]) == (2, 1, 1)
    assert r["failed"] == {"CARRIER_UNREACHABLE": 1, "SPAM": 1}  # unknown is not a failure
    assert r["delivery_rate"] == round(2 / 6, 4)  # of the SMS with a final status, unknown included
    assert r["recovered_delivered"] == 1  # "c" paid too, but its SMS was not delivered
