"""Plan function: EventBridge Scheduler fires it at the start of each sending window.

Thin shell: parse the schedule's event, call `plan_window`, report metrics and a summary.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel

from nudge.adapters.dynamodb import DynamoOrderRepository, DynamoReminderLedger
from nudge.adapters.sqs import SqsSendQueue
from nudge.adapters.ssm import read_pause_switch
from nudge.adapters.staff import SnsStaffNotifier
from nudge.domain.models import Reason
from nudge.domain.restdays import RestDayCalendar
from nudge.services.planning import WindowRun, plan_window
from nudge.settings import config_from_env, settings_from_env

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Validated once per cold start: a bad setting stops here, before any order is read.
SETTINGS = settings_from_env(os.environ)
CONFIG = config_from_env(os.environ)
CALENDAR = RestDayCalendar(CONFIG.calendar)  # kept warm: holiday tables are built once a year

_dynamodb = boto3.client("dynamodb")
ORDERS = DynamoOrderRepository(_dynamodb, SETTINGS.orders_table, SETTINGS.orders_status_index)
LEDGER = DynamoReminderLedger(
    _dynamodb, SETTINGS.ledger_table, SETTINGS.ledger_day_index, SETTINGS.ledger_ttl_days
)
QUEUE = SqsSendQueue(boto3.client("sqs"), SETTINGS.send_queue_url)
# The staff call digest; template.yaml sets the topic (absent: no digest is sent).
STAFF = (
    SnsStaffNotifier(boto3.client("sns"), os.environ["STAFF_TOPIC_ARN"])
    if os.environ.get("STAFF_TOPIC_ARN")
    else None
)

# A window fired twice (a scheduler retry, a manual re-run of the same event) plans once.
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="[window, scheduled_time]", expires_after_seconds=2 * 86400
)
PERSISTENCE = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table)


class ScheduleEvent(BaseModel):
    """The Input template.yaml gives each schedule."""

    window: str
    scheduled_time: AwareDatetime


def clock() -> datetime:
    """The real time; tests and `nudge demo` replace it."""
    return datetime.now(UTC)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=IDEMPOTENCY, persistence_store=PERSISTENCE)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    schedule = parse(event=event, model=ScheduleEvent)
    run = WindowRun(window=schedule.window, scheduled_at=schedule.scheduled_time)
    plan, summary = plan_window(
        run,
        config=CONFIG,
        calendar=CALENDAR,
        orders=ORDERS,
        ledger=LEDGER,
        queue=QUEUE,
        started_at=clock(),
        paused=read_pause_switch(SETTINGS.paused_parameter),
        dry_run=SETTINGS.dry_run,
        staff=STAFF,
    )
    for warning in summary.warnings:
        logger.warning(warning)
    if plan is not None:
        for d in plan.decisions:
            if d.reason is Reason.INVALID_ORDER:
                logger.warning("invalid order", extra={"order_id": d.order_id, "detail": d.detail})
    for reason, count in summary.by_reason.items():
        metrics.add_metric(name=f"Decision_{reason}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="SmsEnqueued", unit=MetricUnit.Count, value=summary.enqueued)
    # The alarm on the daily cap watches this one metric, from both functions.
    metrics.add_metric(
        name="DailyLimitSkipped", unit=MetricUnit.Count, value=summary.by_reason.get("daily_limit", 0)
    )
    result = summary.to_json()
    logger.info("window planned", extra={"summary": result})
    return result
