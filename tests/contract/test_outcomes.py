"""Outcomes: which payments a reminder earns, recorded once per order (fakes and moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from nudge.adapters.ledger import DynamoReminderLedger
from nudge.adapters.outcomes import DynamoOutcomeStore
from nudge.domain.outcomes import HoldoutMark, Payment, SmsSent, attribute_payment
from nudge.services.outcomes import BadPaymentError, OutcomeRecorder, OutcomeResult, payment_from_change
from nudge.services.ports import SendRequest
from tests.fakes import FakeReminderLedger
from tests.fakes_outcomes import FakeOutcomeStore

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
W1 = "09:50-10:40"


def sms(attempt, at, window=W1):
    return SmsSent("o1", attempt, at, window, 1)


def pay(at, amount="199.00", oid="o1"):
    return Payment(oid, at, Decimal(amount), "CNY")


# ------------------------------------------------------------------------------- attribution


def test_paid_after_the_sms_is_credited_to_it():
    o = attribute_payment(pay(T0 + timedelta(minutes=42)), [sms(1, T0)], None, attribution_hours=72)
    assert o is not None and (o.attempt, o.sms_at, o.minutes_to_pay, o.holdout) == (1, T0, 42.0, False)
    assert (o.amount, o.currency, o.window, o.attribution_hours) == (Decimal("199.00"), "CNY", W1, 72)


def test_credited_to_the_last_reminder_before_payment():
    sends = [sms(1, T0), sms(2, T0 + timedelta(hours=5), "15:00-16:50"), sms(3, T0 + timedelta(hours=30))]
    o = attribute_payment(pay(T0 + timedelta(hours=6)), sends, None, attribution_hours=72)
    assert (o.attempt, o.window, o.minutes_to_pay) == (2, "15:00-16:50", 60.0)


def test_paid_before_any_sms_is_not_recovered():
    assert attribute_payment(pay(T0 - timedelta(seconds=1)), [sms(1, T0)], None, attribution_hours=72) is None


def test_paid_after_the_attribution_window_is_not_recovered():
    sends = [sms(1, T0)]
    assert attribute_payment(pay(T0 + timedelta(hours=72)), sends, None, attribution_hours=72) is None
    assert attribute_payment(pay(T0 + timedelta(hours=71, minutes=59)), sends, None, attribution_hours=72)
    assert attribute_payment(pay(T0 + timedelta(hours=25)), sends, None, attribution_hours=24) is None


def test_an_order_never_texted_is_not_recovered():
    assert attribute_payment(pay(T0), [], None, attribution_hours=72) is None


def test_a_held_out_order_that_pays_is_recorded_as_holdout():
    mark = HoldoutMark("o1", T0, T0 + timedelta(hours=5), W1)
    o = attribute_payment(pay(T0 + timedelta(hours=6)), [], mark, attribution_hours=72)
    assert o.holdout and o.attempt is None and o.minutes_to_pay == 60.0
    # paid between the first and the last hold-out: measured from the first
    o = attribute_payment(pay(T0 + timedelta(hours=1)), [], mark, attribution_hours=72)
    assert o.minutes_to_pay == 60.0
    assert attribute_payment(pay(T0 - timedelta(minutes=1)), [], mark, attribution_hours=72) is None
    assert attribute_payment(pay(T0 + timedelta(hours=78)), [], mark, attribution_hours=72) is None


def test_a_held_out_order_texted_after_the_switch_stays_the_holdouts_measured_from_its_sms():
    """Held out at T0, the share set to 0, texted 3 days later, paid 20 minutes after that SMS:
    the holdout's payment (as assigned), inside the window that SMS opened."""
    mark = HoldoutMark("o1", T0, T0, W1)
    late_sms = sms(1, T0 + timedelta(hours=74))
    o = attribute_payment(pay(T0 + timedelta(hours=74, minutes=20)), [late_sms], mark, attribution_hours=72)
    assert o is not None and o.holdout and o.attempt is None and o.minutes_to_pay == 20.0
    assert (
        attribute_payment(pay(T0 + timedelta(hours=74 + 72)), [late_sms], mark, attribution_hours=72) is None
    )


# ------------------------------------------------------------------------ reading the stream


def test_payment_from_change():
    new = {
        "order_id": "o1",
        "status": "paid",
        "amount": Decimal("88.5"),
        "paid_at": "2026-11-23T10:42:00+08:00",
    }
    p = payment_from_change(new, {"status": "unpaid"}, changed_at=T0, default_currency="CNY")
    assert p == Payment("o1", datetime(2026, 11, 23, 2, 42, tzinfo=UTC), Decimal("88.5"), "CNY")
    # an INSERT of a paid order; a bad paid_at falls back to the stream's time; currency kept
    p = payment_from_change(
        {**new, "paid_at": "soon", "currency": "usd"}, None, changed_at=T0, default_currency="CNY"
    )
    assert (p.paid_at, p.currency) == (T0, "USD")
    # not a change to paid: ignored even if the filter let it through
    assert (
        payment_from_change({**new, "status": "unpaid"}, None, changed_at=T0, default_currency="CNY") is None
    )
    assert payment_from_change(new, {"status": "paid"}, changed_at=T0, default_currency="CNY") is None
    with pytest.raises(BadPaymentError, match="order_id"):
        payment_from_change({"status": "paid"}, None, changed_at=T0, default_currency="CNY")
    with pytest.raises(BadPaymentError, match="amount"):
        payment_from_change({**new, "amount": "lots"}, None, changed_at=T0, default_currency="CNY")


# --------------------------------------------------------------------- the store, both kinds

STACK = "nudge-test"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(params=["fake", "dynamodb"])
def ledgers(request, monkeypatch) -> Iterator[tuple[Any, Any]]:
    if request.param == "fake":
        ledger = FakeReminderLedger()
        yield ledger, FakeOutcomeStore(ledger)
        return
    from nudge_local.moto_env import provision

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        stack = provision(TEMPLATE, stack_name=STACK)
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield DynamoReminderLedger(client, stack.ledger_table), DynamoOutcomeStore(client, stack.ledger_table)


def send(ledger, oid, attempt, at, window=W1, segments=1):
    request = SendRequest(oid, f"b-{oid}", "+8613800138000", attempt, "hi", segments, at + timedelta(hours=1),
                          at.date(), window, at)  # fmt: skip
    ledger.claim(request, f"t-{oid}-{attempt}", 1000, at)
    ledger.record_sent(request, f"t-{oid}-{attempt}", f"m-{oid}-{attempt}", at)


def test_the_ledger_keeps_each_attempt_for_the_outcomes(ledgers):
    ledger, store = ledgers
    send(ledger, "o1", 1, T0, segments=2)
    send(ledger, "o1", 2, T0 + timedelta(hours=5), "15:00-16:50")
    ledger.mark_held_out({"h1": 1}, T0, W1, date(2026, 11, 23))
    ledger.mark_held_out({"h1": 1}, T0 + timedelta(hours=1), W1, date(2026, 11, 23))  # a re-run: no move
    ledger.mark_held_out({"h1": 2}, T0 + timedelta(hours=5), "15:00-16:50", date(2026, 11, 23))
    touches = store.touches(["o1", "h1", "never"])
    assert set(touches) == {"o1", "h1"}
    assert [(s.attempt, s.sent_at, s.window, s.segments) for s in touches["o1"].sends] == [
        (1, T0, W1, 2),
        (2, T0 + timedelta(hours=5), "15:00-16:50", 1),
    ]
    assert touches["o1"].phone == "+8613800138000" and not touches["o1"].recorded
    assert touches["h1"].holdout == HoldoutMark("h1", T0, T0 + timedelta(hours=5), "15:00-16:50")
    state = ledger.states(["h1"])["h1"]
    assert state.held_out and state.held_out_count == 2 and state.held_out_last_at == T0 + timedelta(hours=5)


def test_an_outcome_is_written_once(ledgers):
    ledger, store = ledgers
    send(ledger, "o1", 1, T0)
    outcome = attribute_payment(
        pay(T0 + timedelta(minutes=5)), store.touches(["o1"])["o1"].sends, None, attribution_hours=72
    )
    assert store.record_outcome(outcome, T0) is True
    assert store.record_outcome(outcome, T0 + timedelta(minutes=1)) is False
    assert store.touches(["o1"])["o1"].recorded
    # an order the ledger never saw gets no item
    assert (
        store.record_outcome(
            attribute_payment(pay(T0, oid="x"), [SmsSent("x", 1, T0, W1, 1)], None, attribution_hours=72), T0
        )
        is False
    )
    assert store.touches(["x"]) == {}


def test_the_recorder_counts_each_order_once(ledgers):
    ledger, store = ledgers
    send(ledger, "o1", 1, T0)
    send(ledger, "o2", 1, T0)
    ledger.mark_held_out({"h1": 1}, T0, W1, date(2026, 11, 23))
    recorder = OutcomeRecorder(store, attribution_hours=72)
    paid = T0 + timedelta(minutes=30)
    batch = [
        pay(paid, oid="o1"),
        pay(paid, oid="o1"),  # the same stream record delivered twice
        pay(paid, oid="h1"),
        pay(paid, oid="never"),
        pay(T0 - timedelta(minutes=1), oid="o2"),  # paid before its SMS
    ]
    run = recorder.start_batch(batch)
    reads = getattr(store, "reads", None)
    results = [run.record(p, paid)[0] for p in batch]
    if reads is not None:  # the fake counts: the batch's one read served every record
        assert store.reads == reads
    assert results == [
        OutcomeResult.RECOVERED,
        OutcomeResult.ALREADY_COUNTED,
        OutcomeResult.HOLDOUT_PAID,
        OutcomeResult.NOT_ATTRIBUTED,
        OutcomeResult.NOT_ATTRIBUTED,
    ]
    # Later batches: delivered again; then refunded and paid again, a day later.
    for again in (pay(paid, oid="o1"), pay(paid + timedelta(days=1), oid="o1")):
        fresh = OutcomeRecorder(store, attribution_hours=72)
        assert fresh.start_batch([again]).record(again, again.paid_at)[0] is OutcomeResult.ALREADY_COUNTED
    records = store.report_records(date(2026, 11, 23), date(2026, 11, 23))
    assert sorted((o.order_id, o.holdout) for o in records.outcomes) == [("h1", True), ("o1", False)]
    (o1,) = [o for o in records.outcomes if o.order_id == "o1"]
    assert (o1.attempt, o1.paid_at, o1.minutes_to_pay, o1.amount) == (1, paid, 30.0, Decimal("199.00"))


def test_report_reads_find_sends_by_day_and_held_out_orders(ledgers):
    ledger, store = ledgers
    day = date(2026, 11, 23)
    send(ledger, "a", 1, T0)
    send(ledger, "a", 2, T0 + timedelta(days=2))  # indexed under its last day, past the period
    send(ledger, "old", 1, T0 - timedelta(days=3))
    ledger.mark_held_out({"h": 1}, T0, W1, day)
    records = store.report_records(day, day)
    assert sorted((s.order_id, s.attempt) for s in records.sms) == [("a", 1), ("a", 2)]
    assert [h.order_id for h in records.held_out] == ["h"]
    assert records.phones["a"] == "+8613800138000"


def test_report_reads_use_query_not_scan(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    from nudge_local.moto_env import provision

    with mock_aws():
        stack = provision(TEMPLATE, stack_name=STACK)
        client = boto3.client("dynamodb", region_name="us-east-1")
        ops: list[str] = []
        client.meta.events.register("before-call.dynamodb", lambda model, **_: ops.append(model.name))
        store = DynamoOutcomeStore(client, stack.ledger_table)
        records = store.report_records(date(2026, 11, 23), date(2026, 11, 29))
        assert set(ops) == {"Query"} and records.queries == len(ops) == 7 + 7 + 4
