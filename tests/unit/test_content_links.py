"""Links hidden in order fields never reach the shop's SMS: IP literals and Unicode domains.

Each test is one case of the promise "never a URL from order fields in an SMS".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from nudge.domain.config import load_config
from nudge.domain.messages import render_reminder
from nudge.domain.models import Order
from tests.builders import SHANGHAI

SH = SHANGHAI
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=SH)


def sms(*, name: str | None = None, title: str | None = None, locale: str = "zh-CN") -> str:
    config = load_config({"shop": {"locale": locale}})
    order = Order(
        order_id="o-1",
        buyer_id="b-1",
        phone="13800138000",
        status="unpaid",
        created_at=NOW - timedelta(hours=3),
        amount=Decimal("10"),
        buyer_name=name,
        item_title=title,
    )
    return render_reminder(
        order, 1, shop=config.shop, messages=config.messages, window=config.windows[0], now=NOW
    ).text


# The rule: an IP-literal host is a link (Android's Linkify WEB_URL pattern matches a bare
# dotted-quad, with or without a path) and must be removed like "evil.example/x" is. Before the fix, the
# domain patterns (nudge.domain.messages._ASCII_DOMAIN) need a last label of 2+ letters, and the
# names' digit-run rule needs 5+ digits, so "1.2.3.4/pay" survives in a name and any IPv4
# survives in a title.
@pytest.mark.parametrize(
    ("field", "value", "link"),
    [
        ("name", "1.2.3.4/pay", "1.2.3.4"),
        ("title", "192.168.1.1/login", "192.168.1.1"),
        ("title", "登录 8.8.8.8 核实", "8.8.8.8"),
        # A dotted quad inside a longer dotted run of digits (found by the property test).
        ("title", "0000.0.0.0", "000.0.0.0"),
        ("title", "版本.1.2.3.4", "1.2.3.4"),
        ("title", "1.2.3.4.5/pay", "2.3.4.5"),
    ],
)
def test_an_ip_literal_link_in_an_order_field_never_reaches_the_sms(field, value, link):
    text = sms(name=value) if field == "name" else sms(title=value)
    assert link not in text, text


# Expected (docs/DECISIONS.md rule 26): a domain-like token is removed "also with the ideographic
# full stop 。", and 例子.中国 is the rule's own example. Before the fix, only the ASCII pattern accepts 。
# as a dot; the Unicode-label pattern (messages._UNICODE_DOMAIN) only knows "." so 例子。中国, an
# ASCII label with a Chinese TLD, and a Cyrillic homoglyph TLD all pass.
@pytest.mark.parametrize(
    ("field", "value", "link"),
    [
        ("title", "例子。中国/x", "例子。中国"),
        ("name", "evil。中国", "evil。中国"),
        (
            "title",
            "evil。\u0441\u043e\u043c",
            "evil。\u0441\u043e\u043c",
        ),  # "сом": Cyrillic look-alike of com
    ],
)
def test_a_unicode_domain_with_an_ideographic_full_stop_never_reaches_the_sms(field, value, link):
    text = sms(name=value) if field == "name" else sms(title=value)
    assert link not in text, text
