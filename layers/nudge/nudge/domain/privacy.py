"""Masking of buyers' personal data before it reaches logs, metrics or error reports.

Logs outlive orders and are read by more people than the shop's customer service, so they keep
only enough to tell two buyers apart when debugging: the country code, the mobile prefix and the
last digits of a phone; the first character of a name. These functions never raise: a logging
call must not fail a run.
"""

from __future__ import annotations

import re

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

MASK = "*"
FULLY_MASKED = MASK * 4  # the same for all garbage, so its length gives nothing away
MIN_MASKED_DIGITS = 4
MIN_DIGITS = 6  # below this, any visible digit would be a large share of the number


def mask_phone(raw: str | None) -> str:
    """Mask a phone number: "+8613800138000" -> "+86138****8000", "13800138000" -> "138****8000".

    Kept: "+" and the country code, the first 3 national digits (the mobile prefix) when that
    still leaves 4 masked, and the last 4 digits (last 2 for numbers under 8 digits). Separators
    are dropped. Input with letters, too few digits or of the wrong type is masked entirely.
    """
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str):
        return FULLY_MASKED
    text = raw.strip()
    if any(ch.isalpha() for ch in text):
        return FULLY_MASKED
    international = text.startswith("+")
    digits = "".join(str(int(ch)) for ch in text if ch.isdecimal())  # full-width digits too
    country_code = _country_code(digits) if international else ""
    national = digits[len(country_code) :]
    if len(national) < MIN_DIGITS:
        return FULLY_MASKED
    tail = 4 if len(national) >= 8 else 2
    head = 3 if len(national) - tail - 3 >= MIN_MASKED_DIGITS else 0
    masked = len(national) - head - tail
    prefix = f"+{country_code}" if international else ""
    return f"{prefix}{national[:head]}{MASK * masked}{national[-tail:]}"


def _country_code(digits: str) -> str:
    """The leading 1-3 digits that form a calling code (codes are prefix-free), or ""."""
    for length in (1, 2, 3):
        if digits[:length].isdigit() and int(digits[:length]) in COUNTRY_CODE_TO_REGION_CODE:
            return digits[:length]
    return ""


def mask_name(name: str | None) -> str:
    """Mask a name: "张三" -> "张*", "Alice" -> "A****" (the first character, then one mask each).

    A one-character name is masked entirely: its first character is all of it.
    """
    if not isinstance(name, str):
        return "" if name is None else FULLY_MASKED
    text = name.strip()
    if len(text) <= 1:
        return MASK * len(text)
    return text[0] + MASK * (len(text) - 1)


_DIGIT_RUN = re.compile(r"\+?\d{7,}")  # a phone number inside free text


def mask_digit_runs(text: str) -> str:
    """Free text (a provider's error message, a validation problem) with every phone-like run of
    7 or more digits masked like ``mask_phone``."""
    return _DIGIT_RUN.sub(lambda m: mask_phone(m.group()), text)
