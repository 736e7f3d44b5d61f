"""Alibaba Cloud's HTTP pushes to the ingest Function URL: delivery receipts (``SmsReport``) and
buyers' replies (``SmsUp``).

Alibaba Cloud's console takes one URL per message type and signs nothing, so the URL carries a
secret token the stack generated (``/receipts/aliyun/report/<token>``, ``/receipts/aliyun/up/<token>``):
a wrong or missing token is answered 401 before the body is read, and nothing is written. With the
right token the body (a JSON array) is applied item by item: receipts through the ledger's
conditional write (``record_aliyun_reports``), replies through ``handle_aliyun_replies``.

Answers, as Alibaba Cloud expects them: ``{"code": 0, "msg": "接收成功"}`` once every item is
applied or counted and dropped (an unreadable item or body too: a retry cannot fix it); when
DynamoDB or SNS fails the error propagates and the handler answers 500 with a non-zero code, and
Alibaba Cloud pushes the batch again (after 1, 5, 10, 30 and 60 minutes, ten pushes at most): the
items already applied are replays then and change nothing. A reply's answer is the same whether
or not Nudge knows the number.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from nudge.domain.delivery import ReceiptError, aliyun_push_items
from nudge.services.ingest import MAX_BODY_BYTES as MAX_PUSH_BYTES
from nudge.services.ports import DeliveryLedger, StaffNotifier, WebhookSecrets
from nudge.services.receipts import Counted, ReceiptResult, counted, record_aliyun_reports
from nudge.services.replies import counted_reply, handle_aliyun_replies, unreadable

__all__ = [
    "ACCEPTED",
    "ALIYUN_PUSH_SECRET",
    "PushKind",
    "PushResult",
    "receive_aliyun_push",
    "token_matches",
]

ALIYUN_PUSH_SECRET = "aliyun-push"  # the token's name in the secrets adapter
ACCEPTED = {"code": 0, "msg": "接收成功"}  # Alibaba Cloud's documented answer: do not push again
UNAUTHORIZED = {"code": 401, "msg": "unauthorized"}
FAILED = {"code": 500, "msg": "internal error; push again"}


class PushKind(StrEnum):
    REPORT = "report"  # SmsReport: delivery receipts
    UP = "up"  # SmsUp: buyers' replies


@dataclass(frozen=True, slots=True)
class PushResult:
    http_status: int
    body: dict[str, object]
    counted: tuple[Counted, ...] = ()  # one per item, for the handler's metrics and logs


def token_matches(given: str, expected: str | None) -> bool:
    """In constant time (for tokens of one length); never true without a token set."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def receive_aliyun_push(
    kind: PushKind,
    token: str,
    raw: bytes | None,
    *,
    secrets: WebhookSecrets,
    ledger: DeliveryLedger,
    staff: StaffNotifier | None,
    now: datetime,
) -> PushResult:
    """Check the token, then apply the push (``raw`` None: the body was over the size limit, a
    retry cannot fix it; counted as unreadable and accepted). Raises SecretsUnavailable, or a DynamoDB / SNS error:
    the handler answers 500 and Alibaba Cloud pushes again."""
    if not token_matches(token, secrets.secret(ALIYUN_PUSH_SECRET)):
        return PushResult(401, UNAUTHORIZED)
    try:
        if raw is None:
            raise ReceiptError(f"body: over {MAX_PUSH_BYTES} bytes")
        items = aliyun_push_items(raw)
    except ReceiptError as exc:
        if kind is PushKind.REPORT:
            return PushResult(200, ACCEPTED, (counted(ReceiptResult(None, problem=str(exc))),))
        return PushResult(200, ACCEPTED, (counted_reply(unreadable(str(exc))),))
    if kind is PushKind.REPORT:
        results = tuple(counted(r) for r in record_aliyun_reports(items, ledger))
    else:
        results = tuple(
            counted_reply(r) for r in handle_aliyun_replies(items, ledger=ledger, staff=staff, now=now)
        )
    return PushResult(200, ACCEPTED, results)
