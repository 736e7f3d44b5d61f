"""Audit function: once a day, finds the orders the plan can never decide and reports them.

Thin shell: scan the orders table (off the hot path, see ``nudge.adapters.orders.scan_order_items``), call
``audit_orders``, log each problem by order id and field, emit ``InvalidOrders`` and return the
counts. Its services come from ``nudge.bootstrap``, built on the first invocation.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge import bootstrap
from nudge.services.audit import audit_orders

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()

APP = bootstrap.Lazy(bootstrap.audit_app_from_env)


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    app = APP.get()
    report = audit_orders(app.order_items())
    # The order id, the field and what is wrong with it: never the value of a phone or a name
    # (parse_order's problems name a type or "missing" for those, not what the item holds).
    for problem in report.problems:
        logger.warning("invalid order item", extra=problem.to_json())
    metrics.add_metric(name="InvalidOrders", unit=MetricUnit.Count, value=report.invalid)
    metrics.add_metric(name="InvisibleOrders", unit=MetricUnit.Count, value=report.invisible)
    result = report.to_json()
    logger.info("orders audited", extra={"report": result})
    return result
