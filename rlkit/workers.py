"""How the run builds a pool agent's workers: seeds, env factory, torch stream, threads.

    pool = run.start_workers(TRPOWorker, agent=self, hidden=[64, 64])   # in the learner

    class TRPOWorker:                                                   # in the agent file
        def __init__(self, setup: WorkerSetup, *, hidden: list[int]) -> None:
            self.env = setup.start()                    # threads set, env made and seeded
            self.stream = TorchStream(setup.seed)       # the worker's own torch RNG stream
            with TorchStream.isolated():                # building leaves global RNGs alone
                self.policy = ActorCritic(...)
            self.carry = Carry.start(self.env, self.policy, seed=setup.reset_seed)

        def rollout(self, weights, version, steps):
            with self.stream:                           # sampling draws from the worker's stream
                ...

Seeds, one scheme for every pool agent (as Acme's launcher splits one key among its
actors): worker `i` gets `derive_seed(agent_seed, "worker", i)`; it seeds the worker's
env and its torch stream. A run that starts at step 0 resets each env with that seed;
a resumed run (step s > 0) starts its workers on fresh episodes, reset with
`derive_seed(worker_seed, "worker", s)`. `rlkit.run.Run.start_workers` prints the seeds
once and records them in `run.json`.

A worker is built from a `WorkerSetup` and the agent's own keyword arguments, never from
the run's settings: the setup is small and picklable, so Ray ships it to any node.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import gymnasium as gym
import torch

from rlkit.environments import EnvFactory
from rlkit.seeding import derive_seed
from rlkit.signals import LearningSignals


@dataclass(frozen=True)
class WorkerSetup:
    """What the run gives each worker: its index, seeds, env factory and learning signals."""

    index: int
    seed: int  # seeds the worker's env and its torch stream
    reset_seed: int  # the first reset of the worker's env(s): `seed`, or fresh on resume
    make_env: EnvFactory
    signals: LearningSignals
    threads: int | None  # torch threads for the worker's own process; None in-process
    # the learner's current directory when its own imports do not look there (captured in
    # the learner): Ray puts it on its workers' path, and they drop it
    drop_from_path: str | None = field(default_factory=lambda: learner_directory())

    def start(self) -> gym.Env[Any, Any]:
        """Set the worker process's torch threads and make its env, seeded with `seed`.

        A worker in a process of its own imports as the learner does: Ray puts the
        learner's current directory first on its workers' `sys.path`, where the `rlkit`
        console script has none, so a package planted there (`minigrid/`) would shadow the
        installed one that the learner checked (rlkit/trust.py). The worker drops that
        entry unless the learner's own path has it. (Ray has imported the worker's own
        class by then: rlkit and the agent's module come before this.)"""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
            if self.drop_from_path is not None:
                drop_from_path(self.drop_from_path)
        return self.make_env(self.seed)

    def start_envs(self, count: int) -> tuple[list[gym.Env[Any, Any]], list[int]]:
        """`start()` and `count - 1` more envs, with each env's first reset seed: env 0
        plays on the worker's seeds, env `i` on seeds derived from them (stream "env", i)."""
        first = self.start()
        others = [self.make_env(derive_seed(self.seed, "env", i)) for i in range(1, count)]
        resets = [
            self.reset_seed,
            *(derive_seed(self.reset_seed, "env", i) for i in range(1, count)),
        ]
        return [first, *others], resets


def learner_directory() -> str | None:
    """This process's current directory, resolved, when `sys.path` does not hold it (the
    `rlkit` console script); None when it does (`python -m rlkit`): then its workers may
    import from there as it does."""
    here = os.path.realpath(os.getcwd())
    if any(entry == "" or os.path.realpath(entry) == here for entry in sys.path):
        return None
    return here


def drop_from_path(directory: str) -> None:
    """Remove `directory` (resolved) from this process's `sys.path`, and '' when this
    process runs in it."""
    here = os.path.realpath(os.getcwd())
    sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or here) != directory]
    importlib.invalidate_caches()


def worker_seeds(agent_seed: int, workers: int) -> list[int]:
    """Worker `i`'s seed, for every worker (the one scheme of every pool agent)."""
    return [derive_seed(agent_seed, "worker", index=index) for index in range(workers)]


def reset_seeds(seeds: list[int], step: int) -> list[int]:
    """Seeds of the workers' first resets: their own at step 0, fresh ones on a resume."""
    if step == 0:
        return list(seeds)
    return [derive_seed(seed, "worker", index=step) for seed in seeds]


class TorchStream:
    """A worker's own torch RNG stream: `with stream:` samples from it, and leaves the
    process's global stream as it was (in-process workers share the learner's process).
    """

    def __init__(self, seed: int) -> None:
        self.state = torch.Generator().manual_seed(seed).get_state()
        self._fork: Any = None

    def __enter__(self) -> TorchStream:
        self._fork = torch.random.fork_rng(devices=[])
        self._fork.__enter__()
        torch.set_rng_state(self.state)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.state = torch.get_rng_state()
        self._fork.__exit__(kind, error, traceback)
        self._fork = None

    @staticmethod
    @contextmanager
    def isolated() -> Iterator[None]:
        """Run a block (building a network) without moving the process's torch stream."""
        with torch.random.fork_rng(devices=[]):
            yield
