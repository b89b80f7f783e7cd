"""Shared fixtures: the real CLI in a subprocess, and one small trained run to reuse."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rlkit.training import TrainResult, train


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"})
    return env


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> CliResult:
    """Run `python -m rlkit ARGS` as a user would, in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "rlkit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(),
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `root` (to prove nothing changed)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# Fixtures that start something once per test process: under pytest-xdist (the README's
# test command runs `-n auto --dist loadgroup`) every test that uses one goes to the same
# worker, so each starts once, and the shared Ray never competes with a second one.
SHARED_ONCE = {"ray_local": "ray", "cluster": "cluster"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="also run the long learning checks (@pytest.mark.long), about 30 minutes more",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--long"):
        long = [item for item in items if item.get_closest_marker("long")]
        if long:
            config.hook.pytest_deselected(items=long)
            items[:] = [item for item in items if not item.get_closest_marker("long")]
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(pytest.mark.slow)  # `-m "not slow" --long` leaves them out too
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((SHARED_ONCE[name] for name in SHARED_ONCE if name in names), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def sweep_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sweeps seal their Tune state with the test session's key, never the user's own
    (~/.config/rlkit/sweep.key); the CLI's subprocesses inherit it."""
    path = tmp_path_factory.getbasetemp() / "sweep.key"
    monkeypatch.setenv("RLKIT_SWEEP_KEY_FILE", str(path))
    return path


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A finished 20,000-step Q-learning run on FrozenLake (checkpoints every 5,000)."""
    out = tmp_path_factory.mktemp("runs")
    return train(
        "qlearning",
        env="FrozenLake-v1",
        steps=20_000,
        seed=1,
        out_dir=str(out),
        wandb="disabled",
        checkpoint_every=5_000,
        progress=False,
    )


@pytest.fixture(scope="session")
def ray_local() -> Iterator[float]:
    """One embedded local Ray for the whole session (its start takes seconds); yields them.

    RAY_ADDRESS is ignored here: tests never run on whatever cluster the shell points at.
    Its workers import `tests.*` through the import path `init_ray` hands them.
    """
    from rlkit.parallel import init_ray, shutdown_ray

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        seconds = init_ray(None)
    yield seconds
    shutdown_ray()


@dataclass(frozen=True)
class Bases:
    """Run dirs made once per session; cases copy the one they need."""

    qlearning: Path  # FrozenLake, 20,000 steps, checkpoints at ~10k, ~15k, 20k
    taxi: Path  # Taxi, 3,000 steps, checkpoints every 1,000 (24 kB each)
    grid: Path  # rlkit/GridWorld-v0, which renders only as text


@pytest.fixture(scope="session")
def bases(small_run: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Bases:
    out = tmp_path_factory.mktemp("bases")
    common = dict(out_dir=str(out), wandb="disabled", progress=False, seed=1)
    taxi = train(
        "qlearning", env="Taxi-v4", steps=3_000, checkpoint_every=1_000, name="taxi", **common
    )
    grid = train("qlearning", env="rlkit/GridWorld-v0", steps=500, name="grid", **common)
    return Bases(small_run.run_dir, taxi.run_dir, grid.run_dir)
