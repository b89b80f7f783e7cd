"""rlkit's own environment plugins: the T-maze memory task and velocity-masked classic control."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlkit.environments import make_env
from rlkit.envs.masked import KeepIndices
from rlkit.envs.tmaze import (
    CORRIDOR,
    EAST,
    JUNCTION,
    NORTH,
    SIGN_NORTH,
    SIGN_SOUTH,
    SOUTH,
    WEST,
    TMaze,
)
from rlkit.errors import UserError
from rlkit.registry import register_env_plugins
from tests.conftest import cli_env, run_cli

PLUGIN_IDS = (
    "rlkit/TMaze-v0",
    "rlkit/CartPoleNoVel-v0",
    "rlkit/PendulumNoVel-v0",
    "rlkit/AcrobotNoVel-v0",
)


@pytest.fixture(autouse=True, scope="module")
def _registered() -> None:
    register_env_plugins()


# --- T-maze -----------------------------------------------------------------------------

Policy = Callable[[np.ndarray, list[np.ndarray]], int]


def run_episode(env: gym.Env[Any, Any], policy: Policy) -> tuple[float, int, bool, dict[str, Any]]:
    """Play one episode (env.reset() without a seed); the policy sees every observation so far."""
    observation, _ = env.reset()
    seen = [observation]
    total, steps = 0.0, 0
    while True:
        observation, reward, terminated, truncated, info = env.step(policy(observation, seen))
        seen.append(observation)
        total += float(reward)
        steps += 1
        if terminated or truncated:
            return total, steps, terminated, info


def remembering_policy(observation: np.ndarray, seen: list[np.ndarray]) -> int:
    """Optimal: walk east; at the junction turn the way the first observation's sign said."""
    if not np.array_equal(observation, JUNCTION):
        return EAST
    return NORTH if np.array_equal(seen[0], SIGN_NORTH) else SOUTH


def fixed_turn(turn: int) -> Policy:
    """A memoryless policy: a function of the current observation only."""
    return lambda observation, _seen: turn if np.array_equal(observation, JUNCTION) else EAST


@pytest.mark.parametrize("length", [1, 2, 10, 40])
def test_remembering_the_sign_gets_the_optimal_return_for_both_signs(length: int) -> None:
    env = gym.make("rlkit/TMaze-v0", length=length)
    env.reset(seed=length)
    first_observations = set()
    for _ in range(12):
        total, steps, terminated, info = run_episode(env, remembering_policy)
        assert (total, steps, terminated, info["is_success"]) == (4.0, length + 1, True, True)
    for _ in range(12):
        observation, _ = env.reset()
        first_observations.add(tuple(observation.tolist()))
    assert first_observations == {SIGN_NORTH, SIGN_SOUTH}


def test_a_memoryless_policy_wins_about_half_of_the_episodes() -> None:
    """The junction looks the same whatever the sign, so a memoryless turn is a coin flip."""
    episodes = 400
    results = {}
    for turn in (NORTH, SOUTH):
        env = make_env("rlkit/TMaze-v0", seed=7, env_kwargs={"length": 5})
        outcomes = [run_episode(env, fixed_turn(turn)) for _ in range(episodes)]
        for total, _, terminated, info in outcomes:
            assert terminated and total == (4.0 if info["is_success"] else -0.1)
        results[turn] = np.array([info["is_success"] for *_, info in outcomes])
    # same seed, same signs: each episode is won by exactly one of the two fixed turns
    assert np.array_equal(results[NORTH], ~results[SOUTH])
    assert 0.42 < results[NORTH].mean() < 0.58


def walk(env: TMaze, actions: list[int]) -> list[tuple[float, ...]]:
    observations = []
    for action in actions:
        observation, *_ = env.step(np.int64(action))
        observations.append(tuple(observation.tolist()))
    return observations


def test_the_sign_shows_only_on_the_start_cell() -> None:
    env = TMaze(length=3)
    seen: dict[tuple[float, ...], list[tuple[float, ...]]] = {}
    for seed in range(20):
        first, _ = env.reset(seed=seed)
        # east to the junction, back west to the start, east again, into the east wall
        later = walk(env, [EAST, EAST, EAST, WEST, WEST, WEST, EAST, EAST, EAST, EAST])
        seen[tuple(first.tolist())] = later
    assert set(seen) == {SIGN_NORTH, SIGN_SOUTH}
    for sign, later in seen.items():
        expected = [CORRIDOR, CORRIDOR, JUNCTION, CORRIDOR, CORRIDOR, sign]
        expected += [CORRIDOR, CORRIDOR, JUNCTION, JUNCTION]
        assert later == expected


def test_walls_cost_a_tenth_and_moves_are_free() -> None:
    env = TMaze(length=2)
    env.reset(seed=0)
    rewards = [float(env.step(np.int64(action))[1]) for action in (NORTH, SOUTH, WEST)]
    assert rewards == [-0.1, -0.1, -0.1]  # the start cell's walls: the agent stood still
    assert float(env.step(np.int64(EAST))[1]) == 0.0
    assert float(env.step(np.int64(WEST))[1]) == 0.0
    observation, reward, terminated, truncated, _ = env.step(np.int64(NORTH))
    assert (float(reward), terminated, truncated) == (-0.1, False, False)
    assert tuple(observation.tolist()) in (SIGN_NORTH, SIGN_SOUTH)  # still on the start cell


@pytest.mark.parametrize(
    ("kwargs", "limit"), [({"length": 3}, 32), ({"length": 3, "max_steps": 7}, 7)]
)
def test_episodes_are_truncated_at_the_step_limit(kwargs: dict[str, int], limit: int) -> None:
    env = gym.make("rlkit/TMaze-v0", **kwargs)
    env.reset(seed=0)
    for step in range(1, limit + 1):
        _, reward, terminated, truncated, info = env.step(WEST)  # against the start's wall
        assert float(reward) == -0.1 and not terminated
        assert truncated == (step == limit)
    assert info == {"is_success": False}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"length": 0}, "TMaze length=0: length must be an integer >= 1"),
        ({"length": 2.5}, "TMaze length=2.5: length must be an integer >= 1"),
        ({"length": True}, "TMaze length=True"),
        (
            {"length": 4, "max_steps": 4},
            "TMaze max_steps=4: max_steps must be an integer >= length + 1 = 5",
        ),
    ],
)
def test_bad_tmaze_kwargs_are_user_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        make_env("rlkit/TMaze-v0", seed=0, env_kwargs=kwargs)


def test_tmaze_is_seeded_through_reset() -> None:
    def signs(seed: int) -> list[float]:
        env = TMaze(length=2)
        env.reset(seed=seed)
        return [float(env.reset()[0][0]) for _ in range(30)]

    assert signs(1) == signs(1)
    assert signs(1) != signs(2)


def test_tmaze_passes_gymnasiums_env_checker() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make("rlkit/TMaze-v0", length=4).unwrapped)
        check_env(gym.make("rlkit/TMaze-v0", length=1, max_steps=3).unwrapped)
    assert [str(warning.message) for warning in caught] == []


def test_tmaze_renders_the_agent_and_the_goal_arm() -> None:
    env = TMaze(length=3, render_mode="ansi")
    first, _ = env.reset(seed=0)
    north, corridor, south = env.render().split("\n")
    assert corridor == "A..J"
    goal_north = tuple(first.tolist()) == SIGN_NORTH
    assert (north.strip(), south.strip()) == (("G", "x") if goal_north else ("x", "G"))


# --- velocity-masked classic control ------------------------------------------------------

MASKED = [
    ("rlkit/CartPoleNoVel-v0", "CartPole-v1", [0, 2], 500),
    ("rlkit/PendulumNoVel-v0", "Pendulum-v1", [0, 1], 200),
    ("rlkit/AcrobotNoVel-v0", "Acrobot-v1", [0, 1, 2, 3], 500),
]


@pytest.mark.parametrize(("masked_id", "base_id", "kept", "limit"), MASKED)
def test_masked_observations_are_the_base_observations_at_the_kept_indices(
    masked_id: str, base_id: str, kept: list[int], limit: int
) -> None:
    masked, base = gym.make(masked_id), gym.make(base_id)
    assert isinstance(base.observation_space, gym.spaces.Box)
    assert masked.observation_space == gym.spaces.Box(
        base.observation_space.low[kept], base.observation_space.high[kept], dtype=np.float32
    )
    assert masked.spec is not None and masked.spec.max_episode_steps == limit
    masked_observation, _ = masked.reset(seed=3)
    base_observation, _ = base.reset(seed=3)
    base.action_space.seed(3)
    for _ in range(150):
        assert np.array_equal(masked_observation, base_observation[kept])
        action = base.action_space.sample()
        masked_observation, masked_reward, *masked_end, _ = masked.step(action)
        base_observation, base_reward, *base_end, _ = base.step(action)
        assert (masked_reward, masked_end) == (base_reward, base_end)
        if any(base_end):
            masked_observation, _ = masked.reset()
            base_observation, _ = base.reset()


def steps_until_the_end(env: gym.Env[Any, Any], controller: Callable[[], Any]) -> tuple[int, bool]:
    """(steps, truncated) of the episode under way; gives up after 1,000 steps (no time limit)."""
    for steps in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(controller())
        if terminated or truncated:
            return steps, truncated
    return 1000, False


def test_cartpole_without_velocities_keeps_the_500_step_limit() -> None:
    env = make_env("rlkit/CartPoleNoVel-v0", seed=0)
    assert env.spec is not None and env.spec.max_episode_steps == 500

    def balance() -> int:  # a linear controller on the hidden full state, only to reach the limit
        position, velocity, angle, angular_velocity = env.unwrapped.state  # type: ignore[attr-defined]
        return int(angle + 0.5 * angular_velocity + 0.05 * position + 0.1 * velocity > 0)

    assert steps_until_the_end(env, balance) == (500, True)


def test_pendulum_without_velocity_keeps_its_200_step_limit_and_accepts_a_shorter_one() -> None:
    env = make_env("rlkit/PendulumNoVel-v0", seed=0)
    assert steps_until_the_end(env, lambda: np.zeros(1, dtype=np.float32)) == (200, True)
    shorter = make_env("rlkit/PendulumNoVel-v0", seed=0, env_kwargs={"max_episode_steps": 30})
    assert shorter.spec is not None and shorter.spec.max_episode_steps == 30
    assert steps_until_the_end(shorter, lambda: np.zeros(1, dtype=np.float32)) == (30, True)


def test_masked_env_kwargs_reach_the_base_env() -> None:
    env = make_env("rlkit/PendulumNoVel-v0", seed=0, env_kwargs={"g": 3.0})
    assert env.unwrapped.g == 3.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("indices", "message"),
    [([4], r"indices \[4\]: give distinct indices in 0\.\.3"), ([0, 0], "distinct"), ([], "0..3")],
)
def test_bad_indices_are_user_errors(indices: list[int], message: str) -> None:
    with pytest.raises(UserError, match=message):
        KeepIndices(gym.make("CartPole-v1"), indices)


def test_keep_indices_refuses_a_discrete_observation() -> None:
    with pytest.raises(UserError, match="1-D Box observation space; the env has Discrete"):
        KeepIndices(gym.make("FrozenLake-v1"), [0])


# --- registration -----------------------------------------------------------------------


def test_plugins_register_in_a_fresh_process_that_imports_only_the_factory() -> None:
    code = (
        "from rlkit.environments import make_env\n"
        "env = make_env('rlkit/CartPoleNoVel-v0', seed=0)\n"
        "observation, _ = env.reset(seed=0)\n"
        "maze = make_env('rlkit/TMaze-v0', seed=0, env_kwargs={'length': 4})\n"
        "print(observation.shape, env.spec.max_episode_steps, maze.unwrapped.length)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == "(2,) 500 4", done.stderr


def test_rlkit_list_envs_shows_the_plugins() -> None:
    listed = run_cli("list", "envs", timeout=120)
    assert listed.returncode == 0, listed.stderr
    for env_id in PLUGIN_IDS:
        assert env_id in listed.stdout
    families = listed.stdout.split("Task families")[1].split("Short names")[0]
    assert "MuJoCo locomotion                installed" in families  # the dev extra has it
    for env_id in ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "LunarLander-v3"):
        assert env_id in families
