"""Learning on the environments users bring, with no wrapper: MiniGrid's Dict observations,
MinAtar's bool grids, and a memory task with Discrete observations.

Each test runs a shipped config (configs/) through the CLI's code path (`rlkit.cli.main`),
seeded, one torch thread, and asserts the return the issue states. `slow`: they train.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlkit.cli import main
from rlkit.training import evaluate_run

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
MINATAR_RANDOM_RETURN = 0.5  # MinAtar's README: random play on Breakout, 1000 episodes


def run(tmp_path: Path, name: str, config: str, *extra: str) -> Path:
    common = ["--wandb", "disabled", "--no-progress", "--out-dir", str(tmp_path), "--name", name]
    code = main(["run", "--config", str(CONFIGS / config), *common, "--set", "threads=1", *extra])
    assert code == 0
    return tmp_path / name


@pytest.mark.slow
def test_dqn_solves_minigrid_empty_from_its_dict_observation(tmp_path: Path) -> None:
    run_dir = run(tmp_path, "empty", "dqn/minigrid.yaml", "--seed", "0")
    assert "mission: drop" in (run_dir / "config.yaml").read_text()  # the text part is dropped
    stats = evaluate_run(run_dir, episodes=20)
    assert stats.mean >= 0.9, stats  # the optimum is about 0.95


@pytest.mark.long  # `pytest --long`: a learning check the golden files and RESULTS.md already cover
def test_trpo_solves_minigrid_doorkey_from_its_dict_observation(tmp_path: Path) -> None:
    run_dir = run(tmp_path, "doorkey", "trpo/minigrid_doorkey.yaml", "--seed", "0")
    stats = evaluate_run(run_dir, episodes=20)
    assert stats.mean >= 0.9, stats  # RL Zoo's tuned PPO: about 0.97 after 100k steps


@pytest.mark.long  # `pytest --long`: a learning check the golden files and RESULTS.md already cover
def test_dqn_on_minatar_breakout_beats_random_play(tmp_path: Path) -> None:
    """A short run of the paper's DQN settings (schedule shortened to fit CI); the full
    2M-frame curve is benchmarks/minatar_dqn.py's."""
    shorter = ["--steps", "25000", "--set", "epsilon_steps=20000", "--set", "learning_starts=1000"]
    run_dir = run(tmp_path, "minatar", "dqn/minatar.yaml", "--seed", "0", *shorter)
    stats = evaluate_run(run_dir, episodes=20)
    assert stats.mean >= 4 * MINATAR_RANDOM_RETURN, stats


@pytest.mark.long  # `pytest --long`: a learning check the golden files and RESULTS.md already cover
def test_rpg_lstm_remembers_with_discrete_observations(tmp_path: Path) -> None:
    """The T-maze with Discrete(4) observations (one-hot encoded): the LSTM carries the
    sign to the junction; the same agent without it cannot beat a coin toss."""
    lstm = evaluate_run(run(tmp_path, "lstm", "rpg/tmaze_discrete.yaml"), episodes=100)
    memoryless = run(tmp_path, "mlp", "rpg/tmaze_discrete.yaml", "--set", "lstm_size=null")
    mlp = evaluate_run(memoryless, episodes=100)
    assert lstm.success_rate is not None and mlp.success_rate is not None
    assert lstm.success_rate >= 0.95, lstm
    assert mlp.success_rate <= 0.6, mlp
