"""A registered template's values (nudge.domain.messages.template_params, for Alibaba Cloud's
TemplateParam) and their way through the send queue (SendRequest -> OutgoingSms)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest

from nudge.domain.config import ShopConfig, Window
from nudge.domain.messages import TEMPLATE_VALUE_CHARS, template_params
from nudge.services.ports import OutgoingSms, SendRequest
from tests.builders import SHANGHAI, order_model

NOW = datetime(2025, 3, 14, 10, 5, tzinfo=SHANGHAI)
WINDOW = Window(start="09:50", end="10:40", ship_by="11:00")
ZH, EN = ShopConfig(name="小棉袄童装"), ShopConfig(name="Acme", locale="en", currency="USD")


def order(**fields):
    base = {
        "buyer_name": "张三",
        "item_title": "碎花连衣裙",
        "amount": Decimal("1299.5"),
        "pay_url": "https://s.example.cn/p/8f3k2a",
        "closes_at": NOW.replace(hour=14, minute=30),
    }
    return order_model(now=NOW, **{**base, **fields})


def test_every_value_of_a_full_order():
    assert template_params(order(), shop=ZH, window=WINDOW, now=NOW) == {
        "name": "张三",
        "item": "碎花连衣裙",
        "amount": "1299.50",  # the number alone, no grouping: the sign is in the registered text
        "cutoff": "11:00",
        "closes": "14:30",
    }


def test_no_value_is_ever_a_link_even_the_shops_own_pay_link():
    values = template_params(order(), shop=ZH, window=WINDOW, now=NOW)
    assert not any("http" in v or "example" in v for v in values.values())


def test_buyer_words_are_cleaned_like_the_texts():
    values = template_params(
        order(
            buyer_name="账户异常请登录 evil.example 核实 13800138000",
            item_title="【官方】围巾 www.x.cn\u202e",
        ),
        shop=ZH,
        window=WINDOW,
        now=NOW,
    )
    assert "evil.example" not in values["name"] and "13800138000" not in values["name"]
    assert values["item"] == "[官方]围巾"  # no second signature, no link, no control character


def test_long_values_are_cut_to_what_providers_take():
    values = template_params(
        order(item_title="夏季新款碎花连衣裙女装韩版宽松显瘦中长款雪纺裙子"), shop=ZH, window=WINDOW, now=NOW
    )
    assert len(values["item"]) <= TEMPLATE_VALUE_CHARS
    assert values["item"].endswith("…")


def test_missing_name_and_item_read_as_neutral_words_not_empty():
    zh = template_params(order(buyer_name=None, item_title=None), shop=ZH, window=WINDOW, now=NOW)
    assert (zh["name"], zh["item"]) == ("亲", "商品")
    en = template_params(
        order(buyer_name=None, item_title="http://x.example"), shop=EN, window=WINDOW, now=NOW
    )
    assert (en["name"], en["item"]) == ("customer", "your order")


def test_unknown_or_past_times_are_left_out_never_stated_falsely():
    late = NOW.replace(hour=11, minute=30)  # past the cut-off
    values = template_params(order(closes_at=None), shop=ZH, window=WINDOW, now=late)
    assert "cutoff" not in values and "closes" not in values
    assert "cutoff" not in template_params(order(), shop=ZH, window=None, now=NOW)


@pytest.mark.parametrize(("currency", "amount"), [("JPY", "1300"), ("USD", "1299.50")])
def test_amounts_follow_the_currency(currency, amount):
    assert template_params(order(currency=currency), shop=ZH, window=WINDOW, now=NOW)["amount"] == amount


def test_a_naive_clock_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        template_params(order(), shop=ZH, window=WINDOW, now=NOW.replace(tzinfo=None))


def _request(**fields) -> SendRequest:
    return SendRequest(
        order_id="o-1",
        buyer_id="b-1",
        phone="+8613800138000",
        attempt=1,
        text="hi",
        segments=1,
        not_after=NOW.replace(hour=10, minute=40),
        day=NOW.date(),
        window="09:50-10:40",
        planned_at=NOW,
        **fields,
    )


def test_the_values_travel_through_the_queue_to_the_gateway():
    params = {"name": "张三", "amount": "199.00"}
    request = _request(template_params=params)
    again = SendRequest.from_json(request.to_json())
    assert again == request
    sms = OutgoingSms.of(again, claim_token="t", handed_at=NOW)
    assert sms.template_params == params
    hash(request)  # still usable as a value


def test_a_message_without_values_keeps_its_old_shape():
    plain = _request()
    assert "template_params" not in plain.to_json()
    assert SendRequest.from_json(plain.to_json()).template_params is None
    assert OutgoingSms.of(plain, claim_token="t", handed_at=NOW).template_params is None
    with pytest.raises(ValueError, match="template_params"):
        SendRequest.from_json({**plain.to_json(), "template_params": ["x"]})
    assert replace(plain, template_params={"a": "1"}) != plain
