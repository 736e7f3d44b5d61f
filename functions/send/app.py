"""Send function: drains the send queue in SQS batches, reporting partial batch failures.

Thin shell: parse each message, call the sender, count the outcome. Its services come from
``nudge.bootstrap``, built on the first invocation.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge import bootstrap
from nudge.domain.privacy import mask_phone
from nudge.services.ports import SendRequest
from nudge.services.sending import (
    RetryLaterError,
    SendBatch,
    SendOutcome,
    TooLittleTimeError,
    UnconfirmedSendError,
)

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()
# A batch whose every message failed is reported like a partial failure, not raised: SQS retries
# exactly the same messages either way, and a throttled minute should not page anyone as a
# function error. Failures are logged and counted below instead.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

APP = bootstrap.Lazy(bootstrap.send_app_from_env)


def parse_requests(records: list[dict]) -> dict[int, SendRequest | ValueError]:
    """Each message's body read once: the request, or why it does not parse. Keyed by the record
    itself (the batch processor hands the record handler the very dicts of the event)."""
    parsed: dict[int, SendRequest | ValueError] = {}
    for raw in records:
        record = SQSRecord(raw)
        try:
            parsed[id(raw)] = SendRequest.from_json(record.json_body)
        except (ValueError, KeyError, TypeError) as exc:
            parsed[id(raw)] = ValueError(f"unreadable send request: {type(exc).__name__}")
    return parsed


def deliver(batch: SendBatch, request: SendRequest | ValueError) -> str:
    if isinstance(request, ValueError):
        raise request  # failed: SQS moves it to the DLQ after its retries
    try:
        outcome = batch.deliver(request)
    except TooLittleTimeError as exc:
        metrics.add_metric(name="SendDeferred", unit=MetricUnit.Count, value=1)
        logger.warning(
            "send deferred: invocation ending", extra={"order_id": request.order_id, "error": str(exc)}
        )
        raise
    except RetryLaterError as exc:
        metrics.add_metric(name="SendThrottled", unit=MetricUnit.Count, value=1)
        logger.warning("send retried later", extra={"order_id": request.order_id, "error": str(exc)})
        raise
    except UnconfirmedSendError:
        # The SMS may or may not have gone out; its claim stays, so it is never sent again.
        metrics.add_metric(name="SendUnconfirmed", unit=MetricUnit.Count, value=1)
        logger.exception(
            "send outcome unknown", extra={"order_id": request.order_id, "attempt": request.attempt}
        )
        raise
    except Exception:
        # Failed before any claim (e.g. a DynamoDB error): nothing was sent; SQS delivers it again.
        metrics.add_metric(name="SendFailed", unit=MetricUnit.Count, value=1)
        logger.exception("send failed, will be retried", extra={"order_id": request.order_id})
        raise
    metrics.add_metric(name=f"Send_{outcome}", unit=MetricUnit.Count, value=1)
    if outcome is SendOutcome.SENT:
        metrics.add_metric(name="SmsSegments", unit=MetricUnit.Count, value=request.segments)
    elif outcome is SendOutcome.DAILY_LIMIT:
        metrics.add_metric(name="DailyLimitSkipped", unit=MetricUnit.Count, value=1)
    elif outcome is SendOutcome.UNCONFIRMED:  # a sender died holding this claim: reported once
        metrics.add_metric(name="SendUnconfirmed", unit=MetricUnit.Count, value=1)
    logger.info(
        "send outcome",
        extra={
            "order_id": request.order_id,
            "attempt": request.attempt,
            "outcome": outcome.value,
            "phone": mask_phone(request.phone),
        },
    )
    return outcome.value


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: every SQS body holds a phone number
# and the SMS text, which must never reach the logs.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    app = APP.get()
    parsed = parse_requests(event.get("Records", []))
    requests = [r for r in parsed.values() if isinstance(r, SendRequest)]
    # The one place the handler drives the sender. Per-invocation state (the orders read for this
    # batch, the time left) lives in `batch`, never on the module.
    batch = app.sender.start_batch(
        requests, paused=app.paused(), remaining_ms=context.get_remaining_time_in_millis
    )
    return process_partial_response(
        event=event,
        record_handler=lambda record: deliver(batch, parsed[id(record.raw_event)]),
        processor=processor,
        context=context,
    )
