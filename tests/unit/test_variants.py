"""Text variants (``messages.variants``): who gets which text, that only the words change, the
load-time checks, the variant carried from the plan to the outcome; and the sample-size helper."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from nudge.domain.config import ConfigError, load_config
from nudge.domain.messages import render_reminder
from nudge.domain.models import Action, ReminderState, SendDecision
from nudge.domain.outcomes import Payment, in_holdout
from nudge.domain.restdays import RestDayCalendar
from nudge.domain.rules import plan_reminders
from nudge.domain.stats import orders_per_variant, two_proportion_n, two_proportion_power
from nudge.domain.variants import VARIANT_SALT, arm_names, assign_variant, variant_hash
from nudge.services.outcomes import OutcomeRecorder, OutcomeResult
from nudge.services.planning import WindowRun, plan_window
from nudge.services.ports import SendRequest
from nudge.services.sending import Pacer, Sender, SendOutcome
from nudge_local.pipeline import FakeClock
from tests.fakes import FakeOrderRepository, FakeReminderLedger, FakeSendQueue, FakeSmsGateway, order_record
from tests.fakes_outcomes import FakeOutcomeStore
from tests.unit.test_holdout import NOW, orders

CARING = "{greeting}，您的订单（{amount}）还未付款，付款遇到困难了吗？我们随时帮您。"
URGENT = "{greeting}，您的订单（{amount}）还未付款，库存有限，先付先得。"
THIRD = "{greeting}，订单{amount}等您付款。"
LATE_A = "{greeting}，订单（{amount}）还未付款哦[[，将于{closes_at}关闭]]。"
LATE_B = "{greeting}，最后提醒：订单（{amount}）还未付款。"


def variants(**by_attempt: list[tuple[str, str]]) -> dict:
    """variants(first=[(name, template), ...], second=[...]) -> the ``messages.variants`` mapping."""
    keys = {"first": "1", "second": "2"}
    return {keys[k]: [{"name": n, "template": t} for n, t in v] for k, v in by_attempt.items()}


AB = variants(first=[("caring", CARING), ("urgent", URGENT)])
AB_BOTH = variants(
    first=[("caring", CARING), ("urgent", URGENT)], second=[("caring", LATE_A), ("urgent", LATE_B)]
)


def config(variant_config: dict | None = None, **rules):
    data: dict = {"rules": {"daily_sms_cap": 100_000, **rules}}
    if variant_config is not None:
        data["messages"] = {"variants": variant_config}
    return load_config(data)


def sends(plan) -> dict[str, SendDecision]:
    return {d.order_id: d for d in plan.decisions if isinstance(d, SendDecision)}


# ---- assignment -------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [("a", "b"), ("a", "b", "c"), ("a", "b", "c", "d", "e")])
def test_10k_orders_split_equally_within_one_point(names):
    messages = config(variants(first=[(n, THIRD) for n in names])).messages
    counts = Counter(assign_variant(f"2026-{i:06d}", messages).name for i in range(10_000))
    assert set(counts) == set(names)
    for name in names:
        assert abs(counts[name] / 10_000 - 1 / len(names)) <= 0.01, counts


def test_the_same_order_always_gets_the_same_variant_in_every_process():
    messages = config(AB).messages
    ids = [f"o{i}" for i in range(200)]
    first = [assign_variant(oid, messages) for oid in ids]
    assert first == [assign_variant(oid, messages) for oid in reversed(ids)][::-1]
    # sha256 of a fixed salt, not Python's per-process hash(): pinned here for good.
    assert VARIANT_SALT == "nudge-variant-v1"
    expected = int.from_bytes(hashlib.sha256(b"nudge-variant-v1:o0").digest()[:8], "big")
    assert variant_hash("o0") == expected and assign_variant("o0", messages).position == expected % 2
    # The planner agrees, in any window and whatever order the orders are read in.
    batch = orders(300)
    plan = plan_reminders(batch, now=NOW, config=config(AB))
    again = plan_reminders(list(reversed(orders(300))), now=NOW + timedelta(minutes=20), config=config(AB))
    assert {k: d.variant for k, d in sends(plan).items()} == {k: d.variant for k, d in sends(again).items()}
    assert {k: d.variant for k, d in sends(plan).items()} == {
        o: assign_variant(o, messages).name for o in sends(plan)
    }


def test_holdout_and_variant_are_drawn_independently():
    # 20% held out: the share is the same in each arm, and each arm's share the same inside and
    # outside the holdout (with one salt for both, an arm could be the holdout's twin).
    messages = config(AB).messages
    ids = [f"order-{i}" for i in range(20_000)]
    arm = {oid: assign_variant(oid, messages).name for oid in ids}
    held = {oid for oid in ids if in_holdout(oid, 20)}
    for name in ("caring", "urgent"):
        members = [oid for oid in ids if arm[oid] == name]
        share = sum(oid in held for oid in members) / len(members)
        assert abs(share - 0.20) <= 0.015, (name, share)
        inside = sum(arm[oid] == name for oid in held) / len(held)
        assert abs(inside - 0.5) <= 0.02, (name, inside)
    # And through the planner: held-out orders are spread over both arms like the rest.
    plan = plan_reminders(orders(4_000), now=NOW, config=config(AB, holdout_percent=20))
    held_plan = {d.order_id for d in plan.decisions if d.reason is not None and d.reason.value == "holdout"}
    by_arm = Counter(assign_variant(oid, messages).name for oid in held_plan)
    assert abs(by_arm["caring"] / len(held_plan) - 0.5) <= 0.05, by_arm
    assert all(d.variant is not None for d in sends(plan).values())


# ---- only the words change --------------------------------------------------------------------


def _who_and_when(plan) -> list:
    return [
        (d.order_id, d.action, d.reason, getattr(d, "attempt", None), getattr(d, "not_after", None))
        for d in plan.decisions
    ]


def test_a_variant_changes_the_words_only_never_who_or_when():
    batch = orders(600)
    for i, o in enumerate(batch):  # a mix: large orders (calls), buyers sharing a phone, old orders
        if i % 50 == 0:
            o.amount = Decimal(5000)
        if i % 7 == 0:
            o.phone = batch[i - 1].phone
        o.created_at -= timedelta(minutes=i)
    kwargs = {"now": NOW, "ledger": {batch[3].order_id: ReminderState(batch[3].order_id, 1)}}
    plain = plan_reminders(batch, config=config(daily_sms_cap=300), **kwargs)
    tested = plan_reminders(batch, config=config(AB_BOTH, daily_sms_cap=300), **kwargs)
    assert _who_and_when(tested) == _who_and_when(plain)
    assert {d.action for d in tested.decisions} == {Action.SEND, Action.CALL, Action.SKIP}
    texts = {d.variant: d.message for d in sends(tested).values() if d.attempt == 1}
    assert "付款遇到困难了吗" in texts["caring"] and "先付先得" in texts["urgent"]
    assert all(d.to_json()["variant"] is None for d in tested.decisions if not isinstance(d, SendDecision))


def test_with_no_variants_nothing_changes():
    batch = orders(300)
    plain = plan_reminders(batch, now=NOW, config=config())
    empty = plan_reminders(batch, now=NOW, config=config({"1": [], "2": None}))
    assert [d.to_json() for d in plain.decisions] == [d.to_json() for d in empty.decisions]
    assert all(d.to_json()["variant"] is None for d in plain.decisions)
    cfg = config()
    default = render_reminder(
        batch[0], 1, shop=cfg.shop, messages=cfg.messages, window=cfg.windows[0], now=NOW
    )
    assert sends(plain)[batch[0].order_id].message == default.text and "遇到了什么困难" in default.text
    assert arm_names(config().messages) == () and assign_variant("o1", config().messages) is None


# ---- reminder 2 keeps the order's variant -----------------------------------------------------


@pytest.mark.parametrize("setup", ["both", "first_only", "second_only"])
def test_reminder_2_keeps_the_orders_variant(setup):
    cfg = {
        "both": AB_BOTH,
        "first_only": AB,
        "second_only": variants(second=[("caring", LATE_A), ("urgent", LATE_B)]),
    }[setup]
    batch = orders(200)
    first = sends(plan_reminders(batch, now=NOW, config=config(cfg)))
    ledger = {oid: ReminderState(oid, reminders_sent=1) for oid in first}
    second = sends(plan_reminders(batch, now=NOW + timedelta(days=1), config=config(cfg), ledger=ledger))
    assert set(second) == set(first) and {d.attempt for d in second.values()} == {2}
    assert {k: d.variant for k, d in second.items()} == {k: d.variant for k, d in first.items()}
    assert {d.variant for d in second.values()} == {"caring", "urgent"}
    for d in second.values():
        if setup == "first_only":  # reminder 2 has no variants: its own text, the order's arm still named
            assert "先付先得" in d.message and "库存有限" in d.message  # the default reminder 2
        elif d.variant == "caring":
            assert "还未付款哦" in d.message
        else:
            assert "最后提醒" in d.message


def test_render_picks_the_variants_text_and_refuses_a_position_that_is_not_there():
    cfg = config(AB)
    order = orders(1)[0]
    kw = {"shop": cfg.shop, "messages": cfg.messages, "window": cfg.windows[0], "now": NOW}
    assert "先付先得" in render_reminder(order, 1, variant=1, **kw).text
    assert "付款遇到困难了吗" in render_reminder(order, 1, variant=0, **kw).text
    assert render_reminder(order, 2, variant=1, **kw).text == render_reminder(order, 2, **kw).text
    with pytest.raises(ValueError, match=r"variant must be 0\.\.1"):
        render_reminder(order, 1, variant=2, **kw)


# ---- load-time checks ---------------------------------------------------------------------------


def refused(variant_config: dict, **messages) -> str:
    with pytest.raises(ConfigError) as info:
        load_config({"messages": {"variants": variant_config, **messages}})
    text = str(info.value)
    assert "\n" not in text
    return text


def test_a_variant_over_max_segments_is_refused_naming_it():
    long = "{greeting}，" + "请尽快付款。" * 30 + "{amount}"
    text = refused(variants(first=[("caring", CARING), ("urgent", long)]))
    assert text.startswith('messages.variants.1[1] (name "urgent"): reminder 1 needs ')
    assert "over 2" in text and "this variant's template" in text
    # Within a higher cap it loads; the second reminder's variants are checked the same way.
    assert load_config(
        {"messages": {"max_segments": 4, "variants": variants(first=[("a", CARING), ("b", long)])}}
    )
    text = refused(variants(second=[("a", LATE_A), ("b", long)]))
    assert text.startswith('messages.variants.2[1] (name "b"): reminder 2 needs ')


def test_the_fixed_text_check_counts_the_longest_amount_for_variants_too():
    # Fits with a short amount, but not with the longest one an order may carry (the same check
    # as the default templates, tests/test_sms_safety.py).
    tight = "{greeting}" + "付" * 47 + "{amount}[[{closes_at}]]"
    text = refused(variants(first=[("a", "{greeting}，{amount}"), ("tight", tight)]), max_segments=1)
    assert text.startswith('messages.variants.1[1] (name "tight"): reminder 1 needs 2 segments')


@pytest.mark.parametrize(
    ("variant_config", "message"),
    [
        (
            variants(first=[("caring", CARING), ("urgent", "{greeting}{buyer_name}")]),
            "messages.variants.1[1] (name \"urgent\"): '{greeting}{': a buyer's text",
        ),
        (
            variants(first=[("caring", "Hi\u202e {amount}"), ("urgent", URGENT)]),
            'messages.variants.1[0] (name "caring"): must not contain the control or format character',
        ),
        (
            variants(first=[("caring", CARING), ("urgent", "{greeting} {phone}")]),
            'messages.variants.1[1] (name "urgent"): unknown placeholder {phone}',
        ),
        (
            variants(first=[("caring", CARING), ("caring", URGENT)]),
            'messages.variants.1[1] (name "caring"): a second variant with this name',
        ),
        (variants(first=[("caring", CARING)]), "messages.variants.1: one variant compares nothing"),
        ({"3": variants(first=[("a", CARING), ("b", URGENT)])["1"]}, "messages.variants.3: unknown reminder"),
        (
            variants(
                first=[("caring", CARING), ("urgent", URGENT)], second=[("caring", LATE_A), ("late", LATE_B)]
            ),
            'messages.variants.2[1] (name "late"): must be named "urgent" like 1[1]',
        ),
        (
            variants(
                first=[("a", CARING), ("b", URGENT), ("c", THIRD)], second=[("a", LATE_A), ("b", LATE_B)]
            ),
            "messages.variants.2: has 2 variants, reminder 1 has 3",
        ),
        (
            variants(first=[("a b", CARING), ("c", URGENT)]),
            "messages.variants.1.0.name: 'a b' is not a variant name",
        ),
        (variants(first=[("<b>", CARING), ("c", URGENT)]), "messages.variants.1.0.name:"),
        (
            {"1": [{"name": "a"}, {"name": "b", "template": URGENT}]},
            "messages.variants.1.0.template: Field required",
        ),
        (variants(first=[(f"v{i}", THIRD) for i in range(11)]), "messages.variants.1: at most 10 variants"),
    ],
)
def test_a_bad_variant_is_refused_at_load_with_one_line_naming_it(variant_config, message):
    assert refused(variant_config).startswith(message)


def test_variants_load_from_yaml_with_integer_keys():
    import yaml

    data = yaml.safe_load(
        "messages:\n  variants:\n    1:\n      - {name: caring, template: '{greeting}，{amount}未付款'}\n"
        "      - {name: urgent, template: '{greeting}，{amount}未付款，先付先得'}\n"
    )
    assert arm_names(load_config(data).messages) == ("caring", "urgent")


# ---- carried from the plan to the ledger and the outcome --------------------------------------


def test_the_variant_goes_from_the_plan_through_the_queue_and_the_send_to_the_outcome():
    cfg = config(AB)
    batch = orders(40)
    repo, ledger, queue = FakeOrderRepository(batch), FakeReminderLedger(), FakeSendQueue()
    plan, _ = plan_window(
        WindowRun("09:50-10:40", NOW), config=cfg, calendar=RestDayCalendar(cfg.calendar), orders=repo,
        ledger=ledger, queue=queue, started_at=NOW,
    )  # fmt: skip
    decided = sends(plan)
    assert {r.order_id: r.variant for r in queue.requests} == {k: d.variant for k, d in decided.items()}
    clock = FakeClock(NOW)
    sender = Sender(
        orders=repo, ledger=ledger, sms=FakeSmsGateway(), clock=clock.now,
        pacer=Pacer(1000, clock=clock.now, sleep=clock.sleep), daily_cap=1000,
        buyer_min_interval=timedelta(hours=24), max_age=timedelta(hours=72),
        new_token=iter(f"t{i}" for i in range(1000)).__next__,
    )  # fmt: skip
    batch_run = sender.start_batch(queue.requests)
    assert {batch_run.deliver(r) for r in queue.requests} == {SendOutcome.SENT}
    for oid, d in decided.items():
        assert ledger.items[oid]["variant_1"] == d.variant
    oid = next(iter(decided))
    recorder = OutcomeRecorder(FakeOutcomeStore(ledger), attribution_hours=72)
    payment = Payment(oid, clock.now() + timedelta(minutes=30), Decimal("100"), "CNY")
    result, outcome = recorder.start_batch([payment]).record(payment, clock.now())
    assert result is OutcomeResult.RECOVERED and outcome is not None
    assert outcome.variant == decided[oid].variant
    assert ledger.items[oid]["outcome"]["variant"] == decided[oid].variant


def test_a_send_request_keeps_its_variant_in_the_queue_and_reads_one_queued_before_variants():
    cfg = config(AB)
    queue = FakeSendQueue()
    plan_window(
        WindowRun("09:50-10:40", NOW), config=cfg, calendar=RestDayCalendar(cfg.calendar),
        orders=FakeOrderRepository(orders(3)), ledger=FakeReminderLedger(), queue=queue, started_at=NOW,
    )  # fmt: skip
    (body, *_) = queue.bodies
    data = json.loads(body)  # the SQS message body, as the SQS adapter writes it
    assert data["variant"] in ("caring", "urgent")
    assert SendRequest.from_json(data).variant == data["variant"]
    old = {k: v for k, v in data.items() if k != "variant"}
    assert SendRequest.from_json(old).variant is None


# ---- nudge plan --------------------------------------------------------------------------------


def _plan_cli(tmp_path, variant_config: dict | None, *extra: str) -> str:
    from nudge_cli.cli import main

    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(json.dumps(order_record(o), default=str) for o in orders(6)), encoding="utf-8")
    args = ["plan", "--orders", str(path), "--at", NOW.isoformat(), *extra]
    if variant_config is not None:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps({"messages": {"variants": variant_config}}), encoding="utf-8")
        args += ["--config", str(cfg)]
    out = io.StringIO()
    assert main(args, out) == 0
    return out.getvalue()


def test_nudge_plan_shows_each_sends_variant(tmp_path):
    decisions = json.loads(_plan_cli(tmp_path, AB, "--json"))["decisions"]
    assert {d["variant"] for d in decisions} == {"caring", "urgent"}
    table = _plan_cli(tmp_path, AB)
    assert "variant" in table.splitlines()[2] and "caring" in table and "urgent" in table
    # Without variants: the key is there (null), the table as it always was.
    plain = json.loads(_plan_cli(tmp_path, None, "--json"))["decisions"]
    assert {d["variant"] for d in plain} == {None}
    assert "variant" not in _plan_cli(tmp_path, None)


# ---- the statistics a text test needs ----------------------------------------------------------


def test_sample_size_matches_rs_power_prop_test():
    # R's documented examples for stats::power.prop.test (Dalgaard): n = 76.7 for p1 = .50,
    # p2 = .75 at power .90; power = 0.740 at n = 50.
    assert round(two_proportion_n(0.50, 0.75, power=0.90), 1) == 76.7
    assert round(two_proportion_power(50, 0.50, 0.75), 3) == 0.740
    # Symmetric in the two rates; at the default 80% power, the inverse gives the power back.
    assert two_proportion_n(0.75, 0.50) == pytest.approx(two_proportion_n(0.50, 0.75))
    n = two_proportion_n(0.30, 0.35)
    assert two_proportion_power(n, 0.30, 0.35) == pytest.approx(0.80, abs=1e-9)


def test_orders_per_variant_rounds_up_and_grows_as_the_lift_shrinks():
    assert orders_per_variant(0.50, 0.25) == 58  # 57.67
    assert orders_per_variant(0.50, 0.25, power=0.90) == 77  # 76.71
    five, two = orders_per_variant(0.30, 0.05), orders_per_variant(0.30, 0.02)
    assert five == 1377 and two > 6 * five  # a lift 2.5x smaller needs ~6x the orders
    assert orders_per_variant(0.30, -0.05) < five  # the same gap nearer 0 or 1 needs fewer


@pytest.mark.parametrize(
    ("baseline", "lift", "problem"),
    [(0.3, 0, "lift"), (0.9, 0.2, "baseline \\+ lift"), (1.5, 0.1, "baseline"), (0.3, float("nan"), "lift")],
)
def test_orders_per_variant_refuses_what_no_test_can_show(baseline, lift, problem):
    with pytest.raises(ValueError, match=problem):
        orders_per_variant(baseline, lift)
    with pytest.raises(ValueError, match="power"):
        orders_per_variant(0.3, 0.05, power=1.0)
