"""Replies function: buyers' SMS to the shop's number (End User Messaging two-way SMS, through the
stack's inbound SNS topic). Thin shell: read each SNS record, ``handle_reply``, count it.

Logs hold the masked number only, never the buyer's text.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge import bootstrap
from nudge.domain.delivery import ReceiptError, reply_from_eum_inbound
from nudge.services.receipts import emit
from nudge.services.replies import ReplyResult, counted_reply, handle_reply, unreadable

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()

APP = bootstrap.Lazy(bootstrap.replies_app_from_env)


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: replies hold phone numbers and text.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    app = APP.get()
    results = []
    for record in event.get("Records", []):
        try:
            reply = reply_from_eum_inbound(json.loads(record["Sns"]["Message"]))
        except (KeyError, TypeError, ValueError) as exc:  # ReceiptError is a ValueError
            problem = (
                str(exc)
                if isinstance(exc, ReceiptError)
                else f"not a two-way SMS payload: {type(exc).__name__}"
            )
            results.append(_count(unreadable(problem)))
            continue
        results.append(_count(handle_reply(reply, ledger=app.ledger, staff=app.staff, now=app.clock())))
    return {"results": results}


def _count(result: ReplyResult) -> str:
    """Metrics and one log line (``nudge.services.receipts.emit``); the result's name."""
    return emit(counted_reply(result), metrics=metrics, logger=logger)
