"""`nudge report --html FILE` over a ledger on moto: the page holds the `--json` figures and the
open calls, with the buyer's name escaped."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

import nudge_cli.report as report_cli
from nudge_cli.cli import main
from nudge_local.pipeline import FakeClock, LocalPipeline
from tests.pipeline.test_report_cli import AT, QUIET, order

pytestmark = pytest.mark.aws

HOSTILE = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def test_report_html_writes_the_page_with_the_figures_and_the_open_calls(tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"shop": {"name": "Lotus Tea"}, "outcomes": {"price_per_segment": "0.05"}}),
        encoding="utf-8",
    )
    monkeypatch.setattr(report_cli, "_now", lambda: AT + timedelta(hours=1))  # the calls open then
    with LocalPipeline(clock=FakeClock(AT), env=QUIET) as p:
        big = {
            **order(9),
            "amount": "1888.00",
            "buyer_name": HOSTILE,
            "item_title": "Down jacket <b>XL</b>",
            "closes_at": (AT + timedelta(days=2)).isoformat(),
        }
        p.load_orders([*(order(i) for i in range(1, 5)), big])
        p.fire_window("09:50-10:40@11:00", AT)
        p.drain_queue()
        p.play_stream([p.pay_order("o-1", AT + timedelta(minutes=40))])
        tables = ["--ledger-table", p.resources.ledger_table, "--orders-table", p.resources.orders_table]
        args = ["report", *tables, "--to", "2026-11-23", "--days", "7", "--config", str(config)]
        out = io.StringIO()
        assert main([*args, "--json"], out) == 0
        data = json.loads(out.getvalue())
        page_file = tmp_path / "report.html"
        out = io.StringIO()
        assert main([*args, "--html", str(page_file)], out) == 0
        assert out.getvalue() == f"report page written to {page_file}\n"
        page = page_file.read_text(encoding="utf-8")
        # --json and --html together: the page and the JSON on stdout
        out = io.StringIO()
        assert main([*args, "--json", "--html", str(tmp_path / "again.html")], out) == 0
        assert json.loads(out.getvalue()) == data
        # --html with --orders: the tables asked for are printed too, then the line
        out = io.StringIO()
        assert main([*args, "--orders", "--html", str(tmp_path / "third.html")], out) == 0
        printed = out.getvalue()
        assert "recovered orders" in printed and "o-1" in printed
        assert printed.endswith(f"report page written to {tmp_path / 'third.html'}\n")
        bad = main([*args, "--html", str(tmp_path / "no-such-dir" / "r.html")], io.StringIO())
    assert bad == 2
    assert page.startswith("<!doctype html>") and "Content-Security-Policy" in page
    assert "Lotus Tea" in page and "2026-11-17 to 2026-11-23" in page
    assert f"{data['paid']} of {data['reminded']} reminded orders" in page
    assert f"{data['paid_rate'] * 100:.1f}%" in page
    # the big order is on the call list, its buyer-written name as text only
    assert "o-9" in page and "1,888.00 CNY" in page
    assert HOSTILE not in page and "<img" not in page and "<script" not in page and "<b>" not in page
    assert (
        "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page and "Down jacket &lt;b&gt;XL&lt;/b&gt;" in page
    )
