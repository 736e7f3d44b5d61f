"""Buyer phone numbers and the buyer's night (pure; parsing is cached).

Parsing with ``phonenumbers`` costs ~27 µs a number, so results are cached per (raw text,
default region); the planner parses only orders that get far enough in the rules. The buyer's
time zone comes from the number (TCPA and seed 000: never remind in the buyer's night); a number
that spans several zones (US toll-free, Russian mobiles) is judged by the strictest one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat
from phonenumbers.timezone import time_zones_for_number

from nudge.domain.config import QuietHours
from nudge.domain.restdays import wall_clock_instant

UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers when its metadata has no zone


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    e164: str | None  # "+8613800138000"; None when the number is not valid
    valid: bool
    zones: tuple[str, ...]  # IANA zones the number may be in; empty when unknown
    takes_sms: bool  # valid, and of a kind that can receive a text (not a landline)


_INVALID = PhoneInfo(e164=None, valid=False, zones=(), takes_sms=False)
# Valid numbers that cannot receive an SMS: SNS bills the publish and the carrier drops it. A
# Chinese or British landline is one; North American numbers are FIXED_LINE_OR_MOBILE (their
# plan does not tell the two apart) and stay textable, as do VoIP, personal and unknown-kind numbers.
_NO_SMS = frozenset(
    {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.PAGER,
        phonenumbers.PhoneNumberType.UAN,
        phonenumbers.PhoneNumberType.VOICEMAIL,
    }
)
_LETTER = re.compile(r"[^\W\d_]")  # any letter, in any script


@lru_cache(maxsize=65536)
def phone_info(raw: str, default_region: str) -> PhoneInfo:
    """Read an E.164 number, or a national one with ``default_region`` ("13800138000" + "CN").

    Anything that does not parse or is not a valid number for its region is invalid. Letters are
    refused outright: phonenumbers would read "1-800-FLOWERS" as digits and drop "ext 12", but
    an order's phone field with letters is a data error, not a number to text.
    """
    if not isinstance(raw, str) or _LETTER.search(raw):
        return _INVALID
    try:
        number = phonenumbers.parse(raw, default_region)
    except NumberParseException:
        return _INVALID
    if not phonenumbers.is_valid_number(number):
        return _INVALID
    zones = tuple(zone for zone in time_zones_for_number(number) if zone != UNKNOWN_ZONE)
    return PhoneInfo(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        valid=True,
        zones=zones,
        takes_sms=_takes_sms(number),
    )


# Argentine mobiles are often written without their "9" (or "15"), which libphonenumber then
# types as a landline: judging them would drop real buyers, so Argentina's fixed lines stay textable.
_FIXED_LINE_LOOKS_LIKE_MOBILE = frozenset({"AR"})


def _takes_sms(number: phonenumbers.PhoneNumber) -> bool:
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE and (
        phonenumbers.region_code_for_number(number) in _FIXED_LINE_LOOKS_LIKE_MOBILE
    ):
        return True
    return kind not in _NO_SMS


@lru_cache(maxsize=4096)
def buyer_zones(info: PhoneInfo, fallback_zone: str) -> tuple[ZoneInfo, ...]:
    """The zones the buyer may be in; ``fallback_zone`` (the shop's) when the number has none.

    Numbers without a zone are valid but non-geographic (satellite, international services).
    Such a buyer most likely lives where the shop sells, and judging them by the shop's clock
    keeps the night rule in force instead of either dropping it or never reaching the buyer.
    Zone names this Python's tz database lacks are skipped the same way.
    """
    zones = tuple(_load_zone(name) for name in info.zones)
    known = tuple(zone for zone in zones if zone is not None)
    return known or (ZoneInfo(fallback_zone),)


def _load_zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def within_buyer_hours(zones: tuple[ZoneInfo, ...], at: datetime, hours: QuietHours) -> bool:
    """True only if ``at`` is in [hours.start, hours.end) local time in every one of ``zones``.

    Every zone must agree: for a number that spans zones, the buyer may be in any of them.
    """
    _check(zones, at)
    return all(hours.start <= at.astimezone(zone).time() < hours.end for zone in zones)


def buyer_hours_end(zones: tuple[ZoneInfo, ...], at: datetime, hours: QuietHours) -> datetime:
    """The earliest instant >= ``at`` at which any zone's clock reaches ``hours.end``.

    That is when the buyer's night may begin: the send deadline of an SMS planned at ``at``.
    Meant for when ``within_buyer_hours`` is True; otherwise it is the next such instant. The
    result is in the zone whose evening comes first.
    """
    _check(zones, at)
    at_utc = at.astimezone(UTC)
    ends = []
    for zone in zones:
        local_day = at.astimezone(zone).date()
        end = wall_clock_instant(local_day, hours.end, zone)
        if end.astimezone(UTC) < at_utc:  # already past today's end there: the next evening
            end = wall_clock_instant(local_day + timedelta(days=1), hours.end, zone)
        ends.append(end)
    return min(ends, key=lambda end: end.astimezone(UTC))


def _check(zones: tuple[ZoneInfo, ...], at: datetime) -> None:
    if not zones:
        raise ValueError("no buyer zones: use buyer_zones(), which always gives one")
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
