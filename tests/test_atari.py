"""Both Atari paths agree: env `i` of `make_atari_vector_env(seed=s)` is `make_atari_env(seed=s+i)`.

Real ALE games, no mocks. Both paths get the same actions; every observation, reward,
terminated and truncated flag (and ALE's lives and frame counters, which pin down the
no-op starts) must be equal, across episode ends and the autoresets that follow them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlkit.atari import AtariSettings, make_atari_env, make_atari_vector_env
from rlkit.errors import UserError

NUM_ENVS = 2
MAX_STEPS = 1_000  # a safety cap; every case below ends its episodes well before it
STEPS_AFTER_FIRST_END = 25  # steps compared in the episode after the autoreset
INFO_KEYS = ("lives", "episode_frame_number", "frame_number")
MAX_ALE_SEED = 2**31 - 1

GAME_OVER = "game over"
LIFE_LOST = "life lost"
TRUNCATED = "truncated"


@dataclass
class Rollout:
    """What a compared rollout went through: episode ends per env and every reward seen."""

    ends: list[list[str]] = field(default_factory=lambda: [[] for _ in range(NUM_ENVS)])
    rewards: list[float] = field(default_factory=list)


def _end_kind(terminated: bool, truncated: bool, lives: int) -> str | None:
    if truncated:
        return TRUNCATED
    if terminated:
        return LIFE_LOST if lives > 0 else GAME_OVER
    return None


def _assert_same_step(
    where: str,
    single: tuple[Any, float, bool, bool, dict[str, Any]],
    vector: tuple[Any, float, bool, bool, dict[str, Any]],
) -> None:
    single_obs, single_reward, single_terminated, single_truncated, single_info = single
    vector_obs, vector_reward, vector_terminated, vector_truncated, vector_info = vector
    assert single_obs.shape == vector_obs.shape, where
    assert single_obs.dtype == vector_obs.dtype == np.uint8, where
    if not np.array_equal(single_obs, vector_obs):
        slots = [
            k
            for k in range(single_obs.shape[0])
            if not np.array_equal(single_obs[k], vector_obs[k])
        ]
        pytest.fail(f"{where}: observations differ in stack slots {slots}")
    assert float(single_reward) == float(vector_reward), f"{where}: reward"
    assert bool(single_terminated) == bool(vector_terminated), f"{where}: terminated"
    assert bool(single_truncated) == bool(vector_truncated), f"{where}: truncated"
    for key in INFO_KEYS:
        assert int(single_info[key]) == int(vector_info[key]), f"{where}: info[{key!r}]"


def _compare_paths(
    env_id: str, settings: AtariSettings, seed: int, clip_rewards: bool | None
) -> Rollout:
    """Step both paths with one seeded action sequence until every env has ended an episode
    and played `STEPS_AFTER_FIRST_END` steps of the next one, asserting equality throughout."""
    vector_env = make_atari_vector_env(
        env_id, settings, num_envs=NUM_ENVS, seed=seed, clip_rewards=clip_rewards, num_threads=1
    )
    singles = [
        make_atari_env(env_id, settings, seed=seed + i, clip_rewards=clip_rewards)
        for i in range(NUM_ENVS)
    ]
    rollout = Rollout()
    try:
        vector_obs, vector_info = vector_env.reset(seed=seed)
        for i, single in enumerate(singles):
            single_obs, single_info = single.reset(seed=seed + i)
            vector_reset = (vector_obs[i], 0.0, False, False, _info_of(vector_info, i))
            _assert_same_step(
                f"env {i} reset", (single_obs, 0.0, False, False, single_info), vector_reset
            )

        actions = np.random.default_rng(seed)
        episode_over = [False] * NUM_ENVS
        first_end_step: list[int | None] = [None] * NUM_ENVS
        for step in range(1, MAX_STEPS + 1):
            action = actions.integers(0, vector_env.single_action_space.n, size=NUM_ENVS)
            vector_obs, rewards, terminated, truncated, vector_info = vector_env.step(action)
            for i, single in enumerate(singles):
                if episode_over[i]:  # NEXT_STEP autoreset: the vector env ignores the action
                    obs, info = single.reset()
                    single_step = (obs, 0.0, False, False, info)
                else:
                    single_step = single.step(int(action[i]))
                vector_step = (
                    vector_obs[i],
                    float(rewards[i]),
                    bool(terminated[i]),
                    bool(truncated[i]),
                    _info_of(vector_info, i),
                )
                _assert_same_step(f"env {i} step {step}", single_step, vector_step)
                rollout.rewards.append(float(rewards[i]))
                kind = _end_kind(
                    bool(terminated[i]), bool(truncated[i]), int(vector_info["lives"][i])
                )
                episode_over[i] = kind is not None
                if kind is not None:
                    rollout.ends[i].append(kind)
                    if first_end_step[i] is None:
                        first_end_step[i] = step
            if all(
                end is not None and step >= end + STEPS_AFTER_FIRST_END for end in first_end_step
            ):
                break
        else:
            pytest.fail(f"not every env ended an episode within {MAX_STEPS} steps: {rollout.ends}")
    finally:
        vector_env.close()
        for single in singles:
            single.close()
    return rollout


def _info_of(vector_info: dict[str, Any], i: int) -> dict[str, Any]:
    return {key: vector_info[key][i] for key in INFO_KEYS}


@pytest.mark.parametrize(
    ("env_id", "settings", "seed", "expected_end"),
    [
        pytest.param("ALE/Breakout-v5", AtariSettings(), 0, GAME_OVER, id="defaults-breakout"),
        pytest.param(
            "ALE/Pong-v5",
            AtariSettings(max_episode_frames=400),
            3,
            TRUNCATED,
            id="defaults-pong-truncated",
        ),
        pytest.param(
            "ALE/Breakout-v5",
            AtariSettings(sticky_action_prob=0.0, fire_reset=True, episodic_life=True),
            5,
            LIFE_LOST,
            id="no-sticky-fire-reset-episodic-life",
        ),
        pytest.param(
            "ALE/Pong-v5",
            # 400 frames is not a multiple of 3: truncation stops a step after its first frame.
            AtariSettings(max_pool=False, frame_skip=3, frame_stack=2, max_episode_frames=400),
            9,
            TRUNCATED,
            id="no-max-pool-frame-skip-3-stack-2",
        ),
    ],
)
def test_vector_env_i_equals_single_env_seeded_s_plus_i_frame_for_frame(
    env_id: str, settings: AtariSettings, seed: int, expected_end: str
) -> None:
    rollout = _compare_paths(env_id, settings, seed, clip_rewards=None)
    for ends in rollout.ends:
        assert expected_end in ends, rollout.ends


@pytest.mark.parametrize(
    ("settings_clip", "clip_rewards", "clipped"),
    [
        pytest.param(True, None, True, id="settings-clip-on"),
        pytest.param(False, None, False, id="settings-clip-off"),
        pytest.param(True, False, False, id="argument-overrides-clip-off"),
        pytest.param(False, True, True, id="argument-overrides-clip-on"),
    ],
)
def test_both_paths_give_equal_rewards_with_reward_clipping_on_and_off(
    settings_clip: bool, clip_rewards: bool | None, clipped: bool
) -> None:
    # Space Invaders scores 5 to 30 per invader, so clipping visibly changes the rewards.
    settings = AtariSettings(reward_clipping=settings_clip, max_episode_frames=400)
    rollout = _compare_paths("ALE/SpaceInvaders-v5", settings, 2, clip_rewards)
    assert all(ends == [TRUNCATED] for ends in rollout.ends), rollout.ends
    if clipped:
        assert set(rollout.rewards) == {0.0, 1.0}
    else:
        assert max(rollout.rewards) > 1.0


def test_noop_count_is_drawn_as_libstdcxx_uniform_int_distribution_draws_it() -> None:
    # For seed 153 and a bound of 10000, Lemire's method (libstdc++ since GCC 11) draws 1476
    # no-op frames where the older division method draws 1477; Breakout never ends on no-ops.
    settings = AtariSettings(noop_max=10_000)
    single = make_atari_env("ALE/Breakout-v5", settings, seed=153)
    vector_env = make_atari_vector_env("ALE/Breakout-v5", settings, num_envs=1, seed=153)
    try:
        vector_obs, vector_info = vector_env.reset(seed=153)
        single_obs, single_info = single.reset(seed=153)
        vector_reset = (vector_obs[0], 0.0, False, False, _info_of(vector_info, 0))
        _assert_same_step("env 0 reset", (single_obs, 0.0, False, False, single_info), vector_reset)
        assert int(single_info["episode_frame_number"]) == 1476
    finally:
        vector_env.close()
        single.close()


@pytest.mark.parametrize(
    "settings", [AtariSettings(), AtariSettings(frame_stack=2, screen_size=64)]
)
def test_single_env_observations_are_stack_by_size_by_size_uint8(settings: AtariSettings) -> None:
    size = settings.screen_size
    expected = gym.spaces.Box(0, 255, (settings.frame_stack, size, size), dtype=np.uint8)
    env = make_atari_env("ALE/Pong-v5", settings, seed=0)
    try:
        assert env.observation_space == expected
        observation, _ = env.reset(seed=0)
        assert observation.shape == expected.shape
        assert observation.dtype == np.uint8
        observation, *_ = env.step(0)
        assert observation in expected
    finally:
        env.close()


@pytest.mark.parametrize("seed", [-1, MAX_ALE_SEED + 1])
def test_make_atari_env_rejects_seeds_outside_ale_range(seed: int) -> None:
    with pytest.raises(UserError, match="out of range"):
        make_atari_env("ALE/Pong-v5", AtariSettings(), seed=seed)


@pytest.mark.parametrize(
    ("seed", "num_envs"),
    [
        pytest.param(-1, 1, id="negative"),
        pytest.param(MAX_ALE_SEED + 1, 1, id="above-max"),
        pytest.param(MAX_ALE_SEED, 2, id="last-env-above-max"),
    ],
)
def test_make_atari_vector_env_rejects_seeds_outside_ale_range(seed: int, num_envs: int) -> None:
    with pytest.raises(UserError, match="out of range"):
        make_atari_vector_env("ALE/Pong-v5", AtariSettings(), num_envs=num_envs, seed=seed)


@pytest.mark.parametrize("seed", [-1, MAX_ALE_SEED + 1])
def test_single_env_reset_rejects_seeds_outside_ale_range(seed: int) -> None:
    env = make_atari_env("ALE/Pong-v5", AtariSettings(), seed=0)
    try:
        with pytest.raises(ValueError, match="out of range"):
            env.reset(seed=seed)
    finally:
        env.close()


def test_largest_ale_seed_is_accepted_and_gives_the_same_reset_on_both_paths() -> None:
    settings = AtariSettings()
    single = make_atari_env("ALE/Pong-v5", settings, seed=MAX_ALE_SEED)
    vector_env = make_atari_vector_env(
        "ALE/Pong-v5", settings, num_envs=2, seed=MAX_ALE_SEED - 1, num_threads=1
    )
    try:
        vector_obs, vector_info = vector_env.reset(seed=MAX_ALE_SEED - 1)
        single_obs, single_info = single.reset(seed=MAX_ALE_SEED)
        vector_reset = (vector_obs[1], 0.0, False, False, _info_of(vector_info, 1))
        _assert_same_step("env 1 reset", (single_obs, 0.0, False, False, single_info), vector_reset)
    finally:
        vector_env.close()
        single.close()


def test_episodic_life_is_terminal_for_learning_while_the_game_goes_on() -> None:
    """rlkit's env factory plays whole games; LifeLossTerminals marks each lost life."""
    from rlkit.environments import make_vector_env
    from rlkit.signals import LifeLossTerminals

    settings = AtariSettings(episodic_life=True, sticky_action_prob=0.0)
    envs = make_vector_env("Breakout", num_envs=1, atari=settings)
    _, info = envs.reset(seed=3)
    life_loss = LifeLossTerminals(1)
    life_loss.start(info)
    rng = np.random.default_rng(0)
    resetting = np.zeros(1, dtype=bool)
    lives_seen = [int(info["lives"][0])]
    learning_terminals = 0
    for _ in range(MAX_STEPS * 5):
        _, _, terminated, truncated, info = envs.step(rng.integers(4, size=1))
        marked = life_loss(terminated, info, resetting)
        lives = int(info["lives"][0])
        if 0 < lives < lives_seen[-1]:
            assert marked[0] and not terminated[0], "a lost life: terminal for learning only"
            learning_terminals += 1
        else:
            assert marked[0] == terminated[0]
        lives_seen.append(lives)
        if terminated[0] or truncated[0]:
            break
        resetting = terminated | truncated
    envs.close()
    assert terminated[0] and lives_seen[-1] == 0, "the episode is the whole game"
    assert learning_terminals == lives_seen[0] - 1  # 5 lives: 4 losses, then game over
