"""Rest days (seeds 000/003) and sending windows in the shop's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import pytest

from nudge.domain.config import CalendarConfig, Window, load_config
from nudge.domain.restdays import (
    RestDayCalendar,
    WindowOpening,
    wall_clock_instant,
    window_bounds,
    window_openings,
)
from tests.builders import SHANGHAI

NEW_YORK = ZoneInfo("America/New_York")


def calendar(country: str = "CN", **overrides) -> RestDayCalendar:
    return RestDayCalendar(CalendarConfig(country=country, **overrides))


def every_day(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=n) for n in range((date(year + 1, 1, 1) - first).days)]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- rest days ---------------------------------------------------------------------------------

CN = calendar()


@pytest.mark.parametrize("day", every_day(2026), ids=str)
def test_rest_days_are_chinas_official_2026_schedule(day):
    # chinese_calendar transcribes the State Council notice independently of `holidays`.
    assert CN.is_rest_day(day) == (not chinese_calendar.is_workday(day))


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ],
    ids=str,
)
def test_make_up_workday_on_a_weekend_is_not_a_rest_day(day):
    assert day.weekday() >= 5  # a Saturday or Sunday the notice turned into a workday
    assert not CN.is_rest_day(day)


@pytest.mark.parametrize("day", [date(2026, 10, d) for d in range(1, 8)], ids=str)
def test_national_day_golden_week_is_rest(day):
    assert CN.is_rest_day(day)


@pytest.mark.parametrize(
    ("extra_rest_days", "extra_workdays", "day", "rest"),
    [
        # 2027-02-20 is a Saturday: a rest day until the config says it is worked.
        ((), (), date(2027, 2, 20), True),
        ((), (date(2027, 2, 20),), date(2027, 2, 20), False),
        # 2027-02-10 is a holiday the package estimates (春节补假): a listed workday wins over it.
        ((), (), date(2027, 2, 10), True),
        ((), (date(2027, 2, 10),), date(2027, 2, 10), False),
        # 2027-02-11 is a plain Thursday: a listed rest day makes it one.
        ((), (), date(2027, 2, 11), False),
        ((date(2027, 2, 11),), (), date(2027, 2, 11), True),
        # Overrides only touch their own dates.
        ((date(2027, 2, 11),), (date(2027, 2, 20),), date(2027, 2, 12), False),
    ],
)
def test_config_extra_days_override_the_package(extra_rest_days, extra_workdays, day, rest):
    cal = calendar(extra_rest_days=extra_rest_days, extra_workdays=extra_workdays)
    assert cal.is_rest_day(day) is rest


@pytest.mark.parametrize(
    ("country", "day", "rest"),
    [
        ("US", date(2026, 11, 26), True),  # Thanksgiving
        ("US", date(2026, 11, 27), False),  # the Friday after is no federal holiday
        ("US", date(2026, 7, 3), True),  # Independence Day (Sat Jul 4) observed on Friday
        ("US", date(2026, 11, 28), True),  # Saturday
        ("US", date(2026, 10, 1), False),  # China's National Day means nothing in the US
        ("GB", date(2026, 12, 28), True),  # Boxing Day (Sat Dec 26) substitute
        ("GB", date(2026, 11, 26), False),
    ],
)
def test_any_country_of_the_holidays_package_works_the_same_way(country, day, rest):
    assert calendar(country).is_rest_day(day) is rest


@pytest.mark.parametrize(
    ("country", "extra_workdays", "years", "warned_years"),
    [
        # holidays 0.109 has China's official notices up to 2026; 2027+ are rule-based estimates
        # with no make-up workdays at all.
        ("CN", (), [2027], [2027]),
        ("CN", (), [2027, 2027, 2028], [2027, 2028]),
        ("CN", (), [2026], []),
        # The shop listed 2027's make-up workdays: it knows, no warning.
        ("CN", (date(2027, 2, 20),), [2027], []),
        ("CN", (date(2028, 1, 29),), [2027], [2027]),
        # Fixed-rule calendars never publish make-up workdays: nothing is missing.
        ("US", (), [2027, 2030], []),
        # Russia's 2026 schedule moves holidays without any working weekend: still known.
        ("RU", (), [2026], []),
    ],
)
def test_unknown_year_warns_once_per_year_and_never_raises(country, extra_workdays, years, warned_years):
    cal = calendar(country, extra_workdays=extra_workdays)
    for year in years:
        for day in every_day(year):
            cal.is_rest_day(day)
    assert len(cal.warnings) == len(warned_years)
    for warning, year in zip(cal.warnings, warned_years, strict=True):
        assert f"calendar {country}:" in warning and str(year) in warning
        assert "calendar.extra_workdays" in warning
    # A warm calendar reused by a later run repeats the warning on request.
    assert [y for y in sorted(set(years)) if cal.year_warning(y)] == warned_years


@pytest.mark.parametrize(
    ("days", "years", "loads"),
    [
        ([date(2026, 3, 2)] * 1000, 1, 1),
        (every_day(2026), 1, 1),
        ([date(2026, 12, 31), date(2027, 1, 1)] * 50, 2, 2),
    ],
)
def test_calendar_loads_each_year_once(monkeypatch, days, years, loads):
    calls = []
    real = holidays.country_holidays

    def counting(*args, **kwargs):
        calls.append(kwargs.get("years"))
        return real(*args, **kwargs)

    monkeypatch.setattr(holidays, "country_holidays", counting)
    cal = calendar()
    for day in days:
        cal.is_rest_day(day)
    assert len(calls) == loads and len(set(calls)) == years


# --- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "day", "zone", "opens_utc", "closes_utc"),
    [
        # US DST starts 2026-03-08 and ends 2026-11-01: the window follows the wall clock.
        ("09:50-10:40", date(2026, 3, 7), NEW_YORK, "2026-03-07T14:50Z", "2026-03-07T15:40Z"),
        ("09:50-10:40", date(2026, 3, 8), NEW_YORK, "2026-03-08T13:50Z", "2026-03-08T14:40Z"),
        ("09:50-10:40", date(2026, 11, 1), NEW_YORK, "2026-11-01T14:50Z", "2026-11-01T15:40Z"),
        # Clocks jump 02:00 -> 03:00: a time in the gap means the jump.
        ("01:30-02:30", date(2026, 3, 8), NEW_YORK, "2026-03-08T06:30Z", "2026-03-08T07:00Z"),
        ("02:10-02:40", date(2026, 3, 8), NEW_YORK, "2026-03-08T07:00Z", "2026-03-08T07:00Z"),  # empty
        ("02:30-03:10", date(2026, 3, 8), NEW_YORK, "2026-03-08T07:00Z", "2026-03-08T07:10Z"),
        # Clocks fall back 02:00 -> 01:00: a time that happens twice means its first occurrence.
        ("01:30-01:45", date(2026, 11, 1), NEW_YORK, "2026-11-01T05:30Z", "2026-11-01T05:45Z"),
        ("15:00-16:50", date(2026, 10, 1), SHANGHAI, "2026-10-01T07:00Z", "2026-10-01T08:50Z"),
    ],
)
def test_window_bounds_follow_the_shop_wall_clock(window, day, zone, opens_utc, closes_utc):
    opens_at, closes_at = window_bounds(Window.parse(window), day, zone)
    assert (opens_at.astimezone(UTC), closes_at.astimezone(UTC)) == (utc(opens_utc), utc(closes_utc))
    assert opens_at.tzinfo is zone and closes_at.tzinfo is zone


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 11, 1)], ids=str)
def test_window_is_as_long_as_its_wall_clock_span_on_dst_days(day):
    opens_at, closes_at = window_bounds(Window.parse("09:50-10:40"), day, NEW_YORK)
    assert closes_at.astimezone(UTC) - opens_at.astimezone(UTC) == timedelta(minutes=50)
    assert (opens_at.time(), closes_at.time()) == (time(9, 50), time(10, 40))


@pytest.mark.parametrize(
    ("wall", "expected_local"),
    [
        (time(1, 59, 59), "2026-03-08T01:59:59-05:00"),
        (time(2, 0), "2026-03-08T03:00:00-04:00"),
        (time(2, 59, 59), "2026-03-08T03:00:00-04:00"),
        (time(3, 0), "2026-03-08T03:00:00-04:00"),
    ],
)
def test_wall_time_in_a_dst_gap_is_the_instant_clocks_jump(wall, expected_local):
    assert wall_clock_instant(date(2026, 3, 8), wall, NEW_YORK) == datetime.fromisoformat(expected_local)


def shanghai(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


DEFAULT_CONFIG = load_config()  # cutoff windows 09:50-10:40 and 15:00-16:50, CN, Asia/Shanghai
MORNING, AFTERNOON = "09:50-10:40", "15:00-16:50"


@pytest.mark.parametrize(
    ("since", "days", "expected"),
    [
        # Wednesday before National Day: today's open window counts, then two rest days.
        (
            shanghai("2026-09-30T10:00"),
            3,
            [
                ("2026-09-30", MORNING, False),
                ("2026-09-30", AFTERNOON, False),
                ("2026-10-01", MORNING, True),
                ("2026-10-01", AFTERNOON, True),
                ("2026-10-02", MORNING, True),
                ("2026-10-02", AFTERNOON, True),
            ],
        ),
        # A window's end is excluded: at 10:40 the morning window is over.
        (shanghai("2026-09-30T10:40"), 1, [("2026-09-30", AFTERNOON, False)]),
        (
            shanghai("2026-09-30T10:39:59"),
            1,
            [("2026-09-30", MORNING, False), ("2026-09-30", AFTERNOON, False)],
        ),
        (shanghai("2026-09-30T17:00"), 1, []),
        # `since` in another zone counts from its shop-local day (17:00Z is 01:00 next day).
        (
            datetime(2026, 9, 30, 17, tzinfo=UTC),
            1,
            [("2026-10-01", MORNING, True), ("2026-10-01", AFTERNOON, True)],
        ),
        # The make-up Saturday is a workday; Sunday is not.
        (
            shanghai("2026-10-10T00:00"),
            2,
            [
                ("2026-10-10", MORNING, False),
                ("2026-10-10", AFTERNOON, False),
                ("2026-10-11", MORNING, True),
                ("2026-10-11", AFTERNOON, True),
            ],
        ),
        (shanghai("2026-10-10T00:00"), 0, []),
    ],
)
def test_window_openings_start_from_since_and_mark_rest_days(since, days, expected):
    openings = window_openings(DEFAULT_CONFIG, CN, since, days)
    assert [(o.day.isoformat(), o.window.name, o.rest_day) for o in openings] == expected
    for opening in openings:
        assert isinstance(opening, WindowOpening)
        assert opening.opens_at.tzinfo is SHANGHAI
        local_span = (opening.opens_at.time(), opening.closes_at.time())
        assert local_span == (opening.window.start, opening.window.end)


def test_window_openings_leave_out_a_window_that_dst_swallows():
    config = load_config(
        {
            "shop": {"timezone": "America/New_York"},
            "windows": "02:10-02:40,09:50-10:40",
            "calendar": {"country": "US"},
        }
    )
    since = datetime(2026, 3, 7, 0, 0, tzinfo=NEW_YORK)
    openings = window_openings(config, calendar("US"), since, 2)
    assert [(o.day.isoformat(), o.window.name) for o in openings] == [
        ("2026-03-07", "02:10-02:40"),
        ("2026-03-07", "09:50-10:40"),
        ("2026-03-08", "09:50-10:40"),
    ]
