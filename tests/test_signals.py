"""Learning signals (rlkit.signals): one piece forms what every agent learns from on Atari.

The vector path (DQN) is tested in tests/test_atari.py; here the single-env path every
pool agent collects through (`rlkit.rollout.collect_envs(signals=...)`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rlkit.atari import AtariSettings
from rlkit.environments import EnvFactory, make_env
from rlkit.policies import ActorCritic
from rlkit.rollout import Carry, Rollout, collect_envs
from rlkit.signals import LearningSignals
from rlkit.workers import WorkerSetup

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


# --- what each agent learns from on Breakout -----------------------------------------------

BREAKOUT = AtariSettings(sticky_action_prob=0.0, episodic_life=True, fire_reset=True)
SMALL_BREAKOUT = BREAKOUT.model_copy(update={"screen_size": 42})  # a cheaper network
ATARI_SIGNALS = LearningSignals(clip_rewards=True, episodic_life=True)


def setup_on(atari: AtariSettings) -> WorkerSetup:
    factory = EnvFactory("ALE/Breakout-v5", {}, atari)
    return WorkerSetup(0, 5, 5, factory, ATARI_SIGNALS, None)


def assert_learns_from_atari_signals(rollout: Rollout) -> None:
    """Rewards in {-1, 0, 1}; a lost life is terminal for learning while play goes on
    (the next step starts no episode); episodes end only at game over."""
    assert set(rollout.rewards.unique().tolist()) <= {-1.0, 0.0, 1.0}
    ends = torch.nonzero(rollout.terminated[:-1, 0]).flatten()
    lives_lost = [int(t) for t in ends if not rollout.episode_starts[t + 1, 0]]
    games_over = [int(t) for t in ends if rollout.episode_starts[t + 1, 0]]
    assert len(lives_lost) >= 3, "Breakout has 5 lives: several are lost in a few hundred steps"
    assert len(lives_lost) >= 4 * len(games_over)
    assert all(length > 0 for length in rollout.episode_lengths)


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_thread")
def test_trpo_learns_from_clipped_rewards_and_lost_lives() -> None:
    from rlkit.agents.trpo import TRPOConfig, TRPOWorker

    worker = TRPOWorker(setup_on(SMALL_BREAKOUT), config=TRPOConfig(hidden=[8]))
    assert_learns_from_atari_signals(worker.rollout(worker.policy.state_dict(), 0, 400))


@pytest.mark.usefixtures("one_thread")
def test_rpg_learns_from_clipped_rewards_and_lost_lives() -> None:
    from rlkit.agents.rpg import RPGConfig, RPGWorker

    config = RPGConfig(hidden=[8], lstm_size=8).model_dump()
    worker = RPGWorker(setup_on(SMALL_BREAKOUT), config=config)
    rollout = worker.rollout(worker.policy.state_dict(), 0, [400], True)
    assert rollout is not None
    assert_learns_from_atari_signals(rollout)


@pytest.mark.usefixtures("one_thread")
def test_a3c_learns_from_clipped_rewards_and_lost_lives() -> None:
    from rlkit.agents.a3c import A3CConfig, A3CWorker

    worker = A3CWorker(setup_on(SMALL_BREAKOUT), config=A3CConfig())
    assert_learns_from_atari_signals(worker.collect(400, 0))


@pytest.mark.usefixtures("one_thread")
def test_dqn_replays_clipped_rewards_and_lost_lives(tmp_path: Path) -> None:
    """DQN's replay holds what it learns from: lost lives terminal, not episode ends."""
    from rlkit.agents.dqn import DQN, DQNConfig
    from rlkit.logger import Logger
    from rlkit.run import Run
    from rlkit.settings import RunSettings

    settings = RunSettings(agent="dqn", env="ALE/Breakout-v5", steps=400, atari=SMALL_BREAKOUT)
    env = make_env(settings.env, seed=0, atari=settings.atari)
    config = DQNConfig(buffer_size=1000, learning_starts=1000)  # no updates: the replay only
    agent = DQN(
        config, observation_space=env.observation_space, action_space=env.action_space, seed=0
    )
    logger = Logger(
        tmp_path, total_steps=400, start_step=0, log_every=400, wandb_mode="disabled",
        config={}, progress=False,
    )  # fmt: skip
    run = Run(settings=settings, run_dir=tmp_path, env=env, logger=logger, start_step=0)
    assert run.signals == ATARI_SIGNALS
    agent.learn(400, run)
    logger.close()
    replay = agent.replay
    assert replay is not None and len(replay) > 300
    stored = int(replay.written[0])
    assert set(np.unique(replay.rewards[0, :stored]).tolist()) <= {-1.0, 0.0, 1.0}
    # a terminal slot followed by the same game (its position goes on) is a lost life;
    # followed by a new episode's first slot (position 0), the game was over
    ends = np.flatnonzero(replay.terminal[0, : stored - 1])
    lives_lost = int((replay.positions[0, ends + 1] > 0).sum())
    games_over = int((replay.positions[0, ends + 1] == 0).sum())
    assert lives_lost >= 3 and lives_lost >= 4 * games_over
