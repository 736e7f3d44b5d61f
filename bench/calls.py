"""Counting AWS calls, by operation, with botocore event hooks.

``CallCounter.install()`` wraps ``botocore.session.Session.create_client`` so that EVERY client
created while it is installed, from any session (boto3's default session that the handlers use at
import, the fresh ``boto3.session.Session()`` that Powertools' idempotency and parameters
utilities build, ``boto3.resource``'s inner client, the harness's own clients), gets the hooks on
its own ``client.meta.events``:

- ``before-parameter-build``: the operation's API parameters as the caller passed them (tables,
  number of keys / items / entries);
- ``before-call``: a timestamp, and who is calling (a client marked ``harness`` is the local
  stand-in for an AWS service, e.g. the SQS event source mapping, and is reported apart);
- ``after-call`` / ``after-call-error``: time inside the call, error codes, and DynamoDB's
  ``ConsumedCapacity`` when the response has one.

Consumed capacity: the adapters do not ask for ``ReturnConsumedCapacity`` and moto's numbers are
placeholders anyway (BatchGetItem always reports one unit per key, Query/Scan one unit per call),
so the counter ALSO estimates read/write request units from item sizes with DynamoDB's on-demand
rules (reads: 4 KB units per item or per Query/Scan page, halved when eventually consistent;
writes: 1 KB units per item, doubled in transactions, plus one write per GSI the item is in).
Both are reported, labelled.

Calls are attributed to the ``phase`` the bench sets (``load``, ``plan``, ``send``, ``naive``...).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import botocore.session

__all__ = ["CallCounter", "PhaseStats", "ddb_item_size"]

_READ_OPS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_WRITE_OPS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement"}
)

# ----------------------------------------------------------------------------------- item sizes


def _value_size(value: Any) -> int:
    """Bytes DynamoDB counts for one attribute value (wire format {"S": ...} or plain Python)."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind == "S":
            return len(raw.encode())
        if kind == "N":
            return _number_size(raw)
        if kind == "B":
            return len(raw)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "L":
            return 3 + sum(1 + _value_size(v) for v in raw)
        if kind == "M":
            return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in raw.items())
        if kind == "SS":
            return sum(len(s.encode()) for s in raw)
        if kind == "NS":
            return sum(_number_size(s) for s in raw)
    # plain Python (boto3 resource API)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float | Decimal):
        return _number_size(str(value))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, list | tuple):
        return 3 + sum(1 + _value_size(v) for v in value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sum(_value_size(v) for v in value)
    return len(str(value).encode())


def _number_size(text: str) -> int:
    digits = sum(ch.isdigit() for ch in str(text).lstrip("-0.").split("e")[0].split("E")[0]) or 1
    return math.ceil(digits / 2) + 1


def ddb_item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (approximation)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


# ----------------------------------------------------------------------------------- statistics


@dataclass
class PhaseStats:
    calls: Counter = field(default_factory=Counter)  # "dynamodb.Query" -> n
    harness_calls: Counter = field(default_factory=Counter)  # the local stand-ins for AWS services
    errors: Counter = field(default_factory=Counter)  # "dynamodb.TransactWriteItems:TransactionCanceled"
    seconds_in_calls: float = 0.0
    seconds_by_call: Counter = field(default_factory=Counter)  # "dynamodb.Query" -> seconds (wall)
    ddb_read_requests: int = 0
    ddb_write_requests: int = 0
    ddb_read_requests_by_table: Counter = field(default_factory=Counter)
    ddb_write_requests_by_table: Counter = field(default_factory=Counter)
    # "ledger UpdateItem SET reminders_sent": what each write request does (table, op, first attribute)
    ddb_write_kinds: Counter = field(default_factory=Counter)
    ddb_items_read: int = 0  # items returned by reads
    ddb_keys_requested: int = 0  # GetItem / BatchGetItem keys
    est_rcu: float = 0.0  # estimated read request units (on-demand)
    est_wcu: float = 0.0  # estimated write request units (on-demand), GSI writes included
    moto_capacity: float = 0.0  # what moto put in ConsumedCapacity (placeholders)
    moto_capacity_responses: int = 0
    sns_publish_segments: int = 0  # not known to AWS calls; filled in by the bench

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": dict(sorted(self.calls.items())),
            "total_calls": self.total_calls(),
            "harness_calls": dict(sorted(self.harness_calls.items())),
            "errors": dict(sorted(self.errors.items())),
            "seconds_in_calls": round(self.seconds_in_calls, 3),
            "seconds_by_call": {k: round(v, 3) for k, v in sorted(self.seconds_by_call.items())},
            "ddb_read_requests": self.ddb_read_requests,
            "ddb_write_requests": self.ddb_write_requests,
            "ddb_read_requests_by_table": dict(sorted(self.ddb_read_requests_by_table.items())),
            "ddb_write_requests_by_table": dict(sorted(self.ddb_write_requests_by_table.items())),
            "ddb_write_kinds": dict(sorted(self.ddb_write_kinds.items())),
            "ddb_items_read": self.ddb_items_read,
            "ddb_keys_requested": self.ddb_keys_requested,
            "estimated_rcu": round(self.est_rcu, 1),
            "estimated_wcu": round(self.est_wcu, 1),
            "moto_consumed_capacity": round(self.moto_capacity, 1),
            "moto_consumed_capacity_responses": self.moto_capacity_responses,
        }


class CallCounter:
    """Counts every AWS call of every client created while installed (see the module doc)."""

    def __init__(
        self, table_gsis: Mapping[str, int] | None = None, table_labels: Mapping[str, str] | None = None
    ):
        self.phase = "setup"
        self.phases: dict[str, PhaseStats] = defaultdict(PhaseStats)
        # table name -> how many GSIs (projection ALL) an item with the index keys lands in
        self.table_gsis: dict[str, tuple[tuple[str, ...], ...]] = {}
        self.table_labels: dict[str, str] = dict(table_labels or {})
        self._harness_signers: set[int] = set()
        self._original_create_client: Any = None
        self.clients_hooked = 0

    # -- installing ---------------------------------------------------------------------------

    def install(self) -> CallCounter:
        if self._original_create_client is not None:
            return self
        original = botocore.session.Session.create_client
        counter = self

        def create_client(session_self: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session_self, *args, **kwargs)
            counter.attach_client(client)
            return client

        self._original_create_client = original
        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        if self._original_create_client is not None:
            botocore.session.Session.create_client = self._original_create_client  # type: ignore[method-assign]
            self._original_create_client = None

    def __enter__(self) -> CallCounter:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def attach_client(self, client: Any) -> None:
        """Hook one client (also usable on its own, without ``install``)."""
        events = client.meta.events
        events.register("before-parameter-build", self._before_parameter_build, unique_id="bench-params")
        events.register("before-call", self._before_call, unique_id="bench-before")
        events.register("after-call", self._after_call, unique_id="bench-after")
        events.register("after-call-error", self._after_call_error, unique_id="bench-error")
        self.clients_hooked += 1

    def mark_harness(self, *clients: Any) -> None:
        """Calls of these clients stand in for AWS services (not Nudge's own calls)."""
        for client in clients:
            self._harness_signers.add(id(client._request_signer))

    def describe_tables(self, client: Any, labels: Mapping[str, str]) -> None:
        """Learn each table's GSI key attributes (for GSI write costs) and a short label."""
        for name, label in labels.items():
            self.table_labels[name] = label
            desc = client.describe_table(TableName=name)["Table"]
            self.table_gsis[name] = tuple(
                tuple(k["AttributeName"] for k in gsi["KeySchema"])
                for gsi in desc.get("GlobalSecondaryIndexes", [])
            )

    @contextmanager
    def in_phase(self, name: str) -> Iterator[PhaseStats]:
        previous, self.phase = self.phase, name
        try:
            yield self.phases[name]
        finally:
            self.phase = previous

    # -- hooks ----------------------------------------------------------------------------------

    def _before_parameter_build(self, params: dict[str, Any], model: Any, context: dict, **_: Any) -> None:
        context["bench_params"] = params

    def _before_call(self, model: Any, context: dict, request_signer: Any = None, **_: Any) -> None:
        context["bench_t0"] = time.perf_counter()
        context["bench_phase"] = self.phase
        harness = id(request_signer) in self._harness_signers
        context["bench_harness"] = harness
        stats = self.phases[self.phase]
        key = f"{model.service_model.service_name}.{model.name}"
        if harness:
            stats.harness_calls[key] += 1
            return
        stats.calls[key] += 1
        if model.service_model.service_name == "dynamodb":
            params = context.get("bench_params") or {}
            if model.name in _READ_OPS:
                stats.ddb_read_requests += 1
                for table in _tables(model.name, params):
                    stats.ddb_read_requests_by_table[self.table_labels.get(table, table)] += 1
            elif model.name in _WRITE_OPS:
                stats.ddb_write_requests += 1
                tables = [self.table_labels.get(t, t) for t in dict.fromkeys(_tables(model.name, params))]
                for table in tables:
                    stats.ddb_write_requests_by_table[table] += 1
                stats.ddb_write_kinds[_write_kind(model.name, params, "+".join(tables))] += 1
                stats.est_wcu += self._estimate_wcu(model.name, params)

    def _after_call(self, http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        stats = self.phases[context.get("bench_phase", self.phase)]
        self._clock_call(stats, model, context)
        if context.get("bench_harness") or model.service_model.service_name != "dynamodb":
            return
        consumed = parsed.get("ConsumedCapacity")
        if consumed:
            stats.moto_capacity_responses += 1
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                stats.moto_capacity += float(entry.get("CapacityUnits", 0) or 0)
        if model.name in _READ_OPS:
            self._estimate_reads(stats, model.name, context.get("bench_params") or {}, parsed)

    def _after_call_error(
        self, context: dict, exception: Any = None, model: Any = None, **kwargs: Any
    ) -> None:
        stats = self.phases[context.get("bench_phase", self.phase)]
        if model is not None:
            self._clock_call(stats, model, context)
        code = "error"
        response = getattr(exception, "response", None)
        if isinstance(response, Mapping):
            code = response.get("Error", {}).get("Code", code)
        name = f"{model.service_model.service_name}.{model.name}" if model is not None else "?"
        stats.errors[f"{name}:{code}"] += 1

    @staticmethod
    def _clock_call(stats: PhaseStats, model: Any, context: dict) -> None:
        t0 = context.get("bench_t0")
        if t0 is None:
            return
        seconds = time.perf_counter() - t0
        stats.seconds_in_calls += seconds
        prefix = "harness " if context.get("bench_harness") else ""
        stats.seconds_by_call[f"{prefix}{model.service_model.service_name}.{model.name}"] += seconds

    # -- capacity estimates ---------------------------------------------------------------------

    def _estimate_reads(self, stats: PhaseStats, op: str, params: Mapping[str, Any], parsed: Mapping) -> None:
        if op in ("Query", "Scan"):
            items = parsed.get("Items", [])
            stats.ddb_items_read += len(items)
            # One page: the summed size of the items read, in 4 KB units (index projection ALL:
            # the returned items are the whole items), halved when eventually consistent.
            size = sum(ddb_item_size(i) for i in items)
            units = max(1, math.ceil(size / 4096))
            stats.est_rcu += units * (1.0 if params.get("ConsistentRead") else 0.5)
        elif op == "GetItem":
            stats.ddb_keys_requested += 1
            item = parsed.get("Item")
            stats.ddb_items_read += bool(item)
            units = max(1, math.ceil(ddb_item_size(item) / 4096)) if item else 1
            stats.est_rcu += units * (1.0 if params.get("ConsistentRead") else 0.5)
        elif op == "BatchGetItem":
            for table, request in (params.get("RequestItems") or {}).items():
                keys = len(request.get("Keys", []))
                stats.ddb_keys_requested += keys
                per = 1.0 if request.get("ConsistentRead") else 0.5
                items = parsed.get("Responses", {}).get(table, [])
                stats.ddb_items_read += len(items)
                # every key costs at least one unit, found or not; projected items are small
                big = sum(max(0, math.ceil(ddb_item_size(i) / 4096) - 1) for i in items)
                stats.est_rcu += (keys + big) * per

    def _estimate_wcu(self, op: str, params: Mapping[str, Any]) -> float:
        def item_units(
            table: str, item: Mapping[str, Any] | None, extra_attrs: tuple[str, ...] = ()
        ) -> float:
            size = ddb_item_size(item) if item else 200  # an update's item: small, ~1 unit
            units = max(1, math.ceil(size / 1024))
            attrs = set(item or ()) | set(extra_attrs)
            gsi = sum(1 for keys in self.table_gsis.get(table, ()) if set(keys) <= attrs)
            return units * (1 + gsi)

        if op == "PutItem":
            return item_units(params.get("TableName", ""), params.get("Item"))
        if op in ("UpdateItem", "DeleteItem"):
            return item_units(params.get("TableName", ""), params.get("Key"), _updated_attrs(params))
        if op == "BatchWriteItem":
            total = 0.0
            for table, requests in (params.get("RequestItems") or {}).items():
                for r in requests:
                    if "PutRequest" in r:
                        total += item_units(table, r["PutRequest"]["Item"])
                    else:
                        total += item_units(table, r.get("DeleteRequest", {}).get("Key"))
            return total
        if op == "TransactWriteItems":
            total = 0.0
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                item = body.get("Item") or body.get("Key")
                extra = _updated_attrs(body) if kind == "Update" else ()
                total += 2 * item_units(body.get("TableName", ""), item, extra)
            return total
        return 1.0


def _tables(op: str, params: Mapping[str, Any]) -> list[str]:
    if op in ("BatchGetItem", "BatchWriteItem"):
        return list((params.get("RequestItems") or {}).keys())
    if op in ("TransactGetItems", "TransactWriteItems"):
        return [next(iter(i.values())).get("TableName", "") for i in params.get("TransactItems", [])]
    return [params.get("TableName", "")]


def _write_kind(op: str, params: Mapping[str, Any], table: str) -> str:
    """e.g. "ledger UpdateItem SET reminders_sent": the first attribute an update sets."""
    expr = (params.get("UpdateExpression") or "").split()
    if op == "UpdateItem" and len(expr) >= 2:
        names = params.get("ExpressionAttributeNames") or {}
        first = names.get(expr[1], expr[1])
        return f"{table} {op} {expr[0].upper()} {first}"
    return f"{table} {op}"


def _updated_attrs(params: Mapping[str, Any]) -> tuple[str, ...]:
    """Attribute names an UpdateExpression sets (resolving #names), for GSI membership."""
    expr = params.get("UpdateExpression") or ""
    names = params.get("ExpressionAttributeNames") or {}
    out = []
    for token in expr.replace(",", " ").split():
        if token.startswith("#") and token in names:
            out.append(names[token])
        elif token.isidentifier() and token.upper() not in ("SET", "ADD", "REMOVE", "DELETE"):
            out.append(token)
    return tuple(out)
