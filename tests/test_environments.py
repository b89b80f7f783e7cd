"""The environment factory: ids, short names, module:Id, seeding, success reporting."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlkit.environments import (
    CheckedEnv,
    make_env,
    resolve_env_id,
    rng_state,
    set_rng_state,
    short_names,
)
from rlkit.errors import UserError
from tests.conftest import run_cli


def test_short_names_resolve_to_newest_version() -> None:
    assert resolve_env_id("FrozenLake") == "FrozenLake-v1"
    assert resolve_env_id("taxi") == "Taxi-v4"
    assert resolve_env_id("CartPole-v1") == "CartPole-v1"
    assert short_names()["Taxi"] == "Taxi-v4"


def test_unknown_and_deprecated_ids_suggest() -> None:
    with pytest.raises(UserError, match=r"unknown env 'Taxi-v3' \(did you mean 'Taxi-v4'\?\)"):
        resolve_env_id("Taxi-v3")
    with pytest.raises(UserError, match="did you mean 'CartPole"):
        resolve_env_id("CartPol")


def trajectory(env, steps: int = 200) -> list[tuple[int, float]]:
    out = []
    env.reset()
    for _ in range(steps):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        out.append((int(observation), float(reward)))
        if terminated or truncated:
            env.reset()
    return out


def test_one_seed_fixes_env_and_action_space() -> None:
    first = trajectory(make_env("FrozenLake-v1", seed=5))
    assert first == trajectory(make_env("FrozenLake-v1", seed=5))
    assert first != trajectory(make_env("FrozenLake-v1", seed=6))


def test_rng_state_round_trip_replays_the_stream() -> None:
    env = make_env("FrozenLake-v1", seed=1)
    trajectory(env, 50)
    saved = rng_state(env)
    action_state = env.action_space.np_random.bit_generator.state
    expected = trajectory(env, 100)
    other = make_env("FrozenLake-v1", seed=99)
    set_rng_state(other, saved)
    other.action_space.np_random.bit_generator.state = action_state
    assert trajectory(other, 100) == expected


def test_env_kwargs_and_success_report() -> None:
    env = make_env("FrozenLake-v1", seed=0, env_kwargs={"is_slippery": False})
    env.reset()
    info = {}
    for action in (2, 2, 1, 1, 1, 2):  # right, right, down, down, down, right
        _, reward, terminated, _, info = env.step(action)
    assert terminated and reward == 1.0 and info["is_success"] is True
    with pytest.raises(UserError, match="env_kwargs"):
        make_env("FrozenLake-v1", seed=0, env_kwargs={"no_such_option": 1})


def test_plugin_gridworld_is_in_gymnasiums_registry() -> None:
    import gymnasium

    env = make_env("rlkit/GridWorld-v0", seed=0)
    assert "rlkit/GridWorld-v0" in gymnasium.registry
    observation, _ = env.reset()
    assert observation == 0 and env.observation_space.n == 56
    assert np.issubdtype(type(observation), np.integer)


@pytest.mark.slow
def test_minigrid_ids_work_by_name_alone(tmp_path: Path) -> None:
    """MiniGrid registers its ids when imported and declares no plugin entry point: rlkit
    imports it for its own ids, in a fresh process, as `minigrid:Id` would."""
    result = run_cli(
        "run", "dqn", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "60", "--wandb", "disabled",
        "--no-progress", "--out-dir", str(tmp_path), "--name", "grid", "--set", "threads=1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "env: MiniGrid-Empty-5x5-v0" in (tmp_path / "grid" / "config.yaml").read_text()


class _Scripted(gym.Env[np.ndarray, int]):
    """Plays back (observation, reward) pairs; an unbounded Box of 2 floats."""

    def __init__(self, script: list[tuple[list[float], object]]) -> None:
        self.observation_space = gym.spaces.Box(
            np.array([-np.inf, -1.0]), np.array([np.inf, 1.0]), dtype=np.float64
        )
        self.action_space = gym.spaces.Discrete(2)
        self.script = script

    def reset(self, *, seed: int | None = None, options: object = None) -> tuple[np.ndarray, dict]:
        return np.zeros(2), {}

    def step(self, action: int) -> tuple[np.ndarray, object, bool, bool, dict]:
        observation, reward = self.script.pop(0)
        return np.array(observation), reward, False, False, {}


@pytest.mark.parametrize(
    ("observation", "reward", "refused"),
    [
        ([np.inf, 0.0], 1.0, None),  # infinity where the space is unbounded
        ([-np.inf, 0.0], 1.0, None),
        ([0.0, np.inf], 1.0, "holding NaN (or infinity where its space is bounded)"),
        ([np.nan, 0.0], 1.0, "holding NaN"),
        ([0.0, 0.0], np.array([1.0]), None),  # a reward array of one number
        ([0.0, 0.0], np.array([np.nan]), "returned the reward [nan]"),
        ([0.0, 0.0], float("inf"), "returned the reward inf"),
        ([0.0, 0.0], None, "returned the reward None"),  # NumPy reads None as NaN
        ([0.0, 0.0], "one", None),  # not a number at all: the agent's to judge
    ],
)
def test_checked_env_refuses_nan_and_out_of_bounds_infinity_only(
    observation: list[float], reward: object, refused: str | None
) -> None:
    env = CheckedEnv(_Scripted([(observation, reward)]), "Scripted-v0")
    env.reset()
    if refused is None:
        env.step(0)
        return
    with pytest.raises(UserError, match=re.escape(refused)):
        env.step(0)
