"""Policy heads for MultiDiscrete and MultiBinary actions, greedy actions, actions for the env."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Independent, kl_divergence

from rlkit.encoders import build_encoder
from rlkit.observations import stack, stack_observations
from rlkit.policies import (
    ActorCritic,
    BernoulliHead,
    MultiCategorical,
    MultiCategoricalHead,
    greedy_action,
    policy_head,
)
from rlkit.rollout import Carry, _env_actions, collect_envs
from tests.spaces_envs import DICT_CUE_ID

T, B, F = 5, 3, 6
MULTI_DISCRETE = gym.spaces.MultiDiscrete([3, 2, 4], start=[1, -1, 0])
GRID_MULTI_DISCRETE = gym.spaces.MultiDiscrete([[2, 3], [4, 2]], start=[[0, 1], [2, 0]])
MULTI_BINARY = gym.spaces.MultiBinary(4)
GRID_MULTI_BINARY = gym.spaces.MultiBinary((2, 3))


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: these small networks run several times faster on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_policy_head_dispatches_the_new_spaces() -> None:
    assert isinstance(policy_head(F, MULTI_DISCRETE), MultiCategoricalHead)
    assert isinstance(policy_head(F, MULTI_BINARY), BernoulliHead)
    assert policy_head(F, GRID_MULTI_DISCRETE).sizes == [2, 3, 4, 2]  # type: ignore[union-attr]
    assert policy_head(F, GRID_MULTI_BINARY).logits.out_features == 6  # type: ignore[union-attr]


def test_multi_categorical_sums_log_prob_entropy_and_kl_over_dimensions() -> None:
    torch.manual_seed(0)
    head = MultiCategoricalHead(F, [3, 2, 4])
    with torch.no_grad():
        head.logits.weight.normal_()  # away from the near-uniform initial policy
    distribution = head(torch.randn(T, B, F))
    actions = distribution.sample()
    assert actions.shape == (T, B, 3) and actions.dtype == torch.int64
    assert (actions >= 0).all() and (actions < torch.tensor([3, 2, 4])).all()
    logits = distribution.logits.split([3, 2, 4], dim=-1)
    parts = [Categorical(logits=part) for part in logits]
    expected = sum(part.log_prob(actions[..., i]) for i, part in enumerate(parts))
    torch.testing.assert_close(distribution.log_prob(actions), expected)
    torch.testing.assert_close(distribution.entropy(), sum(part.entropy() for part in parts))
    assert distribution.log_prob(actions).shape == (T, B)
    mode = distribution.mode
    assert torch.equal(mode, torch.stack([part.logits.argmax(-1) for part in parts], dim=-1))
    other = head(torch.randn(T, B, F))
    kl = kl_divergence(distribution, other)
    assert kl.shape == (T, B) and (kl > 0).all()
    expected_kl = sum(kl_divergence(p, q) for p, q in zip(parts, other.categoricals, strict=True))
    torch.testing.assert_close(kl, expected_kl)
    torch.testing.assert_close(kl_divergence(distribution, distribution), torch.zeros(T, B))


def test_multi_categorical_samples_follow_each_dimensions_probabilities() -> None:
    torch.manual_seed(1)
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1, 0.25, 0.75])).expand(20_000, 5)
    samples = MultiCategorical(logits, [3, 2]).sample()
    first = torch.bincount(samples[:, 0], minlength=3).float() / 20_000
    second = torch.bincount(samples[:, 1], minlength=2).float() / 20_000
    torch.testing.assert_close(first, torch.tensor([0.7, 0.2, 0.1]), atol=0.015, rtol=0)
    torch.testing.assert_close(second, torch.tensor([0.25, 0.75]), atol=0.015, rtol=0)


def test_bernoulli_head_is_independent_bernoullis() -> None:
    torch.manual_seed(2)
    head = BernoulliHead(F, 4)
    distribution = head(torch.randn(T, B, F))
    assert isinstance(distribution, Independent)
    assert isinstance(distribution.base_dist, Bernoulli)
    actions = distribution.sample()
    assert actions.shape == (T, B, 4)
    assert set(actions.unique().tolist()) <= {0.0, 1.0}
    per_dimension = distribution.base_dist.log_prob(actions)
    torch.testing.assert_close(distribution.log_prob(actions), per_dimension.sum(-1))
    torch.testing.assert_close(distribution.entropy(), distribution.base_dist.entropy().sum(-1))


@pytest.mark.parametrize("space", [MULTI_DISCRETE, GRID_MULTI_DISCRETE, MULTI_BINARY])
def test_heads_start_near_uniform_and_learn_through_log_prob(space: gym.Space[object]) -> None:
    torch.manual_seed(3)
    head = policy_head(F, space)
    distribution = head(torch.randn(B, F))
    if isinstance(distribution, Independent):
        probabilities = torch.sigmoid(distribution.base_dist.logits)
    else:
        probabilities = torch.softmax(distribution.categoricals[0].logits, dim=-1)
    assert (probabilities - probabilities.mean(-1, keepdim=True)).abs().max() < 0.05
    loss = -distribution.log_prob(distribution.sample()).sum()
    loss.backward()
    assert all(param.grad is not None and param.grad.abs().sum() > 0 for param in head.parameters())


@pytest.mark.parametrize(
    "space", [MULTI_DISCRETE, GRID_MULTI_DISCRETE, MULTI_BINARY, GRID_MULTI_BINARY]
)
def test_env_actions_fit_the_space(space: gym.Space[object]) -> None:
    torch.manual_seed(4)
    distribution = policy_head(F, space)(torch.randn(8, F))
    actions = _env_actions(distribution.sample(), space)
    assert len(actions) == 8
    for action in actions:
        assert space.contains(action), action
        assert action.dtype == space.dtype


def test_env_actions_add_the_start_and_reshape() -> None:
    samples = torch.tensor([[0, 2, 1, 0], [1, 0, 3, 1]])
    actions = _env_actions(samples, GRID_MULTI_DISCRETE)
    np.testing.assert_array_equal(actions[0], [[0, 3], [3, 0]])
    np.testing.assert_array_equal(actions[1], [[1, 1], [5, 1]])
    discrete = gym.spaces.Discrete(3, start=-1)
    assert _env_actions(torch.tensor([0, 2]), discrete) == [-1, 1]
    assert _env_actions(torch.tensor([0, 2]), gym.spaces.Discrete(3)) == [0, 2]


def test_greedy_actions_take_each_dimensions_best() -> None:
    head = MultiCategoricalHead(2, [3, 2, 4])
    with torch.no_grad():
        head.logits.weight.zero_()
        head.logits.bias.copy_(torch.tensor([0.0, 2.0, 1.0, 0.5, -0.5, 0.0, 0.0, 0.0, 3.0]))
    action = greedy_action(head(torch.zeros(1, 2)), MULTI_DISCRETE)
    np.testing.assert_array_equal(action, np.array([1, 0, 3]) + MULTI_DISCRETE.start)
    assert MULTI_DISCRETE.contains(action)

    binary = BernoulliHead(2, 6)
    with torch.no_grad():
        binary.logits.weight.zero_()
        binary.logits.bias.copy_(torch.tensor([0.1, -0.1, 0.0, 5.0, -5.0, 1e-3]))
    action = greedy_action(binary(torch.zeros(1, 2)), GRID_MULTI_BINARY)
    np.testing.assert_array_equal(action, [[1, 0, 0], [1, 0, 1]])  # p > 0.5; p = 0.5 gives 0
    assert action.dtype == np.int8 and GRID_MULTI_BINARY.contains(action)

    categorical = policy_head(2, gym.spaces.Discrete(3, start=5))
    assert greedy_action(categorical(torch.zeros(1, 2)), gym.spaces.Discrete(3, start=5)) in {
        5,
        6,
        7,
    }


@pytest.mark.parametrize("actions", ["multidiscrete", "multibinary"])
def test_policy_gradient_learns_the_cue_with_multi_dimensional_actions(actions: str) -> None:
    """Collected by the backbone's rollouts, trained by REINFORCE: reads the cue in a few
    hundred updates (random play earns 0.5 a step, the cue 1.0)."""
    torch.manual_seed(5)
    envs = [
        gym.make(DICT_CUE_ID, structure="vector", cue="vector", actions=actions, length=4)
        for _ in range(4)
    ]
    policy = ActorCritic(envs[0].observation_space, envs[0].action_space, hidden=(16,))
    optimizer = torch.optim.Adam(policy.policy_parameters(), lr=0.03)
    carries = [Carry.start(env, policy, seed=seed) for seed, env in enumerate(envs)]
    for _ in range(40):
        rollout, carries = collect_envs(envs, policy, carries, steps=8)
        distribution, _, _ = policy(rollout.observations, None, rollout.episode_starts)
        advantages = rollout.rewards - rollout.rewards.mean()
        loss = -(distribution.log_prob(rollout.actions) * advantages).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert rollout.actions.shape[:2] == (8, 4)
    assert float(rollout.rewards.mean()) > 0.9, float(rollout.rewards.mean())


@pytest.mark.parametrize(
    ("structure", "cue", "actions"),
    [("dict", "image", "multidiscrete"), ("tuple", "discrete", "multibinary")],
)
def test_a_policy_reads_the_cue_from_a_nested_observation(
    structure: str, cue: str, actions: str
) -> None:
    """The whole chain for Dict/Tuple observations, as an agent will run it: convert and
    stack observations, encode them, sample from the head, act in the env; REINFORCE."""
    torch.manual_seed(6)
    envs = [gym.make(DICT_CUE_ID, structure=structure, cue=cue, actions=actions) for _ in range(4)]
    space, action_space = envs[0].observation_space, envs[0].action_space
    encoder = build_encoder(space, (16,))
    head = policy_head(encoder.output_dim, action_space)
    parameters = [*encoder.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=0.01)  # 0.03 collapses some seeds early
    current = [env.reset(seed=seed)[0] for seed, env in enumerate(envs)]
    for _ in range(120):  # all of seeds 0-5 above 0.97 by then
        observations, sampled, rewards = [], [], []
        for _ in range(8):
            batch = stack_observations(current, space)
            with torch.no_grad():
                chosen = head(encoder(batch)).sample()
            stepped = [
                env.step(action)
                for env, action in zip(envs, _env_actions(chosen, action_space), strict=True)
            ]
            observations.append(batch)
            sampled.append(chosen)
            rewards.append([float(outcome[1]) for outcome in stepped])
            current = [
                env.reset()[0] if outcome[2] or outcome[3] else outcome[0]
                for env, outcome in zip(envs, stepped, strict=True)
            ]
        steps = stack(observations)  # leaves [T, N, ...]
        reward = torch.tensor(rewards)
        distribution = head(encoder(steps))  # the encoder takes [T, N] leading axes
        advantages = reward - reward.mean()
        loss = -(distribution.log_prob(torch.stack(sampled)) * advantages).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(reward.mean()) > 0.9, float(reward.mean())
