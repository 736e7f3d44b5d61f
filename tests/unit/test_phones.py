"""Buyer phone numbers and the buyer's night (TCPA; seed 000)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from nudge.domain.config import QuietHours
from nudge.domain.phones import PhoneInfo, buyer_hours_end, buyer_zones, phone_info, within_buyer_hours
from tests.builders import SHANGHAI

HOURS = QuietHours()  # 08:00-21:00 buyer-local
CN_MOBILE = "+8613800138000"
NEW_YORK_NUMBER = "+12125550123"
US_TOLL_FREE = "+18002345678"  # metadata: every zone from Guam to Newfoundland
INMARSAT = "+870773123456"  # valid, but no time zone

NEW_YORK = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
LONDON = ZoneInfo("Europe/London")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("13800138000", "CN"),  # national, read with the shop's region
        (CN_MOBILE, "CN"),
        (CN_MOBILE, "US"),  # E.164 ignores the default region
        ("+86 138-0013-8000", "CN"),
        ("138 0013 8000", "CN"),
        ("008613800138000", "CN"),  # China's international prefix
        ("１３８００１３８０００", "CN"),  # full-width digits from a Chinese input method
    ],
)
def test_national_and_e164_numbers_normalise_to_the_same_e164(raw, region):
    assert phone_info(raw, region) == PhoneInfo(
        e164=CN_MOBILE, valid=True, zones=("Asia/Shanghai",), takes_sms=True
    )


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("1380013", "CN"),  # too short
        ("+86123", "CN"),
        ("1380013800a", "CN"),  # letters
        ("abc", "CN"),
        ("+1 800 FLOWERS", "US"),  # phonenumbers would read the letters as digits
        ("+8613800138000 ext 12", "CN"),  # an extension cannot receive an SMS
        ("", "CN"),
        ("+", "CN"),
        ("12125550123", "CN"),  # a US number without "+" is no Chinese number
        ("+999123456789", "CN"),  # no such country code
    ],
)
def test_unparseable_or_invalid_numbers_are_invalid(raw, region):
    assert phone_info(raw, region) == PhoneInfo(e164=None, valid=False, zones=(), takes_sms=False)


@pytest.mark.parametrize(("raw", "zones"), [(NEW_YORK_NUMBER, ("America/New_York",)), (INMARSAT, ())])
def test_unknown_zone_is_dropped_from_phone_info(raw, zones):
    assert phone_info(raw, "CN").zones == zones


@pytest.mark.parametrize(("raw", "region"), [("13800138000", "CN"), (NEW_YORK_NUMBER, "CN")])
def test_phone_info_is_parsed_once_per_raw_and_region(raw, region):
    phone_info.cache_clear()
    first = phone_info(raw, region)
    assert phone_info(raw, region) is first
    assert phone_info.cache_info().hits == 1


@pytest.mark.parametrize(
    ("info", "fallback", "expected"),
    [
        (phone_info(NEW_YORK_NUMBER, "CN"), "Asia/Shanghai", ("America/New_York",)),
        (phone_info(CN_MOBILE, "CN"), "America/New_York", ("Asia/Shanghai",)),
        # No zone in the metadata: judged by the shop's clock.
        (phone_info(INMARSAT, "CN"), "Asia/Shanghai", ("Asia/Shanghai",)),
        (
            PhoneInfo(e164="+870773123456", valid=True, zones=(), takes_sms=True),
            "Europe/London",
            ("Europe/London",),
        ),
        # A zone this Python's tz database does not know counts as unknown.
        (
            PhoneInfo(e164="+1", valid=True, zones=("Mars/Olympus_Mons",), takes_sms=True),
            "Asia/Shanghai",
            ("Asia/Shanghai",),
        ),
        (
            PhoneInfo(e164="+1", valid=True, zones=("Mars/Olympus_Mons", "America/Chicago"), takes_sms=True),
            "Asia/Shanghai",
            ("America/Chicago",),
        ),
    ],
)
def test_buyer_zones_fall_back_to_the_shop_zone_when_unknown(info, fallback, expected):
    assert tuple(zone.key for zone in buyer_zones(info, fallback)) == expected


@pytest.mark.parametrize(
    ("raw", "instant", "within"),
    [
        # Winter: 12:30Z is 07:30 in New York but 20:30 in Shanghai, the shop's zone.
        (NEW_YORK_NUMBER, "2026-12-01T12:30Z", False),
        (CN_MOBILE, "2026-12-01T12:30Z", True),
        # The start minute is in, the end minute is out.
        (NEW_YORK_NUMBER, "2026-12-01T13:00Z", True),  # 08:00 EST
        (NEW_YORK_NUMBER, "2026-12-01T12:59:59Z", False),
        (NEW_YORK_NUMBER, "2026-12-02T01:59:59Z", True),  # 20:59:59 EST
        (NEW_YORK_NUMBER, "2026-12-02T02:00Z", False),  # 21:00 EST
        # Summer time moves the buyer's morning an hour earlier in UTC.
        (NEW_YORK_NUMBER, "2026-06-15T12:30Z", True),  # 08:30 EDT
        # Toll-free spans zones: 08:30 in New York is 02:30 in Honolulu, so it waits.
        (US_TOLL_FREE, "2026-06-15T12:30Z", False),
        # ...and is only reachable when it is day from Guam to Newfoundland.
        (US_TOLL_FREE, "2026-06-15T22:30Z", True),
    ],
)
def test_buyer_hours_hold_in_every_zone_of_the_number(raw, instant, within):
    zones = buyer_zones(phone_info(raw, "CN"), "Asia/Shanghai")
    assert within_buyer_hours(zones, at(instant), HOURS) is within


@pytest.mark.parametrize(
    ("zones", "instant", "expected_end"),
    [
        ((NEW_YORK,), "2026-06-15T14:00Z", "2026-06-16T01:00Z"),  # 21:00 EDT
        # Several zones: the earliest evening wins, whatever the order.
        ((HONOLULU, NEW_YORK), "2026-06-15T20:00Z", "2026-06-16T01:00Z"),
        ((NEW_YORK, HONOLULU), "2026-06-15T20:00Z", "2026-06-16T01:00Z"),
        ((LONDON, SHANGHAI), "2026-06-15T07:00Z", "2026-06-15T13:00Z"),  # 21:00 in Shanghai
        ((LONDON,), "2026-06-15T07:00Z", "2026-06-15T20:00Z"),  # 21:00 BST
        # At the end itself the deadline is now; past it, the next evening.
        ((NEW_YORK,), "2026-06-16T01:00Z", "2026-06-16T01:00Z"),
        ((SHANGHAI,), "2026-06-15T14:00Z", "2026-06-16T13:00Z"),
        ((SHANGHAI, NEW_YORK), "2026-06-15T14:00Z", "2026-06-16T01:00Z"),
    ],
)
def test_buyer_hours_end_is_the_earliest_zone_evening(zones, instant, expected_end):
    assert buyer_hours_end(zones, at(instant), HOURS) == at(expected_end)


@pytest.mark.parametrize(
    ("hours", "instant", "within", "expected_end"),
    [
        (QuietHours(start=time(9, 0), end=time(20, 0)), "2026-06-15T12:30Z", False, "2026-06-16T00:00Z"),
        (QuietHours(start=time(9, 0), end=time(20, 0)), "2026-06-15T13:00Z", True, "2026-06-16T00:00Z"),
    ],
)
def test_buyer_hours_come_from_the_config(hours, instant, within, expected_end):
    assert within_buyer_hours((NEW_YORK,), at(instant), hours) is within
    assert buyer_hours_end((NEW_YORK,), at(instant), hours) == at(expected_end)


@pytest.mark.parametrize("call", [within_buyer_hours, buyer_hours_end])
@pytest.mark.parametrize(
    ("zones", "instant"), [((), at("2026-06-15T12:00Z")), ((NEW_YORK,), datetime(2026, 6, 15))]
)
def test_buyer_hours_refuse_missing_zones_and_naive_instants(call, zones, instant):
    with pytest.raises(ValueError):
        call(zones, instant, HOURS)


@pytest.mark.parametrize(
    ("raw", "region", "takes_sms"),
    [
        (CN_MOBILE, "CN", True),
        ("+861065529988", "CN", False),  # a Beijing landline
        ("010 6552 9988", "CN", False),  # the same, national
        ("+442079460000", "CN", False),  # a London landline
        ("+447911123456", "CN", True),  # a UK mobile
        (NEW_YORK_NUMBER, "US", True),  # North America: fixed line or mobile, cannot tell: textable
        (US_TOLL_FREE, "US", False),
        ("+541123456789", "AR", True),  # an Argentine mobile written without its "9": typed a landline
    ],
)
def test_valid_numbers_that_cannot_take_sms_are_told_apart(raw, region, takes_sms):
    info = phone_info(raw, region)
    assert info.valid and info.e164  # still valid: an opt-out list matches it by E.164
    assert info.takes_sms is takes_sms


def test_an_invalid_number_takes_no_sms():
    assert phone_info("12345", "CN").takes_sms is False
    assert phone_info("+8613800138000", "CN").takes_sms is True
