"""Personal data in logs is masked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nudge.domain.privacy import mask_name, mask_phone


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("+8613800138000", "+86138****8000"),  # country code, mobile prefix, last 4
        ("13800138000", "138****8000"),
        ("+86 138-0013-8000", "+86138****8000"),  # separators dropped
        ("１３８００１３８０００", "138****8000"),  # full-width digits
        ("+1 212 555 0123", "+1******0123"),  # 10 digits: the area code would leave only 3 masked
        ("+44 20 7946 0000", "+44******0000"),
        ("+870773123456", "+870*****3456"),  # 9 national digits: no prefix kept
        ("1234567", "*****67"),  # short numbers keep only the last 2
    ],
)
def test_mask_phone_keeps_country_code_prefix_and_last_digits(raw, masked):
    assert mask_phone(raw) == masked


@pytest.mark.parametrize(
    ("raw", "hidden"),
    [
        ("+8613800138000", "0013"),
        ("13912345678", "2345"),
        ("+1 212 555 0123", "212555"),
        ("+44 20 7946 0000", "207946"),
    ],
)
def test_mask_phone_leaves_no_middle_digit(raw, hidden):
    masked = mask_phone(raw)
    assert hidden not in masked.replace("*", "")
    assert masked.count("*") == len(hidden)


@pytest.mark.parametrize(
    "raw",
    ["+86123", "12345", "abc", "+8613800138000 ext 12", "13800l38000", "+", "----", " ", 13800138000, b"138"],
)
def test_mask_phone_masks_short_or_garbage_input_entirely(raw):
    assert mask_phone(raw) == "****"


@pytest.mark.parametrize("raw", [None, ""])
def test_mask_phone_of_nothing_is_empty(raw):
    assert mask_phone(raw) == ""


@given(st.text())
def test_mask_phone_never_raises_and_always_hides_four_digits(raw):
    masked = mask_phone(raw)
    digits_in = sum(ch.isdecimal() for ch in raw)
    digits_out = sum(ch.isdecimal() for ch in masked)
    assert masked == "" or masked.count("*") >= 4
    assert digits_out <= max(digits_in - 4, 0)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("Alice", "A****"),
        ("  Bob ", "B**"),
        ("张", "*"),  # one character would be the whole name
        (None, ""),
        ("", ""),
        ("   ", ""),
        (42, "****"),
    ],
)
def test_mask_name_keeps_only_the_first_character(name, masked):
    assert mask_name(name) == masked


@given(st.text(min_size=2).filter(lambda s: len(s.strip()) >= 2))
def test_mask_name_never_shows_more_than_one_character(name):
    masked = mask_name(name)
    assert masked[0] == name.strip()[0] and set(masked[1:]) == {"*"}
