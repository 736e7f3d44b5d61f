"""Cold start: how long each built handler takes to import, as Lambda loads it, and the layer's size.

``python -m bench.coldstart [--build .aws-sam/build] [--runs 7] [--json]`` (after ``make build``;
``make bench`` builds first and runs this too).

For every function in the ``sam build`` output, a fresh interpreter runs ``import app`` (the
handler module) with nothing but what Lambda gives it:

- ``sys.path``: the function's own directory, then the layer's ``python/`` directory, then a stand-in
  for the runtime's ``/var/runtime`` that holds only the SDK (boto3, botocore and their own
  dependencies, linked from this venv, whose versions the tests pin to the runtime's range). The
  interpreter runs with ``-S``, so nothing else of this machine's site-packages can hide a package
  missing from the layer: the import then fails here as it would on Lambda.
- ``PYTHONDONTWRITEBYTECODE=1``: Lambda's ``/opt`` and ``/var/task`` are read-only, so whatever the
  build did not compile is compiled again at every cold start.
- the function's environment from the built template (parameters at their defaults, resources as
  placeholder names), plus the variables Lambda itself sets (region, function name, X-Ray daemon
  address: the template turns tracing on).

The median of ``--runs`` is compared with a bare ``python -S -c pass`` (the interpreter's own
start-up): the difference is what the handler's imports and module-level code cost. Target on this
machine: under 0.5 s per handler. Both wall time and CPU time (user + sys) are shown; the check uses
CPU time, because on a shared machine (2 cores, other jobs) wall time also counts the waits for a
core, which have nothing to do with the handler; on an idle machine the two agree.

The layer's size is its ``python/`` directory: MB on disk unzipped, MB zipped (what is uploaded),
and the number of files.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
TARGET_S = 0.5
RUNS = 7
# What the Lambda python3.12 runtime puts beside the function: the SDK and its dependencies.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
}


def _placeholders(template: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every resource's Ref and usual GetAtt attributes, as placeholder physical names."""
    out: dict[str, dict[str, str]] = {}
    for logical_id in template["Resources"]:
        name = f"nudge-bench-{logical_id}"
        out[logical_id] = {
            "Ref": name,
            "Arn": f"arn:aws:placeholder:us-east-1:123456789012:{name}",
            "Name": name,
            "QueueName": name,
            "QueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}",
            "StreamArn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}/stream/x",
        }
    return out


def functions(build: Path) -> list[dict[str, Any]]:
    """The built functions: name, code directory, handler module, layer directories, environment."""
    from nudge_local.moto_env import evaluate, load_template

    template = load_template(build / "template.yaml")
    physical = _placeholders(template)
    resources = template["Resources"]
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    out = []
    for logical_id, spec in sorted(resources.items()):
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        props = spec.get("Properties") or {}
        handler = props.get("Handler") or globals_fn.get("Handler")
        env_vars = {
            **((globals_fn.get("Environment") or {}).get("Variables") or {}),
            **((props.get("Environment") or {}).get("Variables") or {}),
        }
        env = {}
        for name, expr in env_vars.items():
            value = evaluate(template, expr, physical=physical)
            if isinstance(value, str | int | float | bool):
                env[name] = str(value).lower() if isinstance(value, bool) else str(value)
        layers = []
        # SAM appends a function's own Layers to the Globals' (the send function adds Alibaba
        # Cloud's SDK only under its condition): resolve each Fn::If with the default parameters.
        for ref in [*(globals_fn.get("Layers") or []), *(props.get("Layers") or [])]:
            if isinstance(ref, dict) and "Fn::If" in ref:
                condition, chosen, otherwise = ref["Fn::If"]
                ref = chosen if evaluate(template, {"Condition": condition}) else otherwise
            layer_id = ref.get("Ref") if isinstance(ref, dict) else None
            if layer_id in resources:
                layers.append(build / resources[layer_id]["Properties"]["ContentUri"] / "python")
        env["AWS_LAMBDA_FUNCTION_NAME"] = f"nudge-bench-{logical_id}"
        env["_HANDLER"] = handler
        env["LAMBDA_TASK_ROOT"] = str(build / props["CodeUri"])  # Powertools reads it: "on Lambda"
        out.append(
            {
                "name": logical_id,
                "code": build / props["CodeUri"],
                "module": handler.rpartition(".")[0],
                "layers": layers,
                "env": env,
            }
        )
    return out


def runtime_stand_in(directory: Path) -> Path:
    """A directory like the runtime's /var/runtime: links to this venv's SDK packages, nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise SystemExit(f"coldstart: {name} is not installed in this venv (make install)")
        source = Path(spec.origin)
        if source.name == "__init__.py":
            source = source.parent
        link = directory / source.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    return directory


def _time_once(args: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s = user + sys) of one fresh interpreter."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{stderr.decode(errors='replace').strip()[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def median_time(args: Sequence[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and median CPU seconds over ``runs`` (after one run that warms the file cache)."""
    _time_once(args, env)  # every cold start reads the same files: measure the code, not the disk
    samples = [_time_once(args, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def layer_size(directory: Path) -> dict[str, Any]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, p.relative_to(directory.parent))
    pycs = [p for p in files if p.suffix == ".pyc"]
    return {
        "path": str(directory.relative_to(ROOT) if directory.is_relative_to(ROOT) else directory),
        "files": len(files),
        "mb": round(sum(p.stat().st_size for p in files) / 1e6, 1),
        "zipped_mb": round(len(buffer.getvalue()) / 1e6, 1),
        "pyc_files": len(pycs),
        "top_level": sorted(
            p.name for p in directory.iterdir() if not p.name.endswith((".dist-info", ".data"))
        ),
    }


def run(build: Path = BUILD, runs: int = RUNS) -> dict[str, Any]:
    if not (build / "template.yaml").exists():
        raise SystemExit(f"coldstart: no sam build output in {build} (run `make build` first)")
    python = sys.executable
    runtime = runtime_stand_in(build.parent / "lambda-runtime")
    base_env = {**LAMBDA_ENV, "PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    bare, bare_cpu = median_time([python, "-S", "-c", "pass"], base_env, runs)
    handlers = []
    layer_dirs: set[Path] = set()
    for fn in functions(build):
        path = [fn["code"], *fn["layers"], runtime]
        layer_dirs.update(fn["layers"])
        env = {**base_env, **fn["env"], "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
        total, cpu = median_time([python, "-S", "-c", f"import {fn['module']}"], env, runs)
        handlers.append(
            {
                "function": fn["name"],
                "import_s": round(total, 3),
                "minus_bare_s": round(total - bare, 3),
                "cpu_s": round(cpu, 3),
                "cpu_minus_bare_s": round(cpu - bare_cpu, 3),
                "pass": cpu - bare_cpu < TARGET_S,
            }
        )
    return {
        "python": python,
        "runs": runs,
        "bare_python_s": round(bare, 3),
        "bare_python_cpu_s": round(bare_cpu, 3),
        "target_s": TARGET_S,
        "handlers": handlers,
        "layers": [layer_size(d) for d in sorted(layer_dirs)],
    }


def format_result(result: dict[str, Any]) -> str:
    lines = [
        f"cold start: `import app` from the sam build output, fresh interpreter, no bytecode written, "
        f"median of {result['runs']}",
        "",
        "| function | wall s | wall minus bare s | CPU s | CPU minus bare s |",
        "|---|---:|---:|---:|---:|",
    ]
    for h in result["handlers"]:
        lines.append(
            f"| {h['function']} | {h['import_s']:.3f} | {h['minus_bare_s']:.3f} "
            f"| {h['cpu_s']:.3f} | {h['cpu_minus_bare_s']:.3f} |"
        )
    lines.append(
        f"| (bare `python -S -c pass`) | {result['bare_python_s']:.3f} | | {result['bare_python_cpu_s']:.3f} | |"
    )
    lines.append("")
    for layer in result["layers"]:
        lines.append(
            f"layer {layer['path']}: {layer['mb']} MB on disk, {layer['zipped_mb']} MB zipped, "
            f"{layer['files']:,} files ({layer['pyc_files']:,} .pyc)"
        )
    lines.append("")
    for h in result["handlers"]:
        verdict = "PASS" if h["pass"] else "FAIL"
        lines.append(
            f"{verdict}  {h['function']} imports in < {result['target_s']} s (CPU, minus bare python): "
            f"{h['cpu_minus_bare_s']:.3f} (wall {h['minus_bare_s']:.3f})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=BUILD, help="the sam build output directory")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per handler (the median is kept)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.build, args.runs)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0 if all(h["pass"] for h in result["handlers"]) else 1


if __name__ == "__main__":
    sys.exit(main())
