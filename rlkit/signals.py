"""Learning signals: what an agent learns from, formed in one place for every agent.

    signals = LearningSignals.for_run(settings)       # Atari: from settings.atari
    learn_rewards = signals.rewards(rewards)           # sign(r) when clipping
    life_loss = signals.life_loss(num_envs)            # None unless episodic_life
    terminated_for_learning = life_loss(terminated, info, resetting)

On Atari, Mnih et al. (2015) learn from rewards clipped to {-1, 0, 1} and treat a lost
life as terminal ("episodic life"), while the game goes on. rlkit applies both for
learning only: environments step whole games with game scores, `episode/return` logs
the score, and evaluation plays whole games (`rlkit.evaluation`). Every agent that
learns from per-step rewards (dqn, a3c, trpo, rpg) gets them from this module: the
replay of DQN through `rewards` and `life_loss`, the on-policy rollouts of the pool
agents through `rlkit.rollout.collect_envs(signals=...)`. NES does not learn from
per-step rewards (it ranks whole-episode game scores), so neither applies to it.

Both follow the run's Atari settings (`atari.reward_clipping`, default on;
`atari.episodic_life`, default off) and are off on every other env.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlkit.atari import is_atari
from rlkit.settings import RunSettings


@dataclass(frozen=True)
class LearningSignals:
    """Reward clipping and lost-life terminals, for learning only (see the module docstring)."""

    clip_rewards: bool = False
    episodic_life: bool = False

    @classmethod
    def for_run(cls, settings: RunSettings) -> LearningSignals:
        """The signals of a run: its Atari settings on an ALE env, none elsewhere."""
        atari = is_atari(settings.env)
        return cls(
            clip_rewards=atari and settings.atari.reward_clipping,
            episodic_life=atari and settings.atari.episodic_life,
        )

    def rewards(self, rewards: Any) -> Any:
        """The rewards to learn from: sign(r) when clipping (numpy or torch), else `rewards`."""
        if not self.clip_rewards:
            return rewards
        return rewards.sign() if hasattr(rewards, "sign") else np.sign(rewards)

    def life_loss(self, num_envs: int) -> LifeLossTerminals | None:
        """A tracker of lost lives for `num_envs` envs, or None without episodic life."""
        return LifeLossTerminals(num_envs) if self.episodic_life else None

    def describe(self) -> str:
        """One line for the start banner."""
        rewards = "clipped rewards (sign)" if self.clip_rewards else "unclipped rewards"
        lives = "a lost life terminal" if self.episodic_life else "whole games"
        return f"learns from {rewards}, {lives}; logs game scores"


class LifeLossTerminals:
    """Mnih et al. (2015)'s episodic life, for learning only: a lost life is terminal.

    The game is not reset, so the agent plays every life and episodes (and logged
    returns) are whole games. Call once per step of `num_envs` envs with their infos'
    `lives`, after `start` with the lives after a reset.
    """

    def __init__(self, num_envs: int) -> None:
        self._lives = np.zeros(num_envs, dtype=np.int64)

    def start(self, info: dict[str, Any]) -> None:
        """Record the lives after a reset (a vector env's info, or one env's)."""
        self._lives = np.array(info["lives"], dtype=np.int64, ndmin=1).copy()

    @property
    def lives(self) -> list[int]:
        """Each env's lives after the last call."""
        return [int(lives) for lives in self._lives]

    def restart(self, index: int, lives: int) -> None:
        """Env `index` was reset on its own: its lives are `lives` again."""
        self._lives[index] = lives

    def __call__(
        self, terminated: NDArray[np.bool_], info: dict[str, Any], resetting: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """`terminated`, plus every env that lost a life on this step (not on a reset)."""
        lives = np.array(info["lives"], dtype=np.int64, ndmin=1)
        lost = (lives < self._lives) & ~resetting
        self._lives = lives.copy()
        result: NDArray[np.bool_] = terminated | lost
        return result
