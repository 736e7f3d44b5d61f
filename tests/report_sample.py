"""A realistic two-week report for the HTML page's tests and the README's screenshot, and a
headless Chromium runner.

The figures come from the real ``build_report`` over generated ledger records (a shop with two
sending windows, two reminders, a 10% holdout and an A/B test of two first-reminder texts); the
delivery figures are added in the shape ``nudge report --json`` will give them once receipts exist.

Regenerate the README's screenshot (needs Debian's ``chromium``)::

    PYTHONPATH=layers/nudge:cli:. python -m tests.report_sample docs/report-screenshot.png
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from nudge.domain.outcomes import HoldoutMark, Outcome, SmsSent
from nudge.domain.report import build_report
from tests.builders import SHANGHAI

ZONE = SHANGHAI
FIRST = date(2026, 11, 16)
DAYS = 14
PRICE = Decimal("0.045")
WINDOWS = ("09:50-10:40", "15:00-16:50")
VARIANTS = ("caring", "cutoff")
SHOP = "Little Lotus Tea"
GENERATED_AT = datetime(2026, 11, 30, 9, 5, tzinfo=ZONE)
ITEMS = (
    "Tieguanyin oolong 250 g",
    "Longjing green tea gift box",
    "Yixing clay teapot",
    "Pu'er cake 357 g (2019)",
    "Jasmine pearls 100 g",
)


@dataclass(frozen=True)
class Records:
    sms: list[SmsSent]
    outcomes: list[Outcome]
    held_out: list[HoldoutMark]
    variant_of: dict[str, str]


def _records(seed: int = 17) -> Records:
    rnd = random.Random(seed)
    sms: list[SmsSent] = []
    outcomes: list[Outcome] = []
    held: list[HoldoutMark] = []
    variant_of: dict[str, str] = {}
    n = 0
    for d in range(DAYS):
        day = FIRST + timedelta(days=d)
        weekend = day.weekday() >= 5
        for _ in range(rnd.randint(70, 95) + (35 if weekend else 0)):
            n += 1
            oid = f"o-{n:05d}"
            w = rnd.random() < 0.55
            window = WINDOWS[0] if w else WINDOWS[1]
            hh, mm = (10, rnd.randint(0, 39)) if w else (rnd.choice((15, 16)), rnd.randint(0, 49))
            first_at = datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZONE)
            amount = Decimal(rnd.choice(("39.90", "68.00", "128.00", "199.00", "268.00", "458.00")))
            if rnd.random() < 0.10:  # held out: never texted; some pay anyway
                held.append(HoldoutMark(oid, first_at, first_at, window))
                if rnd.random() < 0.19:
                    minutes = rnd.uniform(30, 2400)
                    outcomes.append(_outcome(oid, None, first_at, minutes, amount, window, holdout=True))
                continue
            variant = VARIANTS[n % 2]
            variant_of[oid] = variant
            segments = 2 if variant == "cutoff" else 1
            sms.append(SmsSent(oid, 1, first_at, window, segments, variant))
            p1 = (0.33 if w else 0.28) + (0.035 if variant == "cutoff" else 0.0)
            if rnd.random() < p1:
                outcomes.append(_outcome(oid, 1, first_at, rnd.expovariate(1 / 55), amount, window))
                continue
            if rnd.random() < 0.7:  # the second reminder, next window
                second_at = first_at + timedelta(hours=5, minutes=10)
                window2 = WINDOWS[1] if w else WINDOWS[0]
                if not w:
                    second_at = first_at + timedelta(hours=18)
                sms.append(SmsSent(oid, 2, second_at, window2, 2, variant))
                if rnd.random() < 0.14:
                    minutes = rnd.expovariate(1 / 80)
                    outcomes.append(_outcome(oid, 2, second_at, minutes, amount, window2))
    return Records(sms, outcomes, held, variant_of)


def _outcome(
    oid: str,
    attempt: int | None,
    at: datetime,
    minutes: float,
    amount: Decimal,
    window: str,
    *,
    holdout: bool = False,
) -> Outcome:
    return Outcome(
        order_id=oid,
        holdout=holdout,
        attempt=attempt,
        sms_at=at,
        paid_at=at + timedelta(minutes=minutes),
        minutes_to_pay=round(minutes, 1),
        amount=amount,
        currency="CNY",
        window=window,
        attribution_hours=72,
    )


FIGURES = ("reminded", "sms", "segments", "cost", "paid", "paid_rate", "recovered", "median_minutes_to_pay")


def _build(sms: list[SmsSent], outcomes: list[Outcome], held: list[HoldoutMark]) -> dict[str, Any]:
    return build_report(
        sms=sms,
        outcomes=outcomes,
        held_out=held,
        first_day=FIRST,
        last_day=FIRST + timedelta(days=DAYS - 1),
        zone=ZONE,
        price_per_segment=PRICE,
        currency="CNY",
        variants=list(VARIANTS),
    )


def sample_report(*, variants: bool = True, delivery: bool = True, holdout: bool = True) -> dict[str, Any]:
    """The report dict ``nudge report --json`` prints for the sample shop (JSON types only)."""
    records = _records()
    held = records.held_out if holdout else []
    outcomes = [o for o in records.outcomes if holdout or not o.holdout]
    report = _build(records.sms, outcomes, held)
    report["cost_currency"] = "CNY"
    if not variants:  # the page before a text experiment: no SMS carried a variant
        report["by_variant"] = []
    if delivery:
        failed = {"UNREACHABLE": 23, "CARRIER_BLOCKED": 7, "INVALID_NUMBER": 4}
        expired, unknown = 5, 6
        delivered = report["sms"] - sum(failed.values()) - expired - unknown - 12  # 12 without a receipt yet
        report["delivered"] = delivered
        report["failed"] = failed
        report["expired"] = expired
        report["unknown"] = unknown  # no final receipt within 72 h
        report["delivery_rate"] = round(delivered / (delivered + sum(failed.values()) + expired + unknown), 4)
    return report


def sample_calls() -> list[dict[str, Any]]:
    """Open calls as ``nudge calls --json`` lists them (its "calls" list)."""
    names = ("Wang Fang", "Li Wei", "Maria Santos", "Chen Jing", "Tom O'Brien")
    out = []
    for i, name in enumerate(names):
        closes = datetime(2026, 11, 30, 12 + i, 0, tzinfo=ZONE)
        out.append(
            {
                "order_id": f"o-{2040 + i * 7:05d}",
                "amount": ("458.00", "199.00", "268.00", "128.00", "68.00")[i],
                "currency": "CNY",
                "item": ITEMS[i],
                "closes_at": closes.isoformat(),
                "buyer_name": name,
                "requested_at": (closes - timedelta(hours=30)).isoformat(),
                "calls": 1 if i == 3 else 0,
                "last_call": None,
            }
        )
    return out


# ------------------------------------------------------------------------------ headless Chromium

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def chromium_path() -> str | None:
    """Debian's chromium, or whatever `chromium` is on PATH; None when there is none."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


def run_chromium(page: Path, *extra: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Open ``page`` (a local file) in a fresh headless profile; stdout and stderr as text."""
    binary = chromium_path()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="nudge-chromium-") as profile:
        return subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "HOME": profile},
        )


def console_messages(stderr: str) -> list[str]:
    """The page's console messages in Chromium's log (CSP violations and errors land there)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def sample_page() -> str:
    from nudge_cli.report_html import render_report_html

    return render_report_html(
        sample_report(), calls=sample_calls(), shop_name=SHOP, generated_at=GENERATED_AT
    )


# Order data and names an attacker can choose: each must show as text, never become markup.
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
SVG_BREAK = "</text></svg><svg onload=alert(3)>"
ATTR = "' onmouseover='alert(4)"
HOSTILE = (SCRIPT, IMG, SVG_BREAK, ATTR)


def hostile_report() -> dict[str, Any]:
    """The sample with hostile strings wherever the report carries a name from outside."""
    report = sample_report()
    report["by_variant"][0]["variant"] = IMG
    report["by_variant"][1]["variant"] = SVG_BREAK
    report["by_window"][0]["window"] = SCRIPT
    report["by_window"][1]["window"] = ATTR
    report["failed"] = {SCRIPT: 3, IMG: 2}
    report["recovered"] = {**report["recovered"], SVG_BREAK: "1.00"}
    return report


def hostile_calls() -> list[dict[str, Any]]:
    calls = sample_calls()
    calls[0].update(buyer_name=SCRIPT, item=IMG)
    calls[1].update(buyer_name=IMG, item=SVG_BREAK, order_id=ATTR)
    calls[2].update(buyer_name="\u202eevil", currency=SCRIPT)
    return calls


def hostile_page() -> str:
    from nudge_cli.report_html import render_report_html

    return render_report_html(
        hostile_report(), calls=hostile_calls(), shop_name=IMG, generated_at=GENERATED_AT
    )


def need_chromium() -> str:
    """The chromium to test with. Without one: skip on a developer's machine, fail under CI (the
    CI script installs it, so a missing browser there is a broken setup, not a reason to pass)."""
    import pytest

    binary = chromium_path()
    if binary is not None:
        return binary
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail("CI is set but chromium is not installed: .ci/run installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); under CI=true this fails instead")


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/report-screenshot.png")
    width = int(argv[1]) if len(argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(sample_page(), encoding="utf-8")
        height = int(argv[2]) if len(argv) > 2 else 2400
        done = run_chromium(page, f"--screenshot={out.resolve()}", f"--window-size={width},{height}")
    if done.returncode != 0 or not out.exists():
        print(done.stderr[-2000:], file=sys.stderr)
        return 1
    print(f"{out}: {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
