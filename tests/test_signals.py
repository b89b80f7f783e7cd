"""Learning signals (rlkit.signals): one piece forms what every agent learns from on Atari.

The vector path (DQN) is tested in tests/test_atari.py; here the single-env path every
pool agent collects through (`rlkit.rollout.collect_envs(signals=...)`).
"""

from __future__ import annotations

import numpy as np
import torch

from rlkit.atari import AtariSettings
from rlkit.environments import make_env
from rlkit.policies import ActorCritic
from rlkit.rollout import Carry, collect_envs
from rlkit.signals import LearningSignals
from rlkit.workers import EnvFactory

LIVES = 3  # SpaceInvaders: 3 lives, and kills score 5 to 30 points


def one_game(signals: LearningSignals):  # type: ignore[no-untyped-def]
    """A whole game of SpaceInvaders played by a seeded random-ish policy (small frames)."""
    settings = AtariSettings(sticky_action_prob=0.0, episodic_life=True, screen_size=42)
    env = make_env("SpaceInvaders", seed=0, atari=settings)
    torch.manual_seed(0)
    policy = ActorCritic(env.observation_space, env.action_space)
    carry = Carry.start(env, policy, seed=0)
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        torch.set_num_threads(1)  # a small network: more threads only contend
        rollout, _ = collect_envs([env], policy, [carry], 1, whole_episodes=True, signals=signals)
    torch.set_num_threads(threads)
    return rollout


def test_lost_lives_are_terminal_for_learning_only_and_rewards_are_clipped() -> None:
    plain = one_game(LearningSignals())
    atari = one_game(LearningSignals(clip_rewards=True, episodic_life=True))
    # the same play (seeded) either way: the signals change only what is stored to learn from
    assert torch.equal(plain.actions, atari.actions)
    assert plain.episode_returns == atari.episode_returns  # game scores, unclipped
    assert torch.equal(atari.rewards, plain.rewards.sign())
    assert plain.rewards.max() > 1, "a kill scores 5 or more"
    # one whole game: it ends only at game over, after LIVES - 1 lives lost on the way,
    # each a learning terminal after which play goes on (no episode starts)
    assert plain.episode_lengths == [plain.length] and bool(plain.terminated[-1, 0])
    assert int(plain.terminated.sum()) == 1 and int(plain.episode_starts.sum()) == 1
    lost = atari.terminated & ~plain.terminated
    assert int(lost.sum()) == LIVES - 1
    assert torch.equal(atari.episode_starts, plain.episode_starts)


def test_off_the_atari_games_nothing_changes() -> None:
    signals = LearningSignals.for_run
    from rlkit.settings import RunSettings

    cartpole = RunSettings(agent="a3c", env="CartPole-v1", steps=1)
    breakout = RunSettings(agent="a3c", env="ALE/Breakout-v5", steps=1)
    assert signals(cartpole) == LearningSignals()
    assert signals(breakout) == LearningSignals(clip_rewards=True, episodic_life=False)
    rewards = np.array([2.0, -3.0, 0.0])
    assert LearningSignals().rewards(rewards) is rewards
    assert EnvFactory("CartPole-v1")(seed=3).observation_space.shape == (4,)
