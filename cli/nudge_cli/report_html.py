"""`nudge report --html FILE`: the report as one self-contained page a shop owner reads at a glance.

A pure function of the dict ``nudge report --json`` prints (``nudge.domain.report.build_report``)
and, optionally, the open calls ``nudge calls --json`` lists. The page loads nothing: no script,
font, stylesheet or image from anywhere; its charts are inline SVG drawn here, and a strict
Content-Security-Policy forbids everything but inline styles and data: images (there are none).
It opens offline in any browser and fits a phone's width.

Every string that can come from an order or from the shop's config (buyer names, items, order ids,
variant names, windows, currencies, failure codes, the shop's name) is HTML-escaped, quotes
included, in text and in attributes, in HTML and in SVG alike; buyer-written text is also wrapped
in ``<bdi>`` so a right-to-left override cannot reorder the rest of the line.

Sections appear only when the report has their data: ``by_variant`` (text experiments) and the
delivery figures (``delivered``, ``delivery_rate``, ``failed``, ``expired``) are optional keys.
This module is for the operator's machine only; it is never part of the Lambda layer.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from nudge.domain.report import MIN_ARM, NOT_ENOUGH_DATA, roi
from nudge.domain.stats import orders_per_variant, wilson

__all__ = ["CSP", "render_report_html"]

# No default source at all: inline <style> is the only thing the page may use (and data: images).
# base-uri and form-action do not fall back to default-src, so they are closed explicitly.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

W = 400  # every chart's viewBox width (CSS scales it to the card)
DASH = "–"
SAMPLE_LIFT = 0.05  # the difference the sample-size hint is worked out for (five points)

ACCENT = "#0f766e"
ACCENT_SOFT = "#99d5cc"
TRACK = "#eef2f1"
INK = "#1f2937"
MUTED = "#6b7280"
GOOD = "#15803d"
BAD = "#b91c1c"
NEUTRAL = "#6b7280"


def e(value: object) -> str:
    """Escaped for HTML text and attribute values (quotes too)."""
    return html.escape(str(value), quote=True)


def _b(value: object) -> str:
    """Buyer- or shop-written text: escaped and isolated from the surrounding text direction."""
    return f"<bdi>{e(value)}</bdi>"


# ------------------------------------------------------------------------------------ formatting


def _pct(rate: float | None, digits: int = 1) -> str:
    return DASH if rate is None else f"{rate * 100:.{digits}f}%"


def _points(diff: float) -> str:
    return f"{diff * 100:+.1f}"


def _axis_points(v: float) -> str:
    return "0" if not v else f"{v * 100:+g}".replace("-", "−")


def _ratio(r: float) -> str:
    if r >= 100:
        return f"{r:,.0f}"
    return f"{r:,.1f}" if r >= 10 else f"{r:,.2f}"


def _int(n: int) -> str:
    return f"{n:,}"


def _dec(value: object) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {str(value)[:40]!r}") from None
    if not d.is_finite():
        raise ValueError(f"not an amount: {str(value)[:40]!r}")
    return d


def _money(value: object) -> str:
    """An exact money string with thousands separators ("12345.60" -> "12,345.60")."""
    return format(_dec(value), ",f")


def _amounts(recovered: dict[str, str]) -> str:
    return ", ".join(f"{_money(a)} {c}" for c, a in recovered.items()) or "0"


def _nice(top: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``top`` (an axis maximum)."""
    if top <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * base >= top - 1e-12:
            return step * base
    return 10 * base


# Rate axes whose quarters are round percentages.
RATE_AXES = (0.04, 0.08, 0.2, 0.4, 0.6, 0.8, 1.0)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------------------- charts


@dataclass(frozen=True, slots=True)
class _Bar:
    label: str  # the x-axis label
    value: float
    tip: str  # the hover text


def _svg(name: str, height: float, title: str, body: Iterable[str]) -> str:
    return (
        f'<svg class="chart" data-chart="{e(name)}" viewBox="0 0 {W} {_num(height)}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{e(title)}">'
        f"<title>{e(title)}</title>{''.join(body)}</svg>"
    )


def _column_chart(name: str, title: str, bars: Sequence[_Bar], fmt: Any) -> str:
    """Vertical bars (one per day), a light grid at 0, half and the top."""
    left, right, top, bottom, height = 46.0, 6.0, 10.0, 22.0, 180.0
    plot_w, plot_h = W - left - right, height - top - bottom
    peak = _nice(max((b.value for b in bars), default=0.0))
    out = []
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        out.append(f'<path d="M{_num(left)} {_num(y)}H{_num(W - right)}" stroke="#e5e7eb" stroke-width="1"/>')
        out.append(
            f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end" class="axis">{e(fmt(peak * frac))}</text>'
        )
    n = max(len(bars), 1)
    slot = plot_w / n
    gap = min(slot * 0.25, 6.0)
    every = max(1, math.ceil(n / 8))  # at most ~8 labels along the axis
    for i, bar in enumerate(bars):
        x = left + i * slot + gap / 2
        h = plot_h * bar.value / peak if peak else 0.0
        if bar.value > 0:
            h = max(h, 1.5)  # a small day still shows
        out.append(
            f'<rect x="{_num(x)}" y="{_num(top + plot_h - h)}" width="{_num(max(slot - gap, 0.5))}" '
            f'height="{_num(h)}" rx="2" fill="{ACCENT}"><title>{e(bar.tip)}</title></rect>'
        )
        if i % every == 0:
            out.append(
                f'<text x="{_num(left + i * slot + slot / 2)}" y="{_num(height - 6)}" text-anchor="middle" '
                f'class="axis">{e(bar.label)}</text>'
            )
    return _svg(name, height, title, out)


@dataclass(frozen=True, slots=True)
class _Rate:
    label: str
    rate: float | None
    lower: float | None
    upper: float | None
    note: str  # right-hand text, e.g. "132 of 320 paid"


def _rate_row(label: str, paid: int, whole: int, noun: str = "paid") -> _Rate:
    if whole <= 0:
        return _Rate(label, None, None, None, "no orders counted here")
    ci = wilson(min(paid, whole), whole)
    return _Rate(label, paid / whole, ci.lower, ci.upper, f"{_int(paid)} of {_int(whole)} {noun}")


def _rate_chart(name: str, title: str, rows: Sequence[_Rate]) -> str:
    """One horizontal bar per row (the rate) with its 95% interval as a whisker; the label and the
    figures sit on a line above the bar, so long names keep the full width on a phone."""
    row_h, axis_h = 44.0, 18.0
    top = max(((r.upper if r.upper is not None else r.rate) or 0.0) for r in rows) if rows else 0.0
    peak = next(p for p in RATE_AXES if p >= top - 1e-12)
    height = row_h * len(rows) + axis_h
    out = []
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = W * frac
        out.append(
            f'<path d="M{_num(x)} 0V{_num(height - axis_h)}" stroke="#e5e7eb" stroke-width="1"/>'
            f'<text x="{_num(min(max(x, 12), W - 16))}" y="{_num(height - 4)}" text-anchor="middle" '
            f'class="axis">{e(_pct(peak * frac, 0))}</text>'
        )
    for i, r in enumerate(rows):
        y = i * row_h
        out.append(
            f'<text x="0" y="{_num(y + 14)}" class="label"><title>{e(r.label)}</title>{e(_short(r.label, 24))}</text>'
        )
        figure = f"{_pct(r.rate)} · {r.note}" if r.rate is not None else r.note
        out.append(f'<text x="{W}" y="{_num(y + 14)}" text-anchor="end" class="figure">{e(figure)}</text>')
        track_y = y + 21
        out.append(f'<rect x="0" y="{_num(track_y)}" width="{W}" height="14" rx="3" fill="{TRACK}"/>')
        if r.rate is None:
            continue
        tip = f"{r.label}: {_pct(r.rate)}"
        if r.lower is not None and r.upper is not None:
            tip += f" (95% interval {_pct(r.lower)} to {_pct(r.upper)})"
        width = W * r.rate / peak
        out.append(
            f'<rect x="0" y="{_num(track_y)}" width="{_num(max(width, 1.0))}" height="14" rx="3" '
            f'fill="{ACCENT_SOFT}"><title>{e(tip)}</title></rect>'
        )
        if r.lower is not None and r.upper is not None:
            lo, hi, mid = W * r.lower / peak, W * r.upper / peak, track_y + 7
            out.append(
                f'<path d="M{_num(lo)} {_num(mid)}H{_num(hi)}M{_num(lo)} {_num(mid - 5)}V{_num(mid + 5)}'
                f'M{_num(hi)} {_num(mid - 5)}V{_num(mid + 5)}" stroke="{INK}" stroke-width="1.6" fill="none"/>'
            )
            out.append(
                f'<path d="M{_num(width)} {_num(track_y - 1)}V{_num(track_y + 15)}" stroke="{ACCENT}" stroke-width="3"/>'
            )
    return _svg(name, height, title, out)


@dataclass(frozen=True, slots=True)
class _Diff:
    label: str
    diff: float | None
    lower: float | None
    upper: float | None
    note: str


def _verdict(lower: float, upper: float) -> str:
    if lower > 0:
        return "higher"
    if upper < 0:
        return "lower"
    return "unclear"


def _diff_chart(name: str, title: str, rows: Sequence[_Diff]) -> str:
    """A difference in points with its 95% interval, around a zero line (a forest plot)."""
    row_h, axis_h = 44.0, 18.0
    spread = max([abs(v) for r in rows for v in (r.diff, r.lower, r.upper) if v is not None] + [0.02])
    span = min(_nice(spread), 1.0)
    height = row_h * len(rows) + axis_h

    def x(v: float) -> float:
        return W / 2 + (W / 2 - 8) * v / span

    out = [
        f'<path d="M{_num(x(0))} 0V{_num(height - axis_h)}" stroke="{MUTED}" stroke-width="1" stroke-dasharray="3 3"/>'
    ]
    for v in (-span, 0.0, span):
        out.append(
            f'<text x="{_num(min(max(x(v), 14), W - 14))}" y="{_num(height - 4)}" text-anchor="middle" '
            f'class="axis">{e(_axis_points(v))}</text>'
        )
    for i, r in enumerate(rows):
        y = i * row_h
        out.append(
            f'<text x="0" y="{_num(y + 14)}" class="label"><title>{e(r.label)}</title>{e(_short(r.label, 24))}</text>'
        )
        out.append(f'<text x="{W}" y="{_num(y + 14)}" text-anchor="end" class="figure">{e(r.note)}</text>')
        mid = y + 28
        out.append(
            f'<rect x="0" y="{_num(mid - 7)}" width="{W}" height="14" rx="3" fill="{TRACK}" opacity="0.6"/>'
        )
        if r.diff is None:
            continue
        colour = NEUTRAL
        if r.lower is not None and r.upper is not None:
            colour = {"higher": GOOD, "lower": BAD, "unclear": NEUTRAL}[_verdict(r.lower, r.upper)]
            lo, hi = x(r.lower), x(r.upper)
            out.append(
                f'<path d="M{_num(lo)} {_num(mid)}H{_num(hi)}M{_num(lo)} {_num(mid - 6)}V{_num(mid + 6)}'
                f'M{_num(hi)} {_num(mid - 6)}V{_num(mid + 6)}" stroke="{colour}" stroke-width="2" fill="none"/>'
            )
        cx = x(r.diff)
        out.append(
            f'<rect x="{_num(cx - 5)}" y="{_num(mid - 5)}" width="10" height="10" rx="2" fill="{colour}">'
            f"<title>{e(r.label)}: {e(_points(r.diff))} points</title></rect>"
        )
    return _svg(name, height, title, out)


def _count_chart(name: str, title: str, items: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars for counts (failure codes)."""
    row_h = 30.0
    peak = max((n for _, n in items), default=0) or 1
    height = row_h * len(items) + 4
    out = []
    for i, (label, n) in enumerate(items):
        y = i * row_h
        out.append(f'<text x="0" y="{_num(y + 13)}" class="label">{e(_short(label, 40))}</text>')
        out.append(f'<text x="{W}" y="{_num(y + 13)}" text-anchor="end" class="figure">{e(_int(n))}</text>')
        out.append(
            f'<rect x="0" y="{_num(y + 18)}" width="{_num(max(W * n / peak, 1.0))}" height="8" rx="2" '
            f'fill="{BAD}" opacity="0.75"><title>{e(label)}: {e(_int(n))}</title></rect>'
        )
    return _svg(name, height, title, out)


# -------------------------------------------------------------------------------------- sections


def _section(sid: str, title: str, body: str, caption: str = "", *, wide: bool = False) -> str:
    """A card: ``body`` is markup (escaped by its maker), ``caption`` plain text (escaped here)."""
    cap = f'<p class="caption">{e(caption)}</p>' if caption else ""
    cls = "card wide" if wide else "card"
    return f'<section class="{cls}" id="{e(sid)}"><h2>{e(title)}</h2>{body}{cap}</section>'


def _tile(label: str, value: str, sub: str, tid: str) -> str:
    return (
        f'<div class="tile" id="{e(tid)}"><div class="tile-label">{e(label)}</div>'
        f'<div class="tile-value">{value}</div><div class="tile-sub">{sub}</div></div>'
    )


def _headline(report: dict[str, Any], currency: str | None) -> str:
    recovered: dict[str, str] = report["recovered"]
    main = currency if currency in recovered else next(iter(recovered), currency)
    if main and main in recovered:
        value = f"{e(_money(recovered[main]))} <small>{e(main)}</small>"
    else:
        value = f"0 <small>{e(currency or '')}</small>"
    others = [f"{_money(a)} {c}" for c, a in recovered.items() if c != main]
    sub = f"from {e(_int(report['paid']))} orders paid after a reminder"
    if others:
        sub += f"; also {e(', '.join(others))}"
    tiles = [_tile("Recovered", value, sub, "tile-recovered")]

    median = report.get("median_minutes_to_pay")
    paid_sub = f"{e(_int(report['paid']))} of {e(_int(report['reminded']))} reminded orders"
    if median is not None:
        paid_sub += f"; half paid within {e(_num(float(median)))} min"
    tiles.append(_tile("Paid after a reminder", e(_pct(report["paid_rate"])), paid_sub, "tile-paid-rate"))

    cost = f"{e(_money(report['cost']))}" + (f" <small>{e(currency)}</small>" if currency else "")
    tiles.append(
        _tile(
            "SMS cost (estimated)",
            cost,
            f"{e(_int(report['sms']))} SMS, {e(_int(report['segments']))} segments",
            "tile-cost",
        )
    )
    ratio = roi(report, currency) if currency else None
    if ratio is None:
        tiles.append(_tile("Return on SMS", DASH, "no SMS cost in these days", "tile-roi"))
    else:
        tiles.append(
            _tile(
                "Return on SMS",
                f"{e(_ratio(ratio))}<small>×</small>",
                f"{e(currency)} recovered per 1 {e(currency)} of SMS",
                "tile-roi",
            )
        )
    h = report.get("holdout")
    if h is not None:
        if h.get("lift") is not None and h.get("ci95"):
            lo, hi = h["ci95"]
            tiles.append(
                _tile(
                    "Lift over no SMS",
                    f"{e(_points(h['lift']))}<small> points</small>",
                    f"95% interval {e(_points(lo))} to {e(_points(hi))}",
                    "tile-lift",
                )
            )
        else:
            tiles.append(_tile("Lift over no SMS", "…", "not enough data yet", "tile-lift"))
    return f'<section class="tiles">{"".join(tiles)}</section>'


def _days(report: dict[str, Any]) -> list[date]:
    first, last = date.fromisoformat(report["from"]), date.fromisoformat(report["to"])
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _by_day(report: dict[str, Any], currency: str | None) -> str:
    rows = {r["day"]: r for r in report["by_day"]}
    days = _days(report)
    if not report["by_day"]:
        return _section("by-day", "Recovered by day", "", "No reminder was sent in these days.", wide=True)
    currencies = sorted({c for r in report["by_day"] for c in r["recovered"]})
    main = currency if currency in currencies or not currencies else currencies[0]
    orders, money = [], []
    for d in days:
        row = rows.get(d.isoformat())
        label = d.strftime("%m-%d")
        paid = row["paid"] if row else 0
        amount = _dec(row["recovered"].get(main, "0")) if row and main else Decimal(0)
        orders.append(_Bar(label, paid, f"{d.isoformat()}: {paid} orders paid after a reminder"))
        money.append(_Bar(label, float(amount), f"{d.isoformat()}: {_money(amount)} {main or ''} recovered"))
    body = (
        '<div class="pair"><div><h3>Orders paid after a reminder</h3>'
        + _column_chart("by-day-orders", "Orders paid after a reminder, by day", orders, lambda v: _num(v))
        + f"</div><div><h3>Recovered revenue ({e(main or '')})</h3>"
        + _column_chart(
            "by-day-revenue",
            f"Recovered revenue in {main or ''}, by day",
            money,
            lambda v: f"{v:,.0f}" if v >= 10 else _num(v),
        )
        + "</div></div>"
    )
    caption = "Each order counts on the day of the reminder its payment is credited to."
    others = [c for c in currencies if c != main]
    if others:
        caption += f" Also recovered in {', '.join(others)} (not drawn)."
    return _section("by-day", "Recovered by day", body, caption, wide=True)


RATE_CAPTION = (
    "The bar is the share of reminded orders that paid; the black line is its 95% interval: "
    "the true rate most likely lies on it. Few orders make a long line."
)


def _rates_section(sid: str, title: str, rows: list[dict[str, Any]], key: str, label: Any) -> str:
    if not rows:
        return _section(sid, title, "", "No reminder was sent in these days.")
    rates = [_rate_row(label(r[key]), r["paid"], r["reminded"]) for r in rows]
    caption = RATE_CAPTION
    if any(r["reminded"] < MIN_ARM for r in rows):
        caption += f" Rows under {MIN_ARM} orders: not enough data yet for a firm answer."
    return _section(sid, title, _rate_chart(sid, title, rates), caption)


def _ci(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        return float(value[0]), float(value[1])
    return None


def _by_variant(report: dict[str, Any]) -> str:
    rows: list[dict[str, Any]] = report.get("by_variant") or []
    if not rows:
        return ""
    title = "Which text pays? Paid rate by variant"
    rates = [_rate_row(str(r["variant"]), r["paid"], r["reminded"]) for r in rows]
    first = str(rows[0]["variant"])
    diffs = []
    lines = []
    for i, r in enumerate(rows):
        name = str(r["variant"])
        recovered = _amounts(r["recovered"])
        if i == 0:
            diffs.append(_Diff(name, 0.0, None, None, "the baseline"))
            lines.append(
                f"<li>{_b(name)}: the baseline the others are compared with; recovered {e(recovered)}.</li>"
            )
            continue
        ci = _ci(r.get("ci95"))
        diff = r.get("diff")
        if ci is None or diff is None:
            reason = r.get("ci95") if isinstance(r.get("ci95"), str) else NOT_ENOUGH_DATA
            diffs.append(_Diff(name, diff if ci else None, None, None, f"{reason} yet"))
            lines.append(
                f"<li>{_b(name)}: {e(reason)} yet (under {MIN_ARM} orders in a variant); recovered {e(recovered)}.</li>"
            )
            continue
        lo, hi = ci
        diffs.append(
            _Diff(name, float(diff), lo, hi, f"{_points(diff)} points ({_points(lo)} to {_points(hi)})")
        )
        verdict = {
            "higher": "pays better",
            "lower": "pays worse",
            "unclear": "no clear difference yet",
        }[_verdict(lo, hi)]
        lines.append(
            f"<li>{_b(name)} vs {_b(first)}: {verdict}, {e(_points(diff))} points, "
            f"95% interval {e(_points(lo))} to {e(_points(hi))}; recovered {e(recovered)}.</li>"
        )
    body = (
        '<div class="pair"><div><h3>Paid rate</h3>'
        + _rate_chart("by-variant", title, rates)
        + f"</div><div><h3>Difference to {_b(first)}, in points</h3>"
        + _diff_chart("variant-diff", f"Paid-rate difference to {first}, in points", diffs)
        + f'</div></div><ul class="plain">{"".join(lines)}</ul>'
    )
    caption = (
        "A variant is better only when its whole interval lies right of zero (green); "
        "an interval across zero means no clear difference yet: keep the test running."
    )
    base = rows[0]["paid_rate"]
    if base is not None and 0 <= base + SAMPLE_LIFT <= 1:
        need = orders_per_variant(base, SAMPLE_LIFT)
        have = min(r["reminded"] for r in rows)
        caption += (
            f" To see a {SAMPLE_LIFT * 100:.0f}-point difference at a {_pct(base, 0)} paid rate, "
            f"each variant needs about {_int(need)} reminded orders (the smallest has {_int(have)})."
        )
    return _section("by-variant", title, body, caption, wide=True)


def _holdout(report: dict[str, Any]) -> str:
    title = "Do the reminders make buyers pay? Holdout"
    h = report.get("holdout")
    if h is None:
        return _section(
            "holdout",
            title,
            "",
            "No holdout in these days, so the page cannot tell how many buyers would have paid "
            "without an SMS. Set rules.holdout_percent (for example 10) to measure it.",
        )
    rows = [
        _rate_row("Reminded", report["paid"], report["reminded"]),
        _rate_row("Held out (no SMS)", h["paid"], h["orders"]),
    ]
    body = _rate_chart("holdout", "Paid rate: reminded vs held out", rows)
    ci = _ci(h.get("ci95"))
    if h.get("lift") is None or ci is None:
        caption = (
            f"Not enough data yet: the lift needs at least {MIN_ARM} orders in each group "
            f"(now {_int(report['reminded'])} reminded, {_int(h['orders'])} held out)."
        )
        return _section("holdout", title, body, caption)
    lift = float(h["lift"])
    lo, hi = ci
    body += "<h3>Lift of the reminders, in points</h3>" + _diff_chart(
        "holdout-lift",
        "Lift: reminded paid rate minus held-out paid rate",
        [_Diff("Lift", lift, lo, hi, f"{_points(lift)} ({_points(lo)} to {_points(hi)})")],
    )
    verdict = {
        "higher": "The reminders raise the paid rate",
        "lower": "The reminded orders pay less often than the held-out ones",
        "unclear": "No clear effect yet (the interval includes zero)",
    }[_verdict(lo, hi)]
    caption = (
        f"{verdict}: {_points(lift)} points, 95% interval {_points(lo)} to {_points(hi)}. "
        "Orders are counted in the group they were assigned to."
    )
    return _section("holdout", title, body, caption)


DELIVERY_KEYS = ("delivered", "delivery_rate", "failed", "expired", "unknown")


def _delivery(report: dict[str, Any]) -> str:
    if not any(k in report for k in DELIVERY_KEYS):
        return ""
    title = "Did the SMS arrive? Delivery receipts"
    delivered = report.get("delivered")
    rate = report.get("delivery_rate")
    failed: dict[str, int] = report.get("failed") or {}
    expired = report.get("expired")
    unknown = report.get("unknown")
    if rate is None and not delivered and not failed and not expired and not unknown:
        return _section("delivery", title, "", "No delivery receipts yet for these days.")
    failed_total = sum(failed.values())
    parts = []
    if rate is not None:
        answered = (delivered or 0) + failed_total + (expired or 0) + (unknown or 0)
        note = f"{_int(delivered or 0)} of {_int(answered)} with a final status" if answered else ""
        row = _Rate("Delivered", float(rate), None, None, note)
        if delivered is not None and answered and delivered <= answered:
            ci = wilson(delivered, answered)
            if abs(delivered / answered - float(rate)) < 0.001:  # the same definition: draw its interval
                row = _Rate("Delivered", float(rate), ci.lower, ci.upper, note)
        parts.append(_rate_chart("delivery", "Delivery rate", [row]))
    facts = []
    if delivered is not None:
        facts.append(f"{e(_int(delivered))} delivered")
    facts.append(f"{e(_int(failed_total))} failed")
    if expired is not None:
        facts.append(f"{e(_int(expired))} expired (not taken before its deadline)")
    if unknown is not None:
        facts.append(f"{e(_int(unknown))} unknown (no final receipt within 72 h)")
    parts.append(f'<p class="facts">{" · ".join(facts)}</p>')
    if failed:
        items = sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))
        parts.append(
            "<h3>Failures by code</h3>" + _count_chart("delivery-failed", "Failed SMS by code", items)
        )
    caption = (
        "The rate counts the SMS with a final status: a receipt came back for it, or none came"
        " within 72 h (unknown)."
    )
    return _section("delivery", title, "".join(parts), caption)


def _when(text: object) -> str:
    """An ISO time as "2026-11-29 18:00 +08:00" (the text as given if it is not one)."""
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)
    out = t.strftime("%Y-%m-%d %H:%M")
    if t.utcoffset() is not None:
        out += " " + t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]
    return out


def _calls(calls: list[dict[str, Any]] | None) -> str:
    if calls is None:
        return ""
    title = "Call list: open calls"
    if not calls:
        return _section("calls", title, "", "No open calls: nobody is waiting for a phone call.", wide=True)
    rows = []
    for c in calls:
        count = int(c.get("calls") or 0)
        rows.append(
            "<tr>"
            f'<td class="mono">{_b(c["order_id"])}</td>'
            f'<td class="num">{e(_money(c["amount"]))} {e(c.get("currency") or "")}</td>'
            f"<td>{_b(c.get('item') or DASH)}</td>"
            f"<td>{_b(c.get('buyer_name') or DASH)}</td>"
            f"<td>{e(_when(c['closes_at']))}</td>"
            f'<td class="num">{e(count)}</td>'
            "</tr>"
        )
    table = (
        '<div class="scroll"><table><thead><tr><th>Order</th><th>Amount</th><th>Item</th>'
        "<th>Buyer</th><th>Closes</th><th>Calls</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    caption = (
        f"{_int(len(calls))} order(s) still unpaid after the reminders, closing first at the top. "
        "Record a call with: nudge calls done ORDER --by NAME --note TEXT"
    )
    return _section("calls", title, table, caption, wide=True)


STYLE = """
*{box-sizing:border-box}
body{margin:0;background:#f6f7f6;color:#1f2937;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","PingFang SC","Microsoft YaHei",sans-serif}
main{max-width:980px;margin:0 auto;padding:16px}
header h1{font-size:1.45rem;margin:0 0 2px}
header p{margin:0;color:#6b7280}
h2{font-size:1.05rem;margin:0 0 10px}
h3{font-size:.9rem;margin:14px 0 6px;color:#374151;font-weight:600}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,170px),1fr));gap:10px;margin:16px 0}
.tile{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.tile-label{font-size:.8rem;color:#6b7280;text-transform:uppercase;letter-spacing:.03em}
.tile-value{font-size:1.35rem;font-weight:700;color:#0f766e;line-height:1.2;margin:4px 0;overflow-wrap:anywhere}
.tile-value small{font-size:.85rem;font-weight:600;margin-left:2px;color:#374151}
.tile-sub{font-size:.82rem;color:#4b5563}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr));gap:12px}
.card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06);min-width:0}
.card.wide{grid-column:1/-1}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,380px),1fr));gap:12px}
.chart{display:block;width:100%;height:auto;overflow:visible}
.chart text{font-size:12px;fill:#374151}
.chart .axis{font-size:10.5px;fill:#6b7280}
.chart .label{font-weight:600;fill:#111827}
.chart .figure{fill:#374151}
.caption{font-size:.85rem;color:#4b5563;margin:10px 0 0}
.facts{margin:8px 0 0;font-size:.9rem}
ul.plain{margin:10px 0 0;padding-left:18px;font-size:.9rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{font-size:.78rem;color:#6b7280;text-transform:uppercase;letter-spacing:.03em}
td.num{text-align:right;white-space:nowrap}
td.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85rem}
footer{color:#6b7280;font-size:.8rem;margin:18px 0 8px}
@media (max-width:520px){main{padding:10px}.tile-value{font-size:1.35rem}.card{padding:12px}
.chart text{font-size:15px}.chart .axis{font-size:13px}}
"""


def render_report_html(
    report: dict[str, Any],
    *,
    calls: list[dict[str, Any]] | None = None,
    shop_name: str,
    generated_at: datetime,
    currency: str | None = None,
) -> str:
    """The page for ``report`` (the dict ``nudge report --json`` prints).

    ``calls``: the open calls as ``nudge calls --json`` lists them (its ``"calls"`` list), or None
    to leave the section out. ``currency``: the cost's currency when the report has no
    ``cost_currency`` key (ROI counts recovered money in that currency only).
    ``generated_at`` is printed as given (pass it in the shop's zone).
    """
    cur = report.get("cost_currency") or currency
    period = f"{report['from']} to {report['to']}"
    cards = [
        _by_day(report, cur),
        _rates_section("by-window", "Paid rate by sending window", report["by_window"], "window", str),
        _rates_section(
            "by-attempt", "Paid rate by reminder", report["by_attempt"], "attempt", lambda a: f"Reminder {a}"
        ),
        _holdout(report),
        _delivery(report),
        _by_variant(report),
        _calls(calls),
    ]
    generated = generated_at.strftime("%Y-%m-%d %H:%M")
    if generated_at.utcoffset() is not None:
        z = generated_at.strftime("%z")
        generated += f" {z[:3]}:{z[3:]}"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(shop_name)}: Nudge report {e(period)}</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f"<header><h1>{_b(shop_name)}: what the payment reminders brought back</h1>"
        f"<p>{e(period)} · made {e(generated)} by Nudge</p></header>"
        f"{_headline(report, cur)}"
        f'<div class="grid">{"".join(cards)}</div>'
        "<footer>Estimated SMS cost: segments × the configured price per segment. "
        "Recovered: orders paid after a reminder, within the attribution window, credited to the last "
        "reminder before payment. Intervals are 95% (Wilson for a rate, Newcombe for a difference).</footer>"
        "</main></body></html>\n"
    )
