"""The orders-in bench at a tiny size: it runs, and the properties its table in docs/PERFORMANCE.md shows hold."""

from __future__ import annotations

import json

from bench import ingest, motofix


def test_the_ingest_bench_runs_small_and_its_figures_add_up(tmp_path, capsys):
    out = tmp_path / "ingest.json"
    try:
        assert ingest.main(["--deliveries", "200", "--imports", "40,80", "--out", str(out)]) == 0
    finally:
        motofix.uninstall()  # the bench patches moto for speed; the other tests get moto as it is
    report = json.loads(out.read_text(encoding="utf-8"))
    w = report["webhooks"]
    assert w["deliveries"] == 200 and w["duplicates"] == 20
    # every re-sent delivery was told apart (a duplicate of a stale one is "unchanged" again)
    assert w["answers"].get("duplicate", 0) + w["answers"].get("unchanged", 0) >= w["duplicates"]
    assert w["statuses"]["paid"] == w["reordered_orders"] and sum(w["statuses"].values()) == w["orders"]
    assert w["ddb_requests"]["TransactWriteItems"] == w["deliveries"]
    for row in report["imports"]:
        assert row["first"]["summary"] == f"imported {row['lines']}, unchanged 0, rejected 0"
        assert row["again"]["summary"] == f"imported 0, unchanged {row['lines']}, rejected 0"
        assert row["first"]["ddb_requests_per_line"] == 1.0
    assert report["import_growth"]["size_ratio"] == 2.0
    assert "| import (nudge import --table) |" in capsys.readouterr().out
