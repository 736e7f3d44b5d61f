"""The orders audit: order items the plan can never decide, counted and named, once a day.

The plan reads orders through the ``status-created_at`` index, by status ``unpaid`` and ``paid``.
An item without ``status`` or ``created_at`` is not in that (sparse) index at all, and one whose
status is ``pending`` or ``UNPAID`` is under a key the plan never asks for: neither ever gets a
decision, not even ``invalid_order``. This audit reads the whole table (off the hot path) and
reports every item that breaks the order contract, with the field and the problem, marking the
ones the plan cannot see. Closed orders are never reminded, so they are not checked.

Pure: it takes the items (any iterable of mappings) and returns a report; the caller logs it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nudge.domain.models import InvalidOrder
from nudge.domain.orders import parse_order
from nudge.domain.privacy import mask_digit_runs

PLANNED_STATUSES = frozenset({"unpaid", "paid"})  # the statuses the plan queries the index for
MAX_LISTED = 1000  # problems kept in the report; the counts always cover every item
PERSONAL_FIELDS = frozenset({"phone", "buyer_name"})
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def safe_problem(field_name: str, problem: str) -> str:
    """A problem text fit for the logs: no value of a personal field, no phone-like digit run."""
    if field_name in PERSONAL_FIELDS:
        problem = _QUOTED.sub("(value withheld)", problem)
    return mask_digit_runs(problem)  # a phone number pasted into some field


@dataclass(frozen=True, slots=True)
class OrderProblem:
    order_id: str | None  # None when the item has no usable order_id
    field: str
    problem: str
    invisible: bool  # the plan's index query cannot return this item: it gets no decision at all

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "field": self.field,
            "problem": self.problem,
            "invisible": self.invisible,
        }


@dataclass(slots=True)
class AuditReport:
    scanned: int = 0
    closed: int = 0  # not checked
    valid: int = 0
    invalid: int = 0
    invisible: int = 0
    by_field: Counter[str] = field(default_factory=Counter)
    problems: list[OrderProblem] = field(default_factory=list)  # the first MAX_LISTED

    def to_json(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "closed": self.closed,
            "valid": self.valid,
            "invalid": self.invalid,
            "invisible": self.invisible,
            "by_field": dict(sorted(self.by_field.items())),
            "problems_listed": len(self.problems),
        }


def check_order_item(item: Mapping[str, Any]) -> OrderProblem | None:
    """The first problem of one item, or None when the plan can read and decide it."""
    if not isinstance(item, Mapping):
        return OrderProblem(None, "record", f"must be a mapping, got {type(item).__name__}", True)
    status = item.get("status")
    if status == "closed":
        return None
    parsed = parse_order(item)
    if not isinstance(parsed, InvalidOrder):
        return None
    # Only these two keep an item out of the plan's index query (the index is sparse: no status or
    # created_at, no entry; another status, another key). Any other problem is read by the next
    # window's plan and decided `invalid_order` there.
    created_at = item.get("created_at")
    invisible = status not in PLANNED_STATUSES or not isinstance(created_at, str) or not created_at
    order_id = parsed.order_id or (item.get("order_id") if isinstance(item.get("order_id"), str) else None)
    return OrderProblem(order_id, parsed.field, safe_problem(parsed.field, parsed.problem), invisible)


def audit_orders(items: Iterable[Mapping[str, Any]]) -> AuditReport:
    """Check every item; one bad item never stops the audit."""
    report = AuditReport()
    for item in items:
        report.scanned += 1
        if isinstance(item, Mapping) and item.get("status") == "closed":
            report.closed += 1
            continue
        problem = check_order_item(item)
        if problem is None:
            report.valid += 1
            continue
        report.invalid += 1
        report.invisible += problem.invisible
        report.by_field[problem.field] += 1
        if len(report.problems) < MAX_LISTED:
            report.problems.append(problem)
    return report
