"""A successful sweep or seed group prints rlkit's own lines only: no Ray log forwarding,
no Tune messages, no W&B atexit traceback from the trial actors. Each trial's or seed's
output goes to a log file in the sweep or group dir.

Both run the real CLI in a fresh process, which starts its own Ray, with W&B offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli


def rlkit_lines(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert lines and all(line.startswith("rlkit: ") for line in lines), stderr
    return lines


@pytest.mark.slow
def test_successful_seed_group_on_ray_prints_only_rlkit_lines(tmp_path: Path) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "FrozenLake-v1", "--steps", "2000", "--seeds", "0,1",
        "--out-dir", str(tmp_path), "--name", "quiet", "--wandb", "offline",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = rlkit_lines(result.stderr)
    assert len(lines) == 1 + 2 * 2 + 1, result.stderr  # group, start and end per seed, dir
    assert "on Ray" in lines[0]
    for seed in (0, 1):
        log = (tmp_path / "quiet" / "logs" / f"seed-{seed}.log").read_text()
        assert f"seed {seed}, W&B offline" in log


@pytest.mark.slow
def test_successful_sweep_prints_only_rlkit_lines(tmp_path: Path) -> None:
    spec = {
        "name": "quiet",
        "run": {
            "agent": "qlearning",
            "env": "rlkit/GridWorld-v0",
            "steps": 2000,
            "log_every": 500,
        },
        "search": {"hparams.learning_rate.start": {"grid": [0.5, 0.3]}},
        "scheduler": {"kind": "fifo"},
        "wandb": "offline",
    }
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = run_cli("sweep", str(path), "--out-dir", str(tmp_path / "sweeps"))
    assert result.returncode == 0, result.stderr
    lines = rlkit_lines(result.stderr)
    assert sorted(line.split()[2].rstrip(":") for line in lines) == [
        "ended",
        "ended",
        "started",
        "started",
    ]
    logs = sorted((tmp_path / "sweeps" / "quiet" / "logs").glob("trial-*.log"))
    assert len(logs) == 2 and all("W&B offline" in log.read_text() for log in logs)
