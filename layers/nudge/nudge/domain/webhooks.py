"""Webhook signatures: Standard Webhooks, Shopify and WooCommerce (pure: no I/O, the clock is passed in).

Every check works on the raw body bytes exactly as they arrived, before anything parses them:
re-serialised JSON would not match the sender's bytes. Digests are compared with
``hmac.compare_digest`` (constant time). A failed check raises ``SignatureError`` whose ``reason``
is a short code that is safe to log (it never holds the body, a header value or a secret).

- Standard Webhooks (any shop or tool): headers ``webhook-id``, ``webhook-timestamp`` (unix
  seconds) and ``webhook-signature`` (space-separated ``v1,<base64>`` entries, so a sender can
  rotate its secret), HMAC-SHA256 over ``"{id}.{timestamp}.{body}"`` with the key = the base64
  part of a ``whsec_...`` secret; the timestamp (1 to 12 ASCII digits) must be within 5 minutes
  of now, both ways (compared as integers, so no year-10000 timestamp ever becomes a datetime).
- Shopify: ``X-Shopify-Hmac-Sha256`` = base64 HMAC-SHA256(the app's secret, raw body).
- WooCommerce: ``X-WC-Webhook-Signature`` = base64 HMAC-SHA256(the webhook's secret, raw body);
  WooCommerce signs with ``wp_specialchars_decode(secret, ENT_QUOTES)`` (``&#038;`` and ``&amp;``
  read as ``&``), so a secret is tried decoded the same way, and as given when that differs.
  Neither platform signs a timestamp: replays are made harmless by the never-backwards write.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

STANDARD_TOLERANCE = timedelta(minutes=5)  # the Standard Webhooks reference libraries' window
SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 16  # the spec asks senders for 24-64 random bytes; refuse keys that are plainly too short

_WC_PING = re.compile(rb"webhook_id=\d+")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() also takes "²³"


class SignatureError(Exception):
    """The request is not authentic (answer 401). ``reason`` is a fixed code, safe to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StandardDelivery:
    """What a verified Standard Webhooks request says about itself."""

    webhook_id: str
    sent_at: datetime  # the signed webhook-timestamp


def lower_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Header names are case-insensitive (Function URLs lower-case them; curl users may not)."""
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _hmac_b64(key: bytes, data: bytes) -> str:
    return base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode("ascii")


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.strip().encode("ascii", "replace"))


# ------------------------------------------------------------------------------ Standard Webhooks


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 part of ``whsec_<base64>``.

    The bare base64 part is accepted too: the stack generates a random string of letters and
    digits (all base64 characters) and the sender is given ``whsec_`` + that string.
    Raises ValueError for a secret that is not base64 or too short to be one.
    """
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        # Unpadded base64 is common; extra padding is ignored by the decoder.
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the Standard Webhooks secret is not base64 (expected whsec_<base64>)") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the Standard Webhooks secret is too short (under {MIN_KEY_BYTES} bytes)")
    return key


def sign_standard(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value a sender puts on a request: ``v1,<base64>``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + _hmac_b64(standard_key(secret), signed)


def verify_standard(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: timedelta = STANDARD_TOLERANCE,
) -> StandardDelivery:
    """Check a Standard Webhooks request; returns its id and signed time, or raises SignatureError."""
    h = lower_headers(headers)
    webhook_id = h.get("webhook-id", "").strip()
    raw_timestamp = h.get("webhook-timestamp", "").strip()
    signatures = h.get("webhook-signature", "").strip()
    if not (webhook_id and raw_timestamp and signatures):
        raise SignatureError("missing_headers")
    if not _UNIX_SECONDS.fullmatch(raw_timestamp):
        raise SignatureError("bad_timestamp")
    seconds = int(raw_timestamp)
    # Compared as numbers: only a time within the tolerance of now is ever turned into a datetime.
    if seconds < now.timestamp() - tolerance.total_seconds():
        raise SignatureError("timestamp_too_old")
    if seconds > now.timestamp() + tolerance.total_seconds():
        raise SignatureError("timestamp_in_future")
    sent_at = datetime.fromtimestamp(seconds, tz=UTC)
    try:
        key = standard_key(secret)
    except ValueError:
        raise SignatureError("secret_unusable") from None
    expected = _hmac_b64(key, f"{webhook_id}.{raw_timestamp}.".encode() + body)
    matched = False
    for entry in signatures.split():
        version, _, signature = entry.partition(",")
        # Check every v1 entry (no early exit): the time taken does not tell which one matched.
        if version == "v1" and _same(expected, signature):
            matched = True
    if not matched:
        raise SignatureError("bad_signature")
    return StandardDelivery(webhook_id=webhook_id, sent_at=sent_at)


# ---------------------------------------------------------------------------------------- Shopify


def sign_shopify(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body with the app's secret."""
    return _hmac_b64(secret.encode("utf-8"), body)


def verify_shopify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    h = lower_headers(headers)
    given = h.get("x-shopify-hmac-sha256", "").strip()
    if not given:
        raise SignatureError("missing_headers")
    if not body:
        raise SignatureError("empty_body")
    if not _same(sign_shopify(secret, body), given):
        raise SignatureError("bad_signature")


# ------------------------------------------------------------------------------------ WooCommerce

# wp_specialchars_decode($text, ENT_QUOTES) as WordPress writes it: zero padding is taken off the
# numeric entities first, then one strtr() pass (longest match first, never re-scanned).
_WP_UNPAD = (
    (re.compile(r"&#0*39;"), "&#039;"),
    (re.compile(r"&#x0*27;", re.IGNORECASE), "&#x27;"),
    (re.compile(r"&#0*34;"), "&#034;"),
    (re.compile(r"&#x0*22;", re.IGNORECASE), "&#x22;"),
    (re.compile(r"&#0*60;"), "&#060;"),
    (re.compile(r"&#0*62;"), "&#062;"),
    (re.compile(r"&#0*38;"), "&#038;"),
    (re.compile(r"&#x0*26;", re.IGNORECASE), "&#x26;"),
)
_WP_TRANSLATION = {
    "&#039;": "'",
    "&#x27;": "'",
    "&quot;": '"',
    "&#034;": '"',
    "&#x22;": '"',
    "&lt;": "<",
    "&#060;": "<",
    "&gt;": ">",
    "&#062;": ">",
    "&amp;": "&",
    "&#038;": "&",
    "&#x26;": "&",
}
_WP_ENTITY = re.compile("|".join(re.escape(k) for k in sorted(_WP_TRANSLATION, key=len, reverse=True)))


def wp_specialchars_decode(text: str) -> str:
    """WordPress's ``wp_specialchars_decode($text, ENT_QUOTES)``."""
    if "&" not in text:
        return text
    for pattern, padded in _WP_UNPAD:
        text = pattern.sub(padded, text)
    # PHP's strtr() with an array matches the longest key first and never re-reads what it wrote
    # ("&amp;#038;" becomes "&#038;"); the unpadding above also lower-cased "&#X26;" to "&#x26;".
    return _WP_ENTITY.sub(lambda m: _WP_TRANSLATION[m.group(0)], text)


def woocommerce_key(secret: str) -> bytes:
    """The key WooCommerce signs with: the secret as ``wp_specialchars_decode`` reads it."""
    return wp_specialchars_decode(secret).encode("utf-8")


def woocommerce_keys(secret: str) -> list[bytes]:
    """Keys to try: WooCommerce's decoding of the secret, then the secret as given when it differs
    (an operator may paste the form the admin page shows, or the stored, entity-encoded one)."""
    keys = [woocommerce_key(secret)]
    if secret.encode("utf-8") != keys[0]:
        keys.append(secret.encode("utf-8"))
    return keys


def sign_woocommerce(secret: str, body: bytes) -> str:
    """``X-WC-Webhook-Signature``: base64 HMAC-SHA256 of the raw body with the webhook's secret."""
    return _hmac_b64(woocommerce_key(secret), body)


def is_woocommerce_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """The unsigned ``webhook_id=N`` request WooCommerce sends when a webhook is saved.

    It carries no signature and no order; it must get exactly 200, or the webhook stays pending.
    """
    h = lower_headers(headers)
    return "x-wc-webhook-signature" not in h and _WC_PING.fullmatch(body.strip()) is not None


def verify_woocommerce(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    h = lower_headers(headers)
    given = h.get("x-wc-webhook-signature", "").strip()
    if not given:
        raise SignatureError("missing_headers")
    if not body:
        raise SignatureError("empty_body")
    matched = False
    for key in woocommerce_keys(secret):  # every key is checked: the time does not tell which matched
        if _same(_hmac_b64(key, body), given):
            matched = True
    if not matched:
        raise SignatureError("bad_signature")


_MAX_ID_CHARS = 200  # a longer delivery id (or one that is not plain text) is kept as its digest


def id_part(value: str) -> str:
    """A header value as part of a delivery's key: itself when short plain text, else its digest."""
    value = value.strip()
    if value and len(value) <= _MAX_ID_CHARS and value.isascii() and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
