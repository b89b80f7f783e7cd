"""Q-learning: the update on hand-made numbers, and the learning targets of the issue."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlkit.agents.qlearning import QLearning, QLearningConfig, td_update
from rlkit.cli import main
from rlkit.envs.gridworld import DEFAULT_LAYOUT, MOVES
from rlkit.training import evaluate_run

ROOT = Path(__file__).resolve().parents[1]


def test_td_update_matches_hand_computation() -> None:
    table = np.zeros((3, 2))
    table[2] = [1.0, 4.0]
    error = td_update(table, 0, 1, reward=1.0, next_state=2, terminated=False, gamma=0.5, alpha=0.1)
    assert error == pytest.approx(1.0 + 0.5 * 4.0)
    assert table[0, 1] == pytest.approx(0.1 * 3.0)
    error = td_update(table, 0, 1, reward=1.0, next_state=2, terminated=True, gamma=0.5, alpha=0.1)
    assert error == pytest.approx(1.0 - 0.3)  # no bootstrap from a terminal state
    assert table[0, 1] == pytest.approx(0.3 + 0.1 * 0.7)


def test_state_dict_round_trip() -> None:
    spaces = dict(observation_space=gym.spaces.Discrete(5), action_space=gym.spaces.Discrete(3))
    agent = QLearning(QLearningConfig(), seed=0, **spaces)
    agent.q_table[:] = np.arange(15).reshape(5, 3)
    agent.rng.random(7)
    copy = QLearning(QLearningConfig(), seed=99, **spaces)
    copy.load_state_dict(agent.state_dict())
    np.testing.assert_array_equal(copy.q_table, agent.q_table)
    assert copy.rng.random() == agent.rng.random()
    assert copy.act(4, None) == (2, None)


def train_and_evaluate(tmp_path: Path, *args: str, episodes: int = 1000):
    code = main(
        [
            "run",
            "qlearning",
            *args,
            "--wandb",
            "disabled",
            "--no-progress",
            "--out-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    return evaluate_run(run_dir, episodes=episodes)


@pytest.mark.slow
def test_frozenlake_success_rate(tmp_path: Path) -> None:
    """FrozenLake-v1 4x4 slippery: greedy success >= 0.70 over 1000 fresh episodes."""
    stats = train_and_evaluate(tmp_path, "--env", "FrozenLake-v1", "--seed", "0")
    assert stats.success_rate is not None and stats.success_rate >= 0.70, stats


@pytest.mark.slow
def test_taxi_mean_return(tmp_path: Path) -> None:
    """Taxi-v4: greedy mean return >= 7.5 over 1000 fresh episodes (optimal about 7.9)."""
    stats = train_and_evaluate(tmp_path, "--env", "Taxi-v4", "--seed", "0")
    assert stats.mean >= 7.5, stats


def optimal_gridworld_return() -> float:
    """Breadth-first search over the layout: 10 for the goal, -1 for each earlier move."""
    height, width = len(DEFAULT_LAYOUT), len(DEFAULT_LAYOUT[0])
    start = next((r, c) for r in range(height) for c in range(width) if DEFAULT_LAYOUT[r][c] == "S")
    distance = {start: 0}
    queue = deque([start])
    while queue:
        row, column = queue.popleft()
        if DEFAULT_LAYOUT[row][column] == "G":
            return 10.0 - (distance[(row, column)] - 1)
        if DEFAULT_LAYOUT[row][column] == "P":
            continue
        for d_row, d_column in MOVES:
            nxt = (row + d_row, column + d_column)
            if (
                0 <= nxt[0] < height
                and 0 <= nxt[1] < width
                and DEFAULT_LAYOUT[nxt[0]][nxt[1]] != "#"
            ) and nxt not in distance:
                distance[nxt] = distance[(row, column)] + 1
                queue.append(nxt)
    raise AssertionError("goal unreachable")


@pytest.mark.slow
def test_gridworld_plugin_reaches_optimal_return(tmp_path: Path) -> None:
    """Our entry-point environment: the greedy policy earns the optimal return exactly."""
    stats = train_and_evaluate(
        tmp_path, "--config", str(ROOT / "configs/qlearning/gridworld.yaml"), episodes=10
    )
    assert optimal_gridworld_return() == -2.0
    assert stats.mean == stats.min == optimal_gridworld_return(), stats
    assert stats.success_rate == 1.0
