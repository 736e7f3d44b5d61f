"""Faults on the send path, end to end through the real handlers on moto (stack from template.yaml),
with each SMS gateway the local stack plays (``tests.gateways.GATEWAYS``).

Each fault is injected where it happens, on the send function's own gateway client
(``tests.gateways``): a hand-off that never connects, one whose answer is lost after the provider
took the SMS (botocore's ReadTimeoutError), throttling, a sender that dies after its claim, a
payment or a closing written between plan and send, an invocation about to time out, two send
containers at once. What the provider received is read back from it (moto's SNS, the stand-in).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from nudge.adapters.aliyun_sms import ALIYUN_PUBLISH_TIMEOUT, make_client
from nudge.adapters.end_user_messaging import EUM_CLIENT_CONFIG, EUM_PUBLISH_TIMEOUT
from nudge.adapters.sns import SNS_CLIENT_CONFIG, SNS_PUBLISH_TIMEOUT
from nudge.adapters.sqs import SqsSendQueue
from nudge.services.ports import CLAIM_IN_FLIGHT_LIMIT, SendRequest
from nudge.services.sending import MIN_TIME_TO_SEND
from nudge_local.moto_env import load_template
from nudge_local.pipeline import FakeClock, LambdaContextStub, LocalPipeline, sqs_event
from tests.builders import SHANGHAI, order_record
from tests.contract.test_dal import TEMPLATE, atomic_moto  # noqa: F401  (a fixture)
from tests.gateways import GATEWAYS, Died, client_timeouts, pipeline_provider

pytestmark = pytest.mark.aws

SH = SHANGHAI
MORNING = "09:50-10:40@11:00"
AFTERNOON = "15:00-16:50@17:00"
AT = datetime(2026, 11, 23, 9, 50, tzinfo=SH)  # Monday, the morning window opens
PM = datetime(2026, 11, 23, 15, 0, tzinfo=SH)
QUIET = {"LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(order_id: str, buyer: str, phone: str, created: datetime, **extra: Any) -> dict:
    fields = {"amount": 100, **extra}
    return order_record(
        order_id=order_id, buyer_id=buyer, phone=phone, created_at=created.isoformat(), **fields
    )


@pytest.fixture(params=GATEWAYS)
def pipeline(request):
    with LocalPipeline(clock=FakeClock(AT), env=QUIET, gateway=request.param) as p:
        p.provider = pipeline_provider(p)  # what the gateway received, and faults on its client
        yield p


class MetricNames:
    """The metric names the send handler emits (Powertools' add_metric, recorded)."""

    def __init__(self, p: LocalPipeline, monkeypatch: pytest.MonkeyPatch):
        self.names: Counter[str] = Counter()
        real = p.send_module.metrics.add_metric

        def add_metric(name: str, **kwargs: Any) -> None:
            self.names[name] += 1
            real(name=name, **kwargs)

        monkeypatch.setattr(p.send_module.metrics, "add_metric", add_metric)


def send_request(order_id: str, buyer: str, phone: str, *, at: datetime, window: str) -> SendRequest:
    """A send for this order as a plan that could not see the ledger would queue it (with the
    registered template's values, which only Alibaba Cloud reads)."""
    values = {"name": "亲", "item": order_id, "amount": "10.00"}
    return SendRequest(
        order_id,
        buyer,
        phone,
        1,
        f"hi {order_id}",
        1,
        at + timedelta(minutes=50),
        at.date(),
        window,
        at,
        template_params=values,
    )


def skip_reasons(p: LocalPipeline, order_id: str) -> list[str]:
    return [s["reason"] for s in (p.ledger_item(order_id) or {}).get("skips", [])]


def redeliver_later(p: LocalPipeline, messages: list[dict]) -> None:
    """The invocation died: SQS shows its messages again after the visibility timeout."""
    for m in messages:
        p.sqs.change_message_visibility(
            QueueUrl=p.resources.send_queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    p.clock.advance(p.retry_delay_seconds)


# ---------------------------------------------------------------------------------------------


PUBLISH_TIMEOUTS = {
    "sns": SNS_PUBLISH_TIMEOUT,
    "end-user-messaging": EUM_PUBLISH_TIMEOUT,
    "aliyun": ALIYUN_PUBLISH_TIMEOUT,
}


def own_client(gateway: str) -> Any:
    """The client the send function builds for this gateway (bootstrap.sms_gateway's config)."""
    if gateway == "aliyun":
        return make_client("key-id", "key-secret")
    service, config = {
        "sns": ("sns", SNS_CLIENT_CONFIG),
        "end-user-messaging": ("pinpoint-sms-voice-v2", EUM_CLIENT_CONFIG),
    }[gateway]
    return boto3.client(service, region_name="us-east-1", config=config)


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_the_send_functions_timeouts_fit_inside_each_other(gateway):
    """A hung hand-off must end (as unconfirmed) before the send function's timeout, and a claim
    that outlived any invocation must be seen as its sender's death by the redelivery."""
    resources = load_template(TEMPLATE)["Resources"]
    function_timeout = timedelta(seconds=int(resources["SendFunction"]["Properties"]["Timeout"]))
    visibility = timedelta(seconds=int(resources["SendQueue"]["Properties"]["VisibilityTimeout"]))
    connect, read, attempts = client_timeouts(own_client(gateway))
    assert attempts == 1  # one hand-off per attempt: a retried call after a lost answer sends twice
    publish_at_worst = timedelta(seconds=connect + read)
    assert publish_at_worst == PUBLISH_TIMEOUTS[gateway]  # what the sender reckons with
    assert publish_at_worst < MIN_TIME_TO_SEND < function_timeout < CLAIM_IN_FLIGHT_LIMIT < visibility


def test_the_send_function_builds_its_gateway_client_with_short_timeouts_and_one_attempt(pipeline):
    connect, read, attempts = client_timeouts(pipeline.send_app.sender.sms._client)
    assert (connect, read, attempts) == (2, 10, 1)  # botocore adds its retry "mode" when used
    assert timedelta(seconds=connect + read) == PUBLISH_TIMEOUTS[pipeline.gateway]
    assert pipeline.send_app.sender.publish_timeout == PUBLISH_TIMEOUTS[pipeline.gateway]


def test_a_hung_publish_is_unconfirmed_and_the_buyer_gets_nothing_more_within_24_hours(pipeline, monkeypatch):
    p = pipeline
    metrics = MetricNames(p, monkeypatch)
    p.load_orders([order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3))])
    assert p.fire_window(MORNING, AT)["enqueued"] == 1
    # The provider took the SMS, but its answer never came: the client gives up (read timeout).
    p.provider.fail_next("answer_lost")
    stats = p.drain_queue()
    assert stats["messages"] == 2  # failed once as unconfirmed, its redelivery is a plain duplicate
    assert metrics.names["SendUnconfirmed"] == 1 and metrics.names["Send_duplicate"] == 1
    item = p.ledger_item("o-1")
    assert int(item["claimed_attempt"]) == 1 and "reminders_sent" not in item  # the claim is kept
    assert skip_reasons(p, "o-1")[0].startswith("unconfirmed: publish outcome unknown")

    # The same buyer orders again at noon; the afternoon plan sees the unknown claim ...
    p.load_orders([order("o-2", "b-1", "+8613800138002", datetime(2026, 11, 23, 12, 0, tzinfo=SH))])
    afternoon = p.fire_window(AFTERNOON, PM)
    assert afternoon["by_reason"].get("buyer_recently_contacted") == 1 and afternoon["enqueued"] == 0
    # ... and a send the plan did not see (a concurrent run, an older plan) meets the buyer's slot.
    SqsSendQueue(p.sqs, p.resources.send_queue_url).enqueue(
        [send_request("o-2", "b-1", "+8613800138002", at=PM, window="15:00-16:50")]
    )
    p.clock.set(PM)
    p.drain_queue()
    assert skip_reasons(p, "o-2") == ["buyer_recently_contacted"]
    assert p.provider.received() == ["+8613800138001"]  # the one the provider took, nothing more


def test_a_hand_off_that_never_connected_is_retried_and_sent_once(pipeline, monkeypatch):
    p = pipeline
    metrics = MetricNames(p, monkeypatch)
    p.load_orders([order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3))])
    assert p.fire_window(MORNING, AT)["enqueued"] == 1
    p.provider.fail_next("unreachable")  # the connect timed out: nothing left the function
    stats = p.drain_queue()
    assert stats["failed"] == 1 and stats["messages"] == 2  # the claim went back; SQS retried
    assert metrics.names["SendUnconfirmed"] == 0
    assert p.provider.received() == ["+8613800138001"]
    assert int(p.ledger_item("o-1")["reminders_sent"]) == 1


def test_throttled_hand_offs_give_their_claims_back_and_are_sent_once_on_retry(pipeline):
    p = pipeline
    p.load_orders(
        [order(f"o-{i}", f"b-{i}", f"+86138001380{i:02d}", AT - timedelta(hours=3)) for i in (1, 2, 3)]
    )
    assert p.fire_window(MORNING, AT)["enqueued"] == 3
    p.provider.fail_next("throttled", "throttled")
    stats = p.drain_queue()
    assert stats["failed"] == 2  # reported as batch item failures, back after the visibility timeout
    assert Counter(p.provider.received()) == Counter(f"+86138001380{i:02d}" for i in (1, 2, 3))
    assert p.plan_app.ledger.sent_on(AT.date()) == 3  # each throttled claim gave its unit back once
    assert p.clock.now() < AT + timedelta(minutes=50)  # the retries fit in the window


@pytest.mark.parametrize("fault", ["dies", "dies_after_delivery"])
def test_a_sender_that_dies_after_its_claim_is_reported_once_and_never_resent(pipeline, monkeypatch, fault):
    p = pipeline
    metrics = MetricNames(p, monkeypatch)
    p.load_orders(
        [
            order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3, minutes=1)),
            order("o-2", "b-2", "+8613800138002", AT - timedelta(hours=3)),
        ]
    )
    p.fire_window(MORNING, AT)
    messages = p.receive()
    assert len(messages) == 2
    p.provider.fail_next(fault)  # as the hand-off starts, or once the provider took the SMS
    with pytest.raises(Died):
        p.deliver(messages)  # the first claim is taken, then the invocation dies
    crashed = next(oid for oid in ("o-1", "o-2") if p.ledger_item(oid))
    assert int(p.ledger_item(crashed)["claimed_attempt"]) == 1

    redeliver_later(p, messages)
    p.drain_queue()
    assert skip_reasons(p, crashed) == ["unconfirmed: claimed, never recorded as sent"]
    assert metrics.names["SendUnconfirmed"] == 1 and metrics.names["Send_unconfirmed"] == 1
    phone = {"o-1": "+8613800138001", "o-2": "+8613800138002"}[crashed]
    other = {"+8613800138001", "+8613800138002"} - {phone}
    # the message the crash never reached, and the dead sender's only if the provider took it
    assert Counter(p.provider.received()) == Counter(
        [*other, *([phone] if fault == "dies_after_delivery" else [])]
    )
    # A later plan queuing the same attempt again finds it settled: a duplicate, not a new report.
    buyer = {"o-1": "b-1", "o-2": "b-2"}[crashed]
    SqsSendQueue(p.sqs, p.resources.send_queue_url).enqueue(
        [send_request(crashed, buyer, phone, at=AT, window="09:50-10:40")]
    )
    p.drain_queue()
    assert metrics.names["SendUnconfirmed"] == 1 and metrics.names["Send_duplicate"] == 1
    assert p.provider.received().count(phone) == (fault == "dies_after_delivery")  # never a second


def test_an_invocation_about_to_time_out_claims_nothing_and_the_message_is_retried(pipeline, monkeypatch):
    class Ending(LambdaContextStub):
        def get_remaining_time_in_millis(self) -> int:
            return 5_000

    p = pipeline
    metrics = MetricNames(p, monkeypatch)
    p.load_orders([order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3))])
    p.fire_window(MORNING, AT)
    messages = p.receive()
    result = p.send_module.lambda_handler(sqs_event(messages, p.queue_arn), Ending("send"))
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [messages[0]["MessageId"]]
    assert p.ledger_item("o-1") is None and p.provider.received() == []  # not even claimed
    assert metrics.names["SendDeferred"] == 1
    redeliver_later(p, messages)
    p.drain_queue()
    assert p.provider.received() == ["+8613800138001"]


def test_a_closing_written_between_plan_and_send_stops_the_sms(pipeline):
    p = pipeline
    p.load_orders(
        [order(f"o-{i}", f"b-{i}", f"+86138001380{i:02d}", AT - timedelta(hours=3)) for i in (1, 2, 3)]
    )
    assert p.fire_window(MORNING, AT)["enqueued"] == 3
    p.set_order_status("o-1", "closed")
    # the shop set a closing time that is already past; its closer has not flipped the status yet
    p.dynamodb.Table(p.resources.orders_table).update_item(
        Key={"order_id": "o-2"},
        UpdateExpression="SET closes_at = :c",
        ExpressionAttributeValues={":c": (AT - timedelta(minutes=1)).isoformat()},
    )
    p.drain_queue()
    assert p.provider.received() == ["+8613800138003"]
    assert skip_reasons(p, "o-1") == ["not_unpaid"]
    assert skip_reasons(p, "o-2") == [f"expired: closed at {(AT - timedelta(minutes=1)).isoformat()}"]


def test_a_throttled_sms_retried_after_the_order_closed_is_not_sent(pipeline):
    p = pipeline
    p.load_orders([order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3))])
    assert p.fire_window(MORNING, AT)["enqueued"] == 1
    # after the plan, the shop closes the order at 09:55 (its queued SMS does not know that)
    closes = AT + timedelta(minutes=5)
    p.dynamodb.Table(p.resources.orders_table).update_item(
        Key={"order_id": "o-1"},
        UpdateExpression="SET closes_at = :c",
        ExpressionAttributeValues={":c": closes.isoformat()},
    )
    p.provider.fail_next("throttled")
    stats = p.drain_queue()  # throttled, released; back 370 s later, after 09:55
    assert stats["failed"] == 1 and stats["messages"] == 2
    assert p.provider.received() == []
    assert skip_reasons(p, "o-1") == [f"expired: closed at {closes.isoformat()}"]
    assert p.plan_app.ledger.sent_on(AT.date()) == 0  # the throttled claim gave its unit back


@pytest.mark.usefixtures("atomic_moto")
def test_two_send_containers_at_once_text_one_buyer_once(pipeline):
    p = pipeline
    second = p.another_send_container()
    queue = SqsSendQueue(p.sqs, p.resources.send_queue_url)
    # Two orders of one buyer, queued by two plans (e.g. a manual run beside the scheduled one).
    queue.enqueue([send_request("o-1", "b-1", "+8613800138001", at=AT, window="09:50-10:40")])
    queue.enqueue([send_request("o-2", "b-1", "+8613800138002", at=AT, window="09:50-10:40")])
    p.load_orders(
        [
            order("o-1", "b-1", "+8613800138001", AT - timedelta(hours=3)),
            order("o-2", "b-1", "+8613800138002", AT - timedelta(hours=4)),
        ]
    )
    batches = [p.receive(1), p.receive(1)]
    barrier = threading.Barrier(2)
    for module in (p.send_module, second):  # both pass every check, then claim at the same moment
        ledger = module.APP.get().sender.ledger
        real = ledger.claim

        def claim(*args: Any, __real: Any = real, **kwargs: Any) -> Any:
            barrier.wait(timeout=10)
            return __real(*args, **kwargs)

        ledger.claim = claim
    results: list[Any] = []

    def invoke(module: Any, messages: list[dict]) -> None:
        results.append(module.lambda_handler(sqs_event(messages, p.queue_arn), LambdaContextStub("send")))

    threads = [
        threading.Thread(target=invoke, args=a) for a in ((p.send_module, batches[0]), (second, batches[1]))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"batchItemFailures": []}] * 2
    assert len(p.provider.received()) == 1
    assert skip_reasons(p, "o-1") + skip_reasons(p, "o-2") == ["buyer_recently_contacted"]
