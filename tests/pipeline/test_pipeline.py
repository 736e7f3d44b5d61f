"""The product's promises, end to end through the real handlers on moto (stack from template.yaml).

Never the same SMS twice, never late, never after payment or opt-out: under duplicate
invocations, concurrent runs, SQS redelivery, throttling, crashes and a closing window.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nudge.adapters.sqs import SqsSendQueue
from nudge.domain.orders import read_history_jsonl
from nudge.services.ports import SendRequest
from nudge_local.pipeline import FakeClock, LambdaContextStub, LocalPipeline, sqs_event
from tests.builders import SHANGHAI
from tests.gateways import GATEWAYS, pipeline_provider

pytestmark = pytest.mark.aws

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SH = SHANGHAI
MORNING = "09:50-10:40@11:00"
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday, the morning window opens
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(order_id: str, buyer: str, phone: str, created: datetime, **extra) -> dict:
    return {
        "order_id": order_id,
        "buyer_id": buyer,
        "phone": phone,
        "status": "unpaid",
        "created_at": created.isoformat(),
        "amount": 100,
        **extra,
    }


FIVE = [
    order(f"o-{i}", f"b-{i}", f"+86138001380{i:02d}", AT - timedelta(hours=3, minutes=i)) for i in range(1, 6)
]


# Every promise here holds whichever gateway sends (the SmsGateway parameter): SNS on moto, End
# User Messaging through its local stand-in with the service's request and error shapes, and
# Alibaba Cloud through the real SDK against its local dysmsapi (nudge_local.dysmsapi).
@pytest.fixture(params=GATEWAYS)
def pipeline(request):
    # Alibaba Cloud refuses no number as opted out (it has no opt-out list to check; a carrier's
    # unsubscribe shows on the delivery receipt and a 退订 reply feeds the shop's do-not-contact
    # list: tests/pipeline/test_replies.py). The promises about a number the gateway refuses as
    # opted out (moto's SNS and the End User Messaging stand-in: numbers ending 99) do not apply.
    if request.param == "aliyun" and request.node.get_closest_marker("gateway_opt_out"):
        pytest.skip("aliyun: no gateway opt-out refusal exists (receipts and replies carry opt-outs)")

    def make(parameters=None, env=None, at=AT):
        env = {**QUIET, **(env or {})}
        return LocalPipeline(clock=FakeClock(at), parameters=parameters, env=env, gateway=request.param)

    return make


def sms_per_phone(p: LocalPipeline) -> Counter:
    return Counter(phone for phone, _ in p.sent_sms())


def test_events_files_are_what_the_handlers_take(pipeline):
    with pipeline() as p:
        # A registered-template gateway's messages also carry the template's values.
        batch_file = "sqs-send-batch-aliyun.json" if p.gateway == "aliyun" else "sqs-send-batch.json"
        p.load_orders_file(EVENTS / "sample-orders.jsonl")
        event = json.loads((EVENTS / "schedule-window1.json").read_text(encoding="utf-8"))
        summary = p.plan_module.lambda_handler(event, LambdaContextStub("plan"))
        assert summary["window"] == "09:50-10:40" and summary["enqueued"] > 0
        batch = json.loads((EVENTS / batch_file).read_text(encoding="utf-8"))
        result = p.send_module.lambda_handler(batch, LambdaContextStub("send"))
        assert result == {"batchItemFailures": []}
        assert {phone for phone, _ in p.sent_sms()} == {"+8613800138001", "+8613700137025"}


def test_sample_orders_through_the_whole_pipeline(pipeline):
    with pipeline() as p:
        p.load_orders_file(EVENTS / "sample-orders.jsonl")
        history = read_history_jsonl(
            (EVENTS / "sample-history.jsonl").read_text(encoding="utf-8").splitlines()
        )
        p.load_history(history, SH)
        summary = p.fire_window(MORNING, AT)
        p.drain_queue()
        sent = dict(p.sent_sms())
        assert summary["by_reason"]["max_reminders"] == 1 and summary["calls"] == 1
        assert sent["+8613800138001"].startswith("【Nudge Shop】王芳您好")
        if p.gateway == "aliyun":  # no opt-out refusal at Alibaba Cloud (see the fixture)
            assert "+8613900139099" in sent and "skips" not in p.ledger_item("o-1013")
        else:
            assert "+8613900139099" not in sent  # opted out at SNS (moto: numbers ending 99)
            assert p.ledger_item("o-1013")["skips"][0]["reason"] == "opted_out"
        assert p.ledger_item("o-1018")["call_requested_at"]  # the large order is on the call list


def test_a_duplicate_invocation_of_one_window_sends_nothing_twice(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE)
        first = p.fire_window(MORNING, AT)
        p.drain_queue()
        second = p.fire_window(MORNING, AT, started_at=AT + timedelta(seconds=40))
        p.drain_queue()
        assert first == second and first["enqueued"] == 5
        assert set(sms_per_phone(p).values()) == {1} and len(p.sent_sms()) == 5


def test_two_concurrent_runs_queue_twice_but_send_once(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE)
        # Two runs that are not the same plan (a manual run a minute after the scheduled one),
        # both planned before any SMS went out: the queue holds every send twice.
        a = p.fire_window(MORNING, AT)
        b = p.fire_window(MORNING, AT + timedelta(minutes=1))
        assert a["enqueued"] == b["enqueued"] == 5 and p.queue_depth() == 10
        p.drain_queue()
        assert len(p.sent_sms()) == 5 and set(sms_per_phone(p).values()) == {1}
        assert {int(p.ledger_item(o["order_id"])["reminders_sent"]) for o in FIVE} == {1}


def test_sqs_redelivery_of_a_delivered_batch_sends_nothing_twice(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE)
        p.fire_window(MORNING, AT)
        batch = p.receive()
        p.send_module.lambda_handler(sqs_event(batch, p.queue_arn), LambdaContextStub("send"))
        # The deletes were lost (e.g. the function timed out after sending): SQS delivers again.
        assert p.deliver(batch) == set()
        assert len(p.sent_sms()) == len(batch) and set(sms_per_phone(p).values()) == {1}


def test_throttled_publishes_are_retried_within_the_window_and_sent_once(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE)
        p.fire_window(MORNING, AT)
        pipeline_provider(p).fail_next("throttled", "throttled")  # the gateway's throttling answer
        stats = p.drain_queue()
        assert stats["failed"] == 2  # reported as batch item failures, left on the queue
        assert len(p.sent_sms()) == 5 and set(sms_per_phone(p).values()) == {1}
        assert p.clock.now() < AT + timedelta(minutes=50)  # the retries fit in the window
        # released claims gave their unit of the daily cap back
        assert p.plan_app.ledger.sent_on(AT.date()) == 5


def test_a_lost_answer_after_the_claim_never_yields_a_second_sms(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE[:1])
        p.fire_window(MORNING, AT)
        provider = pipeline_provider(p)
        # Unknown outcome (a read timeout): the SMS may have gone out, so the claim stays.
        provider.fail_next("answer_lost")
        stats = p.drain_queue()
        assert stats["failed"] == 1 and stats["messages"] == 2  # redelivered once, then dropped
        assert provider.received() == ["+8613800138001"]  # the gateway took it once, never again
        item = p.ledger_item("o-1")
        assert int(item["claimed_attempt"]) == 1 and "reminders_sent" not in item
        assert p.queue_depth() == 0


def test_a_deadline_passing_mid_batch_drops_the_rest_unsent(pipeline):
    # 0.02 SMS/s across 2 pollers: one SMS every 100 s, so the 50-minute window fits 30.
    many = [order(f"o-{i}", f"b-{i}", f"+861380013{i:04d}", AT - timedelta(hours=3)) for i in range(40)]
    with pipeline(env={"SMS_PER_SECOND": "0.02"}) as p:  # below the parameter minimum, to keep it small
        p.load_orders(many)
        assert p.fire_window(MORNING, AT)["enqueued"] == 40
        p.drain_queue()
        window_end = datetime(2026, 11, 23, 10, 40, tzinfo=SH)
        sent = p.sent_sms()
        assert 25 <= len(sent) < 40 and p.queue_depth() == 0
        for o in many:
            item = p.ledger_item(o["order_id"]) or {}
            if "last_sent_at" in item:
                assert datetime.fromisoformat(item["last_sent_at"]) < window_end
        # what did not fit waits, unclaimed, for the afternoon window
        unsent = [o for o in many if "reminders_sent" not in (p.ledger_item(o["order_id"]) or {})]
        assert len(unsent) == 40 - len(sent)
        afternoon = p.fire_window("15:00-16:50@17:00", datetime(2026, 11, 23, 15, 0, tzinfo=SH))
        assert afternoon["enqueued"] == len(unsent)


@pytest.mark.gateway_opt_out
def test_an_opted_out_number_is_skipped_and_recorded(pipeline):
    with pipeline() as p:
        p.load_orders([order("o-opt", "b-opt", "+8613900139099", AT - timedelta(hours=3))])
        assert p.fire_window(MORNING, AT)["enqueued"] == 1
        p.drain_queue()
        assert p.sent_sms() == []
        assert p.ledger_item("o-opt")["skips"][0]["reason"] == "opted_out"


def test_a_payment_between_plan_and_send_stops_the_sms(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE[:2])
        p.fire_window(MORNING, AT)
        p.set_order_status("o-1", "paid")
        p.drain_queue()
        assert [phone for phone, _ in p.sent_sms()] == ["+8613800138002"]


def test_the_ledger_counts_two_windows_on_two_days(pipeline):
    created = AT - timedelta(hours=3)
    with pipeline() as p:
        p.load_orders([order("o-1", "b-1", "+8613800138001", created, item_title="围巾")])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        tuesday = AT + timedelta(days=1)
        assert p.fire_window(MORNING, tuesday)["enqueued"] == 1
        p.drain_queue()
        item = p.ledger_item("o-1")
        assert int(item["reminders_sent"]) == 2
        first, second = (text for _, text in p.sent_sms())
        assert "困难" in first and "库存有限" in second  # reminder 1 offers help, 2 names stock
        assert p.fire_window(MORNING, AT + timedelta(days=2))["by_reason"] == {"max_reminders": 1}
        assert int(item["expires_at"]) > int(tuesday.timestamp())  # personal data expires (TTL)


def test_the_pause_switch_stops_a_run_without_reading_orders(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE)
        p.set_paused(True)
        summary = p.fire_window(MORNING, AT)
        assert summary["run_skipped"] == "paused" and summary["orders_read"] == 0
        assert p.queue_depth() == 0


@pytest.mark.parametrize(
    ("scheduled", "started", "skipped"),
    [
        (AT, datetime(2026, 11, 23, 10, 40, tzinfo=SH), "outside_window"),  # started after the window
        (AT - timedelta(days=2), None, "rest_day"),  # Saturday
    ],
)
def test_a_run_that_cannot_send_reads_and_queues_nothing(pipeline, scheduled, started, skipped):
    with pipeline() as p:
        p.load_orders(FIVE)
        summary = p.fire_window(MORNING, scheduled, started_at=started)
        assert summary["run_skipped"] == skipped and summary["orders_read"] == 0
        assert p.queue_depth() == 0


def test_the_daily_cap_holds_at_the_sender_too(pipeline):
    with pipeline(parameters={"DailySmsCap": "3"}) as p:
        p.load_orders(FIVE)
        summary = p.fire_window(MORNING, AT)
        assert summary["enqueued"] == 3 and summary["by_reason"]["daily_limit"] == 2
        # o-1 is the least urgent, cut by the planner; a send for it that the planner did not
        # count (e.g. from a concurrent run) still meets the cap at the sender.
        extra = SendRequest(
            "o-1",
            "b-1",
            "+8613800138001",
            1,
            "hi",
            1,
            AT + timedelta(minutes=50),
            AT.date(),
            "09:50-10:40",
            AT,
        )
        SqsSendQueue(p.sqs, p.resources.send_queue_url).enqueue([extra])
        p.drain_queue()
        assert len(p.sent_sms()) == 3 and "+8613800138001" not in dict(p.sent_sms())
        assert p.plan_app.ledger.sent_on(AT.date()) == 3


def test_a_bad_setting_stops_the_function_before_anything_is_read(pipeline):
    with pytest.raises(Exception, match="DAILY_SMS_CAP"), pipeline(env={"DAILY_SMS_CAP": "lots"}):
        pass


@pytest.mark.gateway_opt_out
def test_a_number_opted_out_at_sns_is_not_queued_again_in_later_windows(pipeline):
    with pipeline() as p:
        p.load_orders([order("o-opt", "b-opt", "+8613900139099", AT - timedelta(hours=3))])
        p.fire_window(MORNING, AT)
        p.drain_queue()
        afternoon = p.fire_window("15:00-16:50@17:00", datetime(2026, 11, 23, 15, 0, tzinfo=SH))
        assert afternoon["enqueued"] == 0 and afternoon["by_reason"] == {"opted_out": 1}


def test_pausing_mid_window_stops_what_is_already_queued(pipeline):
    with pipeline() as p:
        p.load_orders(FIVE)
        assert p.fire_window(MORNING, AT)["enqueued"] == 5
        p.set_paused(True)  # e.g. the shop spotted a wrong text
        p.drain_queue()
        assert p.sent_sms() == [] and p.queue_depth() == 0
        p.set_paused(False)
        assert p.fire_window("15:00-16:50@17:00", datetime(2026, 11, 23, 15, 0, tzinfo=SH))["enqueued"] == 5


def test_logs_carry_no_phone_number_or_buyer_name(pipeline):
    import io
    import logging

    buffer = io.StringIO()
    # Even with the variable that logs every event whole (each SQS body holds a phone and a text).
    with pipeline(env={"POWERTOOLS_LOGGER_LOG_EVENT": "true"}) as p:
        # Powertools sets up one logger per service name, once per process, bound to whatever
        # stdout and level the first import saw: point it at this test's buffer and level.
        handlers = [h for h in logging.getLogger("nudge").handlers if isinstance(h, logging.StreamHandler)]
        assert handlers
        previous = [h.setStream(buffer) for h in handlers]
        level = logging.getLogger("nudge").level  # also set once per process, by the first import
        logging.getLogger("nudge").setLevel(logging.INFO)
        try:
            p.load_orders([order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3), buyer_name="王芳")])
            p.fire_window(MORNING, AT)
            p.drain_queue()
        finally:
            for h, stream in zip(handlers, previous, strict=True):
                h.setStream(stream)
            logging.getLogger("nudge").setLevel(level)
        assert len(p.sent_sms()) == 1
    logs = buffer.getvalue()
    assert '"outcome":"sent"' in logs.replace(" ", "")  # the send was logged...
    assert "13800138001" not in logs and "王芳" not in logs  # ...without the number or the name
    assert "+86138****8001" in logs


@pytest.mark.parametrize("variable", ["ORDERS_TABLE", "LEDGER_TABLE", "SEND_QUEUE_URL", "IDEMPOTENCY_TABLE"])
def test_a_missing_resource_name_stops_the_function_before_anything_is_read(pipeline, variable):
    with pytest.raises(Exception, match=f"{variable}: missing"), pipeline(env={variable: ""}):
        pass
