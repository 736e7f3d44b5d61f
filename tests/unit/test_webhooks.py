"""Webhook signature checks (nudge.domain.webhooks): Standard Webhooks, Shopify, WooCommerce."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.domain.webhooks import (
    SignatureError,
    is_woocommerce_ping,
    sign_shopify,
    sign_standard,
    sign_woocommerce,
    standard_key,
    verify_shopify,
    verify_standard,
    verify_woocommerce,
    wp_specialchars_decode,
)

# The test vector every Standard Webhooks reference library uses (test_sign_function).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
VECTOR_NOW = datetime.fromtimestamp(VECTOR_TS, tz=UTC)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
BODY = b'{"type":"order.created","data":{"order_id":"o-1"}}'


def standard_headers(body: bytes = BODY, *, at: datetime = NOW, secret: str = SECRET, wid: str = "msg_1"):
    ts = int(at.timestamp())
    return {
        "webhook-id": wid,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(secret, wid, ts, body),
    }


def reason(call) -> str:
    with pytest.raises(SignatureError) as exc:
        call()
    return exc.value.reason


# ------------------------------------------------------------------------------ Standard Webhooks


def test_standard_signature_matches_the_reference_vector():
    assert sign_standard(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS), "webhook-signature": VECTOR_SIG}
    delivery = verify_standard(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_NOW)
    assert delivery.webhook_id == VECTOR_ID and delivery.sent_at == VECTOR_NOW


def test_standard_accepts_any_matching_v1_entry_and_ignores_other_versions():
    good = VECTOR_SIG.split(",", 1)[1]
    headers = {
        "Webhook-Id": VECTOR_ID,  # any case
        "Webhook-Timestamp": str(VECTOR_TS),
        "Webhook-Signature": f"v2,{good} v1,Zm9vYmFy v1a,xyz nocomma v1,{good}",
    }
    verify_standard(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_NOW)


def test_standard_key_accepts_the_bare_base64_part_and_unpadded_base64():
    assert standard_key(VECTOR_SECRET) == standard_key(VECTOR_SECRET.removeprefix("whsec_"))
    generated = "Ab3" * 21 + "x"  # what the stack generates: 64 letters and digits
    assert len(standard_key(generated)) == 48
    assert standard_key("whsec_" + generated) == standard_key(generated)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_!!!not-base64!!!", "whsec_c2hvcnQ="])
def test_standard_unusable_secret_is_a_401_not_a_crash(secret):
    headers = standard_headers()
    assert reason(lambda: verify_standard(secret, headers, BODY, now=NOW)) == "secret_unusable"


def test_standard_forged_signature():
    headers = {**standard_headers(), "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) == "bad_signature"


def test_standard_reference_bad_signature_is_refused():
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
    }
    assert (
        reason(lambda: verify_standard(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_NOW))
        == "bad_signature"
    )


def test_standard_wrong_secret():
    other = "whsec_" + base64.b64encode(b"another secret of 32 bytes......").decode()
    headers = standard_headers(secret=other)
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) == "bad_signature"


def test_standard_body_changed_after_signing():
    headers = standard_headers()
    changed = BODY.replace(b"o-1", b"o-2")
    assert reason(lambda: verify_standard(SECRET, headers, changed, now=NOW)) == "bad_signature"


def test_standard_id_or_timestamp_changed_after_signing():
    headers = {**standard_headers(), "webhook-id": "msg_2"}
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) == "bad_signature"
    signed = standard_headers()
    headers = {**signed, "webhook-timestamp": str(int(signed["webhook-timestamp"]) + 1)}
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) == "bad_signature"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_missing_header(missing):
    headers = standard_headers()
    del headers[missing]
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) == "missing_headers"


def test_standard_timestamp_window_is_five_minutes_both_ways():
    for offset in (timedelta(minutes=-5), timedelta(0), timedelta(minutes=5)):
        verify_standard(SECRET, standard_headers(at=NOW + offset), BODY, now=NOW)
    old = standard_headers(at=NOW - timedelta(minutes=6))
    assert reason(lambda: verify_standard(SECRET, old, BODY, now=NOW)) == "timestamp_too_old"
    future = standard_headers(at=NOW + timedelta(minutes=6))
    assert reason(lambda: verify_standard(SECRET, future, BODY, now=NOW)) == "timestamp_in_future"


@pytest.mark.parametrize("ts", ["1.5e9", "-1", "abc", "99999999999999999999", "1614265330.9"])
def test_standard_unreadable_timestamp(ts):
    headers = {**standard_headers(), "webhook-timestamp": ts}
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) == "bad_timestamp"


@given(st.binary(max_size=300))
def test_standard_round_trip_on_any_bytes(body):
    verify_standard(SECRET, standard_headers(body), body, now=NOW)
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        with pytest.raises(SignatureError):
            verify_standard(SECRET, standard_headers(body), flipped, now=NOW)


# ---------------------------------------------------------------------------------------- Shopify

SHOPIFY_SECRET = "shpss_test_client_secret_0123456789"


def test_shopify_signature_matches_a_known_delivery():
    # The HMAC in events/function-url-shopify-orders-create.json was computed independently of this code.
    import json
    from pathlib import Path

    event = json.loads(
        (
            Path(__file__).resolve().parents[2] / "events" / "function-url-shopify-orders-create.json"
        ).read_text()
    )
    body = event["body"].encode("utf-8")
    verify_shopify(SHOPIFY_SECRET, event["headers"], body)
    assert sign_shopify(SHOPIFY_SECRET, body) == event["headers"]["x-shopify-hmac-sha256"]


def test_shopify_refusals():
    body = b'{"id": 1}'
    good = {"X-Shopify-Hmac-Sha256": sign_shopify(SHOPIFY_SECRET, body)}
    verify_shopify(SHOPIFY_SECRET, good, body)
    assert reason(lambda: verify_shopify(SHOPIFY_SECRET, {}, body)) == "missing_headers"
    assert reason(lambda: verify_shopify("another-secret", good, body)) == "bad_signature"
    assert reason(lambda: verify_shopify(SHOPIFY_SECRET, good, b'{"id": 2}')) == "bad_signature"
    assert reason(lambda: verify_shopify(SHOPIFY_SECRET, good, b"")) == "empty_body"
    forged = {"x-shopify-hmac-sha256": base64.b64encode(b"f" * 32).decode()}
    assert reason(lambda: verify_shopify(SHOPIFY_SECRET, forged, body)) == "bad_signature"
    hex_digest = {"x-shopify-hmac-sha256": "ab" * 32}  # hex, not base64: not what Shopify sends
    assert reason(lambda: verify_shopify(SHOPIFY_SECRET, hex_digest, body)) == "bad_signature"
    non_ascii = {"x-shopify-hmac-sha256": "签名"}
    assert reason(lambda: verify_shopify(SHOPIFY_SECRET, non_ascii, body)) == "bad_signature"


# ------------------------------------------------------------------------------------ WooCommerce


def test_woocommerce_signature_and_refusals():
    body = b'{"id":4217,"payment_url":"https:\\/\\/shop.example.com\\/"}'
    good = {"X-WC-Webhook-Signature": sign_woocommerce("wc secret", body)}
    verify_woocommerce("wc secret", good, body)
    assert reason(lambda: verify_woocommerce("wc secret", {}, body)) == "missing_headers"
    assert reason(lambda: verify_woocommerce("other", good, body)) == "bad_signature"
    assert reason(lambda: verify_woocommerce("wc secret", good, body + b" ")) == "bad_signature"


def test_woocommerce_key_is_the_secret_with_html_entities_decoded():
    body = b"{}"
    # WooCommerce stores "a&b" typed in the admin as "a&amp;b" and signs with the decoded form.
    header = {"x-wc-webhook-signature": sign_woocommerce("a&b<\"'", body)}
    verify_woocommerce("a&amp;b&lt;&quot;&#039;", header, body)


@pytest.mark.parametrize(
    ("stored", "decoded"),
    [
        ("a&#038;b", "a&b"),  # how WordPress stores "&"
        ("a&#38;b&#0038;c", "a&b&c"),  # zero padding comes off first
        ("a&#x26;b&#X0026;c", "a&b&c"),
        ("&#60;&#062;&#034;&#39;&#x27;&#x22;", "<>\"''\""),
        ("&amp;#038;", "&#038;"),  # one pass, as PHP's strtr(): never decoded twice
        ("&#65;&copy;&nbsp;", "&#65;&copy;&nbsp;"),  # only the special characters are decoded
        ("no entities", "no entities"),
    ],
)
def test_wp_specialchars_decode_is_wordpress_s(stored, decoded):
    assert wp_specialchars_decode(stored) == decoded


def test_a_woocommerce_secret_is_tried_decoded_and_as_given():
    body = b"{}"
    # Signed with the decoded secret (WooCommerce), stored as WordPress keeps it: accepted.
    verify_woocommerce("x&#038;y", {"x-wc-webhook-signature": sign_woocommerce("x&y", body)}, body)
    # Stored "&amp;#038;": WooCommerce signs with "&#038;", which its admin page shows and the
    # operator pastes; decoded once more it would be "&", so the secret as given is tried too.
    header = {
        "x-wc-webhook-signature": base64.b64encode(
            hmac.new(b"&#038;", body, hashlib.sha256).digest()
        ).decode()
    }
    verify_woocommerce("&#038;", header, body)
    assert reason(lambda: verify_woocommerce("x&#038;z", header, body)) == "bad_signature"


def test_woocommerce_ping_is_recognised_only_unsigned_and_exact():
    assert is_woocommerce_ping({"content-type": "application/x-www-form-urlencoded"}, b"webhook_id=16")
    assert not is_woocommerce_ping({"x-wc-webhook-signature": "x"}, b"webhook_id=16")
    assert not is_woocommerce_ping({}, b"webhook_id=16&x=1")
    assert not is_woocommerce_ping({}, b'{"id": 16}')


def test_the_python_signing_example_in_the_docs_signs_what_nudge_verifies(monkeypatch):
    import re
    import urllib.request
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "CONNECT.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", docs, re.S).group(1)
    sent = {}

    class Answer:
        status = 200

    def urlopen(request, timeout):
        sent.update(body=request.data, headers=dict(request.header_items()))
        return Answer()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    namespace: dict = {}
    exec(code, namespace)
    assert namespace["send"]("https://example.invalid/webhooks/nudge", SECRET, {"type": "order.paid"}) == 200
    now = datetime.fromtimestamp(int(sent["headers"]["Webhook-timestamp"]), tz=UTC)
    verify_standard(SECRET, sent["headers"], sent["body"], now=now)


@pytest.mark.parametrize("timestamp", ["253402300800", "999999999999", "²³", "１７", "-1", "1e9", " "])
def test_a_webhook_timestamp_that_is_not_ascii_unix_seconds_near_now_is_refused(timestamp):
    headers = {**standard_headers(), "webhook-timestamp": timestamp}
    headers["webhook-signature"] = sign_standard(SECRET, "msg_1", timestamp, BODY)  # any text, as sent
    assert reason(lambda: verify_standard(SECRET, headers, BODY, now=NOW)) in (
        "bad_timestamp",
        "timestamp_in_future",
        "missing_headers",
    )
