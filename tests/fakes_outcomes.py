"""In-memory fakes of the outcome store and the staff notifier, over ``FakeReminderLedger``'s items
(so a plan, its sends and the outcomes share one ledger, as they share one table in AWS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from nudge.adapters.dynamo_io import item_from_ddb
from nudge.adapters.ledger import outcome_to_map, touches_from_item
from nudge.adapters.outcomes import ReportRecords, report_days
from nudge.domain.outcomes import Outcome
from nudge.services.ports import OrderTouches
from tests.fakes import FakeReminderLedger


class FakeOutcomeStore:
    def __init__(self, ledger: FakeReminderLedger | None = None):
        self.ledger = ledger or FakeReminderLedger()
        self.reads = 0
        self.writes = 0

    @property
    def items(self) -> dict:
        return self.ledger.items

    def touches(self, order_ids: Sequence[str]) -> dict[str, OrderTouches]:
        self.reads += 1
        return {
            oid: touches_from_item(self.items[oid]) for oid in dict.fromkeys(order_ids) if oid in self.items
        }

    def record_outcome(self, outcome: Outcome, at: datetime) -> bool:
        self.writes += 1
        item = self.items.get(outcome.order_id)
        if item is None or "outcome" in item:
            return False
        item["outcome"] = item_from_ddb(outcome_to_map(outcome, at)["M"])
        return True

    def report_records(self, first_day: date, last_day: date, *, max_age_hours: int = 72) -> ReportRecords:
        send_days, holdout_days = report_days(first_day, last_day, max_age_hours)
        sends = {d.isoformat() for d in send_days}
        held = {d.isoformat() for d in holdout_days}
        out = ReportRecords()
        for item in self.items.values():
            if item.get("sent_day") in sends or item.get("held_out_day") in held:
                out.add_item(item)
        return out
