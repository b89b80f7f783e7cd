"""Registration functions in Gymnasium's plugin style (ids without their namespace)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

CALLS = {"poles": 0, "walls": 0}


def register_poles() -> None:
    """Runs inside gymnasium's namespace("Poles"): "Short-v0" becomes "Poles/Short-v0"."""
    CALLS["poles"] += 1
    gym.register(
        id="Short-v0",
        entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
        max_episode_steps=20,
    )
    gym.register(
        id="Long-v0",
        entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv",
        max_episode_steps=200,
    )


def register_walls() -> None:
    CALLS["walls"] += 1
    gym.register(id="Corridor-v0", entry_point="rlkit_nsplugin:Valley")


def register_root() -> None:
    raise RuntimeError("rlkit must not run __root__ plugins")


def explode() -> None:
    raise RuntimeError("this plugin is broken")


class Valley(gym.Env):
    """Three cells; action 1 moves right; reward 1 at the end."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Discrete(3)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return np.int64(0), {}

    def step(self, action):
        self.position = min(2, self.position + int(action))
        done = self.position == 2
        return np.int64(self.position), float(done), done, False, {}
