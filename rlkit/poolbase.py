"""What both worker pool backends share: their limits, errors, checks and base class.

`rlkit.pool` (the interface, `make_pool`, the in-process pool) and `rlkit.raypool` (the
Ray pool) build on it; callers import these names from `rlkit.pool`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from rlkit.errors import UserError

Backend = Literal["inprocess", "ray"]
LostCalls = Literal["resend", "return"]
EventHandler = Callable[[str], None]
MAX_RESTARTS = 10
START_TIMEOUT_S = 120.0
WORKERS_PER_CPU = 8  # Ray workers per CPU at most: each reserves at least 1/8 CPU
MIN_CPU_PER_WORKER = 1 / WORKERS_PER_CPU
FREE_CPU_WAIT_S = 5.0  # how long a new pool waits for CPUs a closed one is giving back
MAX_INPROCESS_WORKERS = 64  # in one process, one after another: debugging, tiny runs


class WorkerPoolError(RuntimeError):
    """The pool cannot go on: a worker failed to start, or died more often than allowed."""


@dataclass(frozen=True)
class LostCall:
    """A submitted call whose worker died (pool made with `lost_calls="return"`)."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reason: str


class _Pool:
    """Argument checks and bookkeeping shared by both backends."""

    def __init__(self, worker_cls: type, worker_kwargs: list[dict[str, Any]]) -> None:
        self.worker_cls = worker_cls
        self.size = len(worker_kwargs)
        self.restarts = 0
        self.startup_seconds = 0.0
        self._closed = False

    def _check_method(self, method: str) -> None:
        if self._closed:
            raise RuntimeError(f"the {self.worker_cls.__name__} pool is closed")
        if not callable(getattr(self.worker_cls, method, None)) or method.startswith("_"):
            raise AttributeError(f"{self.worker_cls.__name__} has no public method '{method}'")

    def _check_submit(self, index: int, method: str) -> None:
        self._check_method(method)
        if not 0 <= index < self.size:
            raise IndexError(f"worker index {index} out of range 0..{self.size - 1}")
        if index in self.pending():
            raise RuntimeError(
                f"worker {index} already has a call outstanding; wait_any() for it first"
            )

    def _check_idle(self, method: str) -> None:
        self._check_method(method)
        if self.pending():
            raise RuntimeError(
                f"call_all('{method}') while workers {self.pending()} have submitted calls "
                "outstanding; wait_any() for them first"
            )

    def pending(self) -> list[int]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def check_ray_workers(
    workers: int, free: float, total: float | None = None, *, local: bool = False
) -> None:
    """UserError, one line, when `workers` Ray workers need more than the `free` CPUs hold
    at `MIN_CPU_PER_WORKER` each (each is a process with an env and a network)."""
    room = math.floor(free / MIN_CPU_PER_WORKER + 1e-9)
    if workers <= room:
        return
    if local:
        cpus = f"the local Ray has this machine's {free:g} CPUs"
    else:
        cpus = f"the Ray cluster has {free:g} free CPUs" + (
            f" of {total:g}" if total is not None else ""
        )
    raise UserError(
        f"--workers {workers}: {cpus}, room for at most {room} workers "
        f"({WORKERS_PER_CPU} per CPU, each a process with an env and a network); give "
        f"--workers {max(room, 1)} or fewer, or more CPUs (--address a larger cluster)"
    )


def check_worker_count(workers: int, backend: Backend, address: str | None) -> None:
    """UserError, one line, for a worker count the pool cannot hold, found before anything
    starts: over `MAX_INPROCESS_WORKERS` in-process, or over `WORKERS_PER_CPU` per CPU of an
    embedded Ray not started yet (a cluster's free CPUs are checked once it is joined)."""
    if backend == "inprocess":
        check_inprocess_workers(workers)
        return
    from rlkit.parallel import embedded_cpus

    cpus = embedded_cpus(address)
    if cpus is not None:
        check_ray_workers(workers, cpus, local=True)


def check_inprocess_workers(workers: int) -> None:
    """UserError, one line, for more in-process workers than `MAX_INPROCESS_WORKERS`."""
    if workers > MAX_INPROCESS_WORKERS:
        raise UserError(
            f"--workers {workers}: pool=inprocess takes at most {MAX_INPROCESS_WORKERS} "
            "workers (they run one after another in this process, each holding an env and "
            f"a network); give --workers {MAX_INPROCESS_WORKERS} or fewer, or pool=ray"
        )
