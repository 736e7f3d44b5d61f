"""Bench-only speed fixes for moto's DynamoDB (same responses, less work inside the mock).

1. ``TransactWriteItems``: less copying.

moto 5 snapshots every table a transaction touches with ``copy.deepcopy(table)`` before it runs,
so that it can roll back a cancelled one. On the ledger that is a copy of every item per claim:
O(ledger size) per SMS, O(SMS^2) per window, which would make the bench measure moto rather
than Nudge (10k orders: ~65 ms per SMS, most of it that copy).

``install()`` makes the transaction snapshot only the items it names (deep copies of those
items, or "absent"), lets moto's own code run with the table copy turned into a no-op, and on a
cancelled transaction puts exactly those items back. Conditions, errors and the cancellation
reasons are moto's own.

2. Responses with many items (Query, Scan, BatchGetItem): moto 5 turns every attribute value into
JSON through its generic, shape-driven serializer (~100 us an item: 100k orders would spend minutes
there, on the mock's side of the wire). Items are already in DynamoDB's wire form, so the fix
serializes the response without them with moto's own serializer, then puts the items back in with
``json.dumps``; any value ``json`` cannot take (binary) falls back to moto's path. ``verify_same``
checks the two give the same JSON.

3. SQS: moto recomputes every queue attribute, including the three approximate message counts
(each a pass over all messages, with a clock read per message), for every message sent (to read
``ContentBasedDeduplication``) and every message received (to read ``MessageRetentionPeriod``):
O(queue) per message. The fix reads the retention period directly and skips the counts while a
message is being sent; ``GetQueueAttributes`` still computes them.

Nothing of Nudge is changed; ``uninstall()`` restores moto.
"""

from __future__ import annotations

import copy
import json
import types
from typing import Any

__all__ = ["install", "installed", "uninstall", "verify_same"]

_state: dict[str, Any] = {}


def installed() -> bool:
    return bool(_state)


def install() -> None:
    if _state:
        return
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items
    real_copy_module = models.copy

    def deepcopy_except_tables(obj: Any, memo: Any = None) -> Any:
        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)

    shim = types.SimpleNamespace(**{**vars(copy), "deepcopy": deepcopy_except_tables})

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, item or None)
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            attrs = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in attrs:
                continue
            h = DynamoType(attrs[table.hash_key_attr])
            r = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr in attrs else None
            try:
                current = table.get_item(h, r)
            except Exception:  # a malformed key: moto itself will reject the transaction
                current = None
            saved.append((table, h, r, copy.deepcopy(current)))
        models.copy = shim
        try:
            return original(self, transact_items)
        except Exception:
            for table, h, r, item in reversed(saved):
                _restore(table, h, r, item)
            raise
        finally:
            models.copy = real_copy_module

    models.DynamoDBBackend.transact_write_items = transact_write_items
    _state.update(original=original, models=models)

    from moto.dynamodb.responses import DynamoResult

    original_execute = DynamoResult.execute_result
    _state.update(original_execute=original_execute, result_class=DynamoResult)

    def execute_result(self: Any, context: Any) -> Any:
        result = self._result
        if not isinstance(result, dict):
            return original_execute(self, context)
        if isinstance(result.get("Items"), list):
            path: tuple[str, ...] = ("Items",)
            items = result["Items"]
        elif isinstance(result.get("Responses"), dict) and result["Responses"]:
            path = ("Responses",)
            items = result["Responses"]
        else:
            return original_execute(self, context)
        stub = type(self).__new__(type(self))
        stub._result = {**result, path[0]: [] if path[0] == "Items" else {}}
        status, headers, body = original_execute(stub, context)
        try:
            data = json.loads(body)
            data[path[0]] = items
            text = json.dumps(data, separators=(",", ":"))
        except (TypeError, ValueError):  # bytes (binary attributes): moto's serializer base64-encodes them
            return original_execute(self, context)
        headers = {
            k: (str(len(text.encode())) if k.lower() == "content-length" else v) for k, v in headers.items()
        }
        return status, headers, text.encode() if isinstance(body, bytes) else text

    DynamoResult.execute_result = execute_result
    _install_sqs()


_COUNTS = frozenset(
    {
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    }
)


def _install_sqs() -> None:
    from moto.core.utils import unix_time
    from moto.sqs.models import Queue, SQSBackend

    original_attributes = Queue.__dict__["attributes"]
    original_send = SQSBackend.send_message
    original_valid = SQSBackend.is_message_valid_based_on_retention_period
    cheap = {"on": False}

    def attributes(self: Any) -> dict[str, Any]:
        if not cheap["on"]:
            return original_attributes.fget(self)
        self.BASE_ATTRIBUTES = [a for a in type(self).BASE_ATTRIBUTES if a not in _COUNTS]
        try:
            return original_attributes.fget(self)
        finally:
            del self.BASE_ATTRIBUTES

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        cheap["on"] = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            cheap["on"] = False

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()

    Queue.attributes = property(attributes)  # type: ignore[assignment]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    _state["sqs"] = (Queue, original_attributes, SQSBackend, original_send, original_valid)


def _restore(table: Any, h: Any, r: Any, item: Any) -> None:
    if r is not None:
        if item is None:
            table.items.get(h, {}).pop(r, None)
        else:
            table.items[h][r] = item
    elif item is None:
        table.items.pop(h, None)
    else:
        table.items[h] = item


def uninstall() -> None:
    if not _state:
        return
    _state["models"].DynamoDBBackend.transact_write_items = _state["original"]
    _state["result_class"].execute_result = _state["original_execute"]
    queue, attributes, backend, send, valid = _state["sqs"]
    queue.attributes = attributes
    backend.send_message = send
    backend.is_message_valid_based_on_retention_period = valid
    _state.clear()


def verify_same(result: dict[str, Any], context: Any) -> bool:
    """True when the fast path and moto's serializer give the same JSON for ``result``."""
    cls = _state["result_class"]
    fast = cls(result)
    slow = cls(result)
    a = fast.execute_result(context)[2]
    b = _state["original_execute"](slow, context)[2]
    return json.loads(a) == json.loads(b)
