"""The house's shape, checked on the import graph of the layer (``nudge``) and the CLI (``nudge_cli``).

- the domain imports nothing but the domain (pure core: no services, adapters, settings, bootstrap);
- no service imports an adapter: services see AWS only through ``nudge.services.ports``;
- only the composition root (``nudge.bootstrap``) and the operator tooling choose adapters;
- no import cycle, counting imports inside functions too (those under ``TYPE_CHECKING`` never run
  and are left out of the cycle check, not out of the layering rules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"nudge": ROOT / "layers" / "nudge" / "nudge", "nudge_cli": ROOT / "cli" / "nudge_cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((name, *parts))] = path
    return out


MODULES = _modules()


def _typing_only(tree: ast.AST) -> set[int]:
    """The ids of import nodes under ``if TYPE_CHECKING:``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def imports_of(name: str, *, runtime_only: bool = False) -> set[str]:
    """The project modules ``name`` imports (a ``from pkg import mod`` counts as importing ``pkg.mod``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _typing_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}
RUNTIME_GRAPH = {name: imports_of(name, runtime_only=True) for name in MODULES}


def _edges(src_prefix: str, dst_prefix: str) -> list[tuple[str, str]]:
    return sorted(
        (src, dst)
        for src, dsts in GRAPH.items()
        if src == src_prefix or src.startswith(src_prefix + ".")
        for dst in dsts
        if dst == dst_prefix or dst.startswith(dst_prefix + ".")
    )


def test_the_graph_sees_the_project():
    assert {"nudge.services.ports", "nudge.adapters.ledger", "nudge_cli.cli"} <= set(GRAPH)
    assert "nudge.services.ports" in GRAPH["nudge.services.planning"]


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("nudge.services", "nudge.adapters"),
        ("nudge.services", "nudge.bootstrap"),
        ("nudge.domain", "nudge.services"),
        ("nudge.domain", "nudge.adapters"),
        ("nudge.domain", "nudge.bootstrap"),
        ("nudge.domain", "nudge.settings"),
        ("nudge.adapters", "nudge.bootstrap"),
        ("nudge", "nudge_cli"),  # the layer never imports the operator's tooling
    ],
)
def test_no_edge(src, dst):
    assert _edges(src, dst) == []


def test_no_import_cycle():
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(RUNTIME_GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(RUNTIME_GRAPH):
        if node not in state:
            visit(node)
    assert cycles == []
