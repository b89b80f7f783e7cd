"""A corridor of 5 cells: action 1 moves right, 0 stays; reward 1 on reaching the end."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Corridor(gym.Env):
    def __init__(self, length: int = 5) -> None:
        self.length = length
        self.observation_space = gym.spaces.Discrete(length)
        self.action_space = gym.spaces.Discrete(2)
        self.position = 0
        self.elapsed = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.elapsed = 0, 0
        return np.int64(0), {}

    def step(self, action):
        self.position = min(self.length - 1, self.position + int(action))
        self.elapsed += 1
        terminated = self.position == self.length - 1
        return np.int64(self.position), float(terminated), terminated, self.elapsed >= 50, {}
