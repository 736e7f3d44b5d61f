"""What ships agrees with itself: the layer's requirements and lock, the package, the tests' venv,
the calendar years the locked `holidays` knows, the deployed schedules, and a repo that stands alone."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tomllib
from datetime import date
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from nudge.domain.restdays import RestDayCalendar
from nudge_cli.cli import main
from nudge_local.moto_env import evaluate, load_template
from tests.builders import config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
LAYER = ROOT / "layers" / "nudge"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What the Lambda python3.12 runtime provides beside the function (never in the layer).
RUNTIME_SDK = {"boto3", "botocore", "s3transfer", "urllib3"}
# The packages whose releases can change a decision or a text: the venv must run the locked ones.
DECIDING = ("holidays", "phonenumbers", "pydantic", "pydantic-core", "aws-lambda-powertools")


def _requirements(lines: list[str]) -> set[str]:
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


LAYER_REQUIREMENTS = [
    Requirement(r) for r in _requirements((LAYER / "requirements.txt").read_text().splitlines())
]


def _lock(layer: Path = LAYER) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a layer's requirements.lock."""
    text = (layer / "requirements.lock").read_text().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)(.*)$", line)
        if m:
            out[canonicalize_name(m[1])] = (m[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", m[3]))
    return out


LOCK = _lock()


def _closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution these requirements pull in, by the metadata installed in this venv."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen and not extras:
            continue
        seen.add(name)
        for text in metadata.requires(req.name) or []:
            sub = Requirement(text)
            if sub.marker is None or any(
                sub.marker.evaluate({**default_environment(), "extra": e}) for e in (extras or {""})
            ):
                todo.append((sub, frozenset(sub.extras)))
        extras = frozenset()
    return seen


def test_the_layer_ships_exactly_what_the_package_declares_for_the_runtime():
    layer = {str(r) for r in LAYER_REQUIREMENTS}
    declared = {str(Requirement(d)) for d in PYPROJECT["project"]["dependencies"]}
    assert layer <= declared, f"in the layer but not in pyproject.toml: {layer - declared}"


def test_the_layer_leaves_the_sdk_to_the_runtime_and_yaml_to_the_cli():
    names = {canonicalize_name(r.name) for r in LAYER_REQUIREMENTS}
    assert not names & (RUNTIME_SDK | {"pyyaml"})
    assert not set(LOCK) & (RUNTIME_SDK | {"pyyaml"})
    # The CLI still gets its YAML reader from the distribution.
    assert any(
        canonicalize_name(Requirement(d).name) == "pyyaml" for d in PYPROJECT["project"]["dependencies"]
    )


def test_the_lock_covers_exactly_the_layer_requirements_and_what_they_pull_in():
    """Every name the layer needs is locked (the build installs with --no-deps), and nothing else."""
    wanted = _closure(LAYER_REQUIREMENTS) - RUNTIME_SDK
    assert set(LOCK) == wanted, f"missing from the lock: {wanted - set(LOCK)}; extra: {set(LOCK) - wanted}"
    for r in LAYER_REQUIREMENTS:
        assert r.specifier.contains(LOCK[canonicalize_name(r.name)][0]), f"{r} vs the lock"
    for name, (_, hashes) in LOCK.items():
        assert hashes, f"{name} has no --hash in the lock"


def test_the_layer_build_installs_the_lock_with_hashes_and_no_dependencies():
    build = (LAYER / "Makefile").read_text()
    install = re.search(r"pip install (.*?)-r requirements\.lock", build, re.S)
    assert install, "the layer build must install requirements.lock"
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:"):
        assert flag in install[1]
    assert "--invalidation-mode unchecked-hash" in build or "--invalidation-mode checked-hash" in build
    layer = TEMPLATE["Resources"]["NudgeLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/nudge"


@pytest.mark.parametrize("name", DECIDING)
def test_the_tests_run_the_versions_lambda_runs(name):
    assert metadata.version(name) == LOCK[canonicalize_name(name)][0], (
        f"{name}: the venv has {metadata.version(name)}, the layer locks {LOCK[canonicalize_name(name)][0]} "
        "(make install pins the venv to the lock)"
    )


def test_every_locked_package_runs_in_the_tests_at_its_locked_version():
    differ = {n: (metadata.version(n), v) for n, (v, _) in LOCK.items() if metadata.version(n) != v}
    assert not differ, f"venv vs lock: {differ}"


@pytest.mark.parametrize("name", ["boto3", "botocore"])
def test_the_tests_run_the_sdk_line_of_the_lambda_runtime(name):
    pins = [Requirement(d) for d in PYPROJECT["project"]["optional-dependencies"]["dev"]]
    (pin,) = [p for p in pins if canonicalize_name(p.name) == name]
    assert pin.specifier != SpecifierSet(), f"{name} must be pinned to the runtime's range"
    assert pin.specifier.contains(metadata.version(name))


# The years the locked `holidays` knows China's official schedule for (make-up workdays and moved
# holidays). A new `holidays` release that adds 2027 (or drops a year) fails here on purpose:
# decisions on those days change, so re-lock knowingly (`make lock`) and update these lines.
CN_KNOWN_YEARS = range(2001, 2027)


def test_the_calendar_knows_china_for_these_years_and_warns_after():
    calendar = RestDayCalendar(config().calendar)
    known = [y for y in range(1990, 2036) if calendar.year_warning(y) is None]
    assert known == list(CN_KNOWN_YEARS), f"holidays {metadata.version('holidays')} knows CN for {known}"
    assert "2027" in (calendar.year_warning(2027) or "")
    # The last known year is really there: 2026's Spring Festival make-up Saturdays are workdays.
    assert not calendar.is_rest_day(date(2026, 2, 14))
    assert not calendar.is_rest_day(date(2026, 2, 28))
    assert calendar.is_rest_day(date(2026, 2, 17))  # Spring Festival


# Paths that exist only beside this repository, in the workspace it was written in.
# Spelled in pieces so that this file does not match its own patterns.
_BRIEFS = "shared"
OUTSIDE = [rf"\.\./{_BRIEFS}/", rf"{_BRIEFS}/seeds", rf"{_BRIEFS}/DESIGN\.md"]


def test_no_tracked_file_refers_outside_the_repository():
    pattern = "|".join(OUTSIDE)
    found = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", pattern, "--", ".", ":!tests/test_packaging.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.returncode in (0, 1), found.stderr
    assert found.stdout == "", f"files refer outside the repository:\n{found.stdout}"


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


def test_nudge_demo_runs_from_an_installed_wheel_outside_the_checkout(tmp_path):
    """The wheel carries the stack the demo builds (template.yaml, functions/, events/, resolved from
    nudge_local/stack's links), so `nudge demo` needs no checkout: installed into a bare target and
    run from elsewhere, with `-S` so this venv's editable install of the repo cannot stand in."""
    import subprocess
    import sys
    import sysconfig

    wheels, target = tmp_path / "wheels", tmp_path / "installed"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", str(ROOT), "-w", str(wheels)], check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("nudge-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    assert not (target / "nudge" / "cli.py").exists()  # the layer's package holds no tooling
    code = "import sys, nudge_cli.cli as c; assert c.__file__.startswith(sys.argv[1]); sys.exit(c.main(['demo']))"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}"}
    run = subprocess.run(
        [sys.executable, "-S", "-c", code, str(target)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (
        "0) Orders arrive by signed webhook" in run.stdout and "any number texted twice: none" in run.stdout
    )


# ------------------------------------------------ the Alibaba Cloud SDK's layer (SmsGateway=aliyun)
ALIYUN_LAYER = ROOT / "layers" / "aliyun"
ALIYUN_REQUIREMENTS = [
    Requirement(r) for r in _requirements((ALIYUN_LAYER / "requirements.txt").read_text().splitlines())
]
ALIYUN_LOCK = _lock(ALIYUN_LAYER)


def test_the_aliyun_layer_ships_the_aliyun_extra():
    assert {str(r) for r in ALIYUN_REQUIREMENTS} == {
        str(Requirement(d)) for d in PYPROJECT["project"]["optional-dependencies"]["aliyun"]
    }


def test_the_aliyun_lock_covers_what_the_sdk_pulls_in_beside_the_runtime_and_the_nudge_layer():
    """The two layers share /opt/python: a package in both locks would be two copies in one folder,
    so the aliyun lock leaves out the nudge layer's packages (and the runtime's)."""
    wanted = _closure(ALIYUN_REQUIREMENTS) - RUNTIME_SDK - set(LOCK)
    assert set(ALIYUN_LOCK) == wanted, (
        f"missing from the lock: {wanted - set(ALIYUN_LOCK)}; extra: {set(ALIYUN_LOCK) - wanted}"
    )
    assert not set(ALIYUN_LOCK) & set(LOCK)
    for r in ALIYUN_REQUIREMENTS:
        assert r.specifier.contains(ALIYUN_LOCK[canonicalize_name(r.name)][0]), f"{r} vs the lock"
    for name, (_, hashes) in ALIYUN_LOCK.items():
        assert hashes, f"{name} has no --hash in the lock"


def test_the_aliyun_layer_build_installs_its_lock_with_hashes_and_no_dependencies():
    build = (ALIYUN_LAYER / "Makefile").read_text()
    assert "requirements.lock" in build
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:"):
        assert flag in build
    assert "--invalidation-mode unchecked-hash" in build
    layer = TEMPLATE["Resources"]["AliyunLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile" and layer["Condition"] == "UseAliyun"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/aliyun"


def test_the_aliyun_tests_run_the_locked_sdk():
    differ = {n: (metadata.version(n), v) for n, (v, _) in ALIYUN_LOCK.items() if metadata.version(n) != v}
    assert not differ, f"venv vs the aliyun lock: {differ}"
