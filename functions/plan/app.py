"""Plan function: EventBridge Scheduler fires it at the start of each sending window.

Thin shell: parse the schedule's event, plan the window once (``app.once``), report metrics and a
summary. Its services come from ``nudge.bootstrap``, built on the first invocation.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel

from nudge import bootstrap
from nudge.domain.models import Reason
from nudge.services.planning import WindowRun, plan_window, run_key

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()

APP = bootstrap.Lazy(bootstrap.plan_app_from_env)


class ScheduleEvent(BaseModel):
    """The Input template.yaml gives each schedule."""

    window: str
    scheduled_time: AwareDatetime


def plan_and_report(app: bootstrap.PlanApp, run: WindowRun, started_at: datetime) -> dict:
    settings = app.settings
    plan, summary = plan_window(
        run,
        config=settings.config,
        calendar=app.calendar,
        orders=app.orders,
        ledger=app.ledger,
        queue=app.queue,
        started_at=started_at,
        paused=app.paused(),
        dry_run=settings.dry_run,
        staff=app.staff,
        template_params=settings.sends_templates,  # Alibaba Cloud: the registered template's values
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


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: events never hold personal data here,
# but the send function's do, and both handlers keep the same rule.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    app = APP.get()
    schedule = parse(event=event, model=ScheduleEvent)
    run = WindowRun(window=schedule.window, scheduled_at=schedule.scheduled_time)
    started_at = app.clock()
    # A window fired twice (a scheduler retry, a manual re-run, the same minute as other event
    # text) plans once: the key is the parsed window and judged minute, not the raw event.
    key = run_key(run, config=app.settings.config, started_at=started_at)
    return app.once(key, lambda: plan_and_report(app, run, started_at), context)
