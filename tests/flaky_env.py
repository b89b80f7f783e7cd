"""A test environment for sweeps: rlkit's grid world that can fail once, or go slowly.

`tests.flaky_env:rlkit-test/FlakyGridWorld-v0` with env_kwargs:

- `fail_marker` (path): the first env anywhere to reach step `fail_at` creates this file
  and raises; every later env (the retried trial included) finds it and runs on;
- `fail_always`: every env raises at step `fail_at` (a trial that fails on each retry);
- `step_delay` (seconds): sleep per step, so a sweep lasts long enough to interrupt.
"""

from __future__ import annotations

import os
import time
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rlkit.envs.gridworld import GridWorld


class FlakyGridWorld(GridWorld):
    def __init__(
        self,
        fail_marker: str | None = None,
        fail_at: int = 1500,
        step_delay: float = 0.0,
        fail_always: bool = False,
    ) -> None:
        super().__init__()
        self.fail_marker = fail_marker
        self.fail_always = fail_always
        self.fail_at = fail_at
        self.step_delay = step_delay
        self.steps_taken = 0

    def step(self, action: np.int64) -> tuple[np.int64, SupportsFloat, bool, bool, dict[str, Any]]:
        self.steps_taken += 1
        if self.step_delay:
            time.sleep(self.step_delay)
        if self.fail_always and self.steps_taken == self.fail_at:
            raise RuntimeError(f"flaky env: failure at step {self.fail_at}, as every time")
        if self.fail_marker is not None and self.steps_taken == self.fail_at:
            try:
                os.close(os.open(self.fail_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass  # another env failed already: run on
            else:
                raise RuntimeError(f"flaky env: planned failure at step {self.fail_at}")
        return super().step(action)


if "rlkit-test/FlakyGridWorld-v0" not in gym.registry:
    gym.register(id="rlkit-test/FlakyGridWorld-v0", entry_point=FlakyGridWorld)
