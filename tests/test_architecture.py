"""The shape of the code: no import cycle among rlkit's modules, agents talk to `Run`.

Imports are read from the source (module level, function level and TYPE_CHECKING
blocks alike), so a cycle cannot hide behind a local import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"rlkit": ROOT / "rlkit", "rlkit.agents": ROOT / "agents", "rlkit.envs": ROOT / "envs"}


def modules() -> dict[str, Path]:
    """Every module of the three packages, subpackages (rlkit.sweep) included."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """rlkit modules that `path` imports anywhere in its source."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known}


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name, "rlkit"} for name, path in found.items()}


def test_no_import_cycle_among_rlkit_modules() -> None:
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_agents_do_not_import_the_orchestrator() -> None:
    edges = graph()
    for module, targets in edges.items():
        if module.startswith("rlkit.agents."):
            orchestrator = {
                "rlkit.training",
                "rlkit.session",
                "rlkit.resume",
                "rlkit.cli",
                "rlkit.resolve",
                "rlkit.rundir",
            }
            sweep = {target for target in targets if target.startswith("rlkit.sweep")}
            assert not (targets & orchestrator or sweep), module


def test_subpackages_are_seen() -> None:
    subpackages = {"rlkit.sweep", "rlkit.sweep.spec", "rlkit.group", "rlkit.group.seed"}
    assert {*subpackages, "rlkit.resolve"} <= set(modules())
