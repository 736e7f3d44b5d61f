"""The composition root: every function's services are built here, and only here.

A handler builds its app once per cold start, lazily, on its first invocation (``Lazy``), so that
importing a handler reads no environment and creates no AWS client. Tests, ``nudge demo`` and the
benchmark build the same apps through the same functions, with moto clients and a fake clock,
instead of patching module globals::

    settings = load_settings(os.environ)
    app = build_plan_app(settings, clients=session_clients(boto3.session.Session()), clock=clock.now)
    plan_handler_module.APP.set(app)

``clients(service_name, config=None)`` is any factory of boto3 clients; ``clock()`` returns an
aware datetime (the real one: ``system_clock``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from nudge.settings import Settings, load_settings

if TYPE_CHECKING:  # each builder imports what it builds: a handler loads only its own services
    from nudge.adapters.ledger import DynamoReminderLedger
    from nudge.adapters.outcomes import DynamoOutcomeStore
    from nudge.adapters.staff import DynamoCallLog
    from nudge.domain.restdays import RestDayCalendar
    from nudge.services.outcomes import OutcomeRecorder
    from nudge.services.ports import (
        DeliveryLedger,
        OrderRepository,
        OrdersStore,
        ReminderLedger,
        SendQueue,
        SmsGateway,
        StaffNotifier,
        WebhookSecrets,
    )
    from nudge.services.sending import Sender

Clock = Callable[[], datetime]


class ClientFactory(Protocol):
    def __call__(self, service_name: str, *, config: Any = None) -> Any: ...


def system_clock() -> datetime:
    return datetime.now(UTC)


def session_clients(session: Any = None) -> ClientFactory:
    """Clients from one boto3 session (a new default one when none is given), made on demand."""

    def make(service_name: str, *, config: Any = None) -> Any:
        nonlocal session
        if session is None:
            import boto3  # here, not at import: a handler's import creates no session

            session = boto3.session.Session()
        return session.client(service_name, config=config)

    return make


# ----------------------------------------------------------------------------------- plan


class OncePerRun(Protocol):
    def __call__(self, key: Mapping[str, str], plan: Callable[[], dict], context: Any = None) -> dict: ...


@dataclass(slots=True)
class PlanApp:
    settings: Settings
    calendar: RestDayCalendar
    orders: OrderRepository
    ledger: ReminderLedger
    queue: SendQueue
    clock: Clock
    paused: Callable[[], bool]
    # Runs plan() once per key: a second call with the same key returns the first result.
    once: OncePerRun
    staff: StaffNotifier | None = None  # the staff call digest (None: the stack has no topic)


def idempotent_runs(settings: Settings, clients: ClientFactory, *, prefix: str) -> OncePerRun:
    """Powertools Idempotency on the stack's table, keyed by the dict it is given (hashed whole).

    The record lasts 2 days (a window is re-run, if ever, the same day). If ``plan`` raises, the
    record is deleted, so a failed plan can be run again (the ledger's claim still makes every
    (order, attempt) go out at most once).
    """
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    config = IdempotencyConfig(expires_after_seconds=2 * 86400)
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=clients("dynamodb"))

    def run(key: dict, plan: Callable[[], dict]) -> dict:
        return plan()

    guarded = idempotent_function(
        run, data_keyword_argument="key", persistence_store=store, config=config, key_prefix=prefix
    )

    def once(key: Mapping[str, str], plan: Callable[[], dict], context: Any = None) -> dict:
        if context is not None:
            config.register_lambda_context(context)  # an in-progress record expires with the invocation
        return guarded(key=dict(key), plan=plan)

    return once


def pause_switch(settings: Settings) -> Callable[[], bool]:
    from nudge.adapters.ssm import read_pause_switch

    return lambda: read_pause_switch(settings.paused_parameter)


def _order_repository(settings: Settings, dynamodb: Any) -> OrderRepository:
    from nudge.adapters.orders import DynamoOrderRepository

    return DynamoOrderRepository(dynamodb, settings.orders_table, settings.orders_status_index)


def _ledger(settings: Settings, dynamodb: Any) -> DynamoReminderLedger:
    """The reminder ledger: the planner's and sender's ReminderLedger, the receipts' and replies'
    DeliveryLedger."""
    from nudge.adapters.ledger import DynamoReminderLedger

    return DynamoReminderLedger(
        dynamodb,
        settings.ledger_table,
        settings.ledger_day_index,
        settings.ledger_ttl_days,
        message_pointers=settings.sns_delivery_logs,  # SNS delivery-status logs: see adapters/ledger.py
    )


def _staff(settings: Settings, clients: ClientFactory) -> StaffNotifier | None:
    """The staff topic's notifier (call digests, buyers' replies); None when the stack has none."""
    from nudge.adapters.staff import SnsStaffNotifier

    return SnsStaffNotifier(clients("sns"), settings.staff_topic_arn) if settings.staff_topic_arn else None


def build_plan_app(settings: Settings, *, clients: ClientFactory, clock: Clock = system_clock) -> PlanApp:
    from nudge.adapters.sqs import SqsSendQueue
    from nudge.domain.restdays import RestDayCalendar

    dynamodb = clients("dynamodb")
    return PlanApp(
        settings=settings,
        calendar=RestDayCalendar(settings.config.calendar),  # kept warm: holiday tables are built once
        orders=_order_repository(settings, dynamodb),
        ledger=_ledger(settings, dynamodb),
        queue=SqsSendQueue(clients("sqs"), settings.send_queue_url),
        clock=clock,
        paused=pause_switch(settings),
        once=idempotent_runs(settings, clients, prefix="plan-window"),
        staff=_staff(settings, clients),
    )


# ----------------------------------------------------------------------------------- send


@dataclass(slots=True)
class SendApp:
    settings: Settings
    sender: Sender
    paused: Callable[[], bool]


def sms_gateway(settings: Settings, clients: ClientFactory) -> tuple[SmsGateway, timedelta]:
    """The stack's SMS gateway (``SmsGateway`` parameter) and the longest one hand-off can take.

    Short timeouts and no SDK retries (each adapter's client config): a hung hand-off ends in the
    "outcome unknown" path well before the function's timeout, never sent twice.
    """
    if settings.sms_gateway == "aliyun":
        return aliyun_gateway(settings)
    if settings.sms_gateway == "end-user-messaging":
        from nudge.adapters.end_user_messaging import (
            EUM_CLIENT_CONFIG,
            EUM_PUBLISH_TIMEOUT,
            EndUserMessagingGateway,
        )

        eum = EndUserMessagingGateway(
            clients("pinpoint-sms-voice-v2", config=EUM_CLIENT_CONFIG),
            configuration_set=settings.sms_configuration_set or None,
            origination_identity=settings.sms_origination_identity or None,
            max_price=settings.sms_max_price or None,
            message_type=settings.sms_type.upper(),
        )
        return eum, EUM_PUBLISH_TIMEOUT
    from nudge.adapters.sns import SNS_CLIENT_CONFIG, SNS_PUBLISH_TIMEOUT, SnsSmsGateway

    sns = SnsSmsGateway(
        clients("sns", config=SNS_CLIENT_CONFIG),
        sender_id=settings.sms_sender_id,
        origination_number=settings.sms_origination_number,
        sms_type=settings.sms_type,
    )
    return sns, SNS_PUBLISH_TIMEOUT


def aliyun_gateway(
    settings: Settings, *, read_secret: Callable[[str], str | None] | None = None
) -> tuple[SmsGateway, timedelta]:
    """Alibaba Cloud SMS: the AccessKey from its secret (read once, at the cold start), the SDK's
    client, and the registered template of each reminder and text variant.

    A secret not filled in yet, or filled in wrongly, stops the cold start with a ConfigError
    naming ALIYUN_CREDENTIALS_SECRET_ARN: the function fails before it takes any message, so
    the queued SMS stay in the queue and go out once the secret is right (or reach the DLQ and its
    alarm after the queue's retries). Secrets Manager being unreachable is SecretsUnavailable, the
    same way round.
    """
    from nudge.adapters.aliyun_sms import (
        ALIYUN_PUBLISH_TIMEOUT,
        AliyunSmsGateway,
        make_client,
        parse_credentials,
        protocol_for,
    )
    from nudge.domain.config import ConfigError

    if read_secret is None:
        from nudge.adapters.secrets import SecretsManagerSecrets

        secrets = SecretsManagerSecrets({"aliyun": settings.aliyun_credentials_secret_arn})
        read_secret = secrets.secret
    try:
        key_id, key_secret = parse_credentials(read_secret("aliyun"))
    except ValueError as exc:
        raise ConfigError(
            "ALIYUN_CREDENTIALS_SECRET_ARN",
            f'{exc}: put {{"access_key_id": "...", "access_key_secret": "..."}} in it (docs/GATEWAYS.md)',
        ) from None
    endpoint = settings.aliyun_endpoint
    client = make_client(key_id, key_secret, endpoint=endpoint, protocol=protocol_for(endpoint))
    codes: dict[int, str | dict[str, str]] = {}
    for reminder, listed in settings.aliyun_template_codes.items():
        variants = settings.config.messages.variants.get(str(reminder)) or ()
        # load_settings checked one code per variant (or exactly one without variants).
        codes[reminder] = (
            {v.name: code for v, code in zip(variants, listed, strict=True)} if variants else listed[0]
        )
    gateway = AliyunSmsGateway(client, sign_name=settings.aliyun_sign_name, template_codes=codes)
    return gateway, ALIYUN_PUBLISH_TIMEOUT


def build_send_app(
    settings: Settings,
    *,
    clients: ClientFactory,
    clock: Clock = system_clock,
    sleep: Callable[[float], None] = time.sleep,
) -> SendApp:

    from nudge.services.sending import Pacer, Sender

    dynamodb = clients("dynamodb")
    sms, publish_timeout = sms_gateway(settings, clients)
    sender = Sender(
        orders=_order_repository(settings, dynamodb),
        ledger=_ledger(settings, dynamodb),
        sms=sms,
        clock=clock,
        # template.yaml caps the queue's pollers (MaximumConcurrency): each paces at its share of
        # the shop's SMS-per-second ceiling, so together they stay under it.
        pacer=Pacer(settings.sms_per_second / settings.send_pollers, clock=clock, sleep=sleep),
        daily_cap=settings.config.rules.daily_sms_cap,
        buyer_min_interval=timedelta(hours=settings.config.rules.buyer_min_interval_hours),
        max_age=timedelta(hours=settings.config.rules.max_age_hours),
        publish_timeout=publish_timeout,
        new_token=lambda: uuid.uuid4().hex,
        dry_run=settings.dry_run,
    )
    return SendApp(settings=settings, sender=sender, paused=pause_switch(settings))


# ----------------------------------------------------------------------------------- audit


@dataclass(slots=True)
class AuditApp:
    order_items: Callable[[], Iterator[Mapping[str, Any]]]  # the orders table's items, page by page


def build_audit_app(orders_table: str, *, clients: ClientFactory) -> AuditApp:
    """The daily audit function's app, and `nudge audit`'s (both name only the orders table)."""
    from nudge.adapters.orders import scan_order_items

    dynamodb = clients("dynamodb")
    return AuditApp(order_items=lambda: scan_order_items(dynamodb, orders_table))


# ----------------------------------------------------------------------------------- outcomes


@dataclass(slots=True)
class OutcomesApp:
    settings: Settings
    recorder: OutcomeRecorder
    clock: Clock


def build_outcomes_app(
    settings: Settings, *, clients: ClientFactory, clock: Clock = system_clock
) -> OutcomesApp:
    from nudge.adapters.outcomes import DynamoOutcomeStore
    from nudge.services.outcomes import OutcomeRecorder

    return OutcomesApp(
        settings=settings,
        recorder=OutcomeRecorder(
            DynamoOutcomeStore(clients("dynamodb"), settings.ledger_table),
            attribution_hours=settings.config.outcomes.attribution_hours,
        ),
        clock=clock,
    )


# ----------------------------------------------------------------------------------- receipts


@dataclass(slots=True)
class ReceiptsApp:
    settings: Settings
    ledger: DeliveryLedger
    clock: Clock = system_clock  # the daily unknown-after-72-h run's "now"


def build_receipts_app(
    settings: Settings, *, clients: ClientFactory, clock: Clock = system_clock
) -> ReceiptsApp:
    # With SNS delivery-status logs, the ledger finds a log line's SMS by its message id pointer.
    return ReceiptsApp(settings=settings, ledger=_ledger(settings, clients("dynamodb")), clock=clock)


@dataclass(slots=True)
class RepliesApp:
    settings: Settings
    ledger: DeliveryLedger
    staff: StaffNotifier | None
    clock: Clock


def build_replies_app(
    settings: Settings, *, clients: ClientFactory, clock: Clock = system_clock
) -> RepliesApp:
    return RepliesApp(
        settings=settings,
        ledger=_ledger(settings, clients("dynamodb")),
        staff=_staff(settings, clients),
        clock=clock,
    )


# ----------------------------------------------------------------------------------- ingest


@dataclass(slots=True)
class AliyunPushApp:
    """Alibaba Cloud's receipts and replies by HTTP push (``nudge.services.aliyun_push``)."""

    secrets: WebhookSecrets  # the push token (ALIYUN_PUSH_SECRET)
    ledger: DeliveryLedger
    staff: StaffNotifier | None  # replies for the staff (None: the stack has no staff topic)


@dataclass(slots=True)
class IngestApp:
    settings: Settings
    store: OrdersStore
    secrets: WebhookSecrets
    clock: Clock
    aliyun: AliyunPushApp | None = None  # only with a push token (SmsGateway=aliyun)


def build_ingest_app(settings: Settings, *, clients: ClientFactory, clock: Clock = system_clock) -> IngestApp:
    from nudge.adapters.orders import DynamoOrdersStore
    from nudge.adapters.secrets import SecretsManagerSecrets
    from nudge.domain.config import ConfigError
    from nudge.domain.platforms.registry import PLATFORMS

    secret_arns = {}
    for route, platform in PLATFORMS.items():
        arn = getattr(settings, platform.secret_setting)
        if not arn:  # stop at the cold start, before any request is answered
            variable = type(settings).model_fields[platform.secret_setting].alias
            raise ConfigError(variable or platform.secret_setting, "missing: template.yaml sets it")
        secret_arns[route] = arn
    dynamodb = clients("dynamodb")
    return IngestApp(
        settings=settings,
        store=DynamoOrdersStore(dynamodb, settings.orders_table, settings.idempotency_table),
        secrets=SecretsManagerSecrets(secret_arns),
        clock=clock,
        aliyun=_aliyun_push_app(settings, clients, dynamodb)
        if settings.aliyun_push_token_secret_arn
        else None,
    )


def _aliyun_push_app(settings: Settings, clients: ClientFactory, dynamodb: Any) -> AliyunPushApp:
    from nudge.adapters.secrets import SecretsManagerSecrets
    from nudge.services.aliyun_push import ALIYUN_PUSH_SECRET

    return AliyunPushApp(
        secrets=SecretsManagerSecrets({ALIYUN_PUSH_SECRET: settings.aliyun_push_token_secret_arn}),
        ledger=_ledger(settings, dynamodb),
        staff=_staff(settings, clients),
    )


# ----------------------------------------------------------------------- the operator's commands
# `nudge report`, `nudge calls` and `nudge import` run on the operator's machine against the tables
# of a deployed stack: their apps are built here too, from table names, with the same adapters.


@dataclass(slots=True)
class ReportApp:
    outcomes: DynamoOutcomeStore  # the ledger's SMS, outcomes and held-out orders (Query, never Scan)
    orders: OrderRepository  # the recovered orders' status now (batched reads)


def build_report_app(*, ledger_table: str, orders_table: str, clients: ClientFactory) -> ReportApp:
    from nudge.adapters.outcomes import DynamoOutcomeStore

    dynamodb = clients("dynamodb")
    return ReportApp(
        outcomes=DynamoOutcomeStore(dynamodb, ledger_table),
        orders=_order_repository_for(dynamodb, orders_table),
    )


@dataclass(slots=True)
class CallsApp:
    call_log: DynamoCallLog
    orders: OrderRepository


def build_calls_app(*, ledger_table: str, orders_table: str, clients: ClientFactory) -> CallsApp:
    from nudge.adapters.staff import DynamoCallLog

    dynamodb = clients("dynamodb")
    return CallsApp(
        call_log=DynamoCallLog(dynamodb, ledger_table), orders=_order_repository_for(dynamodb, orders_table)
    )


@dataclass(slots=True)
class ImportApp:
    store: OrdersStore


def build_import_app(*, orders_table: str, clients: ClientFactory, workers: int) -> ImportApp:
    """`nudge import`'s writes: one connection per worker, botocore's standard retries (throttling)."""
    from botocore.config import Config

    from nudge.adapters.orders import DynamoOrdersStore

    config = Config(max_pool_connections=workers + 2, retries={"mode": "standard", "max_attempts": 8})
    return ImportApp(store=DynamoOrdersStore(clients("dynamodb", config=config), orders_table))


def _order_repository_for(dynamodb: Any, orders_table: str) -> OrderRepository:
    from nudge.adapters.orders import DynamoOrderRepository

    return DynamoOrderRepository(dynamodb, orders_table)


# ----------------------------------------------------------------------------------- handlers


class Lazy[T]:
    """The app a handler builds on its first invocation and keeps for the life of the container.

    ``set`` hands it a ready app instead (the local pipeline, tests).
    """

    def __init__(self, build: Callable[[], T]):
        self._build = build
        self._app: T | None = None

    def get(self) -> T:
        if self._app is None:
            self._app = self._build()
        return self._app

    def set(self, app: T) -> None:
        self._app = app

    def build_with(self, build: Callable[[], T]) -> None:
        """Forget the app; the next ``get`` builds one with ``build`` (a fresh container, locally)."""
        self._build, self._app = build, None


def plan_app_from_env() -> PlanApp:
    return build_plan_app(load_settings(os.environ), clients=session_clients())


def send_app_from_env() -> SendApp:
    return build_send_app(load_settings(os.environ), clients=session_clients())


def outcomes_app_from_env() -> OutcomesApp:
    return build_outcomes_app(load_settings(os.environ), clients=session_clients())


def receipts_app_from_env() -> ReceiptsApp:
    return build_receipts_app(load_settings(os.environ), clients=session_clients())


def replies_app_from_env() -> RepliesApp:
    return build_replies_app(load_settings(os.environ), clients=session_clients())


def ingest_app_from_env() -> IngestApp:
    return build_ingest_app(load_settings(os.environ), clients=session_clients())


def audit_app_from_env() -> AuditApp:
    return build_audit_app(load_settings(os.environ).orders_table, clients=session_clients())


class _NoTracer:
    """Tracer's decorators as no-ops, for when tracing is off (the X-Ray SDK is never imported)."""

    def capture_lambda_handler(self, fn: Any = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def capture_method(self, fn: Any = None, **_: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        pass


def handler_tracer(env: Mapping[str, str] = os.environ) -> Any:
    """Powertools Tracer when tracing is on; otherwise no-op decorators.

    Tracer() loads the X-Ray SDK even when POWERTOOLS_TRACE_DISABLED is true (a cold-start cost
    for nothing), so a disabled tracer is not constructed at all.
    """
    if env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in ("1", "y", "yes", "t", "true", "on"):
        return _NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer()


__all__ = [
    "AliyunPushApp",
    "AuditApp",
    "CallsApp",
    "ClientFactory",
    "ImportApp",
    "IngestApp",
    "Lazy",
    "OutcomesApp",
    "PlanApp",
    "ReceiptsApp",
    "RepliesApp",
    "ReportApp",
    "SendApp",
    "build_audit_app",
    "build_calls_app",
    "build_import_app",
    "build_ingest_app",
    "build_outcomes_app",
    "build_plan_app",
    "build_receipts_app",
    "build_replies_app",
    "build_report_app",
    "build_send_app",
    "handler_tracer",
    "idempotent_runs",
    "session_clients",
    "system_clock",
]
