"""Seeds derived from one run seed: one stream per purpose, logged with the run."""

from __future__ import annotations

import numpy as np

STREAMS = (
    "env",
    "agent",
    "eval",
    "worker",
    "noise",
    "episode",
    "selection",
    "observation-statistics",
)  # append only


def derive_seed(run_seed: int, stream: str, index: int = 0) -> int:
    """A 31-bit seed for `stream` (and worker `index`), a pure function of the run seed."""
    entropy = [run_seed, STREAMS.index(stream), index]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def run_seeds(run_seed: int) -> dict[str, int]:
    """The seeds a single-process run uses, to record with the run."""
    return {"run": run_seed, **{s: derive_seed(run_seed, s) for s in ("env", "agent", "eval")}}
