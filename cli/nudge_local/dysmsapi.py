"""A local stand-in for Alibaba Cloud SMS (``dysmsapi`` 2017-05-25): an HTTP server on 127.0.0.1
that the real SDK (``alibabacloud-dysmsapi20170525``) talks to, for the aliyun gateway's contract
tests, the local pipeline (``LocalPipeline(gateway="aliyun")``) and ``nudge demo --gateway aliyun``.

It checks what the SDK sends (the ``SendSms`` action and version, the request's ACS3-HMAC-SHA256
signature recomputed from Alibaba Cloud's documented algorithm with the AccessKey it was given)
and answers with Alibaba Cloud's shapes: the next queued ``Answer``, else ``OK`` with a new
``BizId``. Like Alibaba Cloud, it fills the registered template (``templates``: code -> text with
``${name}`` variables) under the signature: a template that names a value the SMS does not carry
is refused with ``isv.TEMPLATE_MISSING_PARAMETERS``, an unknown code with
``isv.SMS_TEMPLATE_ILLEGAL``. Each SMS it takes is kept (``accepted``) with its ``BizId`` and
``OutId``: what a delivery receipt (``SmsReport``) would name. ``sms_report`` and ``sms_up`` build
the items of Alibaba Cloud's HTTP pushes (``SmsReport`` about an accepted SMS, ``SmsUp`` for a
buyer's reply) as Alibaba Cloud documents them (events/aliyun-sms-report.json, aliyun-sms-up.json).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["AcceptedSms", "Answer", "FakeDysmsapi", "Seen", "beijing_time", "e164_of", "sms_report", "sms_up"]

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_BEIJING = timezone(timedelta(hours=8))


@dataclass
class Answer:
    status: int = 200
    body: object = None  # None: OK with the next BizId
    delay: float = 0.0


@dataclass
class Seen:
    """One request as it arrived."""

    method: str
    query: dict[str, str]
    headers: dict[str, str]
    signature_ok: bool


@dataclass(frozen=True)
class AcceptedSms:
    """One SMS the stand-in took (answered OK): what a receipt for it would carry."""

    biz_id: str
    out_id: str
    phone: str  # as sent: 13800138000 (mainland) or country code + number
    sign_name: str
    template_code: str
    params: dict[str, str]
    text: str  # the registered template filled in, under 【signature】 (as the buyer reads it)


def e164_of(phone: str) -> str:
    """Alibaba Cloud's number back in E.164: a mainland mobile number (11 digits, 13x..19x) has no
    prefix; any other is country code + number (12125550143 is +1 212 555 0143, not mainland)."""
    return f"+86{phone}" if _MAINLAND_MOBILE.fullmatch(phone) else f"+{phone}"


def beijing_time(at: datetime) -> str:
    """A time as Alibaba Cloud's pushes write it: Beijing time, ``YYYY-MM-DD HH:MM:SS``."""
    return at.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def sms_report(
    sms: AcceptedSms,
    *,
    success: bool = True,
    code: str = "DELIVERED",
    sent_at: datetime | None = None,
    reported_at: datetime | None = None,
    **change: Any,
) -> dict[str, Any]:
    """Alibaba Cloud's ``SmsReport`` item about one SMS the stand-in took (``success`` false with
    the carrier's ``code``: UNDELIV, MK:0001, EXPIRED...); ``change`` overrides any field."""
    return {
        "phone_number": sms.phone,
        "send_time": beijing_time(sent_at) if sent_at else "2026-11-23 09:50:01",
        "report_time": beijing_time(reported_at) if reported_at else "2026-11-23 09:50:08",
        "success": success,
        "err_code": code,
        "err_msg": "用户接收成功" if success else code,
        "sms_size": "1",
        "biz_id": sms.biz_id,
        "out_id": sms.out_id,
        **change,
    }


def sms_up(
    phone: str, content: str, *, at: datetime | None = None, sign_name: str = "Nudge Shop"
) -> dict[str, Any]:
    """Alibaba Cloud's ``SmsUp`` item: a buyer's reply ``content`` from ``phone`` (as Alibaba Cloud
    writes it: a mainland mobile number without prefix) to the shop's ``sign_name``."""
    return {
        "phone_number": phone,
        "send_time": beijing_time(at) if at else "2026-11-23 10:02:11",
        "content": content,
        "sign_name": sign_name,
        "dest_code": "1234",
        "sequence_id": 1234567890,
    }


@dataclass
class FakeDysmsapi:
    """``FakeDysmsapi(key_id, secret)``; ``endpoint`` is ``127.0.0.1:<port>``; ``close()`` stops it."""

    key_id: str
    secret: str
    templates: dict[str, str] = field(default_factory=dict)  # code -> text; empty: any code, no text
    answers: list[Answer] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    accepted: list[AcceptedSms] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next_biz = 900619746936498440
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                pairs = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
                ok = fake.signature_ok(self.command, pairs, headers, body)
                with fake._lock:
                    fake.seen.append(Seen(self.command, dict(pairs), headers, ok))
                    answer = fake.answers.pop(0) if fake.answers else Answer()
                    status, reply = fake._answer(answer, dict(pairs), headers, ok)
                time.sleep(answer.delay)
                raw = reply if isinstance(reply, bytes) else json.dumps(reply, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json;charset=utf-8")
                    self.send_header("content-length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (a read timeout)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(
        self, answer: Answer, query: dict[str, str], headers: dict[str, str], ok: bool
    ) -> tuple[int, Any]:
        request_id = f"R-{len(self.seen)}"
        if answer.body is not None:
            return answer.status, answer.body
        if not ok:
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "signature", "RequestId": request_id}
        if headers.get("x-acs-action") != "SendSms" or headers.get("x-acs-version") != "2017-05-25":
            return 400, {"Code": "InvalidAction.NotFound", "Message": "action", "RequestId": request_id}
        code = query.get("TemplateCode", "")
        try:
            params = json.loads(query.get("TemplateParam") or "{}")
        except ValueError:
            return 200, {
                "Code": "isv.INVALID_JSON_PARAM",
                "Message": "TemplateParam",
                "RequestId": request_id,
            }
        text = ""
        if self.templates:
            template = self.templates.get(code)
            if template is None:
                return 200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": code, "RequestId": request_id}
            missing = [v for v in _VARIABLE.findall(template) if not params.get(v)]
            if missing:
                return 200, {
                    "Code": "isv.TEMPLATE_MISSING_PARAMETERS",
                    "Message": ",".join(missing),
                    "RequestId": request_id,
                }
            text = f"【{query.get('SignName', '')}】" + _VARIABLE.sub(lambda m: str(params[m[1]]), template)
        biz_id = f"{self._next_biz}^0"
        self._next_biz += 1
        self.accepted.append(
            AcceptedSms(
                biz_id=biz_id,
                out_id=query.get("OutId", ""),
                phone=query.get("PhoneNumbers", ""),
                sign_name=query.get("SignName", ""),
                template_code=code,
                params={str(k): str(v) for k, v in params.items()},
                text=text,
            )
        )
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def signature_ok(
        self, method: str, pairs: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> bool:
        """Alibaba Cloud's V3 request signature (ACS3-HMAC-SHA256), computed from what arrived."""
        algorithm, _, rest = headers.get("authorization", "").partition(" ")
        parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if algorithm != "ACS3-HMAC-SHA256" or parts.get("Credential") != self.key_id:
            return False
        signed = parts.get("SignedHeaders", "").split(";")
        if not {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"} <= set(
            signed
        ):
            return False
        if any(n not in headers for n in signed):
            return False
        payload = hashlib.sha256(body).hexdigest()
        if headers.get("x-acs-content-sha256") != payload:
            return False

        def enc(s: str) -> str:
            return quote(s, safe="-_.~")

        canonical = "\n".join(
            [
                method,
                "/",
                "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(pairs)),
                "".join(f"{n}:{headers[n].strip()}\n" for n in signed),
                parts["SignedHeaders"],
                payload,
            ]
        )
        to_sign = f"{algorithm}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        expected = hmac.new(self.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("Signature", ""))
