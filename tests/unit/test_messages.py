"""Reminder SMS wording, segment counting and the segment cap (nudge.domain.messages)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.domain.config import MessagesConfig, ShopConfig, Window
from nudge.domain.messages import (
    DEFAULT_TEMPLATES,
    TEMPLATE_FIELDS,
    check_template,
    check_templates,
    count_segments,
    render_reminder,
)
from nudge.domain.models import Order
from tests.builders import SHANGHAI, order_model

NOW = datetime(2025, 3, 14, 10, 5, tzinfo=SHANGHAI)  # a Friday, inside the 09:50-10:40 window
WINDOW = Window(start="09:50", end="10:40", ship_by="11:00")
URL = "https://s.example.cn/p/8f3k2a"
LONG_URL = URL + "?r=" + "1" * 16
SHOP = {"zh-CN": "小棉袄童装", "en": "Acme Store"}
OPT_OUT = {"zh-CN": "拒收请回复R", "en": "Reply STOP to opt out"}
NAME = {"zh-CN": "张三", "en": "Alice"}
TITLE = {"zh-CN": "碎花连衣裙", "en": "Floral Dress"}
LONG_TITLE = {
    "zh-CN": "夏季新款碎花连衣裙女装韩版宽松显瘦中长款雪纺裙子" * 10,
    "en": "Summer Floral Midi Dress with Puff Sleeves and Tie Waist, Lightweight Chiffon " * 10,
}


def make_order(locale: str = "zh-CN", **fields) -> Order:
    """A typical unpaid order with every optional field set; override or clear with keywords."""
    every_field = {
        "order_id": "o1",
        "buyer_id": "b1",
        "amount": Decimal("199.00"),
        "buyer_name": NAME[locale],
        "item_title": TITLE[locale],
        "pay_url": URL,
        "closes_at": NOW.replace(hour=14, minute=30),
    }
    return order_model(now=NOW, **{**every_field, **fields})


def render(
    order: Order,
    attempt: int = 1,
    *,
    locale: str = "zh-CN",
    shop_name: str | None = None,
    currency: str = "CNY",
    opt_out: str | None = "default",
    max_segments: int = 2,
    templates: dict | None = None,
    window: Window | None = WINDOW,
    now: datetime = NOW,
    link_hosts: tuple[str, ...] = ("s.example.cn",),
):
    shop = ShopConfig(name=shop_name or SHOP[locale], locale=locale, currency=currency)
    messages = MessagesConfig(
        max_segments=max_segments,
        opt_out_line=OPT_OUT[locale] if opt_out == "default" else opt_out,
        templates=templates or {},
        link_hosts=link_hosts,
    )
    return render_reminder(order, attempt, shop=shop, messages=messages, window=window, now=now)


# --------------------------------------------------------------------------------------------
# count_segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 153 * 2, ("GSM-7", 2)),
        ("a" * (153 * 2 + 1), ("GSM-7", 3)),
    ],
)
def test_gsm7_holds_160_septets_in_one_segment_then_153_per_part(text, expected):
    assert count_segments(text) == expected


@pytest.mark.parametrize("char", list("^{}\\[~]|€"))
@pytest.mark.parametrize(("extra", "segments"), [("", 1), ("a", 2)])
def test_gsm7_extension_chars_cost_two_septets(char, extra, segments):
    # 80 extension chars are 160 septets: one segment exactly; one more septet spills over.
    assert count_segments(char * 80 + extra) == ("GSM-7", segments)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 159 + "€", ("GSM-7", 2)),  # 161 septets, though only 160 characters
        ("a" * 158 + "€", ("GSM-7", 1)),
    ],
)
def test_euro_sign_counts_two_septets(text, expected):
    assert count_segments(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("中" * 70, ("UCS-2", 1)),
        ("中" * 71, ("UCS-2", 2)),
        ("中" * 67 * 2, ("UCS-2", 2)),
        ("中" * (67 * 2 + 1), ("UCS-2", 3)),
    ],
)
def test_ucs2_holds_70_units_in_one_segment_then_67_per_part(text, expected):
    assert count_segments(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, your order is unpaid 中", ("UCS-2", 1)),
        ("a" * 69 + "中", ("UCS-2", 1)),
        ("a" * 70 + "中", ("UCS-2", 2)),  # 71 characters: would be 1 GSM-7 segment without the 中
        ("don’t", ("UCS-2", 1)),  # a curly apostrophe is not GSM-7 either
        ("don't", ("GSM-7", 1)),
    ],
)
def test_one_non_gsm_char_turns_the_whole_text_into_ucs2(text, expected):
    assert count_segments(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("😀" * 35, ("UCS-2", 1)),  # 70 code units
        ("😀" * 35 + "a", ("UCS-2", 2)),
        ("中" * 69 + "😀", ("UCS-2", 2)),  # 70 characters but 71 units
    ],
)
def test_emoji_counts_two_utf16_units(text, expected):
    assert count_segments(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 306 septets would be ceil(306/153) = 2, but ESC+€ cannot straddle the part boundary.
        ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),
        # 134 units would be 2 parts, but the emoji's surrogate pair cannot be split.
        ("中" * 66 + "😀" + "中" * 66, ("UCS-2", 3)),
    ],
)
def test_escape_and_surrogate_pairs_are_never_split_across_parts(text, expected):
    assert count_segments(text) == expected


_GSM_SAMPLE = "abcXYZ019 @£$¥èéÇ\n.,!?'\"()&%*+-/:;<=>_^{}\\[~]|€"
_UCS2_SAMPLE = "中文付款亲a1 .,😀€"


@pytest.mark.parametrize(("prefix", "alphabet"), [("", _GSM_SAMPLE), ("中", _UCS2_SAMPLE)])
@given(data=st.data())
def test_segments_are_monotone_in_text_length_for_a_fixed_encoding(prefix, alphabet, data):
    text = prefix + data.draw(st.text(alphabet=alphabet, max_size=400))
    longer = text + data.draw(st.text(alphabet=alphabet, min_size=1, max_size=200))
    encoding, segments = count_segments(text)
    longer_encoding, longer_segments = count_segments(longer)
    assert encoding == longer_encoding
    assert segments <= longer_segments


@pytest.mark.parametrize(
    ("alphabet", "encoding", "single", "part"),
    [("abc XYZ019.,@", "GSM-7", 160, 153), ("中文付款亲a1 .,", "UCS-2", 70, 67)],
)
@given(size=st.integers(min_value=0, max_value=1000))
def test_segments_follow_the_plain_formula_without_two_unit_chars(alphabet, encoding, single, part, size):
    text = (alphabet * (size // len(alphabet) + 1))[:size]
    if encoding == "UCS-2":
        text = "中" + text[1:] if text else "中"
    expected = 1 if len(text) <= single else math.ceil(len(text) / part)
    assert count_segments(text) == (encoding, expected)


# --------------------------------------------------------------------------------------------
# Default wording


@pytest.mark.parametrize(
    ("locale", "attempt", "full", "expected"),
    [
        (
            "zh-CN",
            1,
            True,
            "【小棉袄童装】张三您好，您拍下的宝贝「碎花连衣裙」（¥199.00）还未付款，请问是付款过程中遇到了什么困难吗？"
            "需要帮助请随时联系客服哦。付款链接：https://s.example.cn/p/8f3k2a 拒收请回复R",
        ),
        (
            "zh-CN",
            1,
            False,
            "【小棉袄童装】亲，您拍下的宝贝（¥199.00）还未付款，请问是付款过程中遇到了什么困难吗？"
            "需要帮助请随时联系客服哦。拒收请回复R",
        ),
        (
            "zh-CN",
            2,
            True,
            "【小棉袄童装】张三您好，您拍下的宝贝「碎花连衣裙」（¥199.00）还未付款哦。11:00前付款今天就发货，"
            "库存有限，先付先得，订单将于14:30自动关闭。付款链接：https://s.example.cn/p/8f3k2a 拒收请回复R",
        ),
        (
            "zh-CN",
            2,
            False,
            "【小棉袄童装】亲，您拍下的宝贝（¥199.00）还未付款哦。库存有限，先付先得。拒收请回复R",
        ),
        (
            "en",
            1,
            True,
            "Acme Store: Hi Alice, your order for Floral Dress (CNY 199.00) is still unpaid. "
            "Did something go wrong with the payment? We're happy to help. "
            "Pay here: https://s.example.cn/p/8f3k2a Reply STOP to opt out",
        ),
        (
            "en",
            1,
            False,
            "Acme Store: Hi, your order (CNY 199.00) is still unpaid. "
            "Did something go wrong with the payment? We're happy to help. Reply STOP to opt out",
        ),
        (
            "en",
            2,
            True,
            "Acme Store: Hi Alice, your order for Floral Dress (CNY 199.00) is still unpaid. "
            "Pay before 11:00 and it ships today. Stock is limited and goes to paid orders first. "
            "The order closes at 14:30. Pay here: https://s.example.cn/p/8f3k2a Reply STOP to opt out",
        ),
        (
            "en",
            2,
            False,
            "Acme Store: Hi, your order (CNY 199.00) is still unpaid. "
            "Stock is limited and goes to paid orders first. Reply STOP to opt out",
        ),
    ],
)
def test_default_wording_with_every_field_and_with_none_of_the_optional_ones(locale, attempt, full, expected):
    if full:
        order, window = make_order(locale), WINDOW
    else:
        order = make_order(locale, buyer_name=None, item_title=None, pay_url=None, closes_at=None)
        window = None
    assert render(order, attempt, locale=locale, window=window, max_segments=10).text == expected


@pytest.mark.parametrize("attempt", [1, 2])
@pytest.mark.parametrize(
    ("shop_name", "templates", "item_title"),
    [
        ("小棉袄童装", None, "碎花连衣裙"),
        (
            "小棉袄童装",
            {"zh-CN": {"1": "{greeting}，订单待付款", "2": "{greeting}，订单待付款"}},
            "碎花连衣裙",
        ),
        # an override that writes the signature itself does not get a second one
        ("小棉袄童装", {"zh-CN": {"1": "【{shop}】订单待付款", "2": "【{shop}】订单待付款"}}, "碎花连衣裙"),
        ("【小棉袄童装】", None, "碎花连衣裙"),  # brackets in the shop's name are not doubled
        ("小棉袄童装", None, "【限时特价】碎花连衣裙"),  # 【】 in a field would read as a second signature
    ],
)
def test_chinese_text_starts_with_the_one_shop_signature(attempt, shop_name, templates, item_title):
    text = render(make_order(item_title=item_title), attempt, shop_name=shop_name, templates=templates).text
    assert text.startswith("【小棉袄童装】")
    assert text.count("【") == text.count("】") == 1


@pytest.mark.parametrize("attempt", [1, 2])
def test_english_text_starts_with_the_shop_name(attempt):
    assert render(make_order("en"), attempt, locale="en").text.startswith("Acme Store: Hi Alice, ")


@pytest.mark.parametrize(
    ("locale", "help_offer"),
    [("zh-CN", "请问是付款过程中遇到了什么困难吗？"), ("en", "Did something go wrong with the payment?")],
)
def test_reminder_1_offers_help_without_pressure(locale, help_offer):
    text = render(make_order(locale), 1, locale=locale, max_segments=10).text
    assert help_offer in text
    assert "库存" not in text and "Stock" not in text


@pytest.mark.parametrize(
    ("locale", "phrases"),
    [
        ("zh-CN", ["11:00前付款今天就发货", "库存有限", "订单将于14:30自动关闭"]),
        ("en", ["Pay before 11:00 and it ships today", "Stock is limited", "closes at 14:30"]),
    ],
)
def test_reminder_2_names_the_shipping_cutoff_the_stock_and_the_closing_time(locale, phrases):
    text = render(make_order(locale), 2, locale=locale, max_segments=10).text
    for phrase in phrases:
        assert phrase in text


@pytest.mark.parametrize(
    ("locale", "closes_at", "shown"),
    [
        (
            "zh-CN",
            datetime(2025, 3, 14, 6, 30, tzinfo=UTC),
            "订单将于14:30自动关闭",
        ),  # UTC shown in shop zone
        # the same UTC day as NOW but the next day in Shanghai: the date is shown
        ("zh-CN", datetime(2025, 3, 14, 17, 0, tzinfo=UTC), "订单将于3月15日01:00自动关闭"),
        ("zh-CN", datetime(2025, 3, 16, 9, 0, tzinfo=SHANGHAI), "订单将于3月16日09:00自动关闭"),
        ("en", datetime(2025, 3, 14, 6, 30, tzinfo=UTC), "The order closes at 14:30."),
        ("en", datetime(2025, 3, 16, 9, 0, tzinfo=SHANGHAI), "The order closes at 03-16 09:00."),
    ],
)
def test_closing_time_is_shop_local_and_dated_only_when_not_today(locale, closes_at, shown):
    text = render(make_order(locale, closes_at=closes_at), 2, locale=locale, max_segments=10).text
    assert shown in text


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_a_closing_time_already_past_is_not_announced(locale):
    text = render(make_order(locale, closes_at=NOW - timedelta(minutes=1)), 2, locale=locale).text
    assert "关闭" not in text and "closes" not in text


@pytest.mark.parametrize(
    ("window", "now", "promised"),
    [
        (WINDOW, NOW, True),
        (None, NOW, False),  # no window: no cut-off is known
        (Window(start="09:50", end="10:40"), NOW, False),  # a window without a shipping cut-off
        (WINDOW, NOW.replace(hour=11, minute=0), False),  # the cut-off has passed: no false promise
    ],
)
def test_shipping_cutoff_is_promised_only_when_known_and_still_ahead(window, now, promised):
    text = render(make_order(), 2, window=window, now=now).text
    assert ("前付款今天就发货" in text) is promised


_GAPS = ["None", "  ", "，，", "，。", "（）", "「」", "()", " ,", " .", ",,", ",.", "亲您好"]


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("attempt", [1, 2])
@pytest.mark.parametrize(
    "missing",
    [
        {"buyer_name": None},
        {"buyer_name": "   "},  # blank counts as missing
        {"item_title": None},
        {"pay_url": None},
        {"closes_at": None},
        {"buyer_name": None, "item_title": None, "pay_url": None, "closes_at": None},
    ],
)
def test_missing_optional_fields_leave_no_gaps(locale, attempt, missing):
    text = render(make_order(locale, **missing), attempt, locale=locale, max_segments=10).text
    assert not [gap for gap in _GAPS if gap in text]
    if "buyer_name" in missing:
        assert text.split("】")[-1].startswith("亲，") if locale == "zh-CN" else "Acme Store: Hi, " in text


@pytest.mark.parametrize(
    ("template", "expected_body"),
    [
        # placeholders outside a [[section]] that are empty are cleaned up, not left as gaps
        (
            "{buyer_name}，您的订单（{item_title}）还未付款，{pay_url}，请尽快付款",
            "您的订单还未付款，请尽快付款",
        ),
        ("Hi {buyer_name} , order ({item_title}) unpaid,{pay_url}.", "Hi, order unpaid."),
    ],
)
def test_empty_placeholders_outside_sections_leave_no_gaps(template, expected_body):
    locale = "en" if template.startswith("Hi") else "zh-CN"
    order = make_order(locale, buyer_name=None, item_title=None, pay_url=None)
    text = render(order, 1, locale=locale, opt_out=None, templates={locale: {"1": template}}).text
    assert text == ("【小棉袄童装】" if locale == "zh-CN" else "Acme Store: ") + expected_body


@pytest.mark.parametrize(
    ("amount", "order_currency", "locale", "shown"),
    [
        (Decimal("199.00"), None, "zh-CN", "（¥199.00）"),  # the shop's currency, CNY
        (Decimal("199"), None, "en", "(CNY 199.00)"),  # "¥" alone is yuan and yen: the code is clearer
        (Decimal("1299.5"), None, "zh-CN", "（¥1299.50）"),  # Chinese shop pages do not group thousands
        (Decimal("1299.5"), None, "en", "(CNY 1,299.50)"),
        (Decimal("0.005"), None, "zh-CN", "（¥0.01）"),  # money rounds half up, not half even
        (Decimal("19.9"), "USD", "en", "($19.90)"),
        (Decimal("19.9"), "USD", "zh-CN", "（US$19.90）"),
        (Decimal("19.9"), "eur", "en", "(€19.90)"),
        (Decimal("1500"), "JPY", "en", "(JPY 1,500)"),  # no minor unit
        (Decimal("88"), "SGD", "zh-CN", "（SGD 88.00）"),
    ],
)
def test_amount_is_shown_with_its_currency(amount, order_currency, locale, shown):
    order = make_order(locale, amount=amount, currency=order_currency)
    assert shown in render(order, 1, locale=locale, max_segments=10).text


@pytest.mark.parametrize(
    ("locale", "pay_url", "ending"),
    [
        ("zh-CN", URL, URL + " 拒收请回复R"),  # a space keeps the opt-out out of the link
        ("zh-CN", None, "联系客服哦。拒收请回复R"),
        ("en", URL, URL + " Reply STOP to opt out"),
    ],
)
def test_opt_out_line_is_appended_at_the_end(locale, pay_url, ending):
    assert render(make_order(locale, pay_url=pay_url), 1, locale=locale).text.endswith(ending)


@pytest.mark.parametrize(
    "pay_url", ["https://s.example.cn/pay?id=7&sig=a,.b", "https://s.example.cn/p/(),/x;;y"]
)
def test_pay_link_is_never_touched_by_the_gap_clean_up(pay_url):
    assert pay_url in render(make_order(pay_url=pay_url), 1, max_segments=10).text


@pytest.mark.parametrize(
    ("shop_name", "title_shown"),
    [
        ("小棉袄童装", False),  # room for only 2 characters of the title: it is left out
        ("小棉袄", True),  # 3 characters more room: "「碎碎碎碎碎…」" fits
    ],
)
def test_title_cut_shorter_than_four_characters_is_left_out(shop_name, title_shown):
    order = make_order(buyer_name=None, pay_url=None, item_title="碎" * 90)
    sms = render(order, 1, shop_name=shop_name, max_segments=1)
    assert sms.segments == 1
    assert ("碎" in sms.text) is title_shown


@pytest.mark.parametrize("opt_out", [None, "", "  "])
def test_no_opt_out_line_when_none_is_configured(opt_out):
    assert render(make_order(), 1, opt_out=opt_out).text.endswith(URL)


# --------------------------------------------------------------------------------------------
# Segment cap


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("attempt", [1, 2])
@pytest.mark.parametrize("max_segments", [2, 3])
def test_long_item_title_is_cut_to_fit_while_signature_opt_out_and_link_survive(
    locale, attempt, max_segments
):
    title = LONG_TITLE[locale]
    sms = render(make_order(locale, item_title=title), attempt, locale=locale, max_segments=max_segments)
    assert sms.segments <= max_segments
    assert (sms.encoding, sms.segments) == count_segments(sms.text)
    assert sms.text.startswith("【小棉袄童装】张三您好" if locale == "zh-CN" else "Acme Store: Hi Alice")
    assert sms.text.endswith(" " + OPT_OUT[locale])
    assert URL in sms.text
    ellipsis = "…" if locale == "zh-CN" else "..."
    kept = sms.text.split(ellipsis)[0].split("「" if locale == "zh-CN" else " for ")[-1]
    assert len(kept) >= 4 and title.startswith(kept)
    # the cut uses the room: the next longer cut would not fit
    end = len(kept) + 1
    while title[:end].rstrip(" ,") == kept:
        end += 1
    longer = sms.text.replace(kept + ellipsis, title[:end].rstrip(" ,") + ellipsis)
    assert count_segments(longer)[1] > max_segments


def test_gsm7_text_is_cut_with_three_dots_so_it_stays_gsm7():
    sms = render(make_order("en", item_title=LONG_TITLE["en"]), 1, locale="en", max_segments=2)
    assert (sms.encoding, sms.segments) == ("GSM-7", 2)
    assert "..." in sms.text and "…" not in sms.text


@pytest.mark.parametrize(
    ("fields", "max_segments", "kept", "gone"),
    [
        # a long name (names are cut to 20 characters) goes; the link stays, the greeting is 亲
        (
            {"buyer_name": "张" * 90, "item_title": None, "pay_url": LONG_URL},
            2,
            ["【小棉袄童装】亲，", LONG_URL],
            ["张张"],
        ),
        # the name goes only after the title has gone; the room it frees is given back to the title
        (
            {"buyer_name": "张" * 90, "item_title": "碎" * 90, "pay_url": LONG_URL},
            2,
            ["【小棉袄童装】亲，", "「碎碎碎碎", "…」", LONG_URL],
            ["张张"],
        ),
        # one segment: the link goes last and whole; the room it frees brings the name back
        ({}, 1, ["【小棉袄童装】张三您好，", "拒收请回复R"], ["https", "付款链接", "碎花连衣裙"]),
    ],
)
def test_trim_order_is_title_then_name_then_whole_pay_link(fields, max_segments, kept, gone):
    sms = render(make_order(**fields), 1, max_segments=max_segments)
    assert sms.segments <= max_segments
    assert [k for k in kept if k not in sms.text] == []
    assert [g for g in gone if g in sms.text] == []


def test_text_that_cannot_fit_is_returned_whole_with_its_true_segment_count():
    # Config loading refuses such a template (check_fixed_text_fits); the renderer alone still
    # reports the truth.
    template = "{greeting}，" + "请尽快付款。" * 30
    sms = render(make_order(), 1, templates={"zh-CN": {"1": template}}, max_segments=2)
    assert sms.segments > 2
    assert (sms.encoding, sms.segments) == count_segments(sms.text)
    assert sms.text.startswith("【小棉袄童装】亲，请尽快付款") and sms.text.endswith("拒收请回复R")


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("attempt", [1, 2])
def test_typical_default_reminder_fits_two_segments(locale, attempt):
    sms = render(make_order(locale), attempt, locale=locale, max_segments=10)
    assert sms.segments <= 2


@pytest.mark.parametrize("attempt", [1, 2])
def test_default_english_text_stays_gsm7(attempt):
    assert render(make_order("en"), attempt, locale="en").encoding == "GSM-7"


def test_field_values_are_one_line_of_text():
    text = render(make_order(item_title="碎花\n连衣裙\t 夏季", buyer_name=" 张三 \n")).text
    assert "「碎花 连衣裙 夏季」" in text and "张三您好" in text


# --------------------------------------------------------------------------------------------
# Overrides and template checks

OVERRIDE_2 = "{greeting}，您有一笔{amount}的订单还没付款[[，{closes_at}关闭]]。[[{pay_url}]]"


@pytest.mark.parametrize(
    ("locale", "attempt", "overridden"),
    [("zh-CN", 2, True), ("zh-CN", 1, False), ("en", 2, False)],
)
def test_custom_template_replaces_the_default_for_its_locale_and_attempt(locale, attempt, overridden):
    text = render(make_order(locale), attempt, locale=locale, templates={"zh-CN": {"2": OVERRIDE_2}}).text
    expected = "【小棉袄童装】张三您好，您有一笔¥199.00的订单还没付款，14:30关闭。" + URL + " 拒收请回复R"
    assert (text == expected) is overridden


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{name}您好", "unknown placeholder {name}"),
        ("{shop.name}", "unknown placeholder {shop.name}"),
        ("{}", "positional placeholder"),
        ("{0}", "unknown placeholder {0}"),
        ("{amount:.2f}", "format spec"),
        ("{amount!r}", "format spec or conversion"),
        ("付款 {amount", "bad format"),
        ("付款 }", "bad format"),
        ("[[{pay_url}", "'[[' without ']]'"),
        ("{pay_url}]]", "']]' without '[['"),
        ("[[a[[{pay_url}]]]]", "cannot be nested"),
        ("[[付款]]", "has no placeholder"),
        ("  ", "empty"),
    ],
)
def test_check_template_refuses_what_could_not_render(template, problem):
    with pytest.raises(ValueError, match=problem.replace("{", r"\{").replace("[", r"\[").replace(".", r"\.")):
        check_template(template)


@pytest.mark.parametrize(
    "template",
    [
        *[text for by_attempt in DEFAULT_TEMPLATES.values() for text in by_attempt.values()],
        OVERRIDE_2,
        "{{literal braces}} {amount}",
        " ".join(f"{{{name}}}" for name in sorted(TEMPLATE_FIELDS)),
    ],
)
def test_check_template_accepts_the_defaults_and_valid_overrides(template):
    check_template(template)


@pytest.mark.parametrize(
    ("templates", "problem"),
    [
        ({"fr": {"1": "{amount}"}}, "fr: unknown locale"),
        ({"zh-CN": {"3": "{amount}"}}, "zh-CN.3: unknown reminder"),
        ({"en": {"2": "{price}"}}, r"en.2: unknown placeholder \{price\}"),
    ],
)
def test_check_templates_names_the_bad_key(templates, problem):
    with pytest.raises(ValueError, match=problem):
        check_templates(templates)


@pytest.mark.parametrize("attempt", [0, 3, -1, True])
def test_only_reminders_1_and_2_exist(attempt):
    with pytest.raises(ValueError, match="attempt must be 1 or 2"):
        render(make_order(), attempt)


def test_now_must_carry_a_time_zone():
    with pytest.raises(ValueError, match="timezone-aware"):
        render(make_order(), 1, now=NOW.replace(tzinfo=None))
