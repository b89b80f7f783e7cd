"""Test envs with every kind of observation and action space: one cue, read from one part.

    env = gymnasium.make("rlkit-tests/DictCue-v0", cue="image", actions="multibinary")
    rlkit run trpo --env tests.spaces_envs:rlkit-tests/DictCue-v0 --set env_kwargs.cue=discrete

Each step a fair coin picks the goal g in {0, 1}; the part named by `cue` shows it and
every other part shows noise. The reward is the fraction of action dimensions equal to
g (a Discrete(2) action: 1 when it is g), so an episode of `length` steps returns
`length` for a policy that reads the cue and about `length / 2` for one that cannot.
The goal is drawn anew every step: no memory is needed.

Observation (`structure="dict"`), in every part kind the encoders handle:

    image:   Box(0, 255, (5, 5, 3), uint8), HWC; cue: channel 0 all 255 when g = 1
    cue:     Discrete(2, start=1); cue: g + 1
    status:  Dict(vector: Box(-1, 1, (3,), float32), flags: MultiBinary(4));
             cue "vector": vector[0] = 2g - 1; cue "binary": flags[0] = g
    mission: Text(max_length=16), always "find the goal": a part networks drop

`structure="tuple"` gives the same parts as a Tuple (image, cue, (vector, flags),
mission); `structure="vector"` only the vector, a plain Box (with `cue="vector"`).

Actions (`actions`): "discrete" Discrete(2); "multidiscrete" MultiDiscrete([2, 2],
start=[0, 1]) (dimension i is right when it equals g + start_i); "multibinary" MultiBinary(3).
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np

Cue = Literal["image", "discrete", "vector", "binary"]
Structure = Literal["dict", "tuple", "vector"]
Actions = Literal["discrete", "multidiscrete", "multibinary"]

DICT_CUE_ID = "rlkit-tests/DictCue-v0"
MISSION = "find the goal"
IMAGE_SHAPE = (5, 5, 3)


def _action_space(actions: Actions) -> gym.Space[Any]:
    if actions == "discrete":
        return gym.spaces.Discrete(2)
    if actions == "multidiscrete":
        return gym.spaces.MultiDiscrete([2, 2], start=[0, 1])
    if actions == "multibinary":
        return gym.spaces.MultiBinary(3)
    raise ValueError(f"actions must be discrete, multidiscrete or multibinary, got {actions!r}")


class DictCueEnv(gym.Env[Any, Any]):
    """See the module docstring."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)

    def __init__(
        self,
        cue: Cue = "discrete",
        structure: Structure = "dict",
        actions: Actions = "discrete",
        length: int = 8,
    ) -> None:
        if cue not in ("image", "discrete", "vector", "binary"):
            raise ValueError(f"cue must be image, discrete, vector or binary, got {cue!r}")
        if structure not in ("dict", "tuple", "vector"):
            raise ValueError(f"structure must be dict, tuple or vector, got {structure!r}")
        if structure == "vector" and cue != "vector":
            raise ValueError(
                f"structure vector shows only the vector; cue must be vector, got {cue!r}"
            )
        if length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self.cue, self.structure, self.length = cue, structure, length
        image = gym.spaces.Box(0, 255, IMAGE_SHAPE, np.uint8)
        cue_space = gym.spaces.Discrete(2, start=1)
        vector = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        flags = gym.spaces.MultiBinary(4)
        mission = gym.spaces.Text(max_length=16, charset="abcdefghijklmnopqrstuvwxyz ")
        if structure == "dict":
            self.observation_space = gym.spaces.Dict(
                {
                    "image": image,
                    "cue": cue_space,
                    "status": gym.spaces.Dict({"vector": vector, "flags": flags}),
                    "mission": mission,
                }
            )
        elif structure == "tuple":
            self.observation_space = gym.spaces.Tuple(
                (image, cue_space, gym.spaces.Tuple((vector, flags)), mission)
            )
        else:
            self.observation_space = vector
        self.action_space = _action_space(actions)
        self._goal = 0
        self._steps = 0

    def _observation(self) -> Any:
        rng, goal = self.np_random, self._goal
        image = rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)
        image[:, :, 0] = 255 * goal if self.cue == "image" else rng.integers(0, 2) * 255
        cue = goal + 1 if self.cue == "discrete" else int(rng.integers(1, 3))
        vector = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
        if self.cue == "vector":
            vector[0] = 2.0 * goal - 1.0
        flags = rng.integers(0, 2, 4).astype(np.int8)
        if self.cue == "binary":
            flags[0] = goal
        if self.structure == "vector":
            return vector
        if self.structure == "dict":
            status = {"vector": vector, "flags": flags}
            return {"image": image, "cue": cue, "status": status, "mission": MISSION}
        return (image, cue, (vector, flags), MISSION)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._steps = 0
        self._goal = int(self.np_random.integers(0, 2))
        return self._observation(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if isinstance(self.action_space, gym.spaces.Discrete):
            right = np.array([int(action) == self._goal])
        elif isinstance(self.action_space, gym.spaces.MultiDiscrete):
            right = np.asarray(action) - self.action_space.start == self._goal
        else:
            right = np.asarray(action) == self._goal
        reward = float(right.mean())
        self._steps += 1
        self._goal = int(self.np_random.integers(0, 2))
        return self._observation(), reward, self._steps >= self.length, False, {}


if DICT_CUE_ID not in gym.registry:  # `--env tests.spaces_envs:Id` imports this module
    gym.register(DICT_CUE_ID, entry_point=DictCueEnv)


def failing_registration() -> None:
    """A registration function that fails, for `--env tests.spaces_envs:failing_registration:Id`."""
    raise RuntimeError("registration failed on purpose")


TEXT_ONLY_ID = "rlkit-tests/TextObservation-v0"


class TextObservationEnv(gym.Env[str, int]):
    """An env whose observation is only text: no network can use it, every neural agent
    refuses it before anything starts."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's convention)
    observation_space = gym.spaces.Text(max_length=16, charset="abcdefghijklmnopqrstuvwxyz ")
    action_space = gym.spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        return MISSION, {}

    def step(self, action: int) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return MISSION, 0.0, True, False, {}


if TEXT_ONLY_ID not in gym.registry:
    gym.register(TEXT_ONLY_ID, entry_point=TextObservationEnv)
