"""Schedules for hyperparameters that change over a run (exploration rate, step size)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from rlkit.config import StrictModel


class Schedule(StrictModel):
    """A value that moves from `start` to `end` over the first `fraction` of the run.

    `linear` interpolates, `exponential` interpolates geometrically (start and end > 0),
    `constant` stays at `start`. After the annealing period the value stays at `end`.
    """

    kind: Literal["linear", "exponential", "constant"] = Field(
        default="linear", description="how the value moves from start to end"
    )
    start: float = Field(description="value at step 0")
    end: float = Field(description="value once the annealing period is over")
    fraction: float = Field(
        default=1.0, gt=0.0, le=1.0, description="share of the run's steps spent annealing"
    )

    @model_validator(mode="after")
    def _positive_for_exponential(self) -> Schedule:
        if self.kind == "exponential" and (self.start <= 0 or self.end <= 0):
            raise ValueError("an exponential schedule needs start > 0 and end > 0")
        return self

    def value(self, step: int, total_steps: int) -> float:
        """The scheduled value after `step` of `total_steps` environment steps."""
        if self.kind == "constant":
            return self.start
        progress = min(1.0, step / max(1.0, self.fraction * total_steps))
        if self.kind == "linear":
            return self.start + (self.end - self.start) * progress
        ratio = self.end / self.start
        if math.isinf(ratio) or ratio == 0.0:  # 1e-300 to 1e300: interpolate the logarithms
            span = math.log(self.end) - math.log(self.start)
            return math.exp(math.log(self.start) + span * progress)
        return float(self.start * ratio**progress)
