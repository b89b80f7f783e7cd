"""A small deterministic grid world for tabular agents (`rlkit/GridWorld-v0`).

The agent starts at S and must reach G. Each move costs -1; reaching G ends the
episode with +10 for that move; stepping into a pit (P) ends it with -10; walls (#)
block. Actions: 0 up, 1 right, 2 down, 3 left. Episodes are truncated after
`max_steps` moves. The optimal return is 10 - (shortest path length - 1).
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

DEFAULT_LAYOUT = (
    "S..#....",
    ".#.#.##.",
    ".#...#..",
    ".###.#.#",
    "........",
    "###P##P.",
    ".......G",
)

MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


class GridWorld(gym.Env[np.int64, np.int64]):
    """Deterministic grid world; observation = cell index (row * width + column)."""

    metadata = {"render_modes": ["ansi"]}  # noqa: RUF012 (gymnasium declares it so)

    def __init__(
        self,
        layout: tuple[str, ...] | list[str] = DEFAULT_LAYOUT,
        max_steps: int = 100,
        render_mode: str | None = None,
    ) -> None:
        widths = {len(row) for row in layout}
        if len(widths) != 1:
            raise ValueError("every row of the layout must have the same length")
        self.layout = tuple(layout)
        self.height, self.width = len(self.layout), widths.pop()
        cells = "".join(self.layout)
        if cells.count("S") != 1 or cells.count("G") != 1:
            raise ValueError("the layout needs exactly one S and one G")
        self.start = cells.index("S")
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(self.height * self.width)
        self.action_space = gym.spaces.Discrete(4)
        self._position = self.start
        self._elapsed = 0

    def cell(self, index: int) -> str:
        return self.layout[index // self.width][index % self.width]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._position = self.start
        self._elapsed = 0
        return np.int64(self._position), {}

    def step(self, action: np.int64) -> tuple[np.int64, SupportsFloat, bool, bool, dict[str, Any]]:
        row, column = divmod(self._position, self.width)
        d_row, d_column = MOVES[int(action)]
        new_row, new_column = row + d_row, column + d_column
        if 0 <= new_row < self.height and 0 <= new_column < self.width:
            target = new_row * self.width + new_column
            if self.cell(target) != "#":
                self._position = target
        self._elapsed += 1
        here = self.cell(self._position)
        reward, terminated = -1.0, False
        if here == "G":
            reward, terminated = 10.0, True
        elif here == "P":
            reward, terminated = -10.0, True
        truncated = not terminated and self._elapsed >= self.max_steps
        info: dict[str, Any] = {}
        if terminated or truncated:
            info["is_success"] = here == "G"
        return np.int64(self._position), reward, terminated, truncated, info

    def render(self) -> str:
        rows = [list(row) for row in self.layout]
        row, column = divmod(self._position, self.width)
        rows[row][column] = "A"
        return "\n".join("".join(row) for row in rows)
