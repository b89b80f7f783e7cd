"""Worker classes for tests/test_pool.py, shaped like an agent's rollout worker.

Ray workers import this module as `tests.pool_workers`: `rlkit.parallel.init_ray` hands
the embedded Ray's workers this process's import path, which holds the repository root
under pytest.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import numpy as np


class CartPoleWorker:
    """Steps its own seeded CartPole with the linear policy it is sent: `(weights, version)`.

    The env and the episode in progress carry over from one call to the next, as in a
    rollout worker, so results depend on the order of calls as well as on the seed.
    """

    def __init__(self, *, seed: int, env_id: str = "CartPole-v1") -> None:
        self.seed = seed
        self.env = gym.make(env_id)
        self.observation, _ = self.env.reset(seed=seed)
        self.episode_return = 0.0
        self.calls = 0

    def rollout(self, weights: np.ndarray, version: int, *, steps: int) -> dict[str, Any]:
        observations, rewards, finished = [], [], []
        for _ in range(steps):
            action = int(self.observation @ weights > 0)
            observations.append(self.observation)
            self.observation, reward, terminated, truncated, _ = self.env.step(action)
            rewards.append(float(reward))
            self.episode_return += float(reward)
            if terminated or truncated:
                finished.append(self.episode_return)
                self.episode_return = 0.0
                self.observation, _ = self.env.reset()
        self.calls += 1
        return {
            "version": version,
            "seed": self.seed,
            "call": self.calls,
            "observations": np.array(observations),
            "rewards": np.array(rewards),
            "episode_returns": finished,
            "pid": os.getpid(),
        }

    def pid(self) -> int:
        return os.getpid()

    def python_path(self) -> str:
        return os.environ.get("PYTHONPATH", "")

    def sleep(self, seconds: float, tag: Any) -> dict[str, Any]:
        """Take `seconds`, then return the tag, who ran it, and how many calls came before."""
        time.sleep(seconds)
        self.calls += 1
        return {"tag": tag, "seed": self.seed, "call": self.calls, "pid": os.getpid()}

    def scribble(self, buffer: np.ndarray) -> np.ndarray:
        """Change what it was sent and return it (the caller's copy must not change)."""
        buffer += 1
        return buffer

    def fail(self, message: str, *, user_error: bool = False) -> None:
        if user_error:
            from rlkit.errors import UserError

            raise UserError(message)
        raise ValueError(message)

    def plugin_env(self, env_id: str) -> dict[str, Any]:
        """Make a plugin environment through the rlkit factory, in this worker's process."""
        import gymnasium

        from rlkit.environments import make_env

        env = make_env(env_id, seed=0)
        observation, _ = env.reset(seed=0)
        observation, reward, *_ = env.step(env.action_space.sample())
        return {
            "space": str(env.observation_space),
            "registered": env_id in gymnasium.registry,
            "observation": observation,
            "reward": float(reward),
            "pid": os.getpid(),
        }


class BrokenWorker:
    """A worker whose constructor fails, as one with a bad config would."""

    def __init__(self, *, seed: int) -> None:
        raise ValueError(f"cannot build worker with seed {seed}")

    def pid(self) -> int:
        return os.getpid()


class TableWorker:
    """Reads a large shared table (as NES workers read the noise table) given by `shared`."""

    def __init__(self, *, seed: int, table: np.ndarray) -> None:
        self.seed = seed
        self.table = table

    def lookup(self, offset: int, weights: np.ndarray) -> dict[str, Any]:
        """The table's entries at `offset`, scaled by `weights`, and where the table lives."""
        return {
            "values": self.table[offset : offset + len(weights)] * weights,
            "seed": self.seed,
            "table_id": id(self.table),
            "writeable": bool(self.table.flags.writeable),
            "pid": os.getpid(),
        }

    def sleep(self, seconds: float, tag: Any) -> dict[str, Any]:
        time.sleep(seconds)
        return {"tag": tag, "pid": os.getpid()}
