"""`nudge plan` and `nudge schedule` as an operator runs them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nudge_cli.cli import main

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ROOT / "events" / "sample-orders.jsonl"
HISTORY = ROOT / "events" / "sample-history.jsonl"
SAMPLE_CONFIG = ROOT / "events" / "sample-config.yaml"
AT = "2026-11-23T10:00:00+08:00"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def plan_json(*extra: str) -> dict:
    code, out = run("plan", "--orders", str(ORDERS), "--at", AT, "--json", *extra)
    assert code == 0
    return json.loads(out)


def test_plan_json_decides_every_sample_order_in_the_designed_shape():
    result = plan_json()
    lines = [line for line in ORDERS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(result["decisions"]) == len(lines)
    assert set(result) == {"at", "window", "run_skipped", "decisions"}
    assert result["window"] == "09:50-10:40" and result["run_skipped"] is None
    for d in result["decisions"]:
        assert {"order_id", "action", "reason", "attempt", "message", "segments"} <= set(d)
        assert d["action"] in {"send", "call", "skip"}


def test_sample_orders_with_config_and_history_show_every_order_level_reason():
    decisions = plan_json("--config", str(SAMPLE_CONFIG), "--history", str(HISTORY))["decisions"]
    reasons = {d["order_id"]: d["reason"] for d in decisions if d["order_id"]}
    assert reasons == {
        "o-1001": None,
        "o-1002": None,
        "o-1003": "not_unpaid",
        "o-1004": "buyer_paid_same_day",
        "o-1005": "superseded",  # written in +00:00, the same Shanghai day as o-1006
        "o-1006": "daily_limit",  # the cap of 4 cuts the least urgent send
        "o-1007": "too_new",
        "o-1008": "expired",
        "o-1009": "expired",
        "o-1010": "cash_on_delivery",
        "o-1011": "distribution_channel",
        "o-1012": "blocked_buyer",
        "o-1013": "opted_out",
        "o-1014": "invalid_phone",
        "o-1015": "max_reminders",
        "o-1016": "buyer_recently_contacted",
        "o-1017": "quiet_hours",
        "o-1018": "large_order",
        "o-1019": "invalid_order",
        "o-1020": "invalid_order",
        "o-1021": "invalid_order",
        "o-1022": "invalid_order",
        "o-1023": "not_unpaid",
        "o-1024": None,
        "o-1025": None,
        "o-1026": "invalid_order",
    }
    unreadable = [d for d in decisions if d["order_id"] is None]
    assert len(unreadable) == 1 and unreadable[0]["reason"] == "invalid_order"
    o1002 = next(d for d in decisions if d["order_id"] == "o-1002")
    assert o1002["attempt"] == 2 and o1002["message"].startswith("【小桥杂货】")


def test_invalid_orders_name_the_field():
    decisions = {d["order_id"]: d for d in plan_json()["decisions"]}
    assert decisions["o-1019"]["detail"] == "phone: missing"
    assert decisions["o-1020"]["detail"].startswith("amount: must be >= 0")
    assert decisions["o-1021"]["detail"].startswith("status: unknown status")


def test_plan_table_ends_with_a_summary_by_reason():
    code, out = run("plan", "--orders", str(ORDERS), "--at", AT)
    assert code == 0
    assert "Plan at 2026-11-23T10:00:00+08:00 (window 09:50-10:40)" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("27 orders: 8 send, 1 call, 18 skip (invalid_order 6,")


def test_a_rest_day_run_skips_the_whole_run():
    _code, out = run("plan", "--orders", str(ORDERS), "--at", "2026-11-22T10:00:00+08:00", "--json")
    result = json.loads(out)
    assert result["run_skipped"] == "rest_day"
    assert not [d for d in result["decisions"] if d["action"] != "skip"]


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("rules:\n  daily_sms_cap: -1\n", "rules.daily_sms_cap"),
        ("windows: lunch\n", "windows: unknown preset 'lunch'"),
        ("shop:\n  timezone: Mars/Base\n", "shop.timezone: unknown time zone"),
        ("rulez: {}\n", "rulez: unknown key"),
        ("windows: [\n", "is not valid YAML"),
    ],
)
def test_bad_config_exits_2_with_one_line_naming_the_key(tmp_path, capsys, config_text, expected):
    path = tmp_path / "nudge.yaml"
    path.write_text(config_text, encoding="utf-8")
    code, out = run("plan", "--orders", str(ORDERS), "--at", AT, "--config", str(path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and expected in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "--orders", str(ORDERS), "--at", "2026-11-23T10:00:00"], "needs a UTC offset"),
        (["plan", "--orders", str(ORDERS), "--at", "tomorrow"], "--at: not an ISO-8601"),
        (["plan", "--orders", "/nope.jsonl", "--at", AT], "--orders: cannot read /nope.jsonl"),
        (["plan", "--at", AT], "--orders"),
        (["schedule", "--days", "0"], "--days: must be at least 1"),
        (
            ["plan", "--orders", str(ORDERS), "--at", AT, "--history", str(ORDERS)],
            "--history: history line 1",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, expected):
    code, _ = run(*argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and expected in err


def test_schedule_lists_openings_and_marks_rest_days():
    code, out = run("schedule", "--days", "3", "--from", "2026-11-21T00:00:00+08:00", "--json")
    assert code == 0
    rows = json.loads(out)["openings"]
    assert [(r["day"], r["window"], r["rest_day"]) for r in rows] == [
        ("2026-11-21", "09:50-10:40", True),
        ("2026-11-21", "15:00-16:50", True),
        ("2026-11-22", "09:50-10:40", True),
        ("2026-11-22", "15:00-16:50", True),
        ("2026-11-23", "09:50-10:40", False),
        ("2026-11-23", "15:00-16:50", False),
    ]
    assert rows[4]["opens_at"] == "2026-11-23T09:50:00+08:00"


def test_schedule_text_output(capsys):
    code, out = run("schedule", "--days", "2", "--from", "2026-10-09T12:00:00+08:00")
    assert code == 0
    assert "Fri 2026-10-09 15:00-16:50  sends" in out
    assert "Sat 2026-10-10 09:50-10:40  sends" in out  # a make-up workday


NUDGE = Path(sys.executable).parent / "nudge"


def test_the_installed_console_script_runs():
    assert NUDGE.exists(), "pip install -e . installs the `nudge` console script"
    proc = subprocess.run(
        [str(NUDGE), "plan", "--orders", str(ORDERS), "--at", AT, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["decisions"]) == 27


def test_a_template_with_an_unknown_placeholder_is_refused_at_load(tmp_path, capsys):
    path = tmp_path / "nudge.yaml"
    path.write_text("messages:\n  templates:\n    en:\n      1: 'Hi {nickname}'\n", encoding="utf-8")
    code, _ = run("plan", "--orders", str(ORDERS), "--at", AT, "--config", str(path))
    assert code == 2
    assert "messages.templates: en.1: unknown placeholder {nickname}" in capsys.readouterr().err
