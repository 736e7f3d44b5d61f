"""Nudge's configuration: every rule's default, where it comes from, and its validation.

The sources are the customer-service guides summarised in docs/SOURCES.md (seeds 000-004) and, for
quiet hours, the US TCPA. A bad value is refused at load time with the key and the problem, so
a run never stops halfway through sending.
"""

from __future__ import annotations

import itertools
from datetime import date, time
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A config value is wrong. ``str()`` is one line: ``<key>: <problem>``."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _parse_hhmm(value: Any) -> Any:
    if isinstance(value, str):
        try:
            hours, minutes = value.strip().split(":")
            return time(int(hours), int(minutes))
        except ValueError as exc:
            raise ValueError(f"expected HH:MM, got {value!r}") from exc
    return value


HHMM = Annotated[time, BeforeValidator(_parse_hhmm)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """A sending window in the shop's time zone: includes `start`, excludes `end`."""

    start: HHMM
    end: HHMM
    # The shipping cut-off this window leads up to (reminder 2 names it), when the shop has one.
    ship_by: HHMM | None = None

    @model_validator(mode="after")
    def _start_before_end(self) -> Window:
        if self.start >= self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        return self

    @property
    def name(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end

    @classmethod
    def parse(cls, text: str) -> Window:
        """'09:50-10:40' or '09:50-10:40@11:00' (with the shipping cut-off) -> Window.

        The same text is the stack parameter, the schedule's Input and the WINDOWS variable.
        """
        span, _, ship_by = text.strip().partition("@")
        start, sep, end = span.partition("-")
        if not sep:
            raise ValueError(f"expected HH:MM-HH:MM[@HH:MM], got {text!r}")
        return cls(start=start, end=end, ship_by=ship_by or None)


# Seed 001: ship at 11:00 and 17:00, remind 09:50-10:40 and 15:00-16:50.
# Seed 003: remind from 09:30 and from 14:30. Seed 002: phone reminders 11-12, 16-17, 19-21.
WINDOW_PRESETS: dict[str, tuple[Window, ...]] = {
    "cutoff": (
        Window(start="09:50", end="10:40", ship_by="11:00"),
        Window(start="15:00", end="16:50", ship_by="17:00"),
    ),
    "classic": (
        Window(start="09:30", end="11:00"),
        Window(start="14:30", end="17:00"),
    ),
    "phone": (
        Window(start="11:00", end="12:00"),
        Window(start="16:00", end="17:00"),
        Window(start="19:00", end="21:00"),
    ),
}


def _parse_windows(value: Any) -> Any:
    if isinstance(value, str):
        if value in WINDOW_PRESETS:
            return WINDOW_PRESETS[value]
        if "-" in value and ":" in value:  # "09:50-10:40,15:00-16:50", as in the template parameter
            return [Window.parse(part) for part in value.split(",") if part.strip()]
        raise ValueError(f"unknown preset {value!r}; expected one of {', '.join(WINDOW_PRESETS)}")
    if isinstance(value, list):
        return [Window.parse(v) if isinstance(v, str) else v for v in value]
    return value


class ShopConfig(_Strict):
    name: str = "Nudge Shop"
    timezone: str = "Asia/Shanghai"
    default_region: str = "CN"  # for national numbers like 13800138000
    currency: str = "CNY"
    locale: Literal["zh-CN", "en"] = "zh-CN"

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("default_region")
    @classmethod
    def _region(cls, v: str) -> str:
        import phonenumbers

        if v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {v!r}")
        return v.upper()

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha():
            raise ValueError(f"expected an ISO 4217 code like CNY, got {v!r}")
        return v.upper()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class CalendarConfig(_Strict):
    # Seeds 000 and 003: no reminders on rest days. Make-up workdays count as workdays.
    country: str = "CN"
    subdivision: str | None = None
    # Official schedules the `holidays` package does not know yet (e.g. China's 2027 make-up days).
    extra_rest_days: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        import holidays

        if v.upper() not in holidays.list_supported_countries():
            raise ValueError(f"the holidays package has no calendar {v!r}")
        return v.upper()

    @model_validator(mode="after")
    def _no_overlap(self) -> CalendarConfig:
        both = set(self.extra_rest_days) & set(self.extra_workdays)
        if both:
            raise ValueError(f"{min(both)} is listed both as a rest day and as a workday")
        return self


class QuietHours(_Strict):
    """Buyer-local hours when SMS may go out (TCPA: 08:00-21:00; seed 000: respect rest)."""

    start: HHMM = time(8, 0)
    end: HHMM = time(21, 0)

    @model_validator(mode="after")
    def _order(self) -> QuietHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class RulesConfig(_Strict):
    wait_minutes: int = Field(120, ge=0)  # seed 001: remind 2-3 h after the order
    max_age_hours: int = Field(72, ge=1)  # seeds 000/003: orders auto-close; leave old ones alone
    paid_same_day_skips: bool = True  # seed 001: a buyer who paid another order that day is done
    newest_unpaid_only: bool = True  # seed 001: remind only the newest of several unpaid orders
    excluded_channels: tuple[str, ...] = ("distribution",)  # seed 001: platform status lags
    skip_cash_on_delivery: bool = True  # seed 003: COD orders are not paid online
    blocked_flags: tuple[str, ...] = ("blocked", "low_credit")  # seed 002: malicious orders
    large_order_amount: Decimal | None = Decimal(1000)  # seeds 002/003: big orders get a call
    max_reminders_per_order: int = Field(2, ge=0)  # seed 003: don't pester
    buyer_min_interval_hours: int = Field(24, ge=0)  # seed 003: at most 1 SMS per buyer per 24 h
    daily_sms_cap: int = Field(500, ge=0)  # practice: the shop's SMS bill guard
    buyer_hours: QuietHours = QuietHours()  # TCPA / seed 000: never in the buyer's night
    do_not_contact: tuple[str, ...] = ()  # the shop's own list (E.164 or national numbers)

    @field_validator("large_order_amount")
    @classmethod
    def _non_negative(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 0:
            raise ValueError("must be >= 0, or null to turn calls off")
        return v


class MessagesConfig(_Strict):
    max_segments: int = Field(2, ge=1, le=10)
    opt_out_line: str | None = None  # e.g. "拒收请回复R"; appended after the text
    # Optional per-locale overrides of the default templates: {"en": {"1": "...", "2": "..."}}
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("templates", mode="before")
    @classmethod
    def _string_keys(cls, v: Any) -> Any:
        # YAML reads `1:` as an integer; the attempt number is meant either way.
        if isinstance(v, dict):
            return {
                str(k): {str(a): t for a, t in (d or {}).items()} if isinstance(d, dict) else d
                for k, d in v.items()
            }
        return v

    @field_validator("templates")
    @classmethod
    def _known_placeholders(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        from nudge.domain.messages import check_templates  # messages imports this module

        check_templates(v)
        return v


class Config(_Strict):
    shop: ShopConfig = ShopConfig()
    windows: Annotated[tuple[Window, ...], BeforeValidator(_parse_windows)] = WINDOW_PRESETS["cutoff"]
    calendar: CalendarConfig = CalendarConfig()
    rules: RulesConfig = RulesConfig()
    messages: MessagesConfig = MessagesConfig()
    paused: bool = False

    @field_validator("windows")
    @classmethod
    def _windows_disjoint(cls, v: tuple[Window, ...]) -> tuple[Window, ...]:
        if not v:
            raise ValueError("at least one window is needed")
        ordered = sorted(v, key=lambda w: w.start)
        for a, b in itertools.pairwise(ordered):
            if b.start < a.end:
                raise ValueError(f"windows {a.name} and {b.name} overlap")
        return tuple(ordered)

    def window_at(self, t: time) -> Window | None:
        return next((w for w in self.windows if w.contains(t)), None)


def load_config(data: dict[str, Any] | None = None) -> Config:
    """Validate a config mapping. Raises ConfigError naming the first bad key."""
    try:
        return Config.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-")) or "config"
        problem = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            problem = "unknown key"
        raise ConfigError(key, problem) from None
