"""Run dirs saved by an earlier rlkit (commit f468128, tests/data/old_runs/) still
evaluate to the same figures and resume.

`expected.json` holds what `rlkit.evaluate` gave on those dirs when they were made;
the checkpoint format and every agent's `load_state_dict` must keep reading them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import rlkit
from rlkit.logger import METRICS_FILE, read_metrics

OLD_RUNS = Path(__file__).parent / "data" / "old_runs"
EXPECTED = json.loads((OLD_RUNS / "expected.json").read_text())
EPISODES = 3


@pytest.mark.parametrize("agent", sorted(EXPECTED))
def test_old_run_dir_evaluates_as_it_did(agent: str) -> None:
    stats = rlkit.evaluate(OLD_RUNS / agent, episodes=EPISODES).as_dict()
    assert stats.keys() == EXPECTED[agent].keys()
    for key, value in EXPECTED[agent].items():
        assert stats[key] == (value if value is None else pytest.approx(value, rel=1e-6)), key


@pytest.mark.parametrize("agent", sorted(EXPECTED))
def test_old_run_dir_resumes(agent: str, tmp_path: Path) -> None:
    run_dir = tmp_path / agent
    shutil.copytree(OLD_RUNS / agent, run_dir)
    saved = read_metrics(run_dir / METRICS_FILE)[-1]["step"]
    result = rlkit.train(resume=run_dir, steps=int(saved) + 500, wandb="disabled", progress=False)
    assert result.step >= int(saved) + 500
    assert not result.interrupted
    assert read_metrics(run_dir / METRICS_FILE)[-1]["step"] > saved
