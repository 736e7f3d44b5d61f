"""Send function: drains the send queue in SQS batches, reporting partial batch failures.

Thin shell: parse each message, call `Sender.deliver`, count the outcome.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge.adapters.dynamodb import DynamoOrderRepository, DynamoReminderLedger
from nudge.adapters.sns import SNS_CLIENT_CONFIG, SnsSmsGateway
from nudge.adapters.ssm import read_pause_switch
from nudge.domain.privacy import mask_phone
from nudge.services.ports import SendRequest
from nudge.services.sending import (
    Pacer,
    RetryLaterError,
    SendBatch,
    Sender,
    SendOutcome,
    TooLittleTimeError,
    UnconfirmedSendError,
)
from nudge.settings import config_from_env, settings_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A batch whose every message failed is reported like a partial failure, not raised: SQS retries
# exactly the same messages either way, and a throttled minute should not page anyone as a
# function error. Failures are logged and counted below instead.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

SETTINGS = settings_from_env(os.environ)
CONFIG = config_from_env(os.environ)


def clock() -> datetime:
    """The real time; tests and `nudge demo` replace it (and `sleep`)."""
    return datetime.now(UTC)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


_dynamodb = boto3.client("dynamodb")
SENDER = Sender(
    orders=DynamoOrderRepository(_dynamodb, SETTINGS.orders_table, SETTINGS.orders_status_index),
    ledger=DynamoReminderLedger(
        _dynamodb, SETTINGS.ledger_table, SETTINGS.ledger_day_index, SETTINGS.ledger_ttl_days
    ),
    sms=SnsSmsGateway(
        # Short timeouts, no retries (see SNS_CLIENT_CONFIG): a hung Publish ends as unconfirmed.
        boto3.client("sns", config=SNS_CLIENT_CONFIG),
        sender_id=SETTINGS.sms_sender_id,
        origination_number=SETTINGS.sms_origination_number,
        sms_type=SETTINGS.sms_type,
    ),
    clock=lambda: clock(),
    # template.yaml caps the queue's pollers (MaximumConcurrency): each paces at its share of the
    # shop's SMS-per-second ceiling, so together they stay under it.
    pacer=Pacer(
        SETTINGS.sms_per_second / SETTINGS.send_pollers, clock=lambda: clock(), sleep=lambda s: sleep(s)
    ),
    daily_cap=CONFIG.rules.daily_sms_cap,
    buyer_min_interval=timedelta(hours=CONFIG.rules.buyer_min_interval_hours),
    max_age=timedelta(hours=CONFIG.rules.max_age_hours),
    new_token=lambda: uuid.uuid4().hex,
    dry_run=SETTINGS.dry_run,
)


def record_handler(record: SQSRecord, batch: SendBatch) -> str:
    request = SendRequest.from_json(record.json_body)
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


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    requests = []
    for raw in event.get("Records", []):
        # A body that does not parse is failed by the record handler; SQS moves it to the DLQ.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            requests.append(SendRequest.from_json(SQSRecord(raw).json_body))
    # Per-invocation state (the orders read for this batch, the time left) lives in `batch`.
    batch = SENDER.start_batch(
        requests,
        paused=read_pause_switch(SETTINGS.paused_parameter),
        remaining_ms=context.get_remaining_time_in_millis,
    )
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, batch),
        processor=processor,
        context=context,
    )
