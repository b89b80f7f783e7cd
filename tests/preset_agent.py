"""An agent whose preset decides what is valid: a batch must fit in the replay buffer, and
the preset for Discrete observations (grid worlds) shrinks both (tests/test_sweep.py).

Only its configuration is real: tests register it under the name `preset-test` and
validate sweeps for it; it never trains.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
from pydantic import Field, PositiveInt, model_validator

from rlkit.agent import Spaces
from rlkit.config import StrictModel

PRESET_STEPS = 500
DISCRETE_PRESET = {"batch_size": 8, "buffer_size": 64}


class PresetConfig(StrictModel):
    batch_size: PositiveInt = Field(default=32, description="transitions per update")
    buffer_size: PositiveInt = Field(default=1000, description="replay capacity")

    @model_validator(mode="after")
    def _batch_fits(self) -> PresetConfig:
        if self.batch_size > self.buffer_size:
            raise ValueError("batch_size must not exceed buffer_size")
        return self


class PresetAgent:
    summary: ClassVar[str] = "test agent with a preset"
    paper: ClassVar[str] = "none"
    default_steps: ClassVar[int] = 1000
    Config: ClassVar[type[StrictModel]] = PresetConfig
    spaces: ClassVar[Spaces] = Spaces(
        observation=(gym.spaces.Discrete, gym.spaces.Box), action=(gym.spaces.Discrete,)
    )

    @classmethod
    def preset(
        cls, observation_space: gym.Space[Any], action_space: gym.Space[Any]
    ) -> dict[str, Any]:
        if isinstance(observation_space, gym.spaces.Discrete):
            return {"steps": PRESET_STEPS, "hparams": dict(DISCRETE_PRESET)}
        return {}

    def __init__(self, config: Any, **spaces_and_seed: Any) -> None:
        raise NotImplementedError("tests/preset_agent.py only validates configs")

    def learn(self, total_steps: int, run: Any) -> None: ...

    def act(self, observation: Any, state: Any) -> tuple[Any, Any]:
        return 0, None

    def initial_state(self) -> Any:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @property
    def step(self) -> int:
        return 0
