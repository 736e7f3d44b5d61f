"""The reminder SMS: default wording, shop overrides, segment counting and the segment cap.

Pure: no I/O, no clock. The caller passes the order, the shop's settings, the sending window and
``now``; the same inputs always give the same text.

Wording (docs/RULES.md, seeds 001-003):

- Reminder 1 offers help and puts no pressure on the buyer: seed 002's "请问是付款过程中遇到了什么困难吗"
  and seed 001's advice that a reminder should feel like help, not like chasing.
- Reminder 2 gives reasons to pay now: the shipping cut-off of the current window (seed 001 uses
  the shipping time as the reason to remind), limited stock that goes to whoever pays first and the
  time the order closes (seed 003's "emphasise delivery" and "emphasise inventory").
- Chinese texts start with the shop signature 【店名】: Chinese carriers reject marketing and
  notification SMS without one. English texts start with "Shop: ". The signature is added by the
  code, not by the template, so an override cannot lose it.

Templates are ``str.format``-style text with the placeholders in ``TEMPLATE_FIELDS``. A part
written ``[[ ... ]]`` is an optional section: it is left out whole when a placeholder inside it
has no value (no buyer name, no pay link, ...), so a missing field never leaves "None", an empty
"（）" or a dangling comma. Placeholders outside a section render as "" when missing, and a light
clean-up then removes doubled spaces, empty brackets and doubled commas.

Amounts (``format_amount``): two decimals (none for zero-decimal currencies like JPY), rounded
half-up. zh-CN writes CNY as "¥199.00" and other currencies as "US$19.90" / "EUR 19.90"; en writes
"$19.90", "€19.90", "£19.90" and otherwise the ISO code, "CNY 199.00", because "¥" alone is both
the yuan and the yen. en groups thousands ("CNY 1,299.00"); zh-CN does not ("¥1299.00"), as
Chinese shop pages write prices.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from nudge.domain.errors import ConfigError
from nudge.domain.models import Order

if TYPE_CHECKING:  # the config's types, for annotations only: config imports this module to check texts
    from nudge.domain.config import MessagesConfig, ShopConfig, Variant, Window

MAX_VARIANTS = 10  # per reminder: more arms than this would take a small shop years to compare

__all__ = [
    "DEFAULT_TEMPLATES",
    "TEMPLATE_FIELDS",
    "RenderedSms",
    "allowed_pay_url",
    "check_fixed_text_fits",
    "check_template",
    "check_templates",
    "check_variants",
    "count_segments",
    "format_amount",
    "render_reminder",
    "template_params",
    "variant_key",
]

# --------------------------------------------------------------------------------------------
# Segments

# GSM 03.38 basic character set (the escape code 0x1B itself is not a character).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + char, so it costs 2 septets.
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM = _GSM_BASIC | _GSM_EXTENSION

GSM7 = "GSM-7"
UCS2 = "UCS-2"
_GSM_SINGLE, _GSM_PART = 160, 153  # a concatenated part loses 7 septets to its header
_UCS2_SINGLE, _UCS2_PART = 70, 67


def count_segments(text: str) -> tuple[str, int]:
    """(encoding, segments) of ``text`` as one SMS.

    GSM-7 when every character is in the GSM 03.38 basic set or extension table (extension
    characters cost 2 septets), else UCS-2 counted in UTF-16 code units (an emoji is 2). One
    segment holds 160 septets / 70 units; a longer text is split into parts of 153 / 67.

    An escape pair or a surrogate pair is never split across two parts (GSM 03.40; senders move
    it to the next part), so when one would straddle a boundary the count is one more than
    ``ceil(n / 153)``. Otherwise it is exactly that formula. An empty text is one segment.
    """
    if _GSM.issuperset(text):
        sizes = [2 if ch in _GSM_EXTENSION else 1 for ch in text] if not _GSM_BASIC.issuperset(text) else None
        total = len(text) if sizes is None else sum(sizes)
        return GSM7, _parts(total, sizes, _GSM_SINGLE, _GSM_PART)
    total = len(text.encode("utf-16-le")) // 2
    sizes = None if total == len(text) else [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return UCS2, _parts(total, sizes, _UCS2_SINGLE, _UCS2_PART)


def _parts(total: int, sizes: list[int] | None, single: int, part: int) -> int:
    """Parts needed for ``total`` units; ``sizes`` lists per-character sizes when some are 2."""
    if total <= single:
        return 1
    if sizes is None:  # all characters are one unit: nothing can straddle a boundary
        return math.ceil(total / part)
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


# --------------------------------------------------------------------------------------------
# Templates

TEMPLATE_FIELDS: frozenset[str] = frozenset(
    {
        "shop",  # the shop's name (the signature is added anyway; this is for use inside the text)
        "greeting",  # "张三您好" / "亲"; "Hi Alice" / "Hi": always has a value
        "buyer_name",
        "item_title",
        "amount",  # with its currency: "¥199.00", "CNY 199.00"
        "pay_url",
        "closes_at",  # shop-local: "14:30" today, else "3月15日09:00" / "03-15 09:00"
        "ship_by",  # the current window's shipping cut-off, "11:00", while it is still ahead
    }
)

DEFAULT_TEMPLATES: Mapping[str, Mapping[int, str]] = {
    "zh-CN": {
        1: "{greeting}，您拍下的宝贝[[「{item_title}」]]（{amount}）还未付款，"
        "请问是付款过程中遇到了什么困难吗？需要帮助请随时联系客服哦。[[付款链接：{pay_url}]]",
        2: "{greeting}，您拍下的宝贝[[「{item_title}」]]（{amount}）还未付款哦。"
        "[[{ship_by}前付款今天就发货，]]库存有限，先付先得[[，订单将于{closes_at}自动关闭]]。"
        "[[付款链接：{pay_url}]]",
    },
    "en": {
        1: "{greeting}, your order[[ for {item_title}]] ({amount}) is still unpaid. "
        "Did something go wrong with the payment? We're happy to help.[[ Pay here: {pay_url}]]",
        2: "{greeting}, your order[[ for {item_title}]] ({amount}) is still unpaid."
        "[[ Pay before {ship_by} and it ships today.]] Stock is limited and goes to paid orders first."
        "[[ The order closes at {closes_at}.]][[ Pay here: {pay_url}]]",
    },
}

_OPEN, _CLOSE = "[[", "]]"
_BUYER_FIELD = r"\{(?:buyer_name|item_title|greeting)\}"
_BUYER_TEXT_JOINED = re.compile(rf"[.\u3002/:@}}]{_BUYER_FIELD}|{_BUYER_FIELD}[.\u3002/:@{{]")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Section:
    """An optional ``[[ ... ]]`` part: left out whole when one of its fields has no value."""

    parts: tuple[str | _Field, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, _Field))


# A compiled template is a tuple of parts: literal text, a placeholder, or an optional section.
_Part = str | _Field | _Section


def check_template(text: str) -> None:
    """Refuse a template that could not render: raises ValueError with the problem.

    Config loading calls this so a bad override is refused at load time, never mid-run.
    """
    _compile(text)


def check_templates(templates: Mapping[str, Mapping[str, str]]) -> None:
    """Check ``messages.templates`` as a whole: known locales, attempts "1"/"2", valid texts.

    The ValueError message starts with the offending key, e.g. ``zh-CN.2: unknown placeholder {x}``.
    """
    for locale, by_attempt in templates.items():
        if locale not in DEFAULT_TEMPLATES:
            raise ValueError(f"{locale}: unknown locale; expected one of {', '.join(DEFAULT_TEMPLATES)}")
        for attempt, text in by_attempt.items():
            if str(attempt) not in ("1", "2"):
                raise ValueError(f"{locale}.{attempt}: unknown reminder; expected 1 or 2")
            try:
                check_template(text)
            except ValueError as exc:
                raise ValueError(f"{locale}.{attempt}: {exc}") from None


def variant_key(attempt: int | str, index: int, name: str) -> str:
    """How a refusal names a variant: ``1[0] (name "caring")`` (position counted from 0)."""
    return f'{attempt}[{index}] (name "{name}")'


def check_variants(variants: Mapping[str, Sequence[Variant]]) -> None:
    """Check ``messages.variants`` as a whole: reminders "1"/"2", 2 to ``MAX_VARIANTS`` variants
    with distinct names, each template as valid as a ``messages.templates`` one, and, when both
    reminders have variants, the same names in the same order (a variant is one arm of the test:
    an order in arm k gets text k of each reminder).

    Raises ConfigError whose key is relative to ``messages.variants``, e.g.
    ``1[1] (name "urgent")``; the segment cap is checked with the whole config
    (``check_fixed_text_fits``).
    """

    for attempt, listed in variants.items():
        if attempt not in ("1", "2"):
            raise ConfigError(attempt, "unknown reminder; expected 1 or 2")
        if len(listed) < 2:
            raise ConfigError(
                attempt,
                "one variant compares nothing: list two or more, or set the text in messages.templates",
            )
        if len(listed) > MAX_VARIANTS:
            raise ConfigError(attempt, f"at most {MAX_VARIANTS} variants, got {len(listed)}")
        seen: set[str] = set()
        for index, variant in enumerate(listed):
            key = variant_key(attempt, index, variant.name)
            if variant.name in seen:
                raise ConfigError(key, "a second variant with this name; names must differ")
            seen.add(variant.name)
            try:
                check_template(variant.template)
            except ValueError as exc:
                raise ConfigError(key, str(exc)) from None
    first, second = variants.get("1"), variants.get("2")
    if first and second:
        if len(first) != len(second):
            raise ConfigError(
                "2",
                f"has {len(second)} variants, reminder 1 has {len(first)}: "
                "give both reminders the same names in the same order",
            )
        for index, (one, two) in enumerate(zip(first, second, strict=True)):
            if one.name != two.name:
                raise ConfigError(
                    variant_key(2, index, two.name),
                    f'must be named "{one.name}" like 1[{index}]: an order keeps its variant '
                    "(its position) for both reminders",
                )


@lru_cache(maxsize=64)
def _compile(text: str) -> tuple[_Part, ...]:
    # Cached: a run renders thousands of SMS from the same four texts.
    if not isinstance(text, str) or not text.strip():
        raise ValueError("template is empty")
    for ch in text:
        if ch != "\n" and unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            raise ValueError(f"must not contain the control or format character {ch!r}")
    joined = _BUYER_TEXT_JOINED.search(text.replace(_OPEN, "").replace(_CLOSE, ""))
    if joined:
        # "{item_title}.{buyer_name}" would let two harmless fields spell "evil.com".
        raise ValueError(
            f"{joined[0]!r}: a buyer's text ({{buyer_name}}, {{item_title}}, {{greeting}}) must not touch "
            "another placeholder or one of . 。 / : @"
        )
    parts: list[_Part] = []
    pos = 0
    while True:
        start, close = text.find(_OPEN, pos), text.find(_CLOSE, pos)
        if close != -1 and (start == -1 or close < start):
            raise ValueError(f"'{_CLOSE}' without '{_OPEN}'")
        if start == -1:
            parts.extend(_parse_plain(text[pos:]))
            return tuple(parts)
        parts.extend(_parse_plain(text[pos:start]))
        end = text.find(_CLOSE, start + 2)
        if end == -1:
            raise ValueError(f"'{_OPEN}' without '{_CLOSE}'")
        inner = text[start + 2 : end]
        if _OPEN in inner:
            raise ValueError(f"'{_OPEN}' sections cannot be nested")
        section = _parse_plain(inner)
        if not any(isinstance(p, _Field) for p in section):
            raise ValueError(
                f"section '{_OPEN}{inner}{_CLOSE}' has no placeholder, so it would never be left out"
            )
        parts.append(_Section(tuple(section)))
        pos = end + 2


def _parse_plain(text: str) -> list[str | _Field]:
    parts: list[str | _Field] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad format: {exc}") from None
    for literal, name, spec, conversion in parsed:
        if literal:
            parts.append(literal)
        if name is None:
            continue
        if name == "":
            raise ValueError("positional placeholder {} is not allowed; use a name such as {amount}")
        if name not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; expected one of {', '.join(sorted(TEMPLATE_FIELDS))}"
            )
        if spec or conversion:
            # Values are ready-made text (amounts are formatted already): a spec like :.2f would fail
            # on the first SMS of a run rather than at config load.
            raise ValueError(f"placeholder {{{name}}} must not have a format spec or conversion")
        parts.append(_Field(name))
    return parts


def _fill(parts: tuple[_Part, ...], values: Mapping[str, str | None]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, _Field):
            out.append(values[part.name] or "")
        elif all(values[name] for name in part.fields):
            out.append(_fill(part.parts, values))
    return "".join(out)


# Clean-up for placeholders outside [[sections]] that rendered empty. Kept narrow on purpose: it
# must never change the default texts (a test renders them verbatim).
_CLEANUPS = (
    (re.compile(r"\(\s*\)|（\s*）|「\s*」|“\s*”|\"\s*\""), ""),  # an empty quoted/bracketed field
    (re.compile(r"[ \t]{2,}"), " "),
    (re.compile(r"[ \t]+(?=[,.!?;:，。！？；：、）」])"), ""),  # "Hi , your" -> "Hi, your"
    # a comma left before other punctuation: "亲，，您" -> "亲，您"; "unpaid,." -> "unpaid."
    (re.compile(r"[，,、；;][ \t]*(?=[，,、；;。.！!？?])"), ""),
)
_LEADING_JUNK = " \t，,、；;：:。！!？?"
_URL_SLOT = "\x00"  # the pay link is put in after the clean-up, which must never touch a URL


def _clean(body: str) -> str:
    for pattern, repl in _CLEANUPS:
        body = pattern.sub(repl, body)
    return body.lstrip(_LEADING_JUNK).rstrip()


# --------------------------------------------------------------------------------------------
# Field values

_ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
_SYMBOLS = {
    "zh-CN": {"CNY": "¥", "USD": "US$", "HKD": "HK$"},
    "en": {"USD": "$", "EUR": "€", "GBP": "£"},
}


def _amount_value(amount: Decimal, currency: str) -> Decimal:
    quantum = Decimal(1) if currency.upper() in _ZERO_DECIMAL else Decimal("0.01")
    return Decimal(amount).quantize(quantum, rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal, currency: str, locale: str) -> str:
    """``Decimal("199.00"), "CNY"`` -> "¥199.00" (zh-CN) / "CNY 199.00" (en). See the module doc."""
    currency = currency.upper()
    value = _amount_value(amount, currency)
    number = format(value, ",f" if locale == "en" else "f")
    symbol = _SYMBOLS.get(locale, {}).get(currency)
    return f"{symbol}{number}" if symbol else f"{currency} {number}"


_WHITESPACE = re.compile(r"\s+")
# 【】 in the text would read as a second signature, which Chinese carriers reject.
_NO_SIGNATURE_BRACKETS = str.maketrans({"【": "[", "】": "]"})


# --------------------------------------------------------------------------------------------
# Content safety: order fields come from buyers, and an SMS signed by the shop must never carry
# their words as the shop's (a name like "账户异常请登录 evil.example 核实" is phishing under the
# shop's signature). So no order field can put a link, a control or format character, or a
# phone number into the text; the only link an SMS can hold is a pay_url on the shop's own hosts
# (or one the shop wrote into its own template).

MAX_NAME_CHARS = 20  # longer is not a name; also keeps a hostile one from crowding the text
# Control (Cc: also ESC), format (Cf: bidi overrides, zero-width), surrogate, private-use and
# unassigned characters. Whitespace among them (tab, newline, U+2028) becomes a space first.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_DOT = "[.\u3002]"  # "." and the ideographic full stop, which browsers also read as a dot
# Anything with a scheme, or starting with www.: the whole run of non-spaces goes.
_SCHEME_URL = re.compile(r"\S*://\S*|www" + _DOT + r"\S*", re.IGNORECASE)
# Domain-like tokens (foo.com, evil.example/x, 例子.中国): labels joined by dots, ending in a
# label of 2+ letters, with any path. ASCII labels are matched on their own, so Chinese text
# around an ASCII domain stays ("登录evil.example核实" keeps 登录 and 核实).
_ASCII_DOMAIN = re.compile(
    r"(?<![a-z0-9\-])[a-z0-9\-]+(?:" + _DOT + r"[a-z0-9\-]+)*" + _DOT + r"(?:[a-z]{2,63}|xn--[a-z0-9\-]+)"
    r"(?![a-z0-9\-])(?:[/:?#][!-~]*)?",
    re.IGNORECASE | re.ASCII,
)
_UNICODE_DOMAIN = re.compile(r"[^\W_]+(?:" + _DOT + r"[^\W_]+)*" + _DOT + r"[^\W\d_]{2,}(?:[/:?#]\S*)?")
# A bare IPv4 address is a link too (phones' link detection opens 1.2.3.4/pay); so is one with
# ideographic dots. A four-part version number in a title ("1.2.3.4") goes with it: safety first.
# The whole dotted run of digits goes, whatever its parts' lengths, so no dotted quad is left
# inside it ("0000.0.0.0" holds 000.0.0.0, ".1.2.3.4" holds 1.2.3.4).
_IPV4 = re.compile(r"(?<!\d)\d+(?:" + _DOT + r"\d+){3,}(?!\d)(?:[/:?#][!-~]*)?")
_EMAIL = re.compile(r"\S+@\S+")
_DIGIT_RUN = re.compile(r"\d(?:[\s\-.()/]*\d){4,}")  # 5+ digits, even written "138-0013-8000"
_EDGE_JUNK = " .\u3002-_/:"
_MAX_PASSES = 4


def _without_unsafe_characters(value: str) -> str:
    value = unicodedata.normalize("NFKC", value)  # fullwidth ｈｔｔｐｓ：／／ becomes https://
    value = _WHITESPACE.sub(" ", value)
    if not value.isprintable():
        value = "".join(ch for ch in value if unicodedata.category(ch) not in _UNSAFE_CATEGORIES)
    return value


def _without_links(value: str) -> str:
    # Each removal leaves a space, so the text either side cannot join into a new link.
    for pattern in (_SCHEME_URL, _IPV4, _ASCII_DOMAIN, _UNICODE_DOMAIN):
        value = pattern.sub(" ", value)
    return value


def _text_field(value: str | None, *, name: bool = False) -> str | None:
    """An order's buyer name (``name=True``) or item title, safe to put into the shop's SMS.

    Both: NFKC-normalized, then control, format and escape characters removed (whitespace
    becomes one space), then anything link-like removed (a scheme ``://``, ``www.``, or a
    domain-like token such as ``foo.com`` or ``evil.example/x``). Names also lose e-mail
    addresses and runs of 5+ digits (phone numbers, account numbers), and are cut to
    ``MAX_NAME_CHARS``. 【】 become [] (they would read as a second signature).
    """
    if value is None:
        return None
    value = _without_unsafe_characters(value).translate(_NO_SIGNATURE_BRACKETS)
    if name and len(value) > 4 * MAX_NAME_CHARS:
        value = value[: 4 * MAX_NAME_CHARS]  # room for what the removals below take out
    # The text's gap clean-up (run again on the whole SMS) removes spaces and commas before
    # punctuation, which could join "evil ,.com" into a link: clean and remove until stable.
    for _ in range(_MAX_PASSES):
        cleaned = _clean(value)
        if name:
            cleaned = _EMAIL.sub(" ", cleaned)
        cleaned = _without_links(cleaned)
        if name:
            cleaned = _DIGIT_RUN.sub(" ", cleaned)
        cleaned = _WHITESPACE.sub(" ", cleaned).strip(_EDGE_JUNK)
        if name and len(cleaned) > MAX_NAME_CHARS:
            cleaned = cleaned[:MAX_NAME_CHARS].rstrip(_EDGE_JUNK)
        if cleaned == value:
            return value or None
        value = cleaned
    return None  # still changing: leave the field out rather than guess


def allowed_pay_url(url: str | None, link_hosts: Sequence[str]) -> str | None:
    """``url`` when it may go into an SMS: ``https://`` on one of the shop's ``link_hosts``.

    A host entry ``shop.example`` allows exactly that host; ``.shop.example`` (leading dot) also
    allows its subdomains (``pay.shop.example``). Refused: other schemes, user info (``@``),
    ports, backslashes, percent-escapes or any non-ASCII character in the URL (so no IDN
    look-alikes: a shop lists the ``xn--`` form of an IDN host), and a trailing dot on the host.
    With no ``link_hosts`` (the default) no pay link is ever sent.
    """
    if not url or not link_hosts:
        return None
    url = url.strip()
    # Printable ASCII only: no spaces, no control characters, no look-alike letters.
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    netloc = parts.netloc
    if parts.scheme != "https" or port is not None or any(c in netloc for c in "@:%[]"):
        return None
    host = netloc.lower()
    if not _HOST.fullmatch(host):
        return None
    for allowed in link_hosts:
        if host == allowed.lstrip(".") or (allowed.startswith(".") and host.endswith(allowed)):
            return url
    return None


_HOST = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)+")


def _closes_at(order: Order, shop: ShopConfig, now: datetime, locale: str) -> str | None:
    # A closing time already passed would be a false statement; the planner skips such orders anyway.
    if order.closes_at is None or order.closes_at <= now:
        return None
    zone = shop.zone
    local, today = order.closes_at.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        return f"{local:%H:%M}"
    if locale == "zh-CN":
        return f"{local.month}月{local.day}日{local:%H:%M}"
    return f"{local:%m-%d %H:%M}"


def _ship_by(window: Window | None, shop: ShopConfig, now: datetime) -> str | None:
    # "Pay before 11:00 and it ships today" is only true while 11:00 is still ahead.
    if window is None or window.ship_by is None:
        return None
    if now.astimezone(shop.zone).time() >= window.ship_by:
        return None
    return f"{window.ship_by:%H:%M}"


def _greeting(name: str | None, locale: str) -> str:
    if locale == "zh-CN":
        return f"{name}您好" if name else "亲"
    return f"Hi {name}" if name else "Hi"


# --------------------------------------------------------------------------------------------
# Rendering


def check_fixed_text_fits(shop: ShopConfig, messages: MessagesConfig, *, worst_window: Window) -> None:
    """Refuse (ConfigError on ``messages.max_segments``) a config whose fixed text cannot fit.

    The fixed text is what no order field can shorten: the signature, each reminder's template
    with every optional field empty, the opt-out line, and the longest amount (the largest an
    order may have, with a three-letter code), closing time and shipping cut-off. Config loading
    calls this, so every SMS the renderer makes fits (it drops order fields until it does).
    """
    from nudge.domain.orders import MAX_AMOUNT

    zone = shop.zone
    now = datetime(2026, 12, 30, 0, 0, tzinfo=zone)
    worst = Order(
        order_id="fixed-text",
        buyer_id="-",
        phone="-",
        status="unpaid",
        created_at=now,
        amount=MAX_AMOUNT,
        currency="XXX",  # no symbol: written out as "XXX 1,000,000,000,000.00", the longest form
        closes_at=datetime(2026, 12, 31, 23, 59, tzinfo=zone),  # "12月31日23:59" / "12-31 23:59"
    )
    window = worst_window
    for attempt in (1, 2):
        # The reminder's own text, or each of its variants: every text an order can get.
        variants: Sequence[Variant | None] = messages.variants.get(str(attempt)) or (None,)
        for index, variant in enumerate(variants):
            sms = render_reminder(
                worst,
                attempt,
                shop=shop,
                messages=messages,
                window=window,
                now=now,
                variant=None if variant is None else index,
            )
            if sms.segments <= messages.max_segments:
                continue
            key, text = "messages.max_segments", "the template"
            if variant is not None:
                key = f"messages.variants.{variant_key(attempt, index, variant.name)}"
                text = "this variant's template"
            raise ConfigError(
                key,
                f"reminder {attempt} needs {sms.segments} segments without any order field "
                f"(longest amount and closing time), over {messages.max_segments}: shorten shop.name, "
                f"messages.opt_out_line or {text}, or raise max_segments",
            )


@dataclass(frozen=True, slots=True)
class RenderedSms:
    text: str
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int


# Trimmed in this order when the text is over the cap: least useful to the buyer first. The pay
# link goes last and whole (a cut URL is a broken link); signature and opt-out line never.
_DROP_ORDER = ("item_title", "buyer_name", "pay_url")
_MIN_TITLE_CHARS = 4  # a title cut shorter than this says nothing; leave it out instead
_TITLE_TAIL = " \t,.;:，。、；：-—"


def render_reminder(
    order: Order,
    attempt: int,
    *,
    shop: ShopConfig,
    messages: MessagesConfig,
    window: Window | None,
    now: datetime,
    variant: int | None = None,
) -> RenderedSms:
    """The SMS for reminder ``attempt`` (1 or 2) of ``order``, within ``messages.max_segments``.

    ``variant``: the order's position in ``messages.variants`` (``nudge.domain.variants``); the
    text is that variant's when the reminder has variants, else the reminder's own text.

    Over the cap, the item title is cut (ending "…", or "..." while the text is GSM-7 since "…"
    would force UCS-2 and cost more than it saves), then dropped; then the buyer name is dropped
    (the greeting becomes "亲" / "Hi"); last the pay link is dropped whole. Room a later drop frees
    is given back: the name first, then as much of the title as fits. The signature and the
    opt-out line are never touched. If even the bare text is over the cap it is returned anyway
    with its true segment count: the caller decides (report it, skip it, or send it).
    """
    if attempt not in (1, 2) or isinstance(attempt, bool):
        raise ValueError(f"attempt must be 1 or 2, got {attempt!r}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    locale = shop.locale
    parts = _compile(_template(messages, locale, attempt, variant))

    shop_name = shop.name.replace("【", "").replace("】", "").strip()
    signature = f"【{shop_name}】" if locale == "zh-CN" else f"{shop_name}: "
    opt_out = (messages.opt_out_line or "").strip()
    values: dict[str, str | None] = {
        "shop": shop_name,
        "buyer_name": _text_field(order.buyer_name, name=True),
        "item_title": _text_field(order.item_title),
        "amount": format_amount(order.amount, order.currency or shop.currency, locale),
        "pay_url": allowed_pay_url(order.pay_url, messages.link_hosts),
        "closes_at": _closes_at(order, shop, now, locale),
        "ship_by": _ship_by(window, shop, now),
    }

    def build(vals: Mapping[str, str | None]) -> RenderedSms:
        filled = {**vals, "greeting": _greeting(vals["buyer_name"], locale)}
        url = filled["pay_url"]
        if url:
            filled["pay_url"] = _URL_SLOT
        body = _clean(_fill(parts, filled))
        if url:
            body = body.replace(_URL_SLOT, url)
        if not body.startswith(signature.rstrip()):  # an override may write the signature itself
            body = signature + body
        if opt_out:
            # A space keeps the opt-out line from being read as part of a URL (or an English word).
            body += (" " if locale == "en" or body[-1].isascii() else "") + opt_out
        encoding, segments = count_segments(body)
        return RenderedSms(body, encoding, segments)

    return _fit(build, values, messages.max_segments)


# Registered templates (a provider that sends its own approved text, e.g. Alibaba Cloud's
# TemplateCode + TemplateParam): the values Nudge fills in, by variable name.
TEMPLATE_PARAM_NAMES = ("name", "item", "amount", "cutoff", "closes")
TEMPLATE_VALUE_CHARS = 20  # the providers' usual cap on one variable's value (shorter is safe)
_NO_NAME = {"zh-CN": "亲", "en": "customer"}
_NO_ITEM = {"zh-CN": "商品", "en": "your order"}


def template_params(
    order: Order, *, shop: ShopConfig, window: Window | None, now: datetime
) -> dict[str, str]:
    """The values of a provider's registered reminder template, cleaned like the texts Nudge writes.

    ``name`` and ``item`` are the order's buyer name and item title after the same clean-up as in
    ``render_reminder`` (no link, no phone number, no control character, no 【】), cut to
    ``TEMPLATE_VALUE_CHARS``; when missing they read "亲" / "商品" ("customer" / "your order"), since a
    provider refuses an empty variable. ``amount`` is the number alone ("199.00", "1299"): the
    currency sign belongs in the registered text, where providers want it. ``cutoff`` (the window's
    shipping cut-off) and ``closes`` (the order's closing time) are left out when they are unknown or
    already past, as the texts leave them out: a template that names them then fails at the
    provider rather than saying something false. A link is never a value: a template may only
    hold the shop's own fixed, registered link.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    locale = shop.locale
    values = {
        "name": _cut(_text_field(order.buyer_name, name=True)) or _NO_NAME.get(locale, _NO_NAME["en"]),
        "item": _cut(_text_field(order.item_title)) or _NO_ITEM.get(locale, _NO_ITEM["en"]),
        "amount": format(_amount_value(order.amount, order.currency or shop.currency), "f"),
        "cutoff": _ship_by(window, shop, now),
        "closes": _closes_at(order, shop, now, locale),
    }
    return {k: v for k, v in values.items() if v}


def _cut(value: str | None) -> str | None:
    if value is None or len(value) <= TEMPLATE_VALUE_CHARS:
        return value
    head = _without_links(value[: TEMPLATE_VALUE_CHARS - 1]).rstrip(_TITLE_TAIL + " ")
    return head + "…" if head else None


def _template(messages: MessagesConfig, locale: str, attempt: int, variant: int | None) -> str:
    listed = messages.variants.get(str(attempt))
    if variant is not None and listed:
        if not 0 <= variant < len(listed):
            raise ValueError(f"variant must be 0..{len(listed) - 1} for reminder {attempt}, got {variant!r}")
        return listed[variant].template
    return messages.templates.get(locale, {}).get(str(attempt)) or DEFAULT_TEMPLATES[locale][attempt]


def _fit(
    build: Callable[[Mapping[str, str | None]], RenderedSms],
    values: dict[str, str | None],
    cap: int,
) -> RenderedSms:
    best = build(values)
    if best.segments <= cap:
        return best
    # Drop fields in order until the text fits; the last one dropped had to go.
    dropped: list[str] = []
    current = dict(values)
    for name in _DROP_ORDER:
        if not current[name]:
            continue
        current[name] = None
        dropped.append(name)
        best = build(current)
        if best.segments <= cap:
            break
    else:
        return best  # the bare text does not fit either: true count, caller reports it
    # Give back what the last drop freed, most useful first; the title comes back cut if need be.
    for name in reversed(dropped):
        if name == "item_title":
            best = _fit_title(build, current, values["item_title"] or "", cap, best)
        elif name != dropped[-1]:
            trial = build({**current, name: values[name]})
            if trial.segments <= cap:
                current[name], best = values[name], trial
    return best


def _fit_title(
    build: Callable[[Mapping[str, str | None]], RenderedSms],
    current: dict[str, str | None],
    title: str,
    cap: int,
    fallback: RenderedSms,
) -> RenderedSms:
    """The longest title (whole, or cut with an ellipsis) that keeps the text within ``cap``."""
    whole = build({**current, "item_title": title})
    if whole.segments <= cap:
        current["item_title"] = title
        return whole

    def cut(k: int) -> tuple[str, RenderedSms]:
        head = title[:k].rstrip(_TITLE_TAIL)
        # "…" is not GSM-7: in a GSM-7 text it would switch all of it to UCS-2 (70 instead of 160 a
        # segment), so "..." is used there. In a UCS-2 text the one-unit "…" is cheaper.
        gsm = fallback.encoding == GSM7 and _GSM.issuperset(head)
        # A cut can end a kept token on a domain-like shape ("evil.com1" -> "evil.com"): clean again.
        head = _without_links(head).rstrip(_TITLE_TAIL)
        value = head + ("..." if gsm else "…")
        return value, build({**current, "item_title": value})

    # Binary search: a longer cut never has fewer segments, so the fitting cuts form a prefix range.
    lo, hi, found = _MIN_TITLE_CHARS, len(title) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        value, trial = cut(mid)
        if trial.segments <= cap:
            found, lo = (value, trial), mid + 1
        else:
            hi = mid - 1
    if found is None:
        return fallback
    current["item_title"] = found[0]
    return found[1]
