"""SMS content safety: no order field can put a link, a control or format character, or more than
`max_segments` into an SMS signed by the shop."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nudge.domain.config import ConfigError, MessagesConfig, ShopConfig, Window, load_config
from nudge.domain.messages import RenderedSms, allowed_pay_url, count_segments, render_reminder
from nudge.domain.models import Action, Order, Reason
from tests.builders import SHANGHAI, order_model

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
WINDOW = Window(start="09:50", end="10:40", ship_by="11:00")


def make_order(**fields) -> Order:
    return order_model(now=NOW, **{"order_id": "o1", "buyer_id": "b1", "amount": Decimal("199.00"), **fields})


def sms(locale: str = "zh-CN", attempt: int = 1, link_hosts=("shop.example",), **fields) -> str:
    shop = ShopConfig(locale=locale)
    messages = MessagesConfig(link_hosts=link_hosts, max_segments=10)
    return render_reminder(
        make_order(**fields), attempt, shop=shop, messages=messages, window=WINDOW, now=NOW
    ).text


# ---- links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hosts", "allowed"),
    [
        ("https://shop.example/p/1?x=2", ["shop.example"], True),
        ("  https://SHOP.example/p/1  ", ["shop.example"], True),  # host names are case-blind
        ("https://shop.example", [".shop.example"], True),  # ".host": the host and its subdomains
        ("https://pay.shop.example/p", [".shop.example"], True),
        ("https://pay.shop.example/p", ["shop.example"], False),  # without the dot: exactly
        ("https://evilshop.example/p", [".shop.example"], False),
        ("https://shop.example.evil.example/p", ["shop.example"], False),
        ("https://shop.example/p", [], False),  # no hosts listed: no link at all
        ("http://shop.example/p", ["shop.example"], False),
        ("javascript:alert(1)", ["shop.example"], False),
        ("https://shop.example@evil.example/p", ["shop.example"], False),  # user info
        ("https://user@shop.example/p", ["shop.example"], False),
        ("https://shop.example:8443/p", ["shop.example"], False),  # port
        ("https://shop.example./p", ["shop.example"], False),  # trailing dot
        ("https://shöp.example/p", ["xn--shp-sna.example"], False),  # IDN look-alike: not ASCII
        ("https://evil.example\\.shop.example/", [".shop.example"], False),  # browsers read \ as /
        ("https://shop%2eexample/", ["shop.example"], False),
        ("https://[::1]/p", ["shop.example"], False),
        ("https://shop.example/p 请登录 evil.example", ["shop.example"], False),  # text after a space
        ("https://shop.example/p\x1b[0m", ["shop.example"], False),
        ("https://shop.example/p?next=https://evil.example", ["shop.example"], True),  # still the shop's page
    ],
)
def test_pay_url_only_https_on_the_shops_hosts(url, hosts, allowed):
    assert (allowed_pay_url(url, hosts) is not None) is allowed


def test_the_default_config_sends_no_pay_link():
    text = sms(link_hosts=(), pay_url="https://shop.example/p/1")
    assert "https" not in text and "付款链接" not in text


@pytest.mark.parametrize(
    "hosts",
    [
        ["https://shop.example"],
        ["shop.example/p"],
        ["shop.example:443"],
        ["shöp.example"],
        ["localhost"],
        [""],
    ],
)
def test_link_hosts_are_plain_host_names(hosts):
    with pytest.raises(ConfigError) as info:
        load_config({"messages": {"link_hosts": hosts}})
    assert info.value.key == "messages.link_hosts"


# ---- buyer names and item titles -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("账户异常请登录 https://evil.example/x 核实", "账户异常请登录 核实您好"),
        ("王芳evil.example/x", "王芳您好"),
        ("foo.com", None),
        ("ｈｔｔｐｓ：／／ｅｖｉｌ．ｅｘａｍｐｌｅ", None),  # fullwidth: NFKC first
        ("www.evil.example", None),
        ("王芳 evil。example", "王芳您好"),  # the ideographic full stop reads as a dot
        ("例子.中国", None),
        ("王芳 a@b.cn", "王芳您好"),
        ("张三13800138000", "张三您好"),
        ("张三 138-0013-8000", "张三您好"),
        ("张三1234", "张三1234您好"),  # four digits are not a number to call
        ("\u202e芳王", "芳王您好"),  # bidi override
        ("王\u200b芳", "王芳您好"),  # zero-width space
        ("王\x1b[31m芳", "王[31m芳您好"),  # ESC
        ("王芳" * 20, "王芳" * 10 + "您好"),  # cut to 20 characters
    ],
)
def test_buyer_names_lose_links_addresses_numbers_and_invisible_characters(name, shown):
    text = sms(buyer_name=name)
    assert text.startswith("【Nudge Shop】" + (shown or "亲，"))


@pytest.mark.parametrize(
    ("title", "shown"),
    [
        ("连衣裙 https://evil.example/x", "「连衣裙」"),
        ("连衣裙 evil.example", "「连衣裙」"),
        ("连衣裙 型号 1234567", "「连衣裙 型号 1234567」"),  # titles keep their numbers
        ("3.5mm 耳机 Vol.2", "「3.5mm 耳机 Vol.2」"),  # not domain-like: the last label has digits
        ("连衣裙\u2066\u200d", "「连衣裙」"),
    ],
)
def test_item_titles_lose_links_and_invisible_characters(title, shown):
    assert shown in sms(item_title=title)


def test_a_title_cut_cannot_leave_a_domain_behind():
    shop = ShopConfig(name="小棉袄童装")
    messages = MessagesConfig(max_segments=1)
    order = make_order(item_title="好" * 10 + " evil.com1" + "好" * 80, buyer_name=None)
    text = render_reminder(order, 1, shop=shop, messages=messages, window=WINDOW, now=NOW).text
    assert "evil" not in text or ".com" not in text


@pytest.mark.parametrize(
    "template",
    ["{item_title}.{buyer_name}", "{greeting}{amount}", "{item_title}/x", "x@{buyer_name}", "{buyer_name}。"],
)
def test_a_template_cannot_join_a_buyers_text_into_a_link(template):
    with pytest.raises(ConfigError, match="must not touch"):
        load_config({"messages": {"templates": {"zh-CN": {"1": template}}}})


# ---- the segment cap and the fixed text -------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"shop": {"name": "店" * 21}}, "shop.name"),
        ({"messages": {"opt_out_line": "拒" * 31}}, "messages.opt_out_line"),
        ({"shop": {"name": "Shop\u202e"}}, "shop.name"),
        ({"messages": {"opt_out_line": "Reply STOP\x1b"}}, "messages.opt_out_line"),
        ({"messages": {"templates": {"en": {"1": "Hi\u200b {amount}"}}}}, "messages.templates"),
        ({"messages": {"max_segments": 1}}, "messages.max_segments"),  # the zh default needs 2
        (
            {"messages": {"templates": {"zh-CN": {"2": "{greeting}" + "请尽快付款。" * 30}}}},
            "messages.max_segments",
        ),
        (
            {
                "shop": {"name": "S" * 20, "locale": "en"},
                "messages": {"opt_out_line": "R" * 30, "max_segments": 1},
            },
            "messages.max_segments",
        ),
    ],
)
def test_a_config_whose_fixed_text_cannot_fit_or_is_unsafe_is_refused(data, key):
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert info.value.key == key


def test_the_fixed_text_check_counts_the_longest_amount_and_closing_time():
    # Fits with a short amount, but not with the longest one an order may carry.
    template = "{greeting}" + "付" * 47 + "{amount}[[{closes_at}]]"
    config = {
        "messages": {"max_segments": 1, "templates": {"zh-CN": {"1": template, "2": "{greeting}，{amount}"}}}
    }
    short = make_order(amount=Decimal("0"))
    messages = MessagesConfig(max_segments=1, templates=config["messages"]["templates"])
    assert (
        render_reminder(short, 1, shop=ShopConfig(), messages=messages, window=WINDOW, now=NOW).segments == 1
    )
    with pytest.raises(ConfigError, match="reminder 1 needs 2 segments"):
        load_config(config)
    config["messages"]["templates"]["zh-CN"]["1"] = "{greeting}" + "付" * 20 + "{amount}[[{closes_at}]]"
    load_config(config)


def test_the_planner_never_sends_an_sms_over_the_cap(monkeypatch):
    import nudge.domain.rules as rules
    from nudge.domain.rules import plan_reminders

    monkeypatch.setattr(rules, "render_reminder", lambda *a, **k: RenderedSms("x" * 500, "GSM-7", 4))
    plan = plan_reminders([make_order()], now=NOW, config=load_config())
    (d,) = plan.decisions
    assert (d.action, d.reason) == (Action.SKIP, Reason.INVALID_ORDER)
    assert d.detail == "message: 4 segments, over messages.max_segments 2"


# ---- the property ----------------------------------------------------------------------------

HOSTILE = st.sampled_from(
    [
        "https://evil.example/x",
        "evil.example/x",
        "foo.com",
        "www.evil.example",
        "ｗｗｗ．ｅｖｉｌ．ｃｏｍ",
        "evil。com",
        "例子.中国",
        "例子。中国",
        "1.2.3.4/pay",
        "8.8.8.8",
        "a@b.cn",
        "13800138000",
        "\u202e",
        "\u200b",
        "\u2066",
        "\x1b[31m",
        "\x00",
        "\n",
        "\u2028",
        "\ue000",
        "【",
        "】",
        ".",
        "/",
        "://",
        "com",
        "账户异常请登录",
        "张三",
        "Alice",
        " ",
    ]
)
FIELD_TEXT = (
    st.none() | st.lists(HOSTILE | st.text(max_size=8), max_size=8).map("".join) | st.text(max_size=80)
)
PAY_URLS = (
    st.none()
    | st.sampled_from(
        [
            "https://shop.example/p/1",
            "https://pay.shop.example/p/2",
            "https://evil.example/p",
            "http://shop.example/p",
            "https://shop.example@evil.example/",
            "https://shop.example/p 请登录 evil.example",
            "https://shop.example/" + "x" * 300,
        ]
    )
    | st.text(max_size=40)
)
TEMPLATES = st.sampled_from(
    [
        None,
        {
            "1": "{greeting}，订单{amount}未付款[[「{item_title}」]][[ {pay_url}]]",
            "2": "{greeting}，{amount}[[，{closes_at}关闭]]",
        },
        {
            "1": "{greeting}, {amount} unpaid[[ ({item_title})]][[ {pay_url}]]",
            "2": "[[{buyer_name}, ]]{amount} [[ {ship_by}]]",
        },
    ]
)
URL_LIKE = re.compile(
    r"://|www[.\u3002]|[a-z0-9\-][.\u3002](?:[a-z]{2,}|xn--)|[^\W_]\.[^\W\d_]{2,}"
    # (a Unicode label before "。" is not checked here: the shop's own Chinese text ends sentences
    # with "。"; test_content_links.py checks those domains field by field)
    r"|\d{1,3}(?:[.\u3002]\d{1,3}){3}",
    re.IGNORECASE,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    locale=st.sampled_from(["zh-CN", "en"]),
    attempt=st.sampled_from([1, 2]),
    max_segments=st.integers(1, 4),
    templates=TEMPLATES,
    link_hosts=st.sampled_from([(), ("shop.example",), (".shop.example",)]),
    opt_out=st.sampled_from([None, "拒收请回复R", "Reply STOP to opt out"]),
    buyer_name=FIELD_TEXT,
    item_title=FIELD_TEXT,
    pay_url=PAY_URLS,
    amount=st.decimals(min_value=0, max_value=10**12, places=2),
    currency=st.none() | st.sampled_from(["CNY", "USD", "EUR", "JPY", "XXX", "COM"]),
    closes_in=st.none() | st.integers(-60, 3 * 24 * 60),
)
def test_no_order_field_puts_a_link_a_control_character_or_extra_segments_into_an_sms(
    locale,
    attempt,
    max_segments,
    templates,
    link_hosts,
    opt_out,
    buyer_name,
    item_title,
    pay_url,
    amount,
    currency,
    closes_in,
):
    data = {
        "shop": {"locale": locale},
        "messages": {"max_segments": max_segments, "link_hosts": list(link_hosts), "opt_out_line": opt_out},
    }
    if templates:
        data["messages"]["templates"] = {locale: templates}
    try:
        config = load_config(data)
    except ConfigError:
        assume(False)  # a config whose fixed text cannot fit is refused; that is tested above
    order = make_order(
        buyer_name=buyer_name,
        item_title=item_title,
        pay_url=pay_url,
        amount=amount,
        currency=currency,
        closes_at=None if closes_in is None else NOW + timedelta(minutes=closes_in),
    )
    result = render_reminder(
        order, attempt, shop=config.shop, messages=config.messages, window=WINDOW, now=NOW
    )
    text = result.text
    assert (result.encoding, result.segments) == count_segments(text)
    assert result.segments <= max_segments
    assert not [ch for ch in text if unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"}]
    allowed = allowed_pay_url(pay_url, config.messages.link_hosts)
    if allowed:
        assert allowed.startswith("https://") and " " not in allowed
        text = text.replace(allowed, " ")
    assert not URL_LIKE.search(text), text
