"""Outcomes function: the orders table's stream, filtered to changes to `paid`, in batches.

Thin shell: read each record as a payment, record it in this invocation's ``OutcomeBatch``, count
the result. Its services come from ``nudge.bootstrap``, built on the first invocation. One batched
ledger read per batch; a record that cannot be read as a payment is logged and dropped
(retrying cannot fix it); a DynamoDB error fails the record, and Lambda retries from it (partial
batch failures, bisecting, then the on-failure queue).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge import bootstrap
from nudge.domain.outcomes import Payment
from nudge.services.outcomes import BadPaymentError, OutcomeBatch, OutcomeResult, payment_from_change

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()
# A batch whose every record failed raises (a function error), so that Lambda bisects it.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

APP = bootstrap.Lazy(bootstrap.outcomes_app_from_env)


def payment_of(record: DynamoDBRecord, app: bootstrap.OutcomesApp) -> Payment | None:
    stream = record.dynamodb
    if stream is None:
        raise BadPaymentError("dynamodb: missing")
    seen = stream.approximate_creation_date_time
    return payment_from_change(
        stream.new_image,
        stream.old_image or None,
        changed_at=datetime.fromtimestamp(seen, UTC) if seen else app.clock(),
        default_currency=app.settings.config.shop.currency,
    )


def parse_payments(
    records: list[dict], app: bootstrap.OutcomesApp
) -> dict[int, Payment | BadPaymentError | None]:
    """Each stream record read once: its payment, None (not a payment), or why not. Keyed by the
    record itself (the batch processor hands the record handler the very dicts of the event)."""
    parsed: dict[int, Payment | BadPaymentError | None] = {}
    for raw in records:
        record = DynamoDBRecord(raw)
        try:
            parsed[id(raw)] = payment_of(record, app)
        except BadPaymentError as exc:
            parsed[id(raw)] = exc
    return parsed


def record_payment(
    record: DynamoDBRecord,
    payment: Payment | BadPaymentError | None,
    batch: OutcomeBatch,
    app: bootstrap.OutcomesApp,
) -> str:
    if isinstance(payment, BadPaymentError):
        metrics.add_metric(name="PaymentUnreadable", unit=MetricUnit.Count, value=1)
        logger.warning(
            "stream record is not a readable payment",
            extra={"error": str(payment), "event_id": record.event_id},
        )
        return "unreadable"
    if payment is None:
        return "not_a_payment"
    result, outcome = batch.record(payment, app.clock())
    if result is OutcomeResult.RECOVERED and outcome is not None:
        metrics.add_metric(name="RecoveredOrders", unit=MetricUnit.Count, value=1)
        if outcome.currency == app.settings.config.shop.currency:
            metrics.add_metric(name="RecoveredRevenue", unit=MetricUnit.NoUnit, value=float(outcome.amount))
        else:
            # A sum of yuan and dollars means nothing: the revenue graph is in the shop's currency,
            # the others are counted here and `nudge report` gives their amounts per currency.
            metrics.add_metric(name="RecoveredOtherCurrencyOrders", unit=MetricUnit.Count, value=1)
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


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: stream images hold phones and names.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    app = APP.get()
    parsed = parse_payments(event.get("Records", []), app)
    payments = [p for p in parsed.values() if isinstance(p, Payment)]
    batch = app.recorder.start_batch(payments)  # one batched read; if it fails, the whole batch is retried
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_payment(record, parsed[id(record.raw_event)], batch, app),
        processor=processor,
        context=context,
    )
