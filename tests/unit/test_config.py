"""Config validation: every value that could fail later, mid-run, is refused at load naming its key."""

from __future__ import annotations

from datetime import date, time

import pytest
import yaml

from nudge.domain.config import ConfigError, load_config
from nudge.domain.restdays import RestDayCalendar


def refused(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("key", "too_big", "largest"),
    [
        ("wait_minutes", 7 * 24 * 60 + 1, 7 * 24 * 60),
        ("max_age_hours", 721, 720),
        ("buyer_min_interval_hours", 721, 720),
        ("daily_sms_cap", 1_000_001, 1_000_000),
        # Only reminders 1 and 2 have a text: a third would have nothing to render.
        ("max_reminders_per_order", 3, 2),
    ],
)
def test_every_numeric_rule_has_an_upper_bound(key, too_big, largest):
    error = refused({"rules": {key: too_big}})
    assert error.key == f"rules.{key}" and str(largest) in error.problem
    assert getattr(load_config({"rules": {key: largest}}).rules, key) == largest


def test_large_order_amount_is_bounded_like_an_order_amount():
    assert refused({"rules": {"large_order_amount": "1e13"}}).key == "rules.large_order_amount"
    assert refused({"rules": {"large_order_amount": "NaN"}}).key == "rules.large_order_amount"
    assert load_config({"rules": {"large_order_amount": "1000000000000"}}).rules.large_order_amount == 10**12


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("windows:\n  - {start: 10:40, end: '11:00'}\n", "windows.0.start"),
        ("rules:\n  buyer_hours: {start: '08:00', end: 21:00}\n", "rules.buyer_hours.end"),
        ("windows:\n  - {start: '09:50', end: '10:40', ship_by: 11:00}\n", "windows.0.ship_by"),
    ],
)
def test_an_unquoted_time_in_yaml_is_refused_with_a_hint_to_quote_it(text, key):
    data = yaml.safe_load(text)  # YAML 1.1 reads 10:40 as 640 (sexagesimal)
    error = refused(data)
    assert error.key == key and "quote" in error.problem and "got the number" in error.problem


@pytest.mark.parametrize("value", [True, 10.5, [10, 40], "10", "10:4", "1040", "10:40:00", "25:00"])
def test_times_are_hh_mm_strings(value):
    assert refused({"windows": [{"start": value, "end": "23:00"}]}).key == "windows.0.start"


def test_times_may_be_strings_or_time_objects():
    config = load_config({"windows": [{"start": "9:50", "end": time(10, 40)}]})
    assert config.windows[0].name == "09:50-10:40"


def test_an_unknown_holiday_subdivision_is_refused_at_load():
    error = refused({"calendar": {"country": "US", "subdivision": "ZZ"}})
    assert error.key == "calendar.subdivision" and "'ZZ' is not a subdivision of US" in error.problem
    assert "CA" in error.problem
    assert "has none" in refused({"calendar": {"country": "CN", "subdivision": "11"}}).problem


def test_a_known_subdivision_loads_and_its_calendar_works():
    config = load_config({"calendar": {"country": "US", "subdivision": "CA"}})
    calendar = RestDayCalendar(config.calendar)
    assert calendar.is_rest_day(date(2026, 3, 31))  # César Chávez Day, a California holiday
    assert not RestDayCalendar(load_config({"calendar": {"country": "US"}}).calendar).is_rest_day(
        date(2026, 3, 31)
    )


@pytest.mark.parametrize("currency", ["ДЕН", "元元元", "U$D"])
def test_shop_currency_is_three_ascii_letters(currency):
    assert refused({"shop": {"currency": currency}}).key == "shop.currency"


def test_a_config_error_is_one_printable_line_whatever_the_key():
    error = refused({"x\x1b[31m\nbad": 1})
    assert str(error) == "x\\x1b[31m\\nbad: unknown key"
