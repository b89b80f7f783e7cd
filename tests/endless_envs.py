"""An env whose episodes never end and that declares no time limit:
`--env tests.endless_envs:Endless-v0` (issue: hostile run dirs, class 7)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

ENV_ID = "Endless-v0"


class Endless(gym.Env[int, int]):
    """Four states in a ring, two actions, reward 1 a step, never terminated or truncated."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = gym.spaces.Discrete(4)
        self.action_space = gym.spaces.Discrete(2)
        self.render_mode = render_mode
        self.state = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = 0
        return self.state, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.state = (self.state + 1 + int(action)) % 4
        return self.state, 1.0, False, False, {}

    def render(self) -> np.ndarray:
        return np.full((16, 16, 3), 60 * self.state, dtype=np.uint8)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=Endless, max_episode_steps=None)
