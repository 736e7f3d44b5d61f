"""Delivery receipts end to end: End User Messaging's EventBridge events through the real receipts
handler onto the ledger item of an SMS the pipeline sent (moto; stack from template.yaml)."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nudge_cli.cli import main
from nudge_local.moto_env import load_template
from nudge_local.pipeline import FUNCTIONS, FakeClock, LambdaContextStub, LocalPipeline, _load_handler
from tests.builders import MORNING_OPENS, QUIET, numbered_order
from tests.contract.test_dal import TEMPLATE, CallCounter
from tests.gateways import pipeline_provider

pytestmark = pytest.mark.aws

EVENTS = Path(__file__).resolve().parents[2] / "events"


def delivery(message_id: str, order_id: str, kind: str = "TEXT_DELIVERED", attempt: str = "1") -> dict:
    """The sample event (events/eum-text-delivered.json) about this SMS."""
    event = json.loads((EVENTS / "eum-text-delivered.json").read_text(encoding="utf-8"))
    event["detail"].update(
        messageId=message_id,
        eventType=kind,
        messageStatus=kind.removeprefix("TEXT_"),
        context={"order_id": order_id, "attempt": attempt},
    )
    return event


def test_receipts_land_on_the_sms_once_and_never_backwards():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        m1 = p.ledger_item("o-1")["message_id_1"]
        assert p.delivery_event(delivery(m1, "o-1", "TEXT_PENDING")) == {"result": "applied"}
        assert p.delivery_event(delivery(m1, "o-1")) == {"result": "applied"}
        assert p.delivery_event(delivery(m1, "o-1")) == {"result": "unchanged"}  # at least once
        assert p.delivery_event(delivery(m1, "o-1", "TEXT_QUEUED")) == {"result": "unchanged"}  # late
        item = p.ledger_item("o-1")
        assert (item["delivery_1"], item["delivery_code_1"]) == ("delivered", "DELIVERED")
        # Another order's id, a forged id, an order Nudge never texted: counted and dropped.
        assert p.delivery_event(delivery(m1, "o-2")) == {"result": "unknown_message"}
        assert p.delivery_event(delivery("forged", "o-404")) == {"result": "unknown_message"}
        assert p.ledger_item("o-404") is None and "delivery_1" not in p.ledger_item("o-2")
        unreadable = delivery(m1, "o-1")
        del unreadable["detail"]["messageId"]
        assert p.delivery_event(unreadable)["result"] == "unreadable"
        m2 = p.ledger_item("o-2")["message_id_1"]
        assert p.delivery_event(delivery(m2, "o-2", "TEXT_CARRIER_UNREACHABLE")) == {"result": "applied"}
        # nudge report reads them back: one delivered, one failed by its code
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
    r = json.loads(out.getvalue())
    assert (r["delivered"], r["failed"], r["expired"], r["delivery_rate"]) == (
        1,
        {"CARRIER_UNREACHABLE": 1},
        0,
        0.5,
    )


# ------------------------------------------------------------- SNS SMS delivery-status logs

SNS_LOGS = {"SnsDeliveryStatusLogs": "100"}


def sns_logs_event(*lines: tuple[str, str, str] | str) -> dict:
    """A CloudWatch Logs subscription event shaped like the samples in events/, its log lines SNS's
    delivery-status lines about these SMS: (message id, SUCCESS or FAILURE, providerResponse), or
    a raw line as given."""
    import base64
    import gzip

    sample = json.loads((EVENTS / "sns-sms-delivery-log-failure.json").read_text(encoding="utf-8"))
    payload = json.loads(gzip.decompress(base64.b64decode(sample["awslogs"]["data"])))
    template = json.loads(payload["logEvents"][0]["message"])
    events = []
    for i, spec in enumerate(lines):
        line = json.loads(json.dumps(template))
        if isinstance(spec, tuple):
            line["notification"]["messageId"], line["status"], line["delivery"]["providerResponse"] = spec
        message = spec if isinstance(spec, str) else json.dumps(line)
        events.append({"id": str(i), "timestamp": 1795399234558 + i, "message": message})
    payload["logEvents"] = events
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def ledger_keys(p: LocalPipeline) -> list[str]:
    table = p.dynamodb.Table(p.resources.ledger_table)
    return sorted(i["order_id"] for i in table.scan(ProjectionExpression="order_id")["Items"])


def test_sns_delivery_logs_land_on_the_sms_through_the_ledgers_pointer():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET, parameters=SNS_LOGS) as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2, 3)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        m1, m2 = p.ledger_item("o-1")["message_id_1"], p.ledger_item("o-2")["message_id_1"]
        pointers = [k for k in ledger_keys(p) if k.startswith("#sns-message#")]
        assert len(pointers) == 3  # one per SMS sent
        pointer = p.ledger_item(f"#sns-message#{m1}")
        assert (pointer["sms_order_id"], pointer["sms_attempt"]) == ("o-1", 1)
        assert set(pointer) == {
            "order_id",
            "sms_order_id",
            "sms_attempt",
            "expires_at",
        }  # no phone, no index key
        logs = sns_logs_event(
            (m1, "SUCCESS", "Message has been accepted by phone carrier"),
            (m2, "FAILURE", "Phone is currently unreachable/unavailable"),
            ("0f0f0f0f-aaaa-bbbb-cccc-404040404040", "SUCCESS", "Message has been accepted by phone carrier"),
            "not json: +12065550100",
        )
        counts = {"applied": 2, "unknown_message": 1, "unreadable": 1}
        assert p.delivery_event(logs) == {"result": "logs", "counts": counts}
        before = ledger_keys(p)
        assert p.delivery_event(logs) == {
            "result": "logs",
            "counts": {"unchanged": 2, "unknown_message": 1, "unreadable": 1},
        }
        assert ledger_keys(p) == before  # a replay changes nothing; the unknown id created nothing
        assert (p.ledger_item("o-1")["delivery_1"], p.ledger_item("o-1")["delivery_code_1"]) == (
            "delivered",
            "Message has been accepted by phone carrier",
        )
        assert p.ledger_item("o-2")["delivery_1"] == "failed"
        assert "delivery_1" not in p.ledger_item("o-3")
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
    r = json.loads(out.getvalue())
    assert (r["delivered"], r["failed"]) == (1, {"Phone is currently unreachable/unavailable": 1})
    assert "#sns-message#" not in out.getvalue()  # pointers are no orders and no SMS
    assert r["delivery_rate"] == 0.5  # of the SMS with a final receipt (o-3's has none yet)


def test_the_default_stack_writes_no_pointer_and_drops_sns_log_lines_it_cannot_place():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        assert p.resources.function_envs["SendFunction"]["SNS_DELIVERY_LOGS"] == "false"
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        assert not [k for k in ledger_keys(p) if k.startswith("#sns-message#")]
        m1 = p.ledger_item("o-1")["message_id_1"]
        logs = sns_logs_event((m1, "SUCCESS", "Message has been accepted by phone carrier"))
        assert p.delivery_event(logs) == {"result": "logs", "counts": {"unknown_message": 1}}
        assert "delivery_1" not in p.ledger_item("o-1")


def test_a_log_line_nested_too_deep_is_one_unreadable_line_not_a_failed_event():
    # Raised, the whole event would be retried and then dropped by CloudWatch Logs, lines and all.
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET, parameters=SNS_LOGS) as p:
        p.load_orders([numbered_order(1, created=MORNING_OPENS - timedelta(hours=3))])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        m1 = p.ledger_item("o-1")["message_id_1"]
        logs = sns_logs_event("[" * 100_000, (m1, "SUCCESS", "Message has been accepted by phone carrier"))
        assert p.delivery_event(logs) == {"result": "logs", "counts": {"unreadable": 1, "applied": 1}}
        assert p.ledger_item("o-1")["delivery_1"] == "delivered"


# ------------------------------------------------------------ unknown after 72 h (the daily run)


def ledger_calls(p: LocalPipeline) -> CallCounter:
    """The AWS calls the receipts function's own DynamoDB client makes from now on."""
    return CallCounter(p._receipts().APP.get().ledger._client, "dynamodb")


def test_the_daily_schedule_invokes_the_receipts_function_with_its_task():
    props = load_template(TEMPLATE)["Resources"]["ReceiptsFunction"]["Properties"]
    schedule = props["Events"]["UnknownAfter72h"]["Properties"]
    handler = _load_handler("receipts", FUNCTIONS / "receipts" / "app.py")
    assert json.loads(schedule["Input"]) == handler.MARK_UNKNOWN


def test_no_final_receipt_72_hours_after_the_send_is_unknown_written_once():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in (1, 2, 3, 4)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        mid = {f"o-{i}": p.ledger_item(f"o-{i}")["message_id_1"] for i in (1, 2, 3, 4)}
        assert p.delivery_event(delivery(mid["o-1"], "o-1")) == {"result": "applied"}
        assert p.delivery_event(delivery(mid["o-2"], "o-2", "TEXT_PENDING")) == {"result": "applied"}
        assert p.delivery_event(delivery(mid["o-4"], "o-4", "TEXT_CARRIER_UNREACHABLE")) == {
            "result": "applied"
        }
        # o-3: no receipt at all

        p.clock.set(MORNING_OPENS + timedelta(hours=71))  # a receipt may still come: nothing written
        before = {oid: p.ledger_item(oid) for oid in mid}
        assert p.mark_unknown()["marked_unknown"] == 0
        assert {oid: p.ledger_item(oid) for oid in mid} == before

        p.clock.set(MORNING_OPENS + timedelta(hours=73))
        calls = ledger_calls(p)
        first = p.mark_unknown()
        assert (first["marked_unknown"], first["raced"], first["limited"]) == (2, 0, False)
        assert [p.ledger_item(o).get("delivery_1") for o in mid] == [
            "delivered",
            "unknown",
            "unknown",
            "failed",
        ]
        assert p.ledger_item("o-3")["delivery_code_1"] == "NO_RECEIPT_72H"
        # Bounded: one Query per index day of the span (one page each here), one write per SMS.
        assert calls.ops == {"Query": len(first["days"]), "UpdateItem": 2}
        assert len(first["days"]) == 8  # the 7-day look-back's shop days, the deadline's day included

        after = {oid: p.ledger_item(oid) for oid in mid}
        again = ledger_calls(p)
        assert p.mark_unknown()["marked_unknown"] == 0  # a second run (or a retried one) changes nothing
        assert {oid: p.ledger_item(oid) for oid in mid} == after
        assert "UpdateItem" not in again.ops and "Scan" not in again.ops

        # A real receipt after 72 h: unknown is final like the others; counted, nothing changes.
        assert p.delivery_event(delivery(mid["o-3"], "o-3")) == {"result": "unchanged"}
        assert p.ledger_item("o-3")["delivery_1"] == "unknown"

        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
        text = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1"], text) == 0
    r = json.loads(out.getvalue())
    assert (r["delivered"], r["unknown"], r["failed"], r["delivery_rate"]) == (
        1,
        2,
        {"CARRIER_UNREACHABLE": 1},
        0.25,
    )
    assert "unknown 2 (no final receipt within 72 h)" in text.getvalue()


def test_a_receipt_landing_between_the_read_and_the_write_wins():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(1, created=MORNING_OPENS - timedelta(hours=3))])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        m1 = p.ledger_item("o-1")["message_id_1"]
        p.clock.set(MORNING_OPENS + timedelta(hours=80))
        client = p._receipts().APP.get().ledger._client

        def receipt_first(**_: object) -> None:  # the receipts function, invoked at the same moment
            client.meta.events.unregister("before-call.dynamodb.UpdateItem", unique_id="race")
            assert p.delivery_event(delivery(m1, "o-1")) == {"result": "applied"}

        client.meta.events.register("before-call.dynamodb.UpdateItem", receipt_first, unique_id="race")
        summary = p.mark_unknown()
        assert (summary["marked_unknown"], summary["raced"]) == (0, 1)
        assert p.ledger_item("o-1")["delivery_1"] == "delivered"


def test_an_unconfirmed_send_without_a_receipt_is_settled_as_unknown():
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(1, created=MORNING_OPENS - timedelta(hours=3))])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        # The next day's reminder: its Publish goes unanswered, its outcome is unknown (unconfirmed).
        next_day = MORNING_OPENS + timedelta(days=1)
        assert p.fire_window("09:50-10:40@11:00", next_day)["enqueued"] == 1
        pipeline_provider(p).fail_next("answer_lost")  # SNS took it; its answer is lost
        p.drain_queue()
        item = p.ledger_item("o-1")
        assert {int(a) for a in item["unconfirmed_attempts"]} == {2} and "message_id_2" not in item

        p.clock.set(next_day + timedelta(hours=71))  # the first SMS is due, the second not yet
        # (the item is in the index under its first SMS's day: reminder 2 was never recorded)
        assert p.mark_unknown()["marked_unknown"] == 1
        assert "delivery_2" not in p.ledger_item("o-1")
        p.clock.set(next_day + timedelta(hours=73))
        summary = p.mark_unknown()
        assert (summary["marked_unknown"], summary["marked_unknown_unconfirmed"]) == (1, 1)
        item = p.ledger_item("o-1")
        assert (item["delivery_1"], item["delivery_2"]) == ("unknown", "unknown")
        assert "message_id_2" not in item and int(item["claimed_attempt"]) == 2  # never resent
        # Settled: a receipt naming it now changes nothing.
        assert p.delivery_event(delivery("late-id", "o-1", attempt="2")) == {"result": "unchanged"}
        assert p.ledger_item("o-1")["delivery_2"] == "unknown"


def test_an_order_whose_only_sms_is_unconfirmed_is_settled_as_unknown_too():
    """The commonest unconfirmed case: the first reminder's answer is lost, so nothing was ever
    recorded as sent. The run still finds it (the day index at its claim) and settles it."""
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(1, created=MORNING_OPENS - timedelta(hours=3))])
        pipeline_provider(p).fail_next("answer_lost")
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        item = p.ledger_item("o-1")
        assert {int(a) for a in item["unconfirmed_attempts"]} == {1} and "reminders_sent" not in item

        p.clock.set(MORNING_OPENS + timedelta(hours=73))
        summary = p.mark_unknown()
        assert (summary["marked_unknown"], summary["marked_unknown_unconfirmed"]) == (1, 1)
        item = p.ledger_item("o-1")
        assert (item["delivery_1"], item["delivery_code_1"]) == ("unknown", "NO_RECEIPT_72H")
        assert "message_id_1" not in item and int(item["claimed_attempt"]) == 1  # never resent
        assert p.mark_unknown()["marked_unknown"] == 0

        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        out = io.StringIO()
        assert main(["report", *tables, "--to", "2026-11-23", "--days", "1", "--json"], out) == 0
    r = json.loads(out.getvalue())
    assert r["sms"] == 0  # the report lists recorded sends: an unconfirmed one is not counted as sent


class RunningOut(LambdaContextStub):
    """A Lambda context with plenty of time for its first ``calls`` readings, then 5 s left."""

    def __init__(self, calls: int):
        super().__init__("nudge-local-ReceiptsFunction")
        self.calls = calls

    def get_remaining_time_in_millis(self) -> int:
        self.calls -= 1
        return 300_000 if self.calls >= 0 else 5_000


def test_the_daily_run_stops_cleanly_when_time_runs_short_and_the_next_run_goes_on(monkeypatch, caplog):
    with LocalPipeline(clock=FakeClock(MORNING_OPENS), env=QUIET) as p:
        p.load_orders([numbered_order(i, created=MORNING_OPENS - timedelta(hours=3)) for i in range(1, 6)])
        p.fire_window("09:50-10:40@11:00", MORNING_OPENS)
        p.drain_queue()
        module = p._receipts()
        emitted: list[tuple[str, Any]] = []
        real = module.metrics.add_metric

        def add_metric(name: str, **kwargs: Any) -> None:
            emitted.append((name, kwargs["value"]))
            real(name=name, **kwargs)

        monkeypatch.setattr(module.metrics, "add_metric", add_metric)
        p.clock.set(MORNING_OPENS + timedelta(hours=73))

        with caplog.at_level("WARNING", logger="nudge.services.receipt_deadline"):
            first = p.mark_unknown(RunningOut(calls=3))  # time for 3 SMS, then under the margin
        assert (first["examined"], first["marked_unknown"], first["limited"]) == (3, 3, True)
        assert ("DeliveryUnknownUnfinished", 1) in emitted and ("DeliveryUnknownMarked", 3) in emitted
        assert "out of time after 3 SMS read" in caplog.text and "+86" not in caplog.text
        assert sum(p.ledger_item(f"o-{i}").get("delivery_1") == "unknown" for i in range(1, 6)) == 3

        emitted.clear()
        second = p.mark_unknown()  # the next day's run: plenty of time
        assert (second["examined"], second["marked_unknown"], second["limited"]) == (5, 2, False)
        assert ("DeliveryUnknownUnfinished", 0) in emitted
        assert all(p.ledger_item(f"o-{i}")["delivery_1"] == "unknown" for i in range(1, 6))
