"""Rest days and sending windows in the shop's time zone (pure: no clock, no I/O).

Seeds 000 and 003: no reminders on rest days. A rest day is a weekend day or a public holiday of
the shop's country, as the ``holidays`` package knows it; official make-up workdays (China's 调休
weekends) are workdays. The shop's config can add rest days and workdays the package does not
know yet, and those win over the package.

Windows are shop-local wall-clock times. ``wall_clock_instant`` turns a wall time on a day into an
instant; across DST changes it follows the wall clock the buyer and the shop see (see there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from nudge.domain.config import CalendarConfig, Config, Window


class RestDayCalendar:
    """The shop's rest days, from the ``holidays`` package plus the config's overrides.

    A year is loaded the first time a day in it is asked about and kept as one frozen set of
    rest days with the overrides already applied, so ``is_rest_day`` is a dict lookup and a set
    lookup: the object lives across warm Lambda invocations and 100k-order runs.
    """

    def __init__(self, config: CalendarConfig):
        self.country = config.country
        self.subdivision = config.subdivision
        self._extra_rest_days = frozenset(config.extra_rest_days)
        self._extra_workdays = frozenset(config.extra_workdays)
        self._rest_days_by_year: dict[int, frozenset[date]] = {}
        self._warning_by_year: dict[int, str | None] = {}
        # One line per (country, year) whose make-up workdays are unknown; read by whoever reports.
        self.warnings: list[str] = []

    def is_rest_day(self, day: date) -> bool:
        rest_days = self._rest_days_by_year.get(day.year)
        if rest_days is None:
            rest_days = self._load_year(day.year)
        return day in rest_days

    def year_warning(self, year: int) -> str | None:
        """The unknown-year warning for ``year``, if any.

        ``warnings`` only grows when a year is first loaded, so a run on a warm, reused calendar
        asks here to repeat the warning in its own report.
        """
        if year not in self._warning_by_year:
            self._load_year(year)
        return self._warning_by_year[year]

    def _load_year(self, year: int) -> frozenset[date]:
        package = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
        days = [date(year, 1, 1) + timedelta(days=n) for n in range(_days_in_year(year))]
        rest_days = {day for day in days if not package.is_working_day(day)}
        rest_days |= {day for day in self._extra_rest_days if day.year == year}
        rest_days -= self._extra_workdays
        frozen = frozenset(rest_days)
        self._rest_days_by_year[year] = frozen

        warning = None
        listed_workdays = any(day.year == year for day in self._extra_workdays)
        if (
            _publishes_make_up_workdays(package)
            and not _schedule_known(package, year)
            and not listed_workdays
        ):
            warning = (
                f"calendar {self.country}: no official make-up workdays known for {year}; only weekends "
                "and listed holidays count. Add them under calendar.extra_workdays / extra_rest_days "
                "once published."
            )
            self.warnings.append(warning)
        self._warning_by_year[year] = warning
        return frozen


def _days_in_year(year: int) -> int:
    return (date(year + 1, 1, 1) - date(year, 1, 1)).days


def _publishes_make_up_workdays(package: holidays.HolidayBase) -> bool:
    """Whether this country's calendar moves workdays year by year (China's 调休, Russia's transfers).

    Countries with fixed rules (US, GB) never do, so a missing year means nothing for them.
    """
    return bool(getattr(package, "has_substituted_holidays", False) or package.weekend_workdays)


def _schedule_known(package: holidays.HolidayBase, year: int) -> bool:
    """Whether the package holds the official schedule of ``year``.

    Checking for make-up weekends alone is not enough: some published schedules move holidays
    without any working weekend (Russia 2026), so a year with substituted holidays is known too.
    ``weekend_workdays`` also holds cross-year entries (a Dec 29 worked for the next New Year).
    """
    entries = getattr(package, "special_public_holidays", {}).get(year, ())
    if entries and not isinstance(entries[0], tuple):  # one bare entry instead of a tuple of them
        entries = (entries,)
    substituted = any(len(entry) >= 4 for entry in entries)  # (to_month, to_day, from_month, from_day)
    return substituted or any(day.year == year for day in package.weekend_workdays)


def wall_clock_instant(day: date, wall_time: time, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` at which the clock in ``zone`` reads ``wall_time`` or later.

    This matches ``Config.window_at``, which judges the local wall time:
    - DST gap (the time does not exist, e.g. 02:30 when clocks jump 02:00 -> 03:00): the instant
      the clock jumps (03:00 new time), since that is the first moment the clock is past 02:30.
      A window wholly inside the gap is therefore empty that day.
    - DST fold (the time happens twice, e.g. 01:30 when clocks fall back 02:00 -> 01:00): the
      first occurrence (PEP 495 fold=0). A window across a fold is taken on its first pass.
    The result is in ``zone``.
    """
    naive = datetime.combine(day, wall_time)
    first_reading = naive.replace(tzinfo=zone)  # fold=0
    if _utc(first_reading).astimezone(zone).replace(tzinfo=None) == naive:
        return _utc(first_reading).astimezone(zone)
    # In a gap: fold=1 reads the time with the offset after the jump (an instant before it),
    # fold=0 with the offset before the jump (an instant after it). The jump lies between;
    # zone transitions fall on whole seconds, so bisect to the second.
    before, after = _utc(naive.replace(tzinfo=zone, fold=1)), _utc(first_reading)
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before).total_seconds() // 2)
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            after = middle
        else:
            before = middle
    return after.astimezone(zone)


def window_bounds(window: Window, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants ``window`` opens and closes on the shop-local ``day`` (end excluded).

    Both are in ``zone``. Compare or subtract them after ``astimezone(UTC)``: Python compares
    two datetimes with the same ``tzinfo`` by wall clock, which is off by the DST shift.
    """
    return wall_clock_instant(day, window.start, zone), wall_clock_instant(day, window.end, zone)


@dataclass(frozen=True)
class WindowOpening:
    """One sending window on one shop-local day (for `nudge schedule`)."""

    day: date
    window: Window
    opens_at: datetime  # aware, shop zone
    closes_at: datetime  # aware, shop zone; excluded
    rest_day: bool  # nothing is sent in it: shown so the operator sees why


def window_openings(
    config: Config, calendar: RestDayCalendar, since: datetime, days: int
) -> list[WindowOpening]:
    """Every window opening on ``days`` shop-local days starting with the day of ``since``.

    A window is listed when it closes after ``since`` (so one open at ``since`` is included).
    Rest days are included and marked. A window wholly inside a DST gap has no instants that day
    and is left out.
    """
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    zone = config.shop.zone
    since_utc = _utc(since)
    first_day = since.astimezone(zone).date()
    openings = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        rest_day = calendar.is_rest_day(day)
        for window in config.windows:
            opens_at, closes_at = window_bounds(window, day, zone)
            if _utc(closes_at) <= since_utc or _utc(closes_at) <= _utc(opens_at):
                continue
            openings.append(WindowOpening(day, window, opens_at, closes_at, rest_day))
    return openings


def _utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC)
