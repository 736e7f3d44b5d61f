"""The Lambda functions' environment, validated once per cold start by one pydantic model.

template.yaml sets these variables from the stack's parameters. A bad value stops the function
before any order is read or any SMS is sent, with one line naming the variable
(``DAILY_SMS_CAP: not a whole number: 'lots'``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from nudge.domain.config import Config, ConfigError, load_config


def _true_or_false(value: Any) -> Any:
    # Stricter than pydantic's bool ("yes", "1", "on"...): the template only ever writes these two.
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {value!r}")
        return value.lower() == "true"
    return value


ALIYUN_ENDPOINT = "dysmsapi.aliyuncs.com"  # the central endpoint; regional ones exist (docs/GATEWAYS.md)
_TEMPLATE_CODE = re.compile(r"SMS_[0-9]{1,20}")  # Alibaba Cloud's template codes: SMS_ and digits


def _template_codes(value: Any) -> Any:
    """``1=SMS_111,2=SMS_222`` (one registered template per reminder), or with text variants
    ``1=SMS_111|SMS_112,2=SMS_222``: one code per variant of that reminder, in the order
    ``messages.variants`` lists them. Spaces around the parts are ignored."""
    if not isinstance(value, str):
        return value
    codes: dict[int, tuple[str, ...]] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        reminder, eq, listed = part.partition("=")
        reminder = reminder.strip()
        if not eq or reminder not in ("1", "2"):
            raise ValueError(f"{part[:40]!r}: expected 1=SMS_... or 2=SMS_... (e.g. 1=SMS_111,2=SMS_222)")
        if int(reminder) in codes:
            raise ValueError(f"reminder {reminder} is given twice")
        listed_codes = tuple(c.strip() for c in listed.split("|"))
        for code in listed_codes:
            if not _TEMPLATE_CODE.fullmatch(code):
                raise ValueError(
                    f"reminder {reminder}: {code[:40]!r} is not a template code such as SMS_123456789"
                )
        codes[int(reminder)] = listed_codes
    return codes


Required = Annotated[str, Field(min_length=1)]
TrueOrFalse = Annotated[bool, BeforeValidator(_true_or_false)]
TemplateCodes = Annotated[dict[int, tuple[str, ...]], BeforeValidator(_template_codes)]


class Settings(BaseModel):
    """Resource names and SMS settings (by their environment variable names), plus the rules config."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    orders_table: Required = Field(alias="ORDERS_TABLE")
    orders_status_index: Required = Field(alias="ORDERS_STATUS_INDEX")
    ledger_table: Required = Field(alias="LEDGER_TABLE")
    ledger_day_index: Required = Field(alias="LEDGER_DAY_INDEX")
    idempotency_table: Required = Field(alias="IDEMPOTENCY_TABLE")
    send_queue_url: Required = Field(alias="SEND_QUEUE_URL")
    paused_parameter: str = Field("", alias="PAUSED_PARAMETER")  # empty: never paused
    # At most ten years: every ledger write adds it to the current time (template MaxValue too).
    ledger_ttl_days: int = Field(35, ge=1, le=3650, alias="LEDGER_TTL_DAYS")
    dry_run: TrueOrFalse = Field(False, alias="DRY_RUN")
    sms_sender_id: str = Field("", alias="SMS_SENDER_ID")
    sms_origination_number: str = Field("", alias="SMS_ORIGINATION_NUMBER")
    sms_type: str = Field("Transactional", pattern="^(Transactional|Promotional)$", alias="SMS_TYPE")
    sms_per_second: float = Field(5, ge=0.01, allow_inf_nan=False, alias="SMS_PER_SECOND")
    # Who sends the SMS (template parameter SmsGateway); the End User Messaging settings below.
    sms_gateway: Literal["sns", "end-user-messaging", "aliyun"] = Field("sns", alias="SMS_GATEWAY")
    sms_configuration_set: str = Field("", alias="SMS_CONFIGURATION_SET")
    sms_origination_identity: str = Field("", alias="SMS_ORIGINATION_IDENTITY")
    sms_max_price: str = Field("", pattern=r"^([0-9]{0,2}\.[0-9]{1,5})?$", alias="SMS_MAX_PRICE")
    # SNS's SMS delivery-status logs reach the receipts function (SnsDeliveryStatusLogs on): the
    # ledger keeps a pointer from each SMS's SNS message id to its order (send and receipts only).
    sns_delivery_logs: TrueOrFalse = Field(False, alias="SNS_DELIVERY_LOGS")
    # Alibaba Cloud SMS (SmsGateway=aliyun; docs/GATEWAYS.md): the registered signature, the
    # registered template codes per reminder (and text variant), the secret holding the AccessKey
    # pair, and the endpoint (host or host:port).
    aliyun_sign_name: str = Field("", alias="ALIYUN_SIGN_NAME")
    aliyun_template_codes: TemplateCodes = Field(default_factory=dict, alias="ALIYUN_TEMPLATE_CODES")
    aliyun_credentials_secret_arn: str = Field("", alias="ALIYUN_CREDENTIALS_SECRET_ARN")
    aliyun_endpoint: str = Field(
        ALIYUN_ENDPOINT, pattern=r"^[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$", alias="ALIYUN_ENDPOINT"
    )
    # The send queue's MaximumConcurrency: each poller paces at its share of sms_per_second.
    send_pollers: int = Field(2, ge=1, alias="SEND_MAX_CONCURRENCY")
    # The staff call digest's SNS topic (plan function only); empty: no digest is sent.
    staff_topic_arn: str = Field("", alias="STAFF_TOPIC_ARN")
    # The webhook secrets (ingest function only; bootstrap.build_ingest_app requires them).
    standard_webhooks_secret_arn: str = Field("", alias="STANDARD_WEBHOOKS_SECRET_ARN")
    shopify_webhook_secret_arn: str = Field("", alias="SHOPIFY_WEBHOOK_SECRET_ARN")
    woocommerce_webhook_secret_arn: str = Field("", alias="WOOCOMMERCE_WEBHOOK_SECRET_ARN")
    # The token in Alibaba Cloud's push URLs (ingest function, SmsGateway=aliyun only): empty, the
    # /receipts/aliyun routes are not served.
    aliyun_push_token_secret_arn: str = Field("", alias="ALIYUN_PUSH_TOKEN_SECRET_ARN")
    config: Config

    @property
    def sends_templates(self) -> bool:
        """Whether the gateway sends registered templates filled with values (Alibaba Cloud),
        not the text Nudge writes: the planner then puts the values on each SMS."""
        return self.sms_gateway == "aliyun"


_VARIABLES = tuple(f.alias for f in Settings.model_fields.values() if f.alias)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate the environment. Raises ConfigError naming the first bad variable.

    An empty variable is the same as an unset one (CloudFormation writes "" for an empty
    parameter): the default applies, or it is reported missing.
    """
    config = config_from_env(env)
    values: dict[str, Any] = {name: env[name].strip() for name in _VARIABLES if env.get(name, "").strip()}
    try:
        settings = Settings.model_validate({**values, "config": config})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "environment"
        if err["type"] in ("missing", "string_too_short"):
            raise ConfigError(name, "missing: template.yaml sets it") from None
        problem = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("int_parsing", "float_parsing", "int_from_float"):
            kind = "a whole number" if err["type"] != "float_parsing" else "a number"
            problem = f"not {kind}: {values.get(name)!r}"
        raise ConfigError(name, problem) from None
    if settings.sms_gateway == "aliyun":
        _check_aliyun(settings)
    return settings


def _check_aliyun(settings: Settings) -> None:
    """Alibaba Cloud's settings, complete and matching the texts: checked when the functions load,
    so a bad one stops them before any SMS, never halfway through a batch."""
    for variable in ("ALIYUN_SIGN_NAME", "ALIYUN_TEMPLATE_CODES", "ALIYUN_CREDENTIALS_SECRET_ARN"):
        field = next(f for f, info in Settings.model_fields.items() if info.alias == variable)
        if not getattr(settings, field):
            raise ConfigError(variable, "missing: SmsGateway aliyun needs it (docs/GATEWAYS.md)")
    codes = settings.aliyun_template_codes
    for reminder in (1, 2):
        variants = settings.config.messages.variants.get(str(reminder)) or ()
        if reminder not in codes:
            raise ConfigError("ALIYUN_TEMPLATE_CODES", f"no template for reminder {reminder}")
        if variants and len(codes[reminder]) != len(variants):
            names = ", ".join(v.name for v in variants)
            raise ConfigError(
                "ALIYUN_TEMPLATE_CODES",
                f"reminder {reminder} has {len(variants)} text variants ({names}): give one template code "
                f"for each, in that order, separated by | (got {len(codes[reminder])})",
            )
        if not variants and len(codes[reminder]) != 1:
            raise ConfigError(
                "ALIYUN_TEMPLATE_CODES",
                f"reminder {reminder} has no text variants: give one template code (got {len(codes[reminder])})",
            )


def config_from_env(env: Mapping[str, str]) -> Config:
    """The rules config: the stack parameters, then EXTRA_CONFIG_JSON for everything else.

    The parameters win over the JSON, so `sam deploy --parameter-overrides` always does what
    the README says it does.
    """
    extra_text = env.get("EXTRA_CONFIG_JSON", "").strip() or "{}"
    try:
        data = json.loads(extra_text)
    except RecursionError:
        raise ConfigError("EXTRA_CONFIG_JSON", "nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer past Python's digit limit
        if not isinstance(exc, json.JSONDecodeError):
            raise ConfigError("EXTRA_CONFIG_JSON", "holds a number too long to read") from None
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
