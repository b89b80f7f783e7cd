"""Partially observed classic control: the velocities removed from the observation.

`KeepIndices` keeps chosen entries of a 1-D Box observation. The registered variants
build the Gymnasium base task with `gymnasium.make` (so it keeps its own time limit,
checker and dynamics) and keep only the positions and angles, so a policy must infer
velocities from successive observations: a memory task in the spirit of the
non-Markovian pole balancing of Bakker (2002) and Wierstra et al. (2009), which hid the
velocities from the agent.

| id | base (time limit) | kept (Gymnasium's observation order) |
| --- | --- | --- |
| `rlkit/CartPoleNoVel-v0` | CartPole-v1 (500) | 0 cart position, 2 pole angle |
| `rlkit/PendulumNoVel-v0` | Pendulum-v1 (200) | 0 cos(theta), 1 sin(theta) |
| `rlkit/AcrobotNoVel-v0` | Acrobot-v1 (500) | 0-3 cos/sin of both joint angles |

Keyword arguments go to the base task (`gymnasium.make("rlkit/PendulumNoVel-v0", g=9.81)`);
`max_episode_steps` given to `gymnasium.make` adds a (shorter) limit on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from rlkit.errors import UserError


class KeepIndices(
    gym.ObservationWrapper[NDArray[Any], Any, NDArray[Any]],
    gym.utils.RecordConstructorArgs,
):
    """Keeps only `indices` (in the given order) of a 1-D Box observation."""

    def __init__(self, env: gym.Env[NDArray[Any], Any], indices: Sequence[int]) -> None:
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise UserError(f"KeepIndices needs a 1-D Box observation space; the env has {space}")
        kept = tuple(int(index) for index in indices)
        size = space.shape[0]
        if not kept or len(set(kept)) != len(kept) or not all(0 <= i < size for i in kept):
            raise UserError(
                f"KeepIndices indices {list(indices)}: give distinct indices in 0..{size - 1}"
            )
        gym.utils.RecordConstructorArgs.__init__(self, indices=kept)
        gym.ObservationWrapper.__init__(self, env)
        self.indices = kept
        self._index_array = np.array(kept, dtype=np.intp)
        self.observation_space = gym.spaces.Box(
            low=space.low[self._index_array],
            high=space.high[self._index_array],
            dtype=space.dtype.type,
        )

    def observation(self, observation: NDArray[Any]) -> NDArray[Any]:
        return observation[self._index_array]


class MaskedVariant:
    """Entry point of a masked variant: called with the env kwargs, returns the wrapped base."""

    def __init__(self, base_id: str, indices: tuple[int, ...]) -> None:
        self.base_id = base_id
        self.indices = indices

    def __call__(self, **kwargs: Any) -> gym.Env[NDArray[Any], Any]:
        return KeepIndices(gym.make(self.base_id, **kwargs), self.indices)

    def __repr__(self) -> str:
        return f"MaskedVariant({self.base_id!r}, indices={self.indices})"


# CartPole-v1 (Barto, Sutton & Anderson 1983): (x, x_dot, theta, theta_dot).
CartPoleNoVel = MaskedVariant("CartPole-v1", (0, 2))
# Pendulum-v1: (cos theta, sin theta, theta_dot).
PendulumNoVel = MaskedVariant("Pendulum-v1", (0, 1))
# Acrobot-v1 (Sutton 1996): (cos t1, sin t1, cos t2, sin t2, t1_dot, t2_dot).
AcrobotNoVel = MaskedVariant("Acrobot-v1", (0, 1, 2, 3))
