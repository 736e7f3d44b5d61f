"""What ships agrees with itself: the layer's requirements, the package, the deployed schedules."""

from __future__ import annotations

import io
import json
import re
import tomllib
from pathlib import Path

from nudge_cli.cli import main
from nudge_cli.moto_env import evaluate, load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = load_template(ROOT / "template.yaml")


def _requirements(lines: list[str]) -> set[str]:
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_the_layer_ships_exactly_what_the_package_declares_for_the_runtime():
    layer = _requirements((ROOT / "layers/nudge/requirements.txt").read_text().splitlines())
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert layer <= declared, f"in the layer but not in pyproject.toml: {layer - declared}"


def _schedules(parameters: dict[str, str]) -> list[tuple[str, str, str]]:
    """(cron, timezone, window) of every schedule the template deploys with these parameters."""
    out = []
    plan = TEMPLATE["Resources"]["PlanFunction"]["Properties"]
    for event in plan["Events"].values():
        if event["Type"] == "ScheduleV2":
            props = event["Properties"]
            out.append((props["ScheduleExpression"], props["ScheduleExpressionTimezone"], props["Input"]))
    for spec in TEMPLATE["Resources"].values():
        if spec["Type"] == "AWS::Scheduler::Schedule" and parameters.get("Window3"):
            props = spec["Properties"]
            out.append(
                (props["ScheduleExpression"], props["ScheduleExpressionTimezone"], props["Target"]["Input"])
            )
    return [
        (
            evaluate(TEMPLATE, cron, parameters=parameters),
            evaluate(TEMPLATE, tz, parameters=parameters),
            json.loads(evaluate(TEMPLATE, payload, parameters=parameters))["window"],
        )
        for cron, tz, payload in out
    ]


def test_nudge_schedule_agrees_with_the_deployed_schedules(tmp_path):
    parameters = {
        "Window1": "09:30-11:00",
        "Window2": "14:30-17:00@17:00",
        "Window3": "19:00-20:30",
        "ShopTimezone": "Asia/Shanghai",
    }
    deployed = _schedules(parameters)
    assert len(deployed) == 3
    # The CLI reads the same windows the functions get (WINDOWS is the parameters joined).
    config = tmp_path / "nudge.json"
    config.write_text(json.dumps({"windows": [w for _, _, w in deployed]}))
    out = io.StringIO()
    assert (
        main(
            [
                "schedule",
                "--days",
                "1",
                "--from",
                "2026-11-23T00:00:00+08:00",
                "--json",
                "--config",
                str(config),
            ],
            out=out,
        )
        == 0
    )
    openings = json.loads(out.getvalue())["openings"]
    fired = sorted(
        (int(h), int(m))
        for m, h in (re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", c).groups() for c, _, _ in deployed)
    )
    assert {tz for _, tz, _ in deployed} == {"Asia/Shanghai"}
    assert [f"2026-11-23T{h:02d}:{m:02d}:00+08:00" for h, m in fired] == sorted(
        o["opens_at"] for o in openings
    )
