"""Envs that break Gymnasium's contract, for the one-line errors of issue "hostile run
dirs" (class 12): `--env tests.misbehaving_envs:Raises-v0` and the like."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class Raises(gym.Env[np.ndarray, int]):
    """Three zeros as observations; its step raises after 50 steps."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.steps = 0

    def reset(
        self, *, seed: int | None = None, options: Any = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action: int) -> Any:
        self.steps += 1
        if self.steps > 50:
            raise ValueError("physics exploded")
        return np.zeros(3, np.float32), 0.0, False, False, {}


class WrongShape(Raises):
    def step(self, action: int) -> Any:
        return np.zeros(5, np.float32), 0.0, False, False, {}


class OldApi(Raises):
    def step(self, action: int) -> Any:
        return np.zeros(3, np.float32), 0.0, False, {}


class BareReset(Raises):
    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        return np.zeros(3, np.float32)


class NanReward(Raises):
    def step(self, action: int) -> Any:
        self.steps += 1
        reward = float("nan") if self.steps == 30 else 0.0
        return np.zeros(3, np.float32), reward, False, False, {}


class InfObservation(Raises):
    def step(self, action: int) -> Any:
        self.steps += 1
        observation = np.zeros(3, np.float32)
        observation[1] = np.inf if self.steps == 30 else 0.0
        return observation, 0.0, False, False, {}


class RenderRaises(Raises):
    """Says it renders rgb_array frames; its render raises."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__()
        self.render_mode = render_mode

    def step(self, action: int) -> Any:
        self.steps += 1
        return np.zeros(3, np.float32), 1.0, False, self.steps % 20 == 0, {}

    def render(self) -> Any:
        raise RuntimeError("no display")


for _name, _class in {
    "Raises-v0": Raises,
    "WrongShape-v0": WrongShape,
    "OldApi-v0": OldApi,
    "BareReset-v0": BareReset,
    "NanReward-v0": NanReward,
    "InfObservation-v0": InfObservation,
    "RenderRaises-v0": RenderRaises,
}.items():
    if _name not in gym.registry:
        gym.register(_name, entry_point=_class, max_episode_steps=100)
