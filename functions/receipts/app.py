"""Receipts function: End User Messaging's delivery events (EventBridge, source aws.sms-voice),
SNS's SMS delivery-status logs (a CloudWatch Logs subscription, SnsDeliveryStatusLogs on), and once
a day (EventBridge Scheduler, input ``{"task": "mark_unknown"}``) ``unknown`` on the SMS still
without a final status 72 h after their send.

Thin shell: read the event, record each receipt on its SMS's ledger item (``record_delivery_event``,
``record_sns_delivery_logs``), count them. Unreadable events or log lines and receipts for no known
SMS are counted and dropped (a retry cannot fix them); a DynamoDB error raises, so Lambda retries
the event. Logs never hold the phone number. The daily run calls ``mark_unknown_deliveries`` with
the invocation's time left, returns its counts, and emits ``DeliveryUnknownUnfinished`` = 1 when it
stopped before the end (an alarm: the shop's backlog outgrows the daily run).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge import bootstrap
from nudge.services.receipt_deadline import mark_unknown_deliveries
from nudge.services.receipts import (
    ReceiptResult,
    counted,
    emit,
    is_cloudwatch_logs_event,
    record_delivery_event,
    record_sns_delivery_logs,
)

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()

APP = bootstrap.Lazy(bootstrap.receipts_app_from_env)
MARK_UNKNOWN = {"task": "mark_unknown"}  # the daily schedule's input (template.yaml)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: delivery events hold phone numbers.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    app = APP.get()
    if event == MARK_UNKNOWN:
        summary = mark_unknown_deliveries(
            app.ledger,
            app.clock(),
            app.settings.config.shop.zone,
            time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        metrics.add_metric(name="DeliveryUnknownMarked", unit=MetricUnit.Count, value=summary.marked)
        metrics.add_metric(
            name="DeliveryUnknownUnfinished", unit=MetricUnit.Count, value=int(summary.limited)
        )
        logger.info("unknown after 72 h", extra={"summary": summary.to_json()})
        return summary.to_json()
    if is_cloudwatch_logs_event(event):
        counts: dict[str, int] = {}
        for result in record_sns_delivery_logs(event, app.ledger):
            name = _count(result)
            counts[name] = counts.get(name, 0) + 1
        return {"result": "logs", "counts": counts}
    result = record_delivery_event(event, app.ledger)
    name = _count(result)
    return {"result": name, "problem": result.problem} if result.outcome is None else {"result": name}


def _count(result: ReceiptResult) -> str:
    """Metrics and one log line (``nudge.services.receipts.emit``); the result's name."""
    return emit(counted(result), metrics=metrics, logger=logger)
