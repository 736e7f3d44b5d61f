"""Outcomes function: the orders table's stream, filtered to changes to `paid`, in batches.

Thin shell: read each record as a payment, call `OutcomeRecorder.record`, count the result. One
batched ledger read per batch; a record that cannot be read as a payment is logged and dropped
(retrying cannot fix it); a DynamoDB error fails the record, and Lambda retries from it (partial
batch failures, bisecting, then the on-failure queue).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge.adapters.outcomes import DynamoOutcomeStore
from nudge.domain.outcomes import Payment
from nudge.services.outcomes import BadPaymentError, OutcomeRecorder, OutcomeResult, payment_from_change
from nudge.settings import config_from_env, settings_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every record failed raises (a function error), so that Lambda bisects it.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

SETTINGS = settings_from_env(os.environ)
CONFIG = config_from_env(os.environ)
RECORDER = OutcomeRecorder(
    DynamoOutcomeStore(boto3.client("dynamodb"), SETTINGS.ledger_table),
    attribution_hours=CONFIG.outcomes.attribution_hours,
)


def clock() -> datetime:
    """The real time; tests and `nudge demo` replace it."""
    return datetime.now(UTC)


def payment_of(record: DynamoDBRecord) -> Payment | None:
    stream = record.dynamodb
    if stream is None:
        raise BadPaymentError("dynamodb: missing")
    seen = stream.approximate_creation_date_time
    return payment_from_change(
        stream.new_image,
        stream.old_image or None,
        changed_at=datetime.fromtimestamp(seen, UTC) if seen else clock(),
        default_currency=CONFIG.shop.currency,
    )


def record_handler(record: DynamoDBRecord) -> str:
    try:
        payment = payment_of(record)
    except BadPaymentError as exc:
        metrics.add_metric(name="PaymentUnreadable", unit=MetricUnit.Count, value=1)
        logger.warning(
            "stream record is not a readable payment", extra={"error": str(exc), "event_id": record.event_id}
        )
        return "unreadable"
    if payment is None:
        return "not_a_payment"
    result, outcome = RECORDER.record(payment, clock())
    if result is OutcomeResult.RECOVERED and outcome is not None:
        metrics.add_metric(name="RecoveredOrders", unit=MetricUnit.Count, value=1)
        # In the order's currency: a one-currency shop reads it as revenue (`nudge report` splits).
        metrics.add_metric(name="RecoveredRevenue", unit=MetricUnit.NoUnit, value=float(outcome.amount))
    elif result is OutcomeResult.HOLDOUT_PAID:
        metrics.add_metric(name="HoldoutPaidOrders", unit=MetricUnit.Count, value=1)
    logger.info(
        "payment",
        extra={
            "order_id": payment.order_id,
            "result": result.value,
            "attempt": outcome.attempt if outcome else None,
            "minutes_to_pay": outcome.minutes_to_pay if outcome else None,
        },
    )
    return result.value


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    payments = []
    for raw in event.get("Records", []):
        try:
            payment = payment_of(DynamoDBRecord(raw))
        except BadPaymentError:
            continue  # the record handler logs it
        if payment is not None:
            payments.append(payment)
    RECORDER.start_batch(payments)  # one batched read; if it fails, the whole batch is retried
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
