"""The Lambda functions' environment, validated once at cold start.

template.yaml sets these variables from the stack's parameters. A bad value stops the function
at load time with the variable's name, before any order is read or any SMS is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from nudge.domain.config import Config, ConfigError, load_config


@dataclass(frozen=True, slots=True)
class Settings:
    orders_table: str
    orders_status_index: str
    ledger_table: str
    ledger_day_index: str
    idempotency_table: str
    send_queue_url: str
    paused_parameter: str
    ledger_ttl_days: int
    dry_run: bool
    sms_sender_id: str
    sms_origination_number: str
    sms_type: str
    sms_per_second: float
    send_pollers: int  # the send queue's MaximumConcurrency: each poller paces at its share


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, "missing: template.yaml sets it")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise ConfigError(name, f"expected true or false, got {value!r}")
    return value == "true"


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(name, f"not a number: {text!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be >= {minimum:g}, got {text}")
    return value


def settings_from_env(env: Mapping[str, str]) -> Settings:
    return Settings(
        orders_table=_required(env, "ORDERS_TABLE"),
        orders_status_index=_required(env, "ORDERS_STATUS_INDEX"),
        ledger_table=_required(env, "LEDGER_TABLE"),
        ledger_day_index=_required(env, "LEDGER_DAY_INDEX"),
        idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
        send_queue_url=_required(env, "SEND_QUEUE_URL"),
        paused_parameter=env.get("PAUSED_PARAMETER", "").strip(),
        ledger_ttl_days=int(_number(env, "LEDGER_TTL_DAYS", 35, minimum=1)),
        dry_run=_bool(env, "DRY_RUN", False),
        sms_sender_id=env.get("SMS_SENDER_ID", "").strip(),
        sms_origination_number=env.get("SMS_ORIGINATION_NUMBER", "").strip(),
        sms_type=env.get("SMS_TYPE", "Transactional").strip() or "Transactional",
        sms_per_second=_number(env, "SMS_PER_SECOND", 5, minimum=0.01),
        send_pollers=int(_number(env, "SEND_MAX_CONCURRENCY", 2, minimum=1)),
    )


def config_from_env(env: Mapping[str, str]) -> Config:
    """The rules config: the stack parameters, then EXTRA_CONFIG_JSON for everything else.

    The parameters win over the JSON, so `sam deploy --parameter-overrides` always does what
    the README says it does.
    """
    extra_text = env.get("EXTRA_CONFIG_JSON", "").strip() or "{}"
    try:
        data = json.loads(extra_text)
    except json.JSONDecodeError as exc:
        raise ConfigError("EXTRA_CONFIG_JSON", f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError("EXTRA_CONFIG_JSON", "must be a JSON object")

    def section(name: str) -> dict:
        value = data.setdefault(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"EXTRA_CONFIG_JSON.{name}", "must be a JSON object")
        return value

    shop, calendar, rules = section("shop"), section("calendar"), section("rules")
    for var, target, key in (
        ("SHOP_NAME", shop, "name"),
        ("SHOP_TIMEZONE", shop, "timezone"),
        ("LOCALE", shop, "locale"),
        ("CALENDAR_COUNTRY", calendar, "country"),
    ):
        if env.get(var, "").strip():
            target[key] = env[var].strip()
    if env.get("WINDOWS", "").strip(","):
        data["windows"] = env["WINDOWS"]
    if env.get("DAILY_SMS_CAP", "").strip():
        try:
            rules["daily_sms_cap"] = int(env["DAILY_SMS_CAP"])
        except ValueError:
            raise ConfigError("DAILY_SMS_CAP", f"not a whole number: {env['DAILY_SMS_CAP']!r}") from None
    if "LARGE_ORDER_AMOUNT" in env:
        text = env["LARGE_ORDER_AMOUNT"].strip()
        try:
            rules["large_order_amount"] = Decimal(text) if text else None  # "" turns calls off
        except InvalidOperation:
            raise ConfigError("LARGE_ORDER_AMOUNT", f"not a number: {text!r}") from None
    return load_config(data)
