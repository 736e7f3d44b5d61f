"""The replies service: a buyer's SMS to the shop's number.

An opt-out keyword and nothing else (``nudge.domain.delivery.is_opt_out_reply``) puts the number
on the shop's do-not-contact list at once: the next plan skips it, and the sender drops any SMS to
it already queued. Any other reply goes to the staff topic, with the number masked. Nothing is
ever sent back to the buyer, so a reply never tells anyone whether a number is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from nudge.domain.delivery import ReceiptError, Reply, is_opt_out_reply, reply_from_aliyun_up
from nudge.domain.privacy import mask_phone
from nudge.services.calls import staff_text
from nudge.services.ports import DeliveryLedger, StaffNotifier
from nudge.services.receipts import Counted, each_read, json_object

__all__ = [
    "ReplyOutcome",
    "ReplyResult",
    "counted_reply",
    "handle_aliyun_replies",
    "handle_reply",
    "unreadable",
]

STAFF_BODY_MAX = 500  # characters of the buyer's text in the staff message


class ReplyOutcome(StrEnum):
    OPTED_OUT = "opted_out"
    FORWARDED = "forwarded"
    NOT_FORWARDED = "not_forwarded"  # the stack has no staff topic
    UNREADABLE = "unreadable"  # not a reply Nudge can read: nothing written


@dataclass(frozen=True, slots=True)
class ReplyResult:
    outcome: ReplyOutcome
    masked_phone: str
    problem: str | None = None  # why it is unreadable (a field name: no personal data)


def unreadable(problem: str) -> ReplyResult:
    return ReplyResult(ReplyOutcome.UNREADABLE, "", problem)


def counted_reply(result: ReplyResult) -> Counted:
    """``ReplyUnreadable`` or ``Reply_<outcome>``, logged with the masked number only."""
    if result.outcome is ReplyOutcome.UNREADABLE:
        fields = {"problem": result.problem}
        return Counted("unreadable", ("ReplyUnreadable",), "reply not readable", fields, warning=True)
    fields = {"outcome": result.outcome.value, "phone": result.masked_phone}
    return Counted(result.outcome.value, (f"Reply_{result.outcome.value}",), "reply", fields)


def handle_reply(
    reply: Reply, *, ledger: DeliveryLedger, staff: StaffNotifier | None, now: datetime
) -> ReplyResult:
    masked = mask_phone(reply.phone)
    if is_opt_out_reply(reply.body):
        ledger.add_opted_out(reply.phone, now)
        return ReplyResult(ReplyOutcome.OPTED_OUT, masked)
    if staff is None:
        return ReplyResult(ReplyOutcome.NOT_FORWARDED, masked)
    text = staff_text(reply.body, STAFF_BODY_MAX) or "(empty)"  # one line, no control characters
    about = f" (in reply to SMS {reply.in_reply_to})" if reply.in_reply_to else ""
    staff.publish("Nudge: a buyer replied", f"{masked} replied{about}:\n{text}")
    return ReplyResult(ReplyOutcome.FORWARDED, masked)


def handle_aliyun_replies(
    items: Sequence[Any], *, ledger: DeliveryLedger, staff: StaffNotifier | None, now: datetime
) -> list[ReplyResult]:
    """Every item of one Alibaba Cloud ``SmsUp`` push (its JSON array), through ``handle_reply``.
    An item that cannot be read is one unreadable result; a DynamoDB or SNS error raises, so the
    push is answered as failed and pushed again (an opt-out again changes nothing; a reply for the
    staff may reach them twice)."""
    return [
        unreadable(str(read))
        if isinstance(read, ReceiptError)
        else handle_reply(read, ledger=ledger, staff=staff, now=now)
        for read in each_read(items, lambda i: reply_from_aliyun_up(json_object(i, "item")))
    ]
