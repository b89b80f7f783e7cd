"""The T-maze memory task of Bakker (2002) (`rlkit/TMaze-v0`).

B. Bakker, "Reinforcement learning with long short-term memory", NIPS 14 (2002): the
long-term dependency T-maze of its experiments. A corridor leads east from the start cell
to a T-junction. At the start cell a road sign says whether the goal is north or south
(random each episode); in the corridor and at the junction nothing tells the two
episodes apart, so the agent must carry the sign in memory for `length` steps and turn
toward it at the junction:

    start  corridor ... corridor  junction          N
      S  ->    C    ...    C    ->    J    then turn  or
                                                     S

Observations are Bakker's 3-bit codes, as a float32 vector: the sign 011 (goal north)
or 110 (goal south) at the start cell, 101 in the corridor, 010 at the junction. The
paper fixes the four codes, not which of the two signs means north; the assignment
here is rlkit's. The sign shows whenever the agent stands on the start cell (it is a
sign at a place, as in the paper), never elsewhere.

Actions: 0 north, 1 east, 2 south, 3 west. Rewards, per Bakker (2002): +4 for
turning toward the goal at the junction, -0.1 for turning the other way (either turn
ends the episode), -0.1 for a step that leaves the agent where it was (walking into a
wall), 0 for any other step. The optimal return is therefore 4, whatever the length,
and a memoryless policy wins at most half of its episodes: the junction looks the same
in both, so it must turn the same way in both.

Provenance of the reward values: the copies of the paper reachable while this was
written held only its first page, so the values are not confirmed from its T-maze
section itself. They are the values public re-implementations that cite the paper use
(+4 correct turn; -0.1 wrong turn, one of them listing its own -1 as a deviation from
the paper's -0.1; -0.1 for standing still), and the values this task was specified with.

`length` is the number of eastward steps from the start cell to the junction (Bakker's
corridor length N, which he varied to lengthen the time lag); the optimal episode
takes `length + 1` steps. Episodes are truncated after `max_steps` steps (default
`4 * length + 20`, rlkit's choice: room to explore, short enough to fail fast).
`info["is_success"]` (turned toward the goal) is set at the end of every episode.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rlkit.errors import UserError

NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3

# Bakker (2002): the 3-bit observation codes.
SIGN_NORTH = (0.0, 1.0, 1.0)
SIGN_SOUTH = (1.0, 1.0, 0.0)
CORRIDOR = (1.0, 0.0, 1.0)
JUNCTION = (0.0, 1.0, 0.0)

# Bakker (2002): the reward values (see the module docstring on provenance).
CORRECT_TURN_REWARD = 4.0
WRONG_TURN_REWARD = -0.1
STAND_STILL_REWARD = -0.1
MOVE_REWARD = 0.0


def _positive_int(name: str, value: object, minimum: int, accepted: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise UserError(f"TMaze {name}={value!r}: {name} must be {accepted}")
    return int(value)


# `observations: discrete`: the same four cells as one Discrete(4) symbol each.
DISCRETE_CODES = {SIGN_NORTH: 0, SIGN_SOUTH: 1, CORRIDOR: 2, JUNCTION: 3}


class TMaze(gym.Env[Any, np.int64]):
    """Bakker's (2002) T-maze: remember the start cell's sign, turn toward it at the junction.

    Args:
        length: eastward steps from the start cell to the junction (>= 1; default 10).
        max_steps: steps before the episode is truncated (>= length + 1; default
            4 * length + 20).
        observations: "codes" (default), Bakker's 3-bit codes as a Box; or "discrete",
            the same cells as Discrete(4) symbols (0 sign north, 1 sign south, 2 corridor,
            3 junction): a memory task whose observations are Discrete (rlkit's variant).
        render_mode: None or "ansi".
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 (gymnasium declares it so)

    def __init__(
        self,
        length: int = 10,
        max_steps: int | None = None,
        observations: str = "codes",
        render_mode: str | None = None,
    ) -> None:
        self.length = _positive_int("length", length, 1, "an integer >= 1")
        default_steps = 4 * self.length + 20
        self.max_steps = _positive_int(
            "max_steps",
            default_steps if max_steps is None else max_steps,
            self.length + 1,
            f"an integer >= length + 1 = {self.length + 1} (the shortest episode)",
        )
        if render_mode not in (None, "ansi"):
            raise UserError(f"TMaze render_mode={render_mode!r}: accepted: None, 'ansi'")
        if observations not in ("codes", "discrete"):
            raise UserError(f"TMaze observations={observations!r}: accepted: 'codes', 'discrete'")
        self.render_mode = render_mode
        self.discrete = observations == "discrete"
        self.observation_space: gym.Space[Any] = (
            gym.spaces.Discrete(len(DISCRETE_CODES))
            if self.discrete
            else gym.spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        )
        self.action_space = gym.spaces.Discrete(4)
        self._position = 0  # cells east of the start; the junction is at `length`
        self._goal_north = True
        self._elapsed = 0

    def _observation(self) -> Any:
        if self._position == 0:
            code = SIGN_NORTH if self._goal_north else SIGN_SOUTH
        elif self._position == self.length:
            code = JUNCTION
        else:
            code = CORRIDOR
        if self.discrete:
            return np.int64(DISCRETE_CODES[code])
        return np.array(code, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._goal_north = bool(self.np_random.integers(2) == 0)
        self._position = 0
        self._elapsed = 0
        return self._observation(), {}

    def step(self, action: np.int64) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        move = int(action)
        if not 0 <= move < 4:
            raise ValueError(f"TMaze action {action!r}: accepted: 0 north, 1 east, 2 south, 3 west")
        self._elapsed += 1
        at_junction = self._position == self.length
        terminated, success = False, False
        if at_junction and move in (NORTH, SOUTH):
            terminated = True
            success = (move == NORTH) == self._goal_north
            reward = CORRECT_TURN_REWARD if success else WRONG_TURN_REWARD
        elif move == EAST and not at_junction:
            self._position += 1
            reward = MOVE_REWARD
        elif move == WEST and self._position > 0:
            self._position -= 1
            reward = MOVE_REWARD
        else:  # into a wall: the corridor's sides, west of the start, east of the junction
            reward = STAND_STILL_REWARD
        truncated = not terminated and self._elapsed >= self.max_steps
        info: dict[str, Any] = {}
        if terminated or truncated:
            info["is_success"] = success
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str:
        """Three text rows: the goal arm (G) and the other arm (x) above and below the junction."""
        cells = ["S", *("." * (self.length - 1)), "J"]
        cells[self._position] = "A"
        north, south = ("G", "x") if self._goal_north else ("x", "G")
        pad = " " * self.length
        return "\n".join((pad + north, "".join(cells), pad + south))
