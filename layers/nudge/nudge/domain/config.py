"""Nudge's configuration: every rule's default, where it comes from, and its validation.

The sources are the customer-service guides summarised in docs/SOURCES.md (seeds 000-004) and, for
quiet hours, the US TCPA. A bad value is refused at load time with the key and the problem, so
a run never stops halfway through sending.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
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
    ValidationInfo,
    field_validator,
    model_validator,
)

from nudge.domain.errors import ConfigError

_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


MAX_SHOP_NAME_CHARS = 20
MAX_OPT_OUT_CHARS = 30
_HOST_ENTRY = re.compile(
    r"\.?[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?)+"
)
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _plain_text(value: str) -> str:
    """Refuse control, format (bidi, zero-width), surrogate, private-use and unassigned
    characters in text that goes into every SMS (tabs and newlines are read as spaces)."""
    value = " ".join(value.split()) if not value.isprintable() else value
    for ch in value:
        if unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            raise ValueError(f"must not contain the control or format character {ch!r}")
    return value


def _parse_hhmm(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 10:40 as the sexagesimal number 640 (and pydantic would then
        # take 640 seconds, 00:10:40): say what happened instead of guessing.
        raise ValueError(
            f"expected a time in quotes like '10:40', got the number {value} (quote times in YAML)"
        )
    if not isinstance(value, str):
        raise ValueError(f"expected a time in quotes like '10:40', got {type(value).__name__}")
    match = _HHMM.fullmatch(value.strip())
    if not match:
        raise ValueError(f"expected HH:MM, got {value[:20]!r}")
    try:
        return time(int(match[1]), int(match[2]))
    except ValueError:
        raise ValueError(f"not a time of day: {value!r}") from None


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
        v = _plain_text(v).strip()
        if not v:
            raise ValueError("must not be blank")
        if len(v) > MAX_SHOP_NAME_CHARS:
            # It signs every SMS; Chinese carriers take signatures of a few characters.
            raise ValueError(f"at most {MAX_SHOP_NAME_CHARS} characters, got {len(v)}")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
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
        if not re.fullmatch(r"[A-Za-z]{3}", v):
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
        # The registry's codes, not list_supported_countries(): that imports every country's
        # module (~0.1 s of every cold start) only to list them.
        from holidays.registry import EntityLoader

        if v.upper() not in set(EntityLoader.get_country_codes(include_aliases=True)):
            raise ValueError(f"the holidays package has no calendar {v!r}")
        return v.upper()

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, v: str | None, info: ValidationInfo) -> str | None:
        # The holidays package would only refuse it when the first year is loaded, mid-run.
        import holidays

        country = info.data.get("country")
        if v is None or country is None:  # no country: its own error is reported
            return v
        try:
            holidays.country_holidays(country, subdiv=v)
        except NotImplementedError:
            known = holidays.list_supported_countries()[country]
            listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            raise ValueError(
                f"{v!r} is not a subdivision of {country}"
                + (f"; expected one of {listed}" if known else f"; {country} has none")
            ) from None
        return v

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


# Upper bounds: far above any sensible setting, and low enough that no date arithmetic can
# overflow. Only two reminder texts exist, so a third reminder has nothing to say.
MAX_WAIT_MINUTES = 7 * 24 * 60
MAX_HOURS = 30 * 24
MAX_DAILY_SMS = 1_000_000
MAX_REMINDERS = 2
MAX_AMOUNT = Decimal(10) ** 12  # the same bound as an order's amount


class RulesConfig(_Strict):
    wait_minutes: int = Field(120, ge=0, le=MAX_WAIT_MINUTES)  # seed 001: remind 2-3 h after the order
    # seeds 000/003: orders auto-close; leave old ones alone
    max_age_hours: int = Field(72, ge=1, le=MAX_HOURS)
    paid_same_day_skips: bool = True  # seed 001: a buyer who paid another order that day is done
    newest_unpaid_only: bool = True  # seed 001: remind only the newest of several unpaid orders
    excluded_channels: tuple[str, ...] = ("distribution",)  # seed 001: platform status lags
    skip_cash_on_delivery: bool = True  # seed 003: COD orders are not paid online
    blocked_flags: tuple[str, ...] = ("blocked", "low_credit")  # seed 002: malicious orders
    large_order_amount: Decimal | None = Decimal(1000)  # seeds 002/003: big orders get a call
    max_reminders_per_order: int = Field(2, ge=0, le=MAX_REMINDERS)  # seed 003: don't pester
    # seed 003: at most 1 SMS per buyer per 24 h
    buyer_min_interval_hours: int = Field(24, ge=0, le=MAX_HOURS)
    daily_sms_cap: int = Field(500, ge=0, le=MAX_DAILY_SMS)  # practice: the shop's SMS bill guard
    buyer_hours: QuietHours = QuietHours()  # TCPA / seed 000: never in the buyer's night
    do_not_contact: tuple[str, ...] = ()  # the shop's own list (E.164 or national numbers)
    # Outcomes: this share of the orders due their first reminder get none, to measure the lift the
    # reminders cause (docs/OUTCOMES.md). 0 turns it off; at most half, so most buyers are reminded.
    holdout_percent: float = Field(0, ge=0, le=50)

    @field_validator("large_order_amount")
    @classmethod
    def _non_negative(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and v < 0:
            raise ValueError("must be >= 0, or null to turn calls off")
        if v is not None and v > MAX_AMOUNT:
            raise ValueError(f"must be at most {MAX_AMOUNT:,}, or null to turn calls off")
        return v


_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")


class Variant(_Strict):
    """One text a reminder can be tried with (``messages.variants``)."""

    name: str  # shown by `nudge plan`, kept on the ledger and the outcome: short and plain
    template: str

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _VARIANT_NAME.fullmatch(v):
            raise ValueError(
                f"{v[:40]!r} is not a variant name: 1 to 32 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
            )
        return v


class MessagesConfig(_Strict):
    max_segments: int = Field(2, ge=1, le=10)
    opt_out_line: str | None = None  # e.g. "拒收请回复R"; appended after the text
    # The hosts a pay_url may point at (https only). "shop.example" allows exactly that host;
    # ".shop.example" also its subdomains. Empty: no pay link is ever put into an SMS.
    link_hosts: tuple[str, ...] = ()
    # Optional per-locale overrides of the default templates: {"en": {"1": "...", "2": "..."}}
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Optional experiment: per reminder ("1", "2"), the texts to try, in the shop's locale. Each
    # order gets one arm from its id (nudge.domain.variants); none configured: the text above.
    variants: dict[str, tuple[Variant, ...]] = Field(default_factory=dict)

    @field_validator("opt_out_line")
    @classmethod
    def _short_plain_line(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = _plain_text(v).strip()
        if len(v) > MAX_OPT_OUT_CHARS:
            raise ValueError(f"at most {MAX_OPT_OUT_CHARS} characters, got {len(v)}")
        return v or None

    @field_validator("link_hosts", mode="before")
    @classmethod
    def _one_host_or_a_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("link_hosts")
    @classmethod
    def _host_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for entry in v:
            host = entry.strip().lower()
            if not _HOST_ENTRY.fullmatch(host):
                raise ValueError(
                    f"{entry[:60]!r} is not a host name; write it like 'shop.example' (or '.shop.example' "
                    "for its subdomains too), without https://, a path or a port; an IDN host in its xn-- form"
                )
            out.append(host)
        return tuple(out)

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
        from nudge.domain.messages import check_templates  # on demand: only a config with templates needs it

        check_templates(v)
        return v

    @field_validator("variants", mode="before")
    @classmethod
    def _attempt_keys(cls, v: Any) -> Any:
        # YAML reads `1:` as an integer; an empty list (or null) means no variants for that reminder.
        if isinstance(v, dict):
            return {str(k): d for k, d in v.items() if d not in (None, [], ())}
        return v

    @field_validator("variants")
    @classmethod
    def _checked_variants(cls, v: dict[str, tuple[Variant, ...]]) -> dict[str, tuple[Variant, ...]]:
        from nudge.domain.messages import check_variants  # on demand: only a config with variants needs it

        check_variants(v)
        return v


class OutcomesConfig(_Strict):
    """How `nudge report` and the outcomes function count recovered orders and cost."""

    attribution_hours: int = Field(72, ge=1, le=720)  # a payment this soon after the last SMS is credited
    price_per_segment: Decimal = Field(Decimal(0), ge=0, le=1000)  # what one SMS segment costs the shop
    currency: str | None = None  # of price_per_segment; None: the shop's currency

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z]{3}", v):
            raise ValueError(f"expected an ISO 4217 code like USD, got {v!r}")
        return v.upper() if v else v


class Config(_Strict):
    shop: ShopConfig = ShopConfig()
    windows: Annotated[tuple[Window, ...], BeforeValidator(_parse_windows)] = WINDOW_PRESETS["cutoff"]
    calendar: CalendarConfig = CalendarConfig()
    rules: RulesConfig = RulesConfig()
    messages: MessagesConfig = MessagesConfig()
    outcomes: OutcomesConfig = OutcomesConfig()
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

    @model_validator(mode="after")
    def _fixed_text_fits(self) -> Config:
        # The signature, the template's own words, the opt-out line and the longest amount and
        # closing time are in every SMS; the renderer can only drop order fields. A config whose
        # fixed text alone is over max_segments could never keep its promise: refuse it now.
        from nudge.domain.messages import (
            check_fixed_text_fits,  # messages imports config's types only for typing
        )

        # The longest ship-by and window a text can show: 23:59, on a window ending 23:58.
        check_fixed_text_fits(
            self.shop,
            self.messages,
            worst_window=Window(start=time(0, 0), end=time(23, 58), ship_by=time(23, 59)),
        )
        return self

    def window_at(self, t: time) -> Window | None:
        return next((w for w in self.windows if w.contains(t)), None)


def load_config(data: dict[str, Any] | None = None) -> Config:
    """Validate a config mapping. Raises ConfigError naming the first bad key."""
    try:
        return Config.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        problem = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            problem = "unknown key"
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):  # a check across sections names its own key
            key, problem = ".".join(k for k in (key, cause.key) if k), cause.problem
        raise ConfigError(key or "config", problem) from None
