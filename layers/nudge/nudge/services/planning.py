"""The plan service: one sending window, from the schedule's event to queued SMS.

It reads through the ports (``nudge.services.ports``), decides with the pure rules and enqueues. The
handler gives it the clock reading and the pause switch; nothing here reads the environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from nudge.domain.config import Config, Window
from nudge.domain.messages import template_params as fill_template
from nudge.domain.models import CallDecision, InvalidOrder, Order, Plan, SendDecision
from nudge.domain.restdays import RestDayCalendar, wall_clock_instant, window_bounds
from nudge.domain.rules import draft_plan, finish_plan, run_level_skip
from nudge.services.calls import send_call_digest
from nudge.services.ports import OrderRepository, ReminderLedger, SendQueue, SendRequest, StaffNotifier

DECISIONS_IN_SUMMARY = 500


class UnknownWindowError(ValueError):
    """The event names a window the stack is not configured with."""


@dataclass(frozen=True, slots=True)
class WindowRun:
    """What the scheduler asked for: the window and the time it was due."""

    window: str  # "09:50-10:40", the same text as the stack parameter
    scheduled_at: datetime


@dataclass(slots=True)
class PlanSummary:
    window: str
    scheduled_at: datetime
    judged_at: datetime  # the instant the rules were applied at
    run_skipped: str | None
    orders_read: int = 0
    enqueued: int = 0
    segments: int = 0  # SMS segments of the sends planned: what the window will cost at SNS
    calls: int = 0
    dry_run: bool = False
    by_reason: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Each order's decision, for an operator's `aws lambda invoke`; capped to stay far below
    # Lambda's 6 MB response limit (the per-reason counts always cover every order).
    decisions: list[dict] = field(default_factory=list)
    decisions_omitted: int = 0

    def to_json(self) -> dict:
        return {
            "window": self.window,
            "scheduled_at": self.scheduled_at.isoformat(),
            "judged_at": self.judged_at.isoformat(),
            "run_skipped": self.run_skipped,
            "orders_read": self.orders_read,
            "enqueued": self.enqueued,
            "segments": self.segments,
            "calls": self.calls,
            "dry_run": self.dry_run,
            "by_reason": dict(sorted(self.by_reason.items())),
            "warnings": self.warnings,
            "decisions": self.decisions,
            "decisions_omitted": self.decisions_omitted,
        }


def resolve_window(config: Config, text: str) -> Window:
    """The configured window an event names ("09:50-10:40", with or without "@ship-by")."""
    try:
        name = Window.parse(text).name
    except ValueError as exc:
        raise UnknownWindowError(f"window {text!r}: {exc}") from None
    for window in config.windows:
        if window.name == name:
            return window
    known = ", ".join(w.name for w in config.windows)
    raise UnknownWindowError(f"window {text!r} is not one of this stack's windows ({known})")


CLOCK_SKEW = timedelta(seconds=60)


def judged_at(run: WindowRun, window: Window, started_at: datetime, config: Config) -> datetime:
    """The instant the rules judge a run at: its scheduled time, but never later than its real start.

    A run a few seconds or minutes late is judged at its scheduled time, so the delay does not
    change the decisions. A scheduled time in the future is not trusted (an event replayed by
    hand, a wrong clock): the run is judged at its real start, so a Monday-morning event invoked on
    Sunday night finds Sunday night. A run that starts after its window has closed is judged at
    its real start too, so it finds itself outside the window and sends nothing.

    Up to ``CLOCK_SKEW`` ahead is clock skew between the scheduler and Lambda, not a future event:
    judged at its real start, a run invoked 50 ms before 09:50:00 would find itself outside the
    window and skip it whole.
    """
    day = run.scheduled_at.astimezone(config.shop.zone).date()
    _, end = window_bounds(window, day, config.shop.zone)
    if started_at >= end or run.scheduled_at - started_at > CLOCK_SKEW:
        return started_at
    return run.scheduled_at


def run_key(run: WindowRun, *, config: Config, started_at: datetime) -> dict[str, str]:
    """What makes two invocations the same plan: the window, by its canonical name, and the
    instant the run is judged at, in UTC, to the minute.

    Derived from the parsed event, not its text: "...T01:50:00Z" and "...T09:50:00+08:00", or the
    window with and without "@11:00", are one plan. The judged instant rather than the raw
    scheduled one, so that an event from the future (judged at its real start) cannot stand in
    for the real run of that window when it comes.
    """
    window = resolve_window(config, run.window)
    at = judged_at(run, window, started_at, config).astimezone(UTC).replace(second=0, microsecond=0)
    return {"window": window.name, "judged_at": at.strftime("%Y-%m-%dT%H:%MZ")}


def days_between(start: datetime, end: datetime, config: Config) -> list[date]:
    first = start.astimezone(config.shop.zone).date()
    last = end.astimezone(config.shop.zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def plan_window(
    run: WindowRun,
    *,
    config: Config,
    calendar: RestDayCalendar,
    orders: OrderRepository,
    ledger: ReminderLedger,
    queue: SendQueue,
    started_at: datetime,
    paused: bool = False,
    dry_run: bool = False,
    staff: StaffNotifier | None = None,
    template_params: bool = False,
) -> tuple[Plan | None, PlanSummary]:
    """Plan one window and queue its SMS. Returns the plan (None when the whole run was skipped
    before reading anything) and a summary for the logs and metrics.

    ``template_params``: the gateway sends registered templates (Alibaba Cloud): each SMS also
    carries its template's values (``messages.template_params``), judged at the same instant as
    its text. Otherwise the queued messages are exactly as before."""
    window = resolve_window(config, run.window)
    now = judged_at(run, window, started_at, config)
    summary = PlanSummary(window.name, run.scheduled_at, now, None, dry_run=dry_run)
    early = []
    if run.scheduled_at - started_at > CLOCK_SKEW:
        ahead = int((run.scheduled_at - started_at).total_seconds())
        early = [f"scheduled_time is {ahead} s after the real start: judged at the real start"]

    # The rules judge the event's window and nothing else: a run judged outside it (fired late,
    # replayed by hand into another window) is skipped whole as outside_window, so its rules,
    # deadlines, SQS delay and ledger label can never come from two different windows.
    skipped = run_level_skip(now, config=config, calendar=calendar, paused=paused, window=window)
    if skipped is not None:
        # Nothing can be sent: read nothing, so a paused shop or a holiday costs no reads.
        summary.run_skipped = skipped.value
        summary.warnings = early + [w for w in (calendar.year_warning(now.year),) if w]
        return None, summary

    rules = config.rules
    max_age = timedelta(hours=rules.max_age_hours)
    # Paid orders decide "paid the same day" for the oldest candidates too: read from the start
    # of the shop-local day of the oldest order still young enough to remind.
    oldest_day = (now - max_age).astimezone(config.shop.zone).date()
    since = wall_clock_instant(oldest_day, time(0, 0), config.shop.zone)
    records: list[Order | InvalidOrder] = list(orders.orders_for_planning(since))
    interval_start = now - timedelta(hours=rules.buyer_min_interval_hours)
    # A run judged at its scheduled time may start later, after SMS of this same window went out
    # (a re-run after a plan that failed once its sends were queued): read the sends up to the
    # real start too. The buyer rule counts sends after the judged instant (nudge.domain.rules).
    recent = ledger.recent_sends(interval_start, days_between(interval_start, max(now, started_at), config))
    draft = draft_plan(
        records,
        now=now,
        config=config,
        calendar=calendar,
        recent=recent,
        opted_out=ledger.opted_out_phones(),
        paused=paused,
        window=window,
    )
    # Only the orders the early rules left undecided need their ledger state read.
    states = ledger.states(draft.needs_ledger)
    today = now.astimezone(config.shop.zone).date()
    plan = finish_plan(draft, ledger=states, sent_today=ledger.sent_on(today))
    # A run invoked within the clock-skew allowance before its window opens plans as if on time,
    # but its SMS wait for the window: SQS holds them back, and the sender checks again.
    window_opens = window_bounds(window, today, config.shop.zone)[0]
    hold_back = math.ceil((window_opens - started_at).total_seconds())
    orders_by_id = {r.order_id: r for r in records if isinstance(r, Order)} if template_params else {}
    sends = [
        SendRequest(
            order_id=d.order_id,
            buyer_id=d.buyer_id,
            phone=d.phone_e164,
            attempt=d.attempt,
            text=d.message,
            segments=d.segments,
            not_after=d.not_after,
            day=today,
            window=window.name,
            planned_at=now,
            not_before=window_opens,
            variant=d.variant,
            template_params=(
                fill_template(orders_by_id[d.order_id], shop=config.shop, window=window, now=now)
                if template_params
                else None
            ),
        )
        for d in plan.decisions
        if isinstance(d, SendDecision)
    ]
    calls = [d.order_id for d in plan.decisions if isinstance(d, CallDecision)]
    if not dry_run:
        if sends:
            summary.enqueued = queue.enqueue(sends, delay_seconds=max(hold_back, 0))
        if calls:
            ledger.request_calls(calls, now)
            if staff is not None:  # one digest of this window's new calls (nudge.services.calls)
                problem = send_call_digest(staff, records, calls, window=window.name, now=now, config=config)
                if problem:
                    summary.warnings.append(problem)
        if plan.holdout_attempts:  # so the outcomes function can count their payments (the control group)
            ledger.mark_held_out(plan.holdout_attempts, now, window.name, today)
    summary.orders_read = len(records)
    summary.segments = sum(r.segments for r in sends)
    summary.calls = len(calls)
    summary.run_skipped = plan.run_skipped.value if plan.run_skipped else None
    summary.by_reason = plan.count_by_reason()
    summary.warnings = early + plan.warnings + summary.warnings
    listed = plan.decisions[:DECISIONS_IN_SUMMARY]
    summary.decisions = [
        {"order_id": d.order_id, "action": d.action.value, "reason": d.reason.value if d.reason else None}
        for d in listed
    ]
    summary.decisions_omitted = len(plan.decisions) - len(listed)
    return plan, summary
