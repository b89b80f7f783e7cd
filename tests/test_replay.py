"""Replay memory: exact stacks, episode boundaries, truncation, n-step, interleaved envs."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rlkit.errors import UserError
from rlkit.replay import ReplayBuffer, slot_bytes

STACK = 4
GAMMA = 0.9


class CodedEnvs:
    """Synthetic vector env whose frames encode (env, episode, step) exactly.

    Frame pixels: [0] = env, [1] = episode, [2] = step + 1 (0 is the stack's padding).
    Episode e of env i lasts 3 + (7 * e + 5 * i) % 11 steps and ends by termination when
    e is even, by truncation when odd. Reward at step t of episode e is 100 * e + t.
    NEXT_STEP autoreset, as gymnasium's and ale-py's vector envs.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.episode = np.zeros(num_envs, dtype=np.int64)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.stacks = np.zeros((num_envs, STACK, 3), dtype=np.int32)

    def length(self, env: int) -> int:
        return 3 + int(7 * self.episode[env] + 5 * env) % 11

    def _frame(self, env: int) -> np.ndarray:
        return np.array([env, self.episode[env], self.t[env] + 1], dtype=np.int32)

    def reset(self) -> np.ndarray:
        for env in range(self.num_envs):
            self.stacks[env] = 0
            self.stacks[env, -1] = self._frame(env)
        return self.stacks.copy()

    def step(self, resetting: np.ndarray) -> tuple[np.ndarray, ...]:
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for env in range(self.num_envs):
            if resetting[env]:
                self.episode[env] += 1
                self.t[env] = 0
                self.stacks[env] = 0
            else:
                rewards[env] = 100 * self.episode[env] + self.t[env]
                self.t[env] += 1
                self.stacks[env, :-1] = self.stacks[env, 1:]
                if self.t[env] == self.length(env):
                    terminated[env] = self.episode[env] % 2 == 0
                    truncated[env] = not terminated[env]
            self.stacks[env, -1] = self._frame(env)
        return self.stacks.copy(), rewards, terminated, truncated


def expected_stack(env: int, episode: int, t: int) -> np.ndarray:
    stack = np.zeros((STACK, 3), dtype=np.int32)
    for row, step in enumerate(range(t - STACK + 1, t + 1)):
        if step >= 0:
            stack[row] = (env, episode, step + 1)
    return stack


def fill(buffer: ReplayBuffer, envs: CodedEnvs, steps: int) -> None:
    observations = envs.reset()
    buffer.start_episodes(np.arange(envs.num_envs), observations)
    resetting = np.zeros(envs.num_envs, dtype=bool)
    for _ in range(steps):
        actions = envs.t * 10 + envs.episode % 10  # recognisable actions
        observations, rewards, terminated, truncated = envs.step(resetting)
        stepped = np.flatnonzero(~resetting)
        buffer.add(
            stepped,
            actions[stepped],
            rewards[stepped],
            observations[stepped],
            terminated[stepped],
            truncated[stepped],
        )
        if resetting.any():
            buffer.start_episodes(np.flatnonzero(resetting), observations[resetting])
        resetting = terminated | truncated


def episode_length(env: int, episode: int) -> int:
    return 3 + (7 * episode + 5 * env) % 11


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("capacity", [60, 3000])  # 60: the rings wrap many times
def test_sampled_transitions_are_exact(n_step: int, capacity: int) -> None:
    num_envs = 3
    buffer = ReplayBuffer(
        capacity=capacity,
        num_envs=num_envs,
        observation_shape=(STACK, 3),
        dtype=np.int32,
        stacked=True,
        n_step=n_step,
        gamma=GAMMA,
        seed=1,
    )
    fill(buffer, CodedEnvs(num_envs), steps=400)
    assert_samples_exact(buffer, n_step)


def assert_samples_exact(buffer: ReplayBuffer, n_step: int) -> None:
    """Every sampled transition of a buffer filled from `CodedEnvs` is the real one."""
    seen_boundary_stacks = seen_truncations = seen_terminations = 0
    for _ in range(50):
        batch = buffer.sample(32)
        for index in range(32):
            env, episode, step_plus_one = batch.observations[index, -1]
            t = int(step_plus_one) - 1
            assert np.array_equal(batch.observations[index], expected_stack(env, episode, t))
            assert batch.actions[index] == t * 10 + episode % 10
            length = episode_length(int(env), int(episode))
            steps = min(n_step, length - t)
            assert steps >= 1
            reward = sum(GAMMA**k * (100 * episode + t + k) for k in range(steps))
            assert batch.rewards[index] == pytest.approx(reward, rel=1e-6)
            next_expected = expected_stack(env, episode, t + steps)
            assert np.array_equal(batch.next_observations[index], next_expected)
            ends = t + steps == length
            if ends and episode % 2 == 0:
                assert batch.discounts[index] == 0.0
                seen_terminations += 1
            else:
                assert batch.discounts[index] == pytest.approx(GAMMA**steps)
                seen_truncations += ends
            seen_boundary_stacks += t < STACK - 1
    assert seen_boundary_stacks and seen_truncations and seen_terminations


def test_an_episode_still_running_gives_no_incomplete_n_step_target() -> None:
    buffer = ReplayBuffer(
        capacity=100,
        num_envs=1,
        observation_shape=(STACK, 3),
        dtype=np.int32,
        stacked=True,
        n_step=3,
        gamma=GAMMA,
    )
    fill(buffer, CodedEnvs(1), steps=2)  # episode 0 lasts 3 steps: 2 taken
    with pytest.raises(RuntimeError, match="no complete transition"):
        buffer.sample(1)
    fill(buffer, CodedEnvs(1), steps=3)
    batch = buffer.sample(8)
    assert set(batch.observations[:, -1, 2].tolist()) <= {1, 2, 3}


def test_flat_observations_are_stored_whole() -> None:
    buffer = ReplayBuffer(
        capacity=50,
        num_envs=1,
        observation_shape=(3,),
        dtype=np.float32,
        stacked=False,
        gamma=GAMMA,
    )
    observations = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)
    buffer.start_episodes(np.array([0]), observations)
    for step in range(1, 20):
        next_observations = np.array([[0.0, 0.0, step + 1.0]], dtype=np.float32)
        buffer.add(
            np.array([0]),
            np.array([step]),
            np.array([float(step)]),
            next_observations,
            np.array([False]),
            np.array([False]),
        )
    batch = buffer.sample(16)
    assert batch.observations.shape == (16, 3)
    np.testing.assert_array_equal(batch.next_observations[:, 2], batch.observations[:, 2] + 1)
    np.testing.assert_array_equal(batch.actions, batch.observations[:, 2].astype(np.int64))


def test_atari_memory_per_transition_is_one_frame() -> None:
    per_slot = slot_bytes((84, 84), np.uint8)
    assert 84 * 84 <= per_slot <= 7_200
    buffer = ReplayBuffer(
        capacity=10_000,
        num_envs=4,
        observation_shape=(4, 84, 84),
        dtype=np.uint8,
        stacked=True,
    )
    assert buffer.nbytes / 10_000 <= 7_200


def test_a_buffer_too_big_for_memory_is_refused_before_allocation() -> None:
    with pytest.raises(
        UserError, match=r"replay buffer of 10,000,000,000 transitions.*buffer_size"
    ):
        ReplayBuffer(
            capacity=10_000_000_000,
            num_envs=1,
            observation_shape=(4, 84, 84),
            dtype=np.uint8,
            stacked=True,
        )


def digest(*arrays: np.ndarray) -> str:
    return hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


def test_real_atari_transitions_come_back_exactly() -> None:
    """ale-py's vector env, two envs, short truncated episodes: every sample was a real step."""
    from rlkit.atari import AtariSettings, make_atari_vector_env
    from rlkit.environments import resolve_env_id

    settings = AtariSettings(max_episode_frames=200)
    envs = make_atari_vector_env(resolve_env_id("Breakout"), settings, num_envs=2, seed=5)
    buffer = ReplayBuffer(
        capacity=4_000,
        num_envs=2,
        observation_shape=(4, 84, 84),
        dtype=np.uint8,
        stacked=True,
        gamma=GAMMA,
        seed=2,
    )
    rng = np.random.default_rng(0)
    real: set[str] = set()
    observations, _ = envs.reset(seed=5)
    buffer.start_episodes(np.arange(2), observations)
    resetting = np.zeros(2, dtype=bool)
    episode_ends = 0
    for _ in range(300):
        actions = rng.integers(4, size=2)
        next_observations, rewards, terminated, truncated, _ = envs.step(actions)
        stepped = np.flatnonzero(~resetting)
        for env in stepped:
            discount = 0.0 if terminated[env] else GAMMA
            real.add(
                digest(
                    observations[env],
                    next_observations[env],
                    np.int64(actions[env]),
                    np.float32(rewards[env]),
                    np.float32(discount),
                )
            )
        buffer.add(
            stepped,
            actions[stepped],
            rewards[stepped],
            next_observations[stepped],
            terminated[stepped],
            truncated[stepped],
        )
        if resetting.any():
            buffer.start_episodes(np.flatnonzero(resetting), next_observations[resetting])
        episode_ends += int((terminated | truncated).sum())
        resetting = terminated | truncated
        observations = next_observations
    envs.close()
    assert episode_ends >= 4
    batch = buffer.sample(256)
    for index in range(256):
        key = digest(
            batch.observations[index],
            batch.next_observations[index],
            batch.actions[index],
            batch.rewards[index],
            batch.discounts[index],
        )
        assert key in real
