"""NES's NumPy actor acts as the torch policy it was compiled from."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.numpy_acting import compile_greedy
from rlkit.policies import ActorCritic, GreedyPolicy, load_statistics, set_flat_parameters

OBSERVATIONS = gym.spaces.Box(-5.0, 5.0, (7,), np.float64)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize(
    "action_space",
    [gym.spaces.Discrete(4, start=-1), gym.spaces.Box(-0.5, 0.5, (3,), np.float32)],
    ids=["discrete", "box"],
)
def test_numpy_actor_matches_torch_on_random_parameters_and_statistics(
    activation: str, normalize: bool, action_space: gym.Space[Any]
) -> None:
    torch.manual_seed(0)
    policy = ActorCritic(
        OBSERVATIONS,
        action_space,
        hidden=(16, 8),
        activation=activation,  # type: ignore[arg-type]
        normalize_observations=normalize,
    )
    fast = compile_greedy(policy, action_space)
    assert fast is not None
    slow = GreedyPolicy(policy, action_space)
    rng = np.random.default_rng(1)
    params = policy.policy_parameters()
    size = sum(p.numel() for p in params)
    for _ in range(5):  # new parameters and statistics, as an NES worker sets them
        set_flat_parameters(params, torch.from_numpy(rng.normal(0, 1, size).astype(np.float32)))
        if normalize:
            load_statistics(policy, (rng.normal(0, 2, 7), rng.uniform(0.1, 4, 7), 100.0))
        fast.refresh()
        for observation in rng.uniform(-5, 5, (50, 7)):
            expected, _ = slow.act(observation, slow.initial_state())
            got, state = fast.act(observation, None)
            assert state is None
            if isinstance(action_space, gym.spaces.Discrete):
                assert got == expected and isinstance(got, int)
            else:
                assert got.dtype == expected.dtype and got.shape == expected.shape
                np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
                assert np.all(got >= -0.5) and np.all(got <= 0.5)


def test_recurrent_policies_and_other_torsos_keep_torch() -> None:
    recurrent = ActorCritic(OBSERVATIONS, gym.spaces.Discrete(2), lstm_size=8)
    assert compile_greedy(recurrent, gym.spaces.Discrete(2)) is None
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    cnn = ActorCritic(frames, gym.spaces.Discrete(2))
    assert compile_greedy(cnn, gym.spaces.Discrete(2)) is None
    binary = gym.spaces.MultiBinary(3)
    assert compile_greedy(ActorCritic(OBSERVATIONS, binary), binary) is None
