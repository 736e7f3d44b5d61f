"""What became of an SMS after the gateway took it, and what a buyer's reply means (pure).

Receipts come at least once and out of order. Each SMS ends in one delivery status: ``pending``
until a final one arrives; the first final status stays (a late ``pending`` never replaces
``delivered``, and a second final receipt changes nothing); an SMS with no final receipt 72 h
after it was sent is ``unknown`` (both providers stop reporting by then): a daily run writes it
(``nudge.services.receipt_deadline``), and it is final like the others.

Replies: a reply that is an opt-out keyword, and nothing else, puts the number on the shop's
do-not-contact list; any other reply goes to the staff.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

RECEIPT_DEADLINE = timedelta(hours=72)  # after this, no receipt will come: the status is unknown


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued or on its way (not final)
    DELIVERED = "delivered"
    FAILED = "failed"  # with the provider's code: unreachable, invalid number or message...
    EXPIRED = "expired"  # its time-to-live ran out before the carrier took it
    BLOCKED = "blocked"  # the carrier or the handset blocked it (spam filters included)
    OPTED_OUT = "opted_out"
    UNKNOWN = "unknown"  # no final receipt within RECEIPT_DEADLINE, or the provider does not know


FINAL = frozenset(DeliveryStatus) - {DeliveryStatus.PENDING}


class ReceiptError(ValueError):
    """A receipt that cannot be read (missing id or status): counted and dropped."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """One provider report about one SMS, keyed as the provider knows it."""

    message_id: str  # the gateway's id, as recorded on the ledger (End User Messaging, Alibaba BizId)
    status: DeliveryStatus
    at: datetime
    code: str | None = None  # the provider's own status or error code
    order_id: str | None = None  # End User Messaging's Context or Alibaba Cloud's OutId, when present
    attempt: int | None = None


def takes(current: DeliveryStatus | None, new: DeliveryStatus) -> bool:
    """Whether a receipt with ``new`` changes an SMS whose status is ``current``: never backwards,
    and the first final status stays."""
    if current is None:
        return True
    if current in FINAL:
        return False
    return new in FINAL  # pending -> a final status; pending again changes nothing


def status_at(current: DeliveryStatus | None, sent_at: datetime, now: datetime) -> DeliveryStatus | None:
    """The status to show at ``now``: ``unknown`` once RECEIPT_DEADLINE has passed with no final."""
    if (current is None or current is DeliveryStatus.PENDING) and now - sent_at >= RECEIPT_DEADLINE:
        return DeliveryStatus.UNKNOWN
    return current


# ------------------------------------------------------------------------ unknown after 72 h

# The code a status written for want of a receipt carries (a provider's own "unknown", End User
# Messaging's TEXT_UNKNOWN, keeps the provider's code): the report and a reader tell them apart.
NO_RECEIPT_CODE = "NO_RECEIPT_72H"
# How far back, past the deadline, a sweep looks for SMS still without a final status: a sweep
# that failed or was cut short for up to this long is caught up by the next one.
SWEEP_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class AwaitedSms:
    """One SMS on a ledger item as the unknown-after-72-h sweep sees it."""

    order_id: str
    attempt: int
    sent_at: datetime  # its send (an unconfirmed one: when its unknown outcome was reported, later)
    status: DeliveryStatus | None  # None: no receipt at all
    unconfirmed: bool = False  # a send whose outcome was never known (no message id recorded)


def overdue(sms: AwaitedSms, now: datetime) -> bool:
    """Whether ``unknown`` is to be written on this SMS at ``now``: no final status and at least
    RECEIPT_DEADLINE since it was sent (``status_at`` says unknown while the item does not)."""
    return sms.status is not DeliveryStatus.UNKNOWN and status_at(sms.status, sms.sent_at, now) is (
        DeliveryStatus.UNKNOWN
    )


def sweep_span(
    now: datetime, zone: tzinfo, lookback: timedelta = SWEEP_LOOKBACK
) -> tuple[datetime, datetime, list[date]]:
    """What one sweep at ``now`` reads from the ledger's day index: items whose last SMS was sent
    in [``now`` - RECEIPT_DEADLINE - ``lookback``, ``now`` - RECEIPT_DEADLINE), on these shop-local
    days (the index's key, oldest first). An item's earlier SMS are older than its last one, so
    they are due when it is."""
    if now.tzinfo is None:
        raise ValueError("now: must be timezone-aware")
    if lookback <= timedelta(0):
        raise ValueError("lookback: must be positive")
    until = now - RECEIPT_DEADLINE
    since = until - lookback
    first, last = since.astimezone(zone).date(), until.astimezone(zone).date()
    return since, until, [first + timedelta(days=i) for i in range((last - first).days + 1)]


# --------------------------------------------------------------------- End User Messaging SMS

EUM_DETAIL_TYPE = "Text Message Delivery Status Updated"
_EUM_STATUS = {
    "TEXT_DELIVERED": DeliveryStatus.DELIVERED,
    "TEXT_SUCCESSFUL": DeliveryStatus.DELIVERED,  # accepted by the carrier; some countries send only this
    "TEXT_QUEUED": DeliveryStatus.PENDING,
    "TEXT_PENDING": DeliveryStatus.PENDING,
    "TEXT_BLOCKED": DeliveryStatus.BLOCKED,
    "TEXT_CARRIER_BLOCKED": DeliveryStatus.BLOCKED,
    "TEXT_SPAM": DeliveryStatus.BLOCKED,
    "TEXT_PROTECT_BLOCKED": DeliveryStatus.BLOCKED,
    "TEXT_TTL_EXPIRED": DeliveryStatus.EXPIRED,
    "TEXT_CARRIER_UNREACHABLE": DeliveryStatus.FAILED,
    "TEXT_UNREACHABLE": DeliveryStatus.FAILED,
    "TEXT_INVALID": DeliveryStatus.FAILED,
    "TEXT_INVALID_MESSAGE": DeliveryStatus.FAILED,
    "TEXT_UNKNOWN": DeliveryStatus.UNKNOWN,
}


def receipt_from_eum_event(event: Mapping[str, Any]) -> Receipt:
    """An EventBridge ``aws.sms-voice`` "Text Message Delivery Status Updated" event -> Receipt."""
    detail = event.get("detail")
    if event.get("detail-type") != EUM_DETAIL_TYPE or not isinstance(detail, Mapping):
        raise ReceiptError("not a text message delivery event")
    message_id, kind = detail.get("messageId"), detail.get("eventType")
    if not isinstance(message_id, str) or not message_id:
        raise ReceiptError("detail.messageId: missing")
    status = _EUM_STATUS.get(kind) if isinstance(kind, str) else None
    if status is None:
        raise ReceiptError(f"detail.eventType: not a text status: {str(kind)[:40]!r}")
    raw_context = detail.get("context")
    context: Mapping[str, Any] = raw_context if isinstance(raw_context, Mapping) else {}
    attempt = context.get("attempt")
    return Receipt(
        message_id=message_id,
        status=status,
        at=_from_millis(detail.get("eventTimestamp"), "detail.eventTimestamp"),
        code=str(detail.get("messageStatus") or kind),
        order_id=str(context["order_id"]) if context.get("order_id") else None,
        attempt=int(attempt)
        if isinstance(attempt, str) and attempt.isascii() and attempt.isdigit()
        else None,
    )


def _from_millis(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**14:
        raise ReceiptError(f"{field}: not a time in milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


# ------------------------------------------------------------- SNS SMS delivery-status logs

# SNS writes one JSON line per SMS to CloudWatch Logs once the account's SMS attributes
# DeliveryStatusIAMRole (and DeliveryStatusSuccessSamplingRate) are set: successes (sampled) to
# "sns/<region>/<account>/DirectPublishToPhoneNumber", failures (all) to ".../Failure". A line
# names the SNS message id and the phone (``delivery.destination``: never read here, never
# logged), not the order. ``delivery.providerResponse`` is SNS's text for what the carrier said;
# AWS publishes examples, not a list, so the texts below are matched by their words and any other
# failure is ``failed``, keeping the text as its code.
SNS_LOG_CODE_LENGTH = 80
_SNS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$")
_SNS_FAILURE_WORDS: tuple[tuple[str, DeliveryStatus], ...] = (
    ("opted out", DeliveryStatus.OPTED_OUT),  # "Phone number is opted out"
    ("blocked", DeliveryStatus.BLOCKED),  # "Phone carrier has blocked this message", "Phone has blocked SMS"
    ("expired", DeliveryStatus.EXPIRED),  # "...ttl expired", should SNS report one
    ("unknown error", DeliveryStatus.UNKNOWN),  # "Unknown error attempting to reach phone"
)


def receipt_from_sns_delivery_log(record: Mapping[str, Any]) -> Receipt:
    """One SNS SMS delivery-status log record (the JSON of one log line) -> Receipt.

    ``SUCCESS`` is ``delivered``; a ``FAILURE`` is read from its providerResponse: opted out,
    blocked (by the carrier or the handset), expired, an unknown error (``unknown``), anything else
    (unreachable, invalid number, over the max price...) ``failed``. The text is kept as the code.
    The receipt names no order: the ledger finds the SMS by its message id."""
    notification, delivery = record.get("notification"), record.get("delivery")
    if not isinstance(notification, Mapping) or not isinstance(delivery, Mapping):
        raise ReceiptError("not an SNS SMS delivery log record")
    message_id = notification.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise ReceiptError("notification.messageId: missing")
    raw_response = delivery.get("providerResponse")
    response = " ".join(raw_response.split())[:SNS_LOG_CODE_LENGTH] if isinstance(raw_response, str) else ""
    outcome = record.get("status")
    if outcome == "SUCCESS":
        status = DeliveryStatus.DELIVERED
    elif outcome == "FAILURE":
        lowered = response.lower()
        status = next((s for words, s in _SNS_FAILURE_WORDS if words in lowered), DeliveryStatus.FAILED)
    else:
        raise ReceiptError(f"status: not SUCCESS or FAILURE: {str(outcome)[:20]!r}")
    return Receipt(
        message_id=message_id,
        status=status,
        at=_sns_time(notification.get("timestamp"), "notification.timestamp"),
        code=response or str(outcome),
    )


def _sns_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not _SNS_TIME.match(value):
        raise ReceiptError(f"{field}: expected YYYY-MM-DD HH:MM:SS.mmm")
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)  # SNS writes UTC
    except ValueError:
        raise ReceiptError(f"{field}: not a date") from None


def cloudwatch_log_messages(event: Mapping[str, Any]) -> list[str]:
    """A CloudWatch Logs subscription's Lambda event (``{"awslogs": {"data": base64(gzip(json))}}``)
    -> the messages of its log events, oldest first. A ``CONTROL_MESSAGE`` (CloudWatch Logs checking
    that the destination is reachable) holds none."""
    awslogs = event.get("awslogs")
    data = awslogs.get("data") if isinstance(awslogs, Mapping) else None
    if not isinstance(data, str):
        raise ReceiptError("awslogs.data: missing")
    try:
        payload = json.loads(gzip.decompress(base64.b64decode(data, validate=True)))
    except (binascii.Error, OSError, EOFError, zlib.error, ValueError):
        raise ReceiptError("awslogs.data: not base64 gzip JSON") from None
    if not isinstance(payload, Mapping):
        raise ReceiptError("awslogs.data: not a JSON object")
    if payload.get("messageType") == "CONTROL_MESSAGE":
        return []
    events = payload.get("logEvents")
    if payload.get("messageType") != "DATA_MESSAGE" or not isinstance(events, list):
        raise ReceiptError("awslogs.data: not a DATA_MESSAGE with logEvents")
    return [
        e["message"] if isinstance(e, Mapping) and isinstance(e.get("message"), str) else "" for e in events
    ]


# -------------------------------------------------------------------------- Alibaba Cloud SMS

# Alibaba Cloud passes the carriers' report codes through. The one this reads is the CMPP state
# shared by the three Chinese carriers, EXPIRED (the handset was off or out of reach for the
# whole validity period); every other failure (UNDELIV, REJECTD, the carriers' MK:/MI:/IB: codes)
# is `failed`, keeping its code, so a shop can look it up in its carrier's table.
_ALIYUN_EXPIRED = frozenset({"EXPIRED"})
_ALIYUN_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_CHINA = timedelta(hours=8)
ALIYUN_CODE_LENGTH = 40  # a carrier code is a few characters; a longer one is cut, never stored whole


# OutId: the SMS's ledger key (reminder number + order id), so that its receipt finds the ledger
# item (keyed by order id) and the attempt on it. dysmsapi's SendSms reference gives OutId as a
# string with no length; Alibaba Cloud's voice APIs cap their OutId at 15 bytes. Nudge keeps it
# within OUT_ID_MAX_LENGTH ASCII characters, the length of the uuid hex it sent before (a bound
# chosen, not documented). Two forms, told apart by the character after the reminder number:
#   "<attempt>.<order id>"              the id is ASCII letters, digits, "_", "-", ".", ":" only
#                                        ("1.shopify:5551234567890", "2.web-1001")
#   "<attempt>~<base64url(UTF-8 id)>"   any other id, unpadded ("1~6K6i5Y2VMQ")
# An order id that fits in neither is not sent: the OutId is then the claim token (hex, no "." or
# "~"), its receipts name no SMS Nudge can find and are counted and dropped (docs/GATEWAYS.md).
OUT_ID_MAX_LENGTH = 32
OUT_ID_MAX_ATTEMPT = 99
_PLAIN_ORDER_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
_OUT_ID = re.compile(r"^([1-9][0-9]?)([.~])(.+)$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def aliyun_out_id(order_id: str, attempt: int) -> str | None:
    """The ``OutId`` naming reminder ``attempt`` of ``order_id``; None when it does not fit."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 1 <= attempt <= OUT_ID_MAX_ATTEMPT:
        return None
    if not isinstance(order_id, str) or not order_id:
        return None
    if _PLAIN_ORDER_ID.match(order_id):
        out_id = f"{attempt}.{order_id}"
    else:
        try:
            raw = order_id.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no id DynamoDB could hold
            return None
        out_id = f"{attempt}~{base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')}"
    return out_id if len(out_id) <= OUT_ID_MAX_LENGTH else None


def parse_aliyun_out_id(out_id: Any) -> tuple[str, int] | None:
    """``aliyun_out_id``'s inverse: (order id, attempt), or None for anything it would not have
    written (a claim token, an empty, overlong or forged value): only each key's one encoding."""
    if not isinstance(out_id, str) or not out_id.isascii() or len(out_id) > OUT_ID_MAX_LENGTH:
        return None
    match = _OUT_ID.match(out_id)
    if match is None:
        return None
    attempt, form, body = int(match[1]), match[2], match[3]
    if form == ".":
        order_id = body
    else:
        if not _BASE64URL.match(body):
            return None
        try:
            order_id = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
    if aliyun_out_id(order_id, attempt) != out_id:  # not the canonical form of this key
        return None
    return order_id, attempt


def receipt_from_aliyun_report(item: Mapping[str, Any]) -> Receipt:
    """One item of Alibaba Cloud's ``SmsReport`` push -> Receipt. Its times are Beijing time; its
    ``out_id`` (``aliyun_out_id``) names the SMS's order and reminder, or nothing Nudge can find."""
    biz_id = item.get("biz_id")
    if not isinstance(biz_id, str) or not biz_id:
        raise ReceiptError("biz_id: missing")
    success = item.get("success")
    if not isinstance(success, bool):
        raise ReceiptError("success: not true or false")
    code = str(item.get("err_code") or ("DELIVERED" if success else "")) or None
    if success:
        status = DeliveryStatus.DELIVERED
    elif code in _ALIYUN_EXPIRED:
        status = DeliveryStatus.EXPIRED
    else:
        status = DeliveryStatus.FAILED
    key = parse_aliyun_out_id(item.get("out_id"))
    return Receipt(
        message_id=biz_id,
        status=status,
        at=_beijing(item.get("report_time"), "report_time"),
        code=code[:ALIYUN_CODE_LENGTH] if code else None,
        order_id=key[0] if key else None,
        attempt=key[1] if key else None,
    )


def aliyun_push_items(raw: bytes) -> list[Any]:
    """The items of one Alibaba Cloud HTTP push (``SmsReport`` or ``SmsUp``): a UTF-8 JSON array.
    Raises ReceiptError naming what is wrong, never quoting the body (it holds phone numbers)."""
    try:
        items = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ReceiptError("body: not UTF-8 JSON") from None
    if not isinstance(items, list):
        raise ReceiptError("body: not a JSON array")
    return items


def _beijing(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not _ALIYUN_TIME.match(value):
        raise ReceiptError(f"{field}: expected YYYY-MM-DD HH:MM:SS")
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        raise ReceiptError(f"{field}: not a date") from None
    return (local - _CHINA).replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------- replies

# The carriers' and providers' standard opt-out words, and Chinese shops' convention: 退订 (TD)
# and the single letters T, R, N that SMS footers ask for ("回T退订", "拒收请回复R").
OPT_OUT_KEYWORDS = frozenset(
    {
        *("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"),
        *("REMOVE", "ARRET"),  # End User Messaging's default list too ("OPT-OUT" reads as OPTOUT)
        *("退订", "TD", "T", "R", "N"),
    }
)
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class Reply:
    """A buyer's SMS to the shop's number."""

    phone: str  # the buyer's number, E.164
    body: str
    in_reply_to: str | None = None  # the gateway's id of the SMS answered, when it says


def reply_from_eum_inbound(payload: Mapping[str, Any]) -> Reply:
    """End User Messaging's two-way SMS payload (published to the shop's SNS topic) -> Reply."""
    phone, body = payload.get("originationNumber"), payload.get("messageBody")
    if not isinstance(phone, str) or not phone.startswith("+") or not phone[1:].isdigit():
        raise ReceiptError("originationNumber: not an E.164 number")
    if not isinstance(body, str):
        raise ReceiptError("messageBody: missing")
    previous = payload.get("previousPublishedMessageId")
    return Reply(phone=phone, body=body[:1600], in_reply_to=previous if isinstance(previous, str) else None)


_MAINLAND_MOBILE = re.compile(r"^(?:\+?86|0086)?(1\d{10})$")


def reply_from_aliyun_up(item: Mapping[str, Any]) -> Reply:
    """One item of Alibaba Cloud's ``SmsUp`` push (a buyer's reply to the shop's signature) -> Reply.

    Its ``phone_number`` is a mainland mobile number without prefix ("13800138003"); replies reach
    Alibaba Cloud only through the mainland carriers. The push names no SMS it answers."""
    phone, body = item.get("phone_number"), item.get("content")
    match = _MAINLAND_MOBILE.match(phone) if isinstance(phone, str) else None
    if match is None:
        raise ReceiptError("phone_number: not a mainland mobile number")
    if not isinstance(body, str):
        raise ReceiptError("content: missing")
    return Reply(phone=f"+86{match[1]}", body=body[:1600])


def is_opt_out_reply(text: str) -> bool:
    """Whether a buyer's reply is an opt-out: the whole reply is one keyword, in any case, width or
    punctuation, with or without accents ("Stop.", "ｓｔｏｐ", " 退订！", "Arrêt"). "N" and "T" count
    only as the whole reply: "Not now" and "Thanks" are replies for the staff, not opt-outs."""
    # NFKD splits full-width forms and accented letters; the accents (combining marks) are dropped.
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    word = _NOT_WORD.sub("", bare).upper()
    return word in OPT_OUT_KEYWORDS
