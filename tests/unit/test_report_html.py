"""`nudge report --html`: the page's renderer (nudge_cli.report_html), a pure function.

Escaping of everything that comes from orders or names, sections only where the report has data,
nothing loaded from anywhere, and the figures shown are the report's. The page in a real browser:
tests/test_report_browser.py.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from html.parser import HTMLParser

import pytest

from nudge.domain.report import roi
from nudge.domain.stats import wilson
from nudge_cli.report_html import CSP, render_report_html
from tests.builders import SHANGHAI
from tests.report_sample import (
    GENERATED_AT,
    HOSTILE,
    IMG,
    SCRIPT,
    SHOP,
    hostile_page,
    sample_calls,
    sample_report,
)

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "h1", "h2", "h3",
    "p", "section", "div", "small", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "bdi",
    "svg", "path", "rect", "text",
}  # fmt: skip


BLOCKS = {"div", "p", "li", "td", "th", "tr", "h1", "h2", "h3", "section", "header", "svg", "text", "title"}


class _Tags(HTMLParser):
    """Every element and attribute as a browser's tokenizer sees them; the text, a space between blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in BLOCKS:
            self.text.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    p.close()
    return p


def render(report: dict, calls: list[dict] | None = None, **kw) -> str:
    return render_report_html(
        report, calls=calls, shop_name=kw.pop("shop_name", SHOP), generated_at=GENERATED_AT, **kw
    )


def section(page: str, sid: str) -> str:
    """The markup of one card (a <section>) or headline tile (a <div>) by its id."""
    start = page.rindex("<", 0, page.index(f' id="{sid}"'))
    end = "</section>" if page.startswith("<section", start) else "</div></div>"
    return page[start : page.index(end, start) + len(end)]


def text_of(markup: str) -> str:
    return " ".join("".join(parse(markup).text).split())


# ------------------------------------------------------------------------------------- escaping


def test_hostile_names_items_and_variants_stay_text():
    page = hostile_page()
    tags = parse(page)
    assert {t for t, _ in tags.tags} <= ALLOWED_TAGS, {t for t, _ in tags.tags} - ALLOWED_TAGS
    for tag, attrs in tags.tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
    for hostile in HOSTILE:
        assert hostile not in page  # never raw
    text = "".join(tags.text)
    # ... and each one still reads as what it is, in the call list, the variants and the windows
    assert SCRIPT in text and IMG in text
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&#x27; onmouseover=&#x27;alert(4)" in page


def test_attributes_are_quoted_and_escaped():
    page = hostile_page()
    # every start tag is name="value" pairs, each value double-quoted with no quote or bracket in it,
    # so a quote in a name cannot end an attribute
    body = page[page.index("<html") :]
    for tag in re.findall(r"<[a-zA-Z][^>]*>", body):
        assert re.fullmatch(r'<[a-z0-9]+(\s+[a-zA-Z-]+="[^"<>]*")*\s*/?>', tag), tag
    # the variant's name is in an SVG's aria-label and <title>: escaped there too
    assert (
        'aria-label="Paid-rate difference to &quot;&gt;&lt;img src=x onerror=alert(2)&gt;, in points"' in page
    )


def test_buyer_written_text_is_isolated_from_the_line_direction():
    page = hostile_page()
    assert "<bdi>\u202eevil</bdi>" in page


def test_the_shop_name_is_escaped():
    page = render(sample_report(), shop_name="</title><script>x()</script>")
    assert "<script>" not in page
    assert "<title>&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;: Nudge report" in page


# ------------------------------------------------------------------------------------ self-contained


def test_nothing_is_loaded_from_anywhere():
    page = render(sample_report(), sample_calls())
    assert not re.search(r"\b(src|href|srcset|action|formaction|poster|data)\s*=", page, re.I)
    assert "@import" not in page and "url(" not in page.lower()
    assert "<script" not in page.lower() and "<link" not in page.lower()
    # the only URL is the SVG namespace (a name, never fetched)
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_a_strict_content_security_policy_comes_first():
    page = render(sample_report())
    head = page[: page.index("</head>")]
    csp = f'<meta http-equiv="Content-Security-Policy" content="{CSP.replace(chr(39), "&#x27;")}">'
    assert csp in head
    assert head.index(csp) < head.index("<title>") < head.index("<style>")
    assert CSP.startswith("default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    assert "script-src" not in CSP  # no script may run, not even inline


# --------------------------------------------------------------------------- sections and their data


def test_every_section_with_data():
    page = render(sample_report(), sample_calls())
    for sid in ("by-day", "by-window", "by-attempt", "holdout", "by-variant", "delivery", "calls"):
        assert f'id="{sid}"' in page, sid
    charts = re.findall(r'data-chart="([^"]+)"', page)
    assert charts == [
        "by-day-orders", "by-day-revenue", "by-window", "by-attempt", "holdout", "holdout-lift",
        "delivery", "delivery-failed", "by-variant", "variant-diff",
    ]  # fmt: skip


def test_optional_sections_only_when_the_report_has_them():
    # the report as `nudge report --json` prints it before variants and delivery receipts exist
    report = sample_report(variants=False, delivery=False, holdout=False)
    del report["cost_currency"]
    page = render(report, currency="CNY")
    for sid in ("by-variant", "delivery", "calls"):
        assert f'id="{sid}"' not in page, sid
    assert "No holdout in these days" in section(page, "holdout")
    assert 'data-chart="holdout' not in page and 'id="tile-lift"' not in page
    # an empty call list is said, not hidden
    assert "No open calls" in section(render(report, [], currency="CNY"), "calls")


def test_a_period_with_nothing_sent():
    report = sample_report(variants=False, delivery=False, holdout=False)
    for key in ("by_day", "by_window", "by_attempt"):
        report[key] = []
    report.update(reminded=0, sms=0, segments=0, cost="0", paid=0, paid_rate=None, recovered={})
    report["median_minutes_to_pay"] = None
    page = render(report)
    assert "No reminder was sent in these days." in section(page, "by-day")
    assert text_of(section(page, "tile-roi")).startswith("Return on SMS –")
    assert text_of(section(page, "tile-paid-rate")).startswith("Paid after a reminder –")


def test_receipts_section_appears_with_any_receipt_key():
    report = sample_report(variants=False, delivery=False)
    report.update(delivered=0, delivery_rate=None, failed={}, expired=0)
    assert "No delivery receipts yet" in section(render(report), "delivery")


# ---------------------------------------------------------------------------- the figures shown


def test_headline_numbers_are_the_reports():
    report = sample_report()
    page = render(report)
    assert text_of(section(page, "tile-recovered")).startswith(
        f"Recovered {int(float(report['recovered']['CNY'])):,}.{report['recovered']['CNY'].split('.')[1]} CNY"
        f" from {report['paid']} orders paid"
    )
    assert f"{report['paid_rate'] * 100:.1f}%" in text_of(section(page, "tile-paid-rate"))
    assert f"{report['paid']} of {report['reminded']:,} reminded orders" in text_of(
        section(page, "tile-paid-rate")
    )
    assert (
        f"SMS cost (estimated) {report['cost']} CNY {report['sms']:,} SMS, {report['segments']:,} segments"
        in text_of(section(page, "tile-cost"))
    )
    assert f"{roi(report, 'CNY'):,.0f}×" in text_of(section(page, "tile-roi"))
    h = report["holdout"]
    lift = text_of(section(page, "tile-lift"))
    assert f"{h['lift'] * 100:+.1f} points" in lift
    assert f"95% interval {h['ci95'][0] * 100:+.1f} to {h['ci95'][1] * 100:+.1f}" in lift


def test_rate_rows_show_the_rate_and_the_wilson_interval():
    report = sample_report()
    page = render(report)
    for key, sid, label in (("by_window", "by-window", "window"), ("by_attempt", "by-attempt", "attempt")):
        card = section(page, sid)
        for row in report[key]:
            assert f"{row['paid_rate'] * 100:.1f}% · {row['paid']} of {row['reminded']} paid" in text_of(card)
            ci = wilson(row["paid"], row["reminded"])
            name = row[label] if label == "window" else f"Reminder {row[label]}"
            assert (
                f"{name}: {row['paid_rate'] * 100:.1f}% (95% interval {ci.lower * 100:.1f}% to {ci.upper * 100:.1f}%)"
                in text_of(card)
            )


def test_variant_rows_show_the_difference_and_its_interval():
    report = sample_report()
    page = render(report)
    card = text_of(section(page, "by-variant"))
    base, other = report["by_variant"]
    lo, hi = other["ci95"]
    assert f"{other['diff'] * 100:+.1f} points ({lo * 100:+.1f} to {hi * 100:+.1f})" in card
    assert f"{base['paid_rate'] * 100:.1f}% · {base['paid']} of {base['reminded']} paid" in card
    assert "cutoff vs caring: no clear difference yet, +0.6 points" in card  # the interval includes zero
    assert "each variant needs about" in card


def test_variants_under_the_minimum_say_not_enough_data():
    report = sample_report()
    other = report["by_variant"][1]
    other.update(diff=None, ci95="not enough data")
    page = render(report)
    card = section(page, "by-variant")
    assert "not enough data yet" in text_of(card)
    # the chart draws no interval for it: only the baseline's marker and the zero line
    diff_chart = card[card.index('data-chart="variant-diff"') :]
    assert diff_chart.count("<rect") == 2 + 1  # two row tracks, one baseline marker


def test_a_clear_winner_is_called_one():
    report = sample_report()
    report["by_variant"][1].update(diff=0.08, ci95=[0.03, 0.13])
    card = text_of(section(render(report), "by-variant"))
    assert "cutoff vs caring: pays better, +8.0 points, 95% interval +3.0 to +13.0" in card


def test_holdout_under_the_minimum_says_not_enough_data():
    report = sample_report()
    report["holdout"].update(lift=None, ci95=None)
    page = render(report)
    assert "Not enough data yet: the lift needs at least 100 orders in each group" in text_of(
        section(page, "holdout")
    )
    assert 'data-chart="holdout-lift"' not in page
    assert "not enough data yet" in text_of(section(page, "tile-lift"))


def test_every_day_of_the_period_gets_a_bar():
    report = sample_report(variants=False, delivery=False)
    report["by_day"] = [r for r in report["by_day"] if r["day"] in ("2026-11-17", "2026-11-20")]
    page = render(report)
    chart = section(page, "by-day")
    orders = chart[chart.index('data-chart="by-day-orders"') : chart.index('data-chart="by-day-revenue"')]
    assert orders.count("<rect") == 14  # 2026-11-16..29, the empty days at zero
    assert "2026-11-20: " in orders and "2026-11-21: 0 orders" in orders


def test_other_currencies_are_named_not_mixed_in():
    report = sample_report(variants=False, delivery=False)
    report["recovered"] = {**report["recovered"], "USD": "120.00"}
    report["by_day"][0]["recovered"] = {**report["by_day"][0]["recovered"], "USD": "120.00"}
    page = render(report)
    assert "also 120.00 USD" in text_of(section(page, "tile-recovered"))
    assert "Also recovered in USD (not drawn)." in text_of(section(page, "by-day"))
    assert f"{roi(report, 'CNY'):,.0f}×" in text_of(section(page, "tile-roi"))  # CNY only


def test_the_cost_currency_comes_from_the_report_or_the_argument():
    report = sample_report(variants=False, delivery=False)
    assert "CNY recovered per 1 CNY of SMS" in render(report)
    del report["cost_currency"]
    assert "EUR recovered per 1 EUR" in render(report, currency="EUR")
    assert "no SMS cost in these days" not in render(report, currency="CNY")


def test_delivery_figures():
    report = sample_report()
    card = text_of(section(render(report), "delivery"))
    # the rate's denominator: every SMS with a final status, unknown after 72 h included
    total = report["delivered"] + sum(report["failed"].values()) + report["expired"] + report["unknown"]
    assert (
        f"{report['delivery_rate'] * 100:.1f}% · {report['delivered']:,} of {total:,} with a final status"
        in card
    )
    assert f"{report['unknown']} unknown (no final receipt within 72 h)" in card
    for code, n in report["failed"].items():
        assert f"{code} {n}" in card


def test_open_calls_list_what_nudge_calls_lists():
    calls = sample_calls()
    card = text_of(section(render(sample_report(), calls), "calls"))
    for c in calls:
        assert c["order_id"] in card and c["buyer_name"] in card and c["item"] in card
        assert f"{c['amount']} CNY" in card
    assert "2026-11-30 12:00 +08:00" in card  # closes_at, in the shop's zone as given
    assert f"{len(calls)} order(s) still unpaid" in card


def test_generated_at_and_period_in_the_header():
    report = sample_report()
    page = render_report_html(
        report,
        calls=None,
        shop_name=SHOP,
        generated_at=datetime(2026, 11, 30, 9, 5, tzinfo=SHANGHAI),
    )
    assert "2026-11-16 to 2026-11-29 · made 2026-11-30 09:05 +08:00" in text_of(
        page[: page.index("</header>")]
    )


def test_the_input_dict_is_not_changed():
    report = sample_report()
    before = copy.deepcopy(report)
    render(report, sample_calls())
    assert report == before


def test_a_bad_amount_names_itself():
    report = sample_report(variants=False, delivery=False)
    report["cost"] = "NaN"
    with pytest.raises(ValueError, match="not an amount: 'NaN'"):
        render(report)
