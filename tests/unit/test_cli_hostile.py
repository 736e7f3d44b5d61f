"""`nudge plan` on hostile files: one bad line is one `invalid_order`, never a traceback, and order
data never styles, moves or rewrites the operator's terminal."""

from __future__ import annotations

import io
import json

import pytest

from nudge_cli.cli import main

AT = "2026-11-23T10:00:00+08:00"
GOOD = {
    "order_id": "o-good",
    "buyer_id": "b-good",
    "phone": "+8613800138000",
    "status": "unpaid",
    "created_at": "2026-11-23T07:00:00+08:00",
    "amount": "199.00",
}


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def plan(tmp_path, orders: bytes, *extra: str, json_out: bool = True) -> tuple[int, str]:
    path = tmp_path / "orders.jsonl"
    path.write_bytes(orders)
    return run("plan", "--orders", str(path), "--at", AT, *(("--json",) if json_out else ()), *extra)


def line(**fields) -> bytes:
    return json.dumps({**GOOD, **fields}, ensure_ascii=False).encode()


def test_undecodable_deep_and_huge_lines_are_each_invalid_and_the_rest_is_decided(tmp_path):
    data = b"\n".join(
        [
            b"\xef\xbb\xbf" + line(),  # a BOM before the first line
            b'{"order_id": "o-latin1", "buyer_name": "Jos\xe9"}',
            b"[" * 50_000 + b"]" * 50_000,
            b'{"amount": ' + b"1" * 4400 + b"}",
            line(order_id="o-second", buyer_id="b-2", phone="+8613800138002"),
        ]
    )
    code, out = plan(tmp_path, data)
    assert code == 0
    decisions = json.loads(out)["decisions"]
    assert [(d["order_id"], d["action"]) for d in decisions] == [
        ("o-good", "send"),
        (None, "skip"),
        (None, "skip"),
        (None, "skip"),
        ("o-second", "send"),
    ]
    assert [d.get("detail", "").split(" (")[0] for d in decisions[1:4]] == [
        "record: not UTF-8 text",
        "record: JSON nested too deeply",
        "record: not usable JSON",
    ]


def test_history_with_a_line_separator_in_a_string_and_a_bom(tmp_path):
    sent = {
        "order_id": "o-old\u2028",
        "buyer_id": "b-good",
        "phone": "+8613800138000",
        "sent_at": "2026-11-23T09:55:00+08:00",
        "attempt": 1,
    }
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\xef\xbb\xbf" + json.dumps(sent, ensure_ascii=False).encode() + b"\n")
    code, out = plan(tmp_path, line(), "--history", str(history))
    assert code == 0
    assert json.loads(out)["decisions"][0]["reason"] == "buyer_recently_contacted"


def test_history_that_is_not_utf8_exits_2_with_one_line(tmp_path, capsys):
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\xff\n")
    code, _ = plan(tmp_path, line(), "--history", str(history))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--history" in err and "not UTF-8" in err


@pytest.mark.parametrize("markup", ["[/]", "[bold]x", "[red]y[/red]", "[link=https://evil.example]z"])
def test_rich_markup_in_order_data_prints_as_written(tmp_path, markup):
    data = line(order_id=f"o-{markup}", buyer_name=markup) + b"\n" + line(order_id="o-x", amount="-1")
    code, out = plan(tmp_path, data, json_out=False)
    assert code == 0
    assert f"o-{markup}" in out  # the order column is wide enough for it: not folded
    assert "\x1b" not in out


@pytest.mark.parametrize("json_out", [False, True])
def test_control_characters_and_terminal_escapes_are_escaped(tmp_path, json_out):
    nasty = "o-\x1b[2J\x1b]0;pwned\x07\u202e\u200b\x9b31m\u2028"
    data = line(order_id=nasty, amount="-1")  # invalid: the id and the detail are shown
    code, out = plan(tmp_path, data, json_out=json_out)
    assert code == 0
    for ch in ("\x1b", "\x07", "\u202e", "\u200b", "\x9b", "\u2028"):
        assert ch not in out
    if json_out:
        assert json.loads(out)["decisions"][0]["order_id"] == nasty  # escaped, not changed
    else:
        assert "\\x1b[2J" in out and "\\u202e" in out


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("c.yaml", b"rules: {wait_minutes: \xff}\n", "--config: "),
        ("c.json", b"[" * 50_000, "nested too deeply"),
        ("c.json", b'{"rules": {"daily_sms_cap": ' + b"9" * 5000 + b"}}", "is not valid JSON"),
        ("c.yaml", b"rules:\n  daily_sms_cap: " + b"9" * 5000 + b"\n", "is not valid YAML"),
        ("c.json", b'\xef\xbb\xbf{"rules": {"daily_sms_cap": 10**9}}', "is not valid JSON"),
        (
            "c.yaml",
            b"windows:\n  - {start: 10:40, end: '11:00'}\n",
            "windows.0.start: expected a time in quotes",
        ),
        ("c.yaml", b"calendar: {country: US, subdivision: ZZ}\n", "calendar.subdivision"),
        ("c.yaml", b"rules: {max_reminders_per_order: 3}\n", "rules.max_reminders_per_order"),
        ("c.json", b'{"\\u001b[31m": 1}', "\\x1b[31m: unknown key"),
    ],
)
def test_bad_config_files_exit_2_with_one_line(tmp_path, capsys, name, content, expected):
    config = tmp_path / name
    config.write_bytes(content)
    code, out = plan(tmp_path, line(), "--config", str(config))
    err = capsys.readouterr().err.strip()
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and expected in err and "\x1b" not in err


def test_a_config_file_with_a_bom_is_read(tmp_path):
    config = tmp_path / "c.json"
    config.write_bytes(b'\xef\xbb\xbf{"rules": {"daily_sms_cap": 0}}')
    code, out = plan(tmp_path, line(), "--config", str(config))
    assert code == 0 and json.loads(out)["decisions"][0]["reason"] == "daily_limit"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "--orders", "x", "--at", "9999-12-31T23:00:00-05:00"], "year 9999 is outside 2000-2199"),
        (["schedule", "--from", "0001-01-01T00:00:00+05:00"], "year 1 is outside"),
        (["schedule", "--days", "100000000"], "--days: must be at most 366"),
    ],
)
def test_arguments_that_would_overflow_later_exit_2(capsys, argv, expected):
    code, _ = run(*argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err
