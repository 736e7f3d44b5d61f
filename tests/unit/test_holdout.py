"""The holdout: a fixed share of the orders due their first reminder get none (reason `holdout`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from nudge.domain.config import ConfigError, load_config
from nudge.domain.models import Action, Order, Reason, ReminderState
from nudge.domain.outcomes import holdout_bucket, in_holdout
from nudge.domain.restdays import RestDayCalendar
from nudge.domain.rules import plan_reminders
from nudge.services.planning import WindowRun, plan_window
from tests.builders import SHANGHAI
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue

ZONE = SHANGHAI
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZONE)  # Monday, inside 09:50-10:40
LATER = datetime(2026, 11, 23, 15, 10, tzinfo=ZONE)  # the afternoon window


def config(percent=10.0, **rules):
    return load_config({"rules": {"holdout_percent": percent, "daily_sms_cap": 100_000, **rules}})


def orders(n, now=NOW, prefix="o"):
    return [
        Order(
            order_id=f"{prefix}{i}",
            buyer_id=f"b{prefix}{i}",
            phone=f"+86139{i:08d}",
            status="unpaid",
            created_at=now - timedelta(hours=3),
            amount=Decimal("100"),
        )
        for i in range(n)
    ]


def held(plan):
    return {d.order_id for d in plan.decisions if d.reason is Reason.HOLDOUT}


def test_ten_percent_of_10k_orders_are_held_out_and_the_same_in_every_run():
    batch = orders(10_000)
    first = plan_reminders(batch, now=NOW, config=config())
    share = len(held(first)) / len(batch)
    assert 0.09 <= share <= 0.11, share
    assert {d.action for d in first.decisions} == {Action.SEND, Action.SKIP}
    # Another run, in another window, on orders read in another order: the same group.
    again = plan_reminders(list(reversed(orders(10_000, LATER))), now=LATER, config=config())
    assert held(again) == held(first)
    assert held(first) == {o.order_id for o in batch if in_holdout(o.order_id, 10)}


def test_the_group_is_fixed_across_processes():
    # sha256 of a fixed salt, not Python's per-process hash(): these buckets never change.
    assert [holdout_bucket(x) for x in ("o0", "o1", "2026-ABC")] == [
        holdout_bucket("o0"),
        holdout_bucket("o1"),
        holdout_bucket("2026-ABC"),
    ]
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"nudge-holdout-v1:o0").digest()[:8], "big") % 10_000
    assert holdout_bucket("o0") == expected
    assert not in_holdout("o0", 0) and in_holdout("o0", 50) == (expected < 5000)


def test_holdout_zero_changes_no_decision():
    batch = orders(500)
    off = plan_reminders(batch, now=NOW, config=load_config({"rules": {"daily_sms_cap": 100_000}}))
    zero = plan_reminders(batch, now=NOW, config=config(0))
    assert [d.to_json() for d in off.decisions] == [d.to_json() for d in zero.decisions]
    assert not held(zero)


def test_only_the_first_reminder_is_held_out():
    batch = orders(300)
    ids = {o.order_id for o in batch if in_holdout(o.order_id, 20)}
    assert ids
    ledger = {oid: ReminderState(oid, reminders_sent=1) for oid in ids}
    # These had reminder 1 before the holdout began: they are the reminded group, reminder 2 goes.
    plan = plan_reminders(batch, now=NOW, config=config(20), ledger=ledger)
    sent = {d.order_id: d.attempt for d in plan.decisions if d.action is Action.SEND}
    assert not held(plan) and all(sent[oid] == 2 for oid in ids)


def test_a_held_out_order_stays_held_out_when_the_share_is_lowered():
    batch = orders(300)
    was = {o.order_id for o in batch if in_holdout(o.order_id, 20) and not in_holdout(o.order_id, 5)}
    ledger = {oid: ReminderState(oid, held_out=True) for oid in was}
    plan = plan_reminders(batch, now=NOW, config=config(5), ledger=ledger)
    assert was <= held(plan)
    # Off means off: a holdout of 0 sends to everyone again.
    assert not held(plan_reminders(batch, now=NOW, config=config(0), ledger=ledger))


def test_every_other_reason_comes_first():
    batch = orders(200)
    target = next(o for o in batch if in_holdout(o.order_id, 10))
    one = [target]
    assert held(plan_reminders(one, now=NOW, config=config())) == {target.order_id}
    # the daily cap
    plan = plan_reminders(one, now=NOW, config=config(daily_sms_cap=0))
    assert plan.decisions[0].reason is Reason.DAILY_LIMIT
    # a large order is a call, not a holdout
    big = [Order(**{**{s: getattr(target, s) for s in target.__slots__}, "amount": Decimal(5000)})]
    assert plan_reminders(big, now=NOW, config=config()).decisions[0].action is Action.CALL
    # quiet hours, too new, max reminders...
    plan = plan_reminders(one, now=NOW, config=config(), ledger={target.order_id: ReminderState("x", 2)})
    assert plan.decisions[0].reason is Reason.MAX_REMINDERS


def test_a_held_out_order_uses_no_sms_budget():
    batch = orders(200)
    held_id = next(o.order_id for o in batch if in_holdout(o.order_id, 10))
    sent_id = next(o.order_id for o in batch if not in_holdout(o.order_id, 10))
    pick = [o for o in batch if o.order_id in (held_id, sent_id)]
    for o in pick:  # the held-out one is the more urgent (older): it is judged first
        if o.order_id == held_id:
            o.created_at -= timedelta(hours=1)
    plan = plan_reminders(pick, now=NOW, config=config(daily_sms_cap=1))
    by_id = {d.order_id: d for d in plan.decisions}
    assert by_id[held_id].reason is Reason.HOLDOUT and by_id[sent_id].action is Action.SEND


@pytest.mark.parametrize("bad", [-1, 51, "lots"])
def test_the_share_is_validated(bad):
    with pytest.raises(ConfigError, match=r"rules\.holdout_percent"):
        load_config({"rules": {"holdout_percent": bad}})


def test_the_plan_marks_held_out_orders_in_the_ledger():
    batch = orders(200)
    repo, ledger, queue = FakeOrderRepository(batch), FakeReminderLedger(), FakeSendQueue()
    cfg = config()
    cal = RestDayCalendar(cfg.calendar)
    run = WindowRun("09:50-10:40", NOW)
    plan, summary = plan_window(
        run, config=cfg, calendar=cal, orders=repo, ledger=ledger, queue=queue, started_at=NOW
    )
    ids = held(plan)
    assert ids and summary.by_reason["holdout"] == len(ids)
    assert {oid for oid, item in ledger.items.items() if "held_out_at" in item} == ids
    item = ledger.items[min(ids)]
    assert item["held_out_day"] == "2026-11-23" and item["held_out_window"] == "09:50-10:40"
    assert not {r.order_id for r in queue.requests} & ids
    # The afternoon window: the marker is read back as state. A texted twin would wait out the
    # buyer's 24 h, so a held-out order does too, and its mark stays where it was.
    later = WindowRun("15:00-16:50", LATER)
    plan2, _ = plan_window(
        later, config=cfg, calendar=cal, orders=repo, ledger=ledger, queue=queue, started_at=LATER
    )
    assert held(plan2) == set()
    assert {d.reason for d in plan2.decisions if d.order_id in ids} == {Reason.BUYER_RECENTLY_CONTACTED}
    assert ledger.items[min(ids)]["held_out_last_at"] == item["held_out_at"]
    # The next morning, where the twin gets reminder 2: held out of reminder 2, the first time kept.
    tomorrow = NOW + timedelta(days=1)
    plan3, _ = plan_window(
        WindowRun("09:50-10:40", tomorrow), config=cfg, calendar=cal, orders=repo, ledger=ledger,
        queue=queue, started_at=tomorrow,
    )  # fmt: skip
    assert held(plan3) == ids and set(plan3.holdout_attempts.values()) == {2}
    assert (
        ledger.items[min(ids)]["held_out_at"]
        == item["held_out_at"]
        < ledger.items[min(ids)]["held_out_last_at"]
    )
    assert all(ledger.states(sorted(ids))[oid].held_out for oid in ids)


def test_dry_run_marks_nothing():
    repo, ledger, queue = FakeOrderRepository(orders(200)), FakeReminderLedger(), FakeSendQueue()
    cfg = config()
    plan_window(WindowRun("09:50-10:40", NOW), config=cfg, calendar=RestDayCalendar(cfg.calendar), orders=repo,
                ledger=ledger, queue=queue, started_at=NOW, dry_run=True)  # fmt: skip
    assert not ledger.items


def test_nudge_plan_shows_holdout(tmp_path):
    from nudge_cli.cli import main
    from tests.fakes import order_record

    batch = orders(100)
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps(order_record(o), default=str) for o in batch), encoding="utf-8")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"rules": {"holdout_percent": 10}}), encoding="utf-8")
    import io

    out = io.StringIO()
    assert (
        main(["plan", "--orders", str(path), "--at", NOW.isoformat(), "--config", str(cfg), "--json"], out)
        == 0
    )
    reasons = [d["reason"] for d in json.loads(out.getvalue())["decisions"]]
    assert reasons.count("holdout") == sum(in_holdout(o.order_id, 10) for o in batch) > 0
    table = io.StringIO()
    main(["plan", "--orders", str(path), "--at", NOW.isoformat(), "--config", str(cfg)], table)
    assert "holdout" in table.getvalue()
