"""The replies service: a buyer's SMS to the shop's number.

An opt-out keyword and nothing else (``nudge.domain.delivery.is_opt_out_reply``) puts the number
on the shop's do-not-contact list at once: the next plan skips it, and the sender drops any SMS to
it already queued. Any other reply goes to the staff topic, with the number masked. Nothing is
ever sent back to the buyer, so a reply never tells anyone whether a number is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from nudge.domain.delivery import Reply, is_opt_out_reply
from nudge.domain.privacy import mask_phone
from nudge.services.calls import staff_text
from nudge.services.ports import DeliveryLedger, StaffNotifier

__all__ = ["ReplyOutcome", "ReplyResult", "handle_reply"]

STAFF_BODY_MAX = 500  # characters of the buyer's text in the staff message


class ReplyOutcome(StrEnum):
    OPTED_OUT = "opted_out"
    FORWARDED = "forwarded"
    NOT_FORWARDED = "not_forwarded"  # the stack has no staff topic


@dataclass(frozen=True, slots=True)
class ReplyResult:
    outcome: ReplyOutcome
    masked_phone: str


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
