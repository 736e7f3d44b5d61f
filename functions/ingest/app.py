"""Ingest function: signed webhooks from shops, behind a Lambda Function URL (auth NONE); with
SmsGateway=aliyun also Alibaba Cloud's receipts and replies by HTTP push
(``/receipts/aliyun/report/<token>``, ``/receipts/aliyun/up/<token>``).

Thin shell: take the raw body bytes (Function URLs base64-encode non-text bodies), call `ingest`
or `receive_aliyun_push`, answer with its HTTP status. Signatures and tokens are checked before
anything parses the body. Logs name the route, the answer and the reason, never a phone, a name,
the body or a token (the push routes' path is never logged).
"""

from __future__ import annotations

import base64
import binascii
import json

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from nudge import bootstrap
from nudge.domain.platforms.registry import PLATFORMS
from nudge.services.ingest import MAX_BODY_BYTES, Answer, IngestResult, ingest

logger = Logger()
tracer = bootstrap.handler_tracer()
metrics = Metrics()
app = LambdaFunctionUrlResolver()  # the routes; the services are APP, built on the first request

APP = bootstrap.Lazy(bootstrap.ingest_app_from_env)


def _answer(result: IngestResult) -> Response:
    metrics.add_metric(name=f"Webhook_{result.answer.value}", unit=MetricUnit.Count, value=1)
    extra = {"route": result.route, "answer": result.answer.value, "reason": result.reason}
    if result.answer is Answer.IGNORED:
        # Per reason too: a status Nudge does not know (unknown_status) is worth a look at the shop.
        metrics.add_metric(name=f"Webhook_ignored_{result.reason}", unit=MetricUnit.Count, value=1)
    if result.answer is Answer.INVALID or (result.answer is Answer.IGNORED and result.field):
        extra["field"] = result.field
    if result.answer is Answer.IGNORED and result.problem:
        extra["problem"] = result.problem  # a status value, cut to 40 characters: no personal data
    if result.order_id and result.answer is not Answer.UNAUTHORIZED:
        extra["order_id"] = result.order_id
    level = logger.warning if result.http_status >= 400 else logger.info
    level("webhook", extra=extra)
    return Response(
        status_code=result.http_status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(result.to_json(), ensure_ascii=False),
    )


def _raw_body() -> bytes | None:
    event = app.current_event
    body = event.body or ""
    if len(body) > 2 * MAX_BODY_BYTES:  # base64 or not, far over the limit: do not even decode it
        return None
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b"\x00invalid-base64"  # cannot be signed by anyone: answered 401
    return body.encode("utf-8")


def _handle(route: str) -> Response:
    raw = _raw_body()
    if raw is None:
        return _answer(IngestResult(Answer.TOO_LARGE, route))
    services = APP.get()
    headers = dict(app.current_event.headers)
    return _answer(
        ingest(route, headers, raw, secrets=services.secrets, store=services.store, now=services.clock())
    )


@app.post("/webhooks/<route>")
def webhook(route: str) -> Response:
    if route not in PLATFORMS:
        return not_found(None)
    return _handle(route)


@app.post("/receipts/aliyun/<kind>")
def aliyun_push_without_token(kind: str) -> Response:
    return aliyun_push(kind, "")


@app.post("/receipts/aliyun/<kind>/<token>")
def aliyun_push(kind: str, token: str) -> Response:
    # Imported here: the webhook-only ingest function (every gateway but aliyun) never loads them.
    from nudge.services.aliyun_push import FAILED, PushKind, receive_aliyun_push
    from nudge.services.receipts import emit

    services = APP.get()
    if services.aliyun is None or kind not in PushKind.__members__.values():
        return not_found(None)
    push = services.aliyun
    route = f"aliyun/{kind}"  # never the path: it holds the token
    try:
        result = receive_aliyun_push(
            PushKind(kind),
            token,
            _raw_body(),  # None: over the size limit
            secrets=push.secrets,
            ledger=push.ledger,
            staff=push.staff,
            now=services.clock(),
        )
    except Exception as exc:  # DynamoDB, SNS or Secrets Manager: Alibaba Cloud pushes again
        logger.error("aliyun push failed", extra={"route": route, "error": type(exc).__name__})
        metrics.add_metric(name="Webhook_error", unit=MetricUnit.Count, value=1)
        return _json(500, FAILED)
    counts: dict[str, int] = {}
    for item in result.counted:
        name = emit(item, metrics=metrics, logger=logger)
        counts[name] = counts.get(name, 0) + 1
    level = logger.warning if result.http_status >= 400 else logger.info
    level("aliyun push", extra={"route": route, "status": result.http_status, "counts": counts})
    if result.http_status == 401:
        metrics.add_metric(name="Webhook_unauthorized", unit=MetricUnit.Count, value=1)
    return _json(result.http_status, result.body)


def _json(status: int, body: dict) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False),
    )


@app.not_found
def not_found(_: Exception | None) -> Response:
    routes = ", ".join(f"/webhooks/{r}" for r in PLATFORMS)
    return Response(
        status_code=404,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"result": "not_found", "error": f"POST {routes}"}),
    )


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    # No message and no traceback text: either could carry order data. The type and place suffice.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else "?"
    logger.error("webhook failed", extra={"error": type(exc).__name__, "at": where})
    metrics.add_metric(name="Webhook_error", unit=MetricUnit.Count, value=1)
    return Response(
        status_code=500,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"result": "error", "error": "internal error; retry"}),
    )


# log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: webhook bodies hold phones and names.
@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
