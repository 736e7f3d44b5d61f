"""The reminder rules: every order gets exactly one decision, with the rules contract's (docs/RULES.md) reason precedence.

Pure: the orders, the ledger state, the config and the instant ``now`` come in; a ``Plan`` goes
out. No I/O, no clock, no environment.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from nudge.domain.config import Config, Window
from nudge.domain.messages import render_reminder
from nudge.domain.models import (
    CallDecision,
    Decision,
    InvalidOrder,
    Order,
    Plan,
    Reason,
    ReminderState,
    SendDecision,
    SentReminder,
    SkipDecision,
)
from nudge.domain.outcomes import in_holdout
from nudge.domain.phones import PhoneInfo, buyer_hours_end, buyer_zones, phone_info, within_buyer_hours
from nudge.domain.restdays import RestDayCalendar, window_bounds
from nudge.domain.variants import assign_variant

_NO_STATE = ReminderState(order_id="")


@dataclass(slots=True)
class _Finalist:
    """An order that passed every rule through ``max_reminders``; the rest (one SMS per buyer,
    buyer hours, calls, the daily cap) are applied to these in urgency order."""

    index: int
    order: Order
    phone: PhoneInfo
    e164: str
    attempt: int
    state: ReminderState
    urgency: tuple[datetime, Decimal, str]  # (effective closing time, -amount, order id)


def _skip(order_id: str | None, reason: Reason, detail: str | None = None) -> SkipDecision:
    return SkipDecision(order_id, reason, detail)


def normalized_phones(raw_numbers: Iterable[str], default_region: str) -> frozenset[str]:
    """Numbers as E.164 where they parse, else as written (so a bad entry still matches itself)."""
    out = set()
    for raw in raw_numbers:
        info = phone_info(raw, default_region)
        out.add(info.e164 or raw.strip())
    return frozenset(out)


def run_level_skip(
    now: datetime,
    *,
    config: Config,
    calendar: RestDayCalendar,
    paused: bool,
    window: Window | None = None,
) -> Reason | None:
    """Why a run at ``now`` sends nothing at all (paused, rest day, outside the window), if so.

    ``window``: the one window this run was fired for. A run judges that window only, so ``now``
    must be inside it: a window-2 event judged at 09:57 is outside its window, never a window-1
    run with window-2 deadlines. Without one (an offline ``nudge plan --at``), ``now`` may be in
    any configured window.

    The service asks this first, so a skipped run reads no orders and costs nothing.
    """
    local_now = now.astimezone(config.shop.zone)
    if paused or config.paused:
        return Reason.PAUSED
    if calendar.is_rest_day(local_now.date()):
        return Reason.REST_DAY
    if judged_window(local_now, config, window) is None:
        return Reason.OUTSIDE_WINDOW
    return None


def judged_window(now: datetime, config: Config, window: Window | None) -> Window | None:
    """The window a run at ``now`` judges: the one it was fired for if ``now`` is inside it,
    else (no window named) whichever configured window holds ``now``; None when outside."""
    local = now.astimezone(config.shop.zone).time()
    if window is not None:
        return window if window.contains(local) else None
    return config.window_at(local)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Planning allocates one short-lived object per order and makes no reference cycles; at
    100k orders the cyclic collector's repeated scans of the live orders cost ~30% of the run
    and find nothing. Reference counting still frees everything; the caller's state is kept."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_reminders(
    records: Iterable[Order | InvalidOrder],
    *,
    now: datetime,
    config: Config,
    calendar: RestDayCalendar | None = None,
    ledger: Mapping[str, ReminderState] | None = None,
    recent: Sequence[SentReminder] = (),
    sent_today: int = 0,
    opted_out: Iterable[str] = (),
    paused: bool = False,
) -> Plan:
    """Decide every order for a run at ``now`` (``draft_plan`` then ``finish_plan``).

    ``ledger``: reminder state per order id; ``recent``: SMS already sent (at least the last
    ``buyer_min_interval_hours``); ``sent_today``: SMS already counted against today's cap;
    ``opted_out``: numbers known to be opted out (the config's do-not-contact list is added).
    """
    draft = draft_plan(
        records, now=now, config=config, calendar=calendar, recent=recent, opted_out=opted_out, paused=paused
    )
    return finish_plan(draft, ledger=ledger or {}, sent_today=sent_today)


@dataclass(slots=True)
class PlanDraft:
    """The rules applied up to the first one that needs the reminder ledger.

    ``needs_ledger`` names the orders still undecided: only their ledger state is worth reading
    (most orders are decided before, so the service reads a fraction of the ledger).
    """

    now: datetime
    config: Config
    calendar: RestDayCalendar
    window: Window | None
    run_skipped: Reason | None
    decisions: list[Decision | None]
    pending: list[tuple[int, Order, PhoneInfo, str]]  # (index, order, phone, its E.164 form)
    contacted_buyers: set[str]
    contacted_phones: set[str]

    @property
    def needs_ledger(self) -> list[str]:
        return [order.order_id for _, order, _, _ in self.pending]


def draft_plan(
    records: Iterable[Order | InvalidOrder],
    *,
    now: datetime,
    config: Config,
    calendar: RestDayCalendar | None = None,
    recent: Sequence[SentReminder] = (),
    opted_out: Iterable[str] = (),
    paused: bool = False,
    window: Window | None = None,
) -> PlanDraft:
    """Every rule from ``invalid_order`` through ``too_new``, in precedence order.

    ``window``: the window the run was fired for (see ``run_level_skip``)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with _cyclic_gc_paused():
        return _draft(
            list(records),
            now,
            config,
            calendar or RestDayCalendar(config.calendar),
            recent,
            opted_out,
            paused,
            window,
        )


def _draft(
    records: list[Order | InvalidOrder],
    now: datetime,
    config: Config,
    calendar: RestDayCalendar,
    recent: Sequence[SentReminder],
    opted_out: Iterable[str],
    paused: bool,
    fired_for: Window | None,
) -> PlanDraft:
    rules = config.rules
    zone = config.shop.zone
    region = config.shop.default_region
    window = judged_window(now, config, fired_for)
    run_skipped = run_level_skip(now, config=config, calendar=calendar, paused=paused, window=fired_for)
    decisions: list[Decision | None] = [None] * len(records)

    # Pass 1: contract checks, and what the same-day rules need to know about each buyer's day.
    orders: list[tuple[int, Order, date]] = []
    seen_ids: dict[str, int] = {}
    paid_days: set[tuple[str, date]] = set()
    newest_unpaid: dict[tuple[str, date], tuple[datetime, str]] = {}
    for i, rec in enumerate(records):
        if isinstance(rec, InvalidOrder):
            decisions[i] = _skip(rec.order_id, Reason.INVALID_ORDER, rec.detail)
            continue
        if rec.order_id in seen_ids:
            decisions[i] = _skip(rec.order_id, Reason.INVALID_ORDER, "order_id: duplicate")
            continue
        try:
            # "Same day" is the shop-local date of created_at, whatever offset the shop wrote.
            day = rec.created_at.astimezone(zone).date()
            candidate = (rec.created_at, rec.order_id)
            key = (rec.buyer_id, day)
            if rec.status == "unpaid" and key in newest_unpaid:
                candidate = max(candidate, newest_unpaid[key])
        except Exception as exc:  # one bad record never stops a window
            decisions[i] = _not_decidable(rec, exc)
            continue
        # Nothing below can raise: the state of the run changes only for a record that is sound.
        seen_ids[rec.order_id] = i
        orders.append((i, rec, day))
        if rec.status == "paid":
            paid_days.add(key)
        elif rec.status == "unpaid":
            newest_unpaid[key] = candidate

    blocked_flags = frozenset(rules.blocked_flags)
    excluded_channels = frozenset(rules.excluded_channels)
    no_contact = normalized_phones(rules.do_not_contact, region) | normalized_phones(opted_out, region)
    max_age = timedelta(hours=rules.max_age_hours)
    wait = timedelta(minutes=rules.wait_minutes)
    interval = timedelta(hours=rules.buyer_min_interval_hours)
    contacted_buyers: set[str] = set()
    contacted_phones: set[str] = set()
    for sent in recent:
        # No upper bound: a send after ``now`` (this window planned a second time, or a run judged
        # at its scheduled time after an earlier run already sent) still counts as a contact.
        if now - interval < sent.sent_at:
            contacted_buyers.add(sent.buyer_id)
            contacted_phones.add(phone_info(sent.phone, region).e164 or sent.phone)

    # Pass 2: the per-order rules, in precedence order; the first that applies decides.
    pending: list[tuple[int, Order, PhoneInfo, str]] = []
    for i, order, day in orders:
        try:
            oid = order.order_id
            if order.status != "unpaid":
                decisions[i] = _skip(oid, Reason.NOT_UNPAID)
                continue
            if (order.closes_at is not None and order.closes_at <= now) or now - order.created_at >= max_age:
                decisions[i] = _skip(oid, Reason.EXPIRED)
                continue
            if run_skipped is not None:
                decisions[i] = _skip(oid, run_skipped)
                continue
            if rules.skip_cash_on_delivery and order.payment_method == "cod":
                decisions[i] = _skip(oid, Reason.CASH_ON_DELIVERY)
                continue
            if order.channel in excluded_channels:
                decisions[i] = _skip(oid, Reason.DISTRIBUTION_CHANNEL)
                continue
            if order.buyer_flags & blocked_flags:
                decisions[i] = _skip(oid, Reason.BLOCKED_BUYER)
                continue
            phone = phone_info(order.phone, region)
            e164 = phone.e164  # set exactly when the number is valid
            if (e164 or order.phone) in no_contact:
                decisions[i] = _skip(oid, Reason.OPTED_OUT)
                continue
            if e164 is None:
                decisions[i] = _skip(
                    oid, Reason.INVALID_PHONE, f"phone: not a valid number for region {region}"
                )
                continue
            if not phone.takes_sms:  # checked after the opt-out list, which matches it by E.164
                decisions[i] = _skip(
                    oid, Reason.INVALID_PHONE, "phone: a landline or other number that cannot take SMS"
                )
                continue
            if rules.paid_same_day_skips and (order.buyer_id, day) in paid_days:
                decisions[i] = _skip(oid, Reason.BUYER_PAID_SAME_DAY)
                continue
            if rules.newest_unpaid_only and newest_unpaid[(order.buyer_id, day)][1] != oid:
                decisions[i] = _skip(oid, Reason.SUPERSEDED)
                continue
            if now - order.created_at < wait:
                decisions[i] = _skip(oid, Reason.TOO_NEW)
                continue
            pending.append((i, order, phone, e164))
        except Exception as exc:  # one bad record never stops a window
            decisions[i] = _not_decidable(order, exc)

    return PlanDraft(
        now, config, calendar, window, run_skipped, decisions, pending, contacted_buyers, contacted_phones
    )


def finish_plan(draft: PlanDraft, *, ledger: Mapping[str, ReminderState], sent_today: int) -> Plan:
    """The rules from ``max_reminders`` on, given the ledger state of ``draft.needs_ledger``."""
    with _cyclic_gc_paused():
        return _finish(draft, ledger, sent_today)


def _finish(draft: PlanDraft, ledger: Mapping[str, ReminderState], sent_today: int) -> Plan:
    now, config, window = draft.now, draft.config, draft.window
    # Copies: the draft stays as it was, so finishing it is a function of its inputs.
    decisions = list(draft.decisions)
    contacted_buyers, contacted_phones = set(draft.contacted_buyers), set(draft.contacted_phones)
    rules = config.rules
    zone = config.shop.zone
    today = now.astimezone(zone).date()
    max_age = timedelta(hours=rules.max_age_hours)
    finalists: list[_Finalist] = []
    for i, order, phone, e164 in draft.pending:
        oid = order.order_id
        try:
            state = ledger.get(oid, _NO_STATE)
            taken = state.reminders_sent
            if rules.holdout_percent and state.held_out:
                # Measured alike: a held-out order runs out of reminders like its texted twin.
                taken = max(taken, state.held_out_count or 1)
            if taken >= rules.max_reminders_per_order:
                decisions[i] = _skip(oid, Reason.MAX_REMINDERS)
                continue
            urgency = _urgency(order, max_age)
        except Exception as exc:  # one bad record never stops a window
            decisions[i] = _not_decidable(order, exc)
            continue
        finalists.append(_Finalist(i, order, phone, e164, taken + 1, state, urgency))

    # Pass 3: the run-wide limits, most urgent first, so the caps cut the least urgent orders.
    window_end = window_bounds(window, today, zone)[1] if window else None
    budget = max(rules.daily_sms_cap - sent_today, 0)
    large = rules.large_order_amount
    interval = timedelta(hours=rules.buyer_min_interval_hours)
    holdout_attempts: dict[str, int] = {}
    for f in sorted(finalists, key=lambda f: f.urgency):
        order, oid = f.order, f.order.order_id
        if order.buyer_id in contacted_buyers or f.e164 in contacted_phones:
            # Texted in the interval before this run, or by a more urgent order of this run.
            decisions[f.index] = _skip(oid, Reason.BUYER_RECENTLY_CONTACTED)
            continue
        held_last = f.state.held_out_last_at
        if (
            rules.holdout_percent
            and f.state.held_out
            and held_last is not None
            and now - interval < held_last
        ):
            # Its twin would have been texted then, and would wait out the buyer's interval too.
            decisions[f.index] = _skip(oid, Reason.BUYER_RECENTLY_CONTACTED)
            continue
        try:
            zones = buyer_zones(f.phone, config.shop.timezone)
            if not within_buyer_hours(zones, now, rules.buyer_hours):
                decisions[f.index] = _skip(oid, Reason.QUIET_HOURS)
                continue
            if large is not None and order.amount >= large:
                # A call is not an SMS: it neither uses the SMS cap nor counts as the buyer's SMS.
                if f.state.call_requested:
                    decisions[f.index] = _skip(oid, Reason.CALL_REQUESTED)
                else:
                    decisions[f.index] = CallDecision(oid, f.attempt, order.buyer_id, f.e164)
                continue
            if budget <= 0:
                decisions[f.index] = _skip(oid, Reason.DAILY_LIMIT)
                continue
            # The SMS must not go out after the window closes, once the buyer's night begins, or
            # once the order closes or expires (urgency[0]). (No window means a skipped run, and
            # then no order gets this far.)
            deadlines = [buyer_hours_end(zones, now, rules.buyer_hours), f.urgency[0]]
            if window_end is not None:
                deadlines.append(window_end)
            send = _send(f, config, window, now, min(deadlines, key=_utc))
        except Exception as exc:  # one bad record never stops a window
            decisions[f.index] = _not_decidable(order, exc)
            continue
        if send.segments > config.messages.max_segments:
            # Unreachable while config loading refuses a fixed text that cannot fit; kept so that
            # no SMS over the cap is ever sent, whatever the renderer does.
            detail = f"message: {send.segments} segments, over messages.max_segments {config.messages.max_segments}"
            decisions[f.index] = _skip(oid, Reason.INVALID_ORDER, detail)
            continue
        if rules.holdout_percent and (
            f.state.held_out or (f.attempt == 1 and in_holdout(oid, rules.holdout_percent))
        ):
            # The control group: no SMS, so neither the cap nor the buyer's 24 h is used up.
            decisions[f.index] = _skip(oid, Reason.HOLDOUT)
            holdout_attempts[oid] = f.attempt
            continue
        # Only a send that was fully built uses the budget and the buyer's one SMS.
        budget -= 1
        contacted_buyers.add(order.buyer_id)
        contacted_phones.add(f.e164)
        decisions[f.index] = send

    return Plan(
        at=now,
        window=window.name if window else None,
        run_skipped=draft.run_skipped,
        decisions=[d for d in decisions if d is not None],
        warnings=[w for w in (draft.calendar.year_warning(today.year),) if w],
        holdout_attempts=holdout_attempts,
    )


def _not_decidable(order: Order, exc: Exception) -> SkipDecision:
    """The decision for an order whose evaluation raised: a bug or a library error on odd data.

    Caught per order, so the rest of the window is still decided; the detail names the error
    (cut to one short line) so the record can be found and fixed.
    """
    message = " ".join(str(exc).split())[:120]
    problem = f"could not be decided ({type(exc).__name__}{': ' + message if message else ''})"
    return _skip(order.order_id, Reason.INVALID_ORDER, f"record: {problem}")


def _utc(at: datetime) -> datetime:
    # Two datetimes with the same ZoneInfo compare by wall clock (off by a DST shift): compare in UTC.
    return at.astimezone(UTC)


def _urgency(order: Order, max_age: timedelta) -> tuple[datetime, Decimal, str]:
    """Closest effective closing time first, then the larger amount, then the id (stable)."""
    closes = order.created_at + max_age
    if order.closes_at is not None and order.closes_at < closes:
        closes = order.closes_at
    return (closes, -order.amount, order.order_id)


def _send(
    f: _Finalist, config: Config, window: Window | None, now: datetime, not_after: datetime
) -> SendDecision:
    # Only the words depend on the variant: who is texted and when was decided without it.
    arm = assign_variant(f.order.order_id, config.messages)
    sms = render_reminder(
        f.order,
        f.attempt,
        shop=config.shop,
        messages=config.messages,
        window=window,
        now=now,
        variant=arm.position if arm else None,
    )
    return SendDecision(
        order_id=f.order.order_id,
        attempt=f.attempt,
        message=sms.text,
        segments=sms.segments,
        buyer_id=f.order.buyer_id,
        phone_e164=f.e164,
        not_after=not_after,
        variant=arm.name if arm else None,
    )
