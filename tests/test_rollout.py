"""Returns, GAE, rollout batching, and `collect` / `collect_envs` on real Gymnasium envs."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.policies import ActorCritic
from rlkit.rollout import Carry, Rollout, collect_envs, discounted_returns, gae

GAMMA = 0.9

# Two envs, four steps. Env 0: terminated at t=1, then an unfinished episode whose
# segment ends at t=3 (bootstrap 10). Env 1: truncated at t=2 (bootstrap 5, while
# values[3] = 4 belongs to the next episode), terminated at t=3 (bootstrap 7 ignored).
REWARDS = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
TERMINATED = torch.tensor([[False, False], [True, False], [False, False], [False, True]])
TRUNCATED = torch.tensor([[False, False], [False, False], [False, True], [False, False]])
BOOTSTRAP = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 5.0], [10.0, 7.0]])
VALUES = torch.tensor([[0.5, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0]])


def test_discounted_returns_by_hand() -> None:
    returns = discounted_returns(REWARDS, TERMINATED, TRUNCATED, BOOTSTRAP, GAMMA)
    expected = torch.tensor(
        [
            [1 + 0.9 * 2, 1 + 0.9 * 5.95],  # 2.8, 6.355
            [2.0, 1 + 0.9 * 5.5],  # terminated: no bootstrap; 5.95
            [3 + 0.9 * 13, 1 + 0.9 * 5],  # 14.7; truncated: bootstrap 5 -> 5.5
            [4 + 0.9 * 10, 1.0],  # segment end: bootstrap 10 -> 13; terminated
        ]
    )
    torch.testing.assert_close(returns, expected)


def test_gae_by_hand() -> None:
    advantages = gae(REWARDS, VALUES, BOOTSTRAP, TERMINATED, TRUNCATED, GAMMA, lam=0.5)
    # deltas: env 0 [1 + .9 - .5, 2 - 1, 3 + 2.7 - 2, 4 + 9 - 3] = [1.4, 1, 3.7, 10]
    #         env 1 [1 + 1.8 - 1, 1 + 2.7 - 2, 1 + 4.5 - 3, 1 - 4] = [1.8, 1.7, 2.5, -3]
    expected = torch.tensor(
        [
            [1.4 + 0.45 * 1.0, 1.8 + 0.45 * 2.825],  # 1.85, 3.07125
            [1.0, 1.7 + 0.45 * 2.5],  # cut by the termination; 2.825
            [3.7 + 0.45 * 10, 2.5],  # 8.2; cut by the truncation
            [10.0, -3.0],
        ]
    )
    torch.testing.assert_close(advantages, expected)
    td_errors = gae(REWARDS, VALUES, BOOTSTRAP, TERMINATED, TRUNCATED, GAMMA, lam=0.0)
    torch.testing.assert_close(
        td_errors, torch.tensor([[1.4, 1.8], [1.0, 1.7], [3.7, 2.5], [10.0, -3.0]])
    )
    monte_carlo = gae(REWARDS, VALUES, BOOTSTRAP, TERMINATED, TRUNCATED, GAMMA, lam=1.0)
    returns = discounted_returns(REWARDS, TERMINATED, TRUNCATED, BOOTSTRAP, GAMMA)
    torch.testing.assert_close(monte_carlo, returns - VALUES)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_limits_on_random_segments(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    steps, envs = 30, 4
    rewards = torch.randn(steps, envs, generator=generator)
    values = torch.randn(steps, envs, generator=generator)
    bootstrap = torch.randn(steps, envs, generator=generator)
    terminated = torch.rand(steps, envs, generator=generator) < 0.1
    truncated = (torch.rand(steps, envs, generator=generator) < 0.1) & ~terminated
    returns = discounted_returns(rewards, terminated, truncated, bootstrap, 0.97)
    lam_one = gae(rewards, values, bootstrap, terminated, truncated, 0.97, 1.0)
    torch.testing.assert_close(lam_one, returns - values)
    next_values = torch.cat([values[1:], bootstrap[-1:]])
    next_values = torch.where(truncated, bootstrap, next_values)
    next_values[-1] = bootstrap[-1]
    td_errors = rewards + 0.97 * next_values * (~terminated) - values
    torch.testing.assert_close(
        gae(rewards, values, bootstrap, terminated, truncated, 0.97, 0.0), td_errors
    )


class Recorder(gym.Wrapper[Any, Any, Any, Any]):
    """Keeps the actions the env received and the observations its `step` returned."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.received: list[np.ndarray] = []
        self.returned: list[np.ndarray] = []

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        self.received.append(np.array(action))
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.returned.append(np.array(observation))
        return observation, reward, terminated, truncated, info


def cartpole(max_episode_steps: int = 20) -> Recorder:
    return Recorder(gym.make("CartPole-v1", max_episode_steps=max_episode_steps))


def policy_for(env: gym.Env[Any, Any], *, lstm_size: int | None = None) -> ActorCritic:
    torch.manual_seed(0)
    return ActorCritic(env.observation_space, env.action_space, hidden=(16,), lstm_size=lstm_size)


def value_of(policy: ActorCritic, observation: np.ndarray) -> float:
    with torch.no_grad():
        start = torch.zeros(1, dtype=torch.bool)
        return float(policy.step(torch.as_tensor(observation)[None], None, start)[1][0])


def check_bookkeeping(rollout: Rollout, carry_length: int) -> None:
    """Episode starts follow ends; recorded lengths/returns match the rewards."""
    ends = (rollout.terminated | rollout.truncated)[:, 0]
    starts = rollout.episode_starts[:, 0]
    assert torch.equal(starts[1:], ends[:-1])
    end_steps = torch.nonzero(ends).flatten().tolist()
    assert len(end_steps) == len(rollout.episode_returns) == len(rollout.episode_lengths)
    begin = -carry_length
    for end, length, episode_return in zip(
        end_steps, rollout.episode_lengths, rollout.episode_returns, strict=True
    ):
        assert length == end + 1 - begin
        inside = rollout.rewards[max(begin, 0) : end + 1, 0].sum().item()
        if begin >= 0:
            assert episode_return == pytest.approx(inside)
        begin = end + 1


def test_collect_on_cartpole_bootstraps_truncations_from_the_final_observation() -> None:
    env = cartpole(max_episode_steps=20)
    policy = policy_for(env)
    carry = Carry.start(env, policy, seed=3)
    rollout, carry = carry.collect(env, policy, steps=120, version=7)
    steps = 120
    assert rollout.observations.shape == (steps, 1, 4)
    assert rollout.observations.dtype == torch.float32
    assert rollout.actions.shape == (steps, 1) and rollout.actions.dtype == torch.int64
    for name in ("log_probs", "values", "rewards", "bootstrap_values", "terminated"):
        assert getattr(rollout, name).shape == (steps, 1), name
    assert rollout.steps == steps and rollout.version == 7 and rollout.initial_state is None
    assert bool(rollout.episode_starts[0, 0])
    check_bookkeeping(rollout, carry_length=0)
    assert all(length <= 20 for length in rollout.episode_lengths)
    assert rollout.episode_returns == [float(length) for length in rollout.episode_lengths]
    assert rollout.episode_successes == [None] * len(rollout.episode_lengths)

    truncated = rollout.truncated[:, 0] & ~rollout.terminated[:, 0]
    assert truncated.sum() >= 2, "the seed should give time-limit truncations"
    assert rollout.terminated.any()
    for t in range(steps):
        if truncated[t]:
            expected = value_of(policy, env.returned[t])
        elif t == steps - 1 and not rollout.terminated[t, 0]:
            expected = value_of(policy, carry.observation)
        else:
            expected = 0.0
        assert rollout.bootstrap_values[t, 0].item() == pytest.approx(expected, abs=1e-6), t
    # the env got the stored actions; the stored log-probs and values are the policy's
    assert [int(a) for a in env.received] == rollout.actions[:, 0].tolist()
    distribution, values, _ = policy(rollout.observations, None, rollout.episode_starts)
    torch.testing.assert_close(distribution.log_prob(rollout.actions), rollout.log_probs)
    torch.testing.assert_close(values, rollout.values)

    # the next call continues the same env and episode
    length_so_far = carry.episode_length
    more, carry = carry.collect(env, policy, steps=60)
    check_bookkeeping(more, carry_length=length_so_far)
    assert not rollout.terminated[-1, 0] and not rollout.truncated[-1, 0], "seed: mid-episode"
    assert not more.episode_starts[0, 0]
    first_end = int(torch.nonzero(more.terminated[:, 0] | more.truncated[:, 0])[0])
    assert more.episode_lengths[0] == length_so_far + first_end + 1


def test_recurrent_collect_carries_state_and_matches_forward() -> None:
    env = cartpole(max_episode_steps=15)
    policy = policy_for(env, lstm_size=8)
    carry = Carry.start(env, policy, seed=1)
    _, carry = carry.collect(env, policy, steps=40)
    steps_before = len(env.returned)
    rollout, carry = carry.collect(env, policy, steps=40)
    assert rollout.initial_state is not None and rollout.initial_state[0].shape == (1, 8)
    # re-running the whole second segment from its stored initial state reproduces acting
    distribution, values, final_state = policy(
        rollout.observations, rollout.initial_state, rollout.episode_starts
    )
    torch.testing.assert_close(values, rollout.values)
    torch.testing.assert_close(distribution.log_prob(rollout.actions), rollout.log_probs)
    assert final_state is not None and carry.state is not None
    for ours, theirs in zip(final_state, carry.state, strict=True):
        torch.testing.assert_close(ours, theirs)
    # bootstrap values are V(final observation) given the memory of that episode
    truncated = rollout.truncated[:, 0] & ~rollout.terminated[:, 0]
    assert truncated.any()
    for t in torch.nonzero(truncated).flatten().tolist():
        final = torch.as_tensor(env.returned[steps_before + t])[None, None]
        sequence = torch.cat([rollout.observations[: t + 1], final])
        starts = torch.cat([rollout.episode_starts[: t + 1], torch.zeros(1, 1, dtype=torch.bool)])
        with torch.no_grad():
            _, sequence_values, _ = policy(sequence, rollout.initial_state, starts)
        assert rollout.bootstrap_values[t, 0].item() == pytest.approx(
            sequence_values[-1, 0].item(), abs=1e-5
        )


def test_whole_episodes_runs_until_the_episode_ends() -> None:
    env = cartpole(max_episode_steps=30)
    policy = policy_for(env)
    carry = Carry.start(env, policy, seed=0)
    rollout, carry = carry.collect(env, policy, steps=3, whole_episodes=True)
    assert rollout.length >= 3
    assert bool(rollout.terminated[-1, 0] | rollout.truncated[-1, 0])
    assert carry.episode_start and carry.episode_length == 0
    assert sum(rollout.episode_lengths) == rollout.length
    # starting mid-episode, it finishes that episode
    partial, carry = carry.collect(env, policy, steps=2)
    rest, carry = carry.collect(env, policy, 1, whole_episodes=True)
    assert not partial.terminated[-1, 0] and not partial.truncated[-1, 0], "seed: mid-episode"
    assert rest.episode_lengths == [2 + rest.length]
    assert not rest.episode_starts[0, 0]


def test_collect_on_pendulum_clips_for_the_env_but_stores_the_sample() -> None:
    env = Recorder(gym.make("Pendulum-v1"))  # 200-step time limit
    policy = policy_for(env)
    carry = Carry.start(env, policy, seed=0)
    rollout, carry = carry.collect(env, policy, steps=200)
    assert rollout.actions.shape == (200, 1, 1) and rollout.actions.dtype == torch.float32
    assert rollout.log_probs.shape == (200, 1)
    sampled = rollout.actions[:, 0].numpy()
    received = np.stack(env.received)
    assert (np.abs(sampled) > 2.0).any(), "std 1 should sample outside [-2, 2] sometimes"
    np.testing.assert_allclose(received, np.clip(sampled, -2.0, 2.0))
    distribution, _, _ = policy(rollout.observations, None, rollout.episode_starts)
    torch.testing.assert_close(distribution.log_prob(rollout.actions), rollout.log_probs)
    # the time limit truncates the episode at the segment's last step
    assert bool(rollout.truncated[-1, 0]) and not rollout.terminated.any()
    assert rollout.bootstrap_values[-1, 0].item() == pytest.approx(
        value_of(policy, env.returned[-1]), abs=1e-6
    )
    assert rollout.episode_lengths == [200] and carry.episode_start
    assert rollout.episode_returns[0] == pytest.approx(rollout.rewards.sum().item(), rel=1e-5)


def episodes_in(rollout: Rollout, env: int) -> list[int]:
    """Lengths of the episodes that begin and end inside column `env` of `rollout`."""
    ends = torch.nonzero((rollout.terminated | rollout.truncated)[:, env]).flatten().tolist()
    return [end - begin for begin, end in pairwise(ends)]


def test_collect_envs_steps_several_envs_with_one_batched_policy() -> None:
    limits = (12, 15, 20)
    envs = [cartpole(max_episode_steps=limit) for limit in limits]
    policy = policy_for(envs[0])
    carries = [Carry.start(env, policy, seed=seed) for seed, env in enumerate(envs)]
    rollout, carries = collect_envs(envs, policy, carries, steps=50, version=3)
    assert rollout.observations.shape == (50, 3, 4) and rollout.actions.shape == (50, 3)
    for name in ("log_probs", "values", "rewards", "bootstrap_values", "episode_starts"):
        assert getattr(rollout, name).shape == (50, 3), name
    assert rollout.steps == 150 and rollout.version == 3
    assert rollout.episode_starts[0].all()
    ends = rollout.terminated | rollout.truncated
    assert torch.equal(rollout.episode_starts[1:], ends[:-1])
    assert len(rollout.episode_lengths) == int(ends.sum())
    assert rollout.episode_returns == [float(length) for length in rollout.episode_lengths]
    inside = sorted(length for index in range(3) for length in episodes_in(rollout, index))
    recorded = list(rollout.episode_lengths)
    for length in inside:  # episodes begun inside the segment are recorded whole
        recorded.remove(length)
    for index, (env, limit) in enumerate(zip(envs, limits, strict=True)):
        # every env got its own column's actions; truncations come from its own limit
        assert [int(a) for a in env.received] == rollout.actions[:, index].tolist()
        assert all(length <= limit for length in episodes_in(rollout, index))
        for t in range(50):
            truncated = rollout.truncated[t, index] and not rollout.terminated[t, index]
            if truncated or (t == 49 and not rollout.terminated[t, index]):
                expected = value_of(policy, env.returned[t])
            else:
                expected = 0.0
            assert rollout.bootstrap_values[t, index].item() == pytest.approx(expected, abs=1e-6)
    assert rollout.truncated.any() and rollout.terminated.any(), "seeds: both kinds of end"
    distribution, values, _ = policy(rollout.observations, None, rollout.episode_starts)
    torch.testing.assert_close(distribution.log_prob(rollout.actions), rollout.log_probs)
    torch.testing.assert_close(values, rollout.values)


def test_collect_envs_carries_each_envs_recurrent_state() -> None:
    envs = [cartpole(max_episode_steps=limit) for limit in (9, 14)]
    policy = policy_for(envs[0], lstm_size=8)
    carries = [Carry.start(env, policy, seed=seed) for seed, env in enumerate(envs)]
    _, carries = collect_envs(envs, policy, carries, steps=20)
    rollout, carries = collect_envs(envs, policy, carries, steps=20)
    assert rollout.initial_state is not None and rollout.initial_state[0].shape == (2, 8)
    distribution, values, final_state = policy(
        rollout.observations, rollout.initial_state, rollout.episode_starts
    )
    torch.testing.assert_close(values, rollout.values)
    torch.testing.assert_close(distribution.log_prob(rollout.actions), rollout.log_probs)
    assert final_state is not None
    for index, carry in enumerate(carries):
        assert carry.state is not None
        for ours, theirs in zip(final_state, carry.state, strict=True):
            torch.testing.assert_close(ours[index : index + 1], theirs)
    with pytest.raises(ValueError, match="whole_episodes collects from one env, got 2"):
        collect_envs(envs, policy, carries, steps=5, whole_episodes=True)
    with pytest.raises(ValueError, match="one carry per env"):
        collect_envs(envs, policy, carries[:1], steps=5)


@pytest.mark.parametrize(("lstm_size", "shared_torso"), [(None, False), (6, True), (6, False)])
def test_acting_only_acts_alike_and_leaves_values_to_the_learner(
    lstm_size: int | None, shared_torso: bool
) -> None:
    rollouts = []
    for acting_only in (False, True):
        envs = [cartpole(max_episode_steps=limit) for limit in (8, 13)]
        torch.manual_seed(0)
        policy = ActorCritic(
            envs[0].observation_space, envs[0].action_space, hidden=(16,),
            lstm_size=lstm_size, shared_torso=shared_torso,
        )  # fmt: skip
        carries = [Carry.start(env, policy, seed=seed) for seed, env in enumerate(envs)]
        torch.manual_seed(1)  # the same action samples
        rollout, _ = collect_envs(envs, policy, carries, steps=30, acting_only=acting_only)
        rollouts.append(rollout)
    full, acting = rollouts
    assert acting.values.isnan().all() and acting.log_probs.isnan().all()
    assert not full.values.isnan().any()
    for name in ("observations", "actions", "rewards", "terminated", "truncated"):
        assert torch.equal(getattr(full, name), getattr(acting, name)), name
    torch.testing.assert_close(acting.bootstrap_values, full.bootstrap_values)
    assert acting.truncated.any()


def test_concatenate_joins_envs() -> None:
    rollouts = []
    for seed in (0, 1):
        env = cartpole(max_episode_steps=20)
        policy = policy_for(env, lstm_size=4)
        rollout, _ = Carry.start(env, policy, seed=seed).collect(
            env, policy, steps=25, version=seed
        )
        rollouts.append(rollout)
    batch = Rollout.concatenate(rollouts)
    assert batch.observations.shape == (25, 2, 4) and batch.rewards.shape == (25, 2)
    torch.testing.assert_close(batch.rewards[:, 1], rollouts[1].rewards[:, 0])
    assert batch.initial_state is not None and batch.initial_state[0].shape == (2, 4)
    assert batch.steps == 50 and batch.version == 0
    assert batch.episode_lengths == rollouts[0].episode_lengths + rollouts[1].episode_lengths
    short, _ = Carry.start(env, policy, seed=2).collect(env, policy, steps=10)
    with pytest.raises(ValueError, match="pad_time"):
        Rollout.concatenate([rollouts[0], short])


def test_pad_time_batches_segments_of_different_lengths() -> None:
    env = cartpole(max_episode_steps=50)
    policy = policy_for(env)
    carry = Carry.start(env, policy, seed=4)
    segments = []
    for steps in (3, 1, 7):
        rollout, carry = carry.collect(env, policy, steps=steps, whole_episodes=steps == 1)
        segments.append(rollout)
    lengths = [segment.length for segment in segments]
    unfinished = [not (seg.terminated[-1, 0] or seg.truncated[-1, 0]) for seg in segments]
    assert unfinished == [True, False, True], "seed: padded segments that end mid-episode"
    batch, mask = Rollout.pad_time(segments)
    longest = max(lengths)
    assert batch.rewards.shape == (longest, 3) and mask.shape == (longest, 3)
    assert mask.sum(0).tolist() == lengths
    for index, segment in enumerate(segments):
        expected_returns = discounted_returns(
            segment.rewards, segment.terminated, segment.truncated, segment.bootstrap_values, 0.99
        )
        expected_advantages = gae(
            segment.rewards,
            segment.values,
            segment.bootstrap_values,
            segment.terminated,
            segment.truncated,
            0.99,
            0.95,
        )
        real = slice(0, segment.length)
        returns = discounted_returns(
            batch.rewards, batch.terminated, batch.truncated, batch.bootstrap_values, 0.99
        )
        advantages = gae(
            batch.rewards,
            batch.values,
            batch.bootstrap_values,
            batch.terminated,
            batch.truncated,
            0.99,
            0.95,
        )
        torch.testing.assert_close(returns[real, index], expected_returns[:, 0])
        torch.testing.assert_close(advantages[real, index], expected_advantages[:, 0])
        assert (returns[segment.length :, index] == 0).all()
        assert (advantages[segment.length :, index] == 0).all()
