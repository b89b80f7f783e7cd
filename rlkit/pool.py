"""Worker pools: how a parallel agent talks to its workers, in this process or on Ray.

    kwargs = [{"seed": derive_seed(seed, "worker", index=i), ...} for i in range(workers)]
    with make_pool(RolloutWorker, kwargs, backend=settings.pool, address=settings.address,
                   on_event=note) as pool:
        batches = pool.call_all("rollout", weights, version)   # every worker, results in order
        for index in range(pool.size):                         # or asynchronously (A3C):
            pool.submit(index, "gradients", weights, version)
        index, result = pool.wait_any()                        # the first call to finish
        pool.submit(index, "gradients", new_weights, version + 1)

A worker class is a plain class in the agent's file; its constructor takes keyword
arguments (its own seed among them) and the methods the learner calls take the weights
with a version number, `(weights, version)`, and return the version they used, so the
learner can tell how stale a result is. Every call carries the weights, so a worker holds
nothing the learner cannot send again: that is what lets the Ray pool replace a dead one.

Backends (`RunSettings.pool`):

- `inprocess`: the workers (at most `MAX_INPROCESS_WORKERS`, 64) are objects in this
  process and calls run one after another, when their result is asked for (`call_all` at
  once, in worker order; `submit`ted calls at `wait_any`, in submission order):
  deterministic, and pdb works. Constructor arguments, call arguments and results are
  copied through pickle, as Ray copies them, so a worker that changes what it was sent,
  or keeps what it returned, behaves as it would on Ray.
- `ray`: one Ray actor per worker, `ray.remote(worker_cls)`, on the embedded local Ray or
  the cluster at `address` (`rlkit.parallel.init_ray`). Each reserves `num_cpus` CPUs, or
  an equal share of the free CPUs when the workers would not all fit (so 4 workers on 2
  cores, or a second pool beside a first, still start), never less than 1/8 CPU: more
  workers than 8 per free CPU are refused (UserError) before any starts, and before an
  embedded Ray starts at all. `call_all` puts its arguments into the object store once
  for all workers. A worker whose process dies (killed, out of memory, node lost) is
  replaced by a new actor with the same index and constructor arguments, its lost call
  is sent again, `restarts` counts it and `on_event` hears of it; after `max_restarts`
  replacements the pool gives up with WorkerPoolError.

Large read-only objects every worker needs (NES's noise table) go in `shared`: they are
placed once (Ray: once in the object store, read in place by the actors of a node) and
passed to every worker constructor by keyword, never copied per worker. `put(value)` does
the same for a call argument: put the current weights once, then `submit` the handle to
any number of calls. A worker must treat shared objects as read-only.

A dead worker's lost call is sent again to its replacement by default. With
`lost_calls="return"`, `wait_any` instead returns `(index, LostCall)` after replacing the
worker, and the learner decides where the work goes (NES gives it to the survivors).

Many small tasks (NES's population members) go through `map_chunks`, a work queue over
any pool: chunks of tasks to whichever worker is free, a chunk lost with a dead worker
handed to the next one that finishes (pool made with `lost_calls="return"`).

An exception raised inside a worker method reaches the caller (a UserError as itself).
"""

from __future__ import annotations

import math
import pickle
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from rlkit.poolbase import (
    FREE_CPU_WAIT_S,
    MAX_INPROCESS_WORKERS,
    MAX_RESTARTS,
    MIN_CPU_PER_WORKER,
    START_TIMEOUT_S,
    WORKERS_PER_CPU,
    Backend,
    EventHandler,
    LostCall,
    LostCalls,
    WorkerPoolError,
    _Pool,
    check_inprocess_workers,
    check_ray_workers,
    check_worker_count,
)
from rlkit.raypool import RayPool

# what callers import from here: the pool's names, wherever they are defined
__all__ = [
    "CHUNKS_PER_WORKER",
    "FREE_CPU_WAIT_S",
    "MAX_INPROCESS_WORKERS",
    "MAX_RESTARTS",
    "MIN_CPU_PER_WORKER",
    "START_TIMEOUT_S",
    "WORKERS_PER_CPU",
    "Backend",
    "ChunkedResults",
    "EventHandler",
    "InProcessPool",
    "LostCall",
    "LostCalls",
    "RayPool",
    "WorkerPool",
    "WorkerPoolError",
    "check_inprocess_workers",
    "check_ray_workers",
    "check_worker_count",
    "make_pool",
    "map_chunks",
]


class WorkerPool(Protocol):
    """Workers `0 .. size-1`, each an instance of one worker class, called by method name."""

    size: int
    restarts: int  # workers replaced after they died (Ray only)
    startup_seconds: float  # spent starting or joining Ray (0 in-process, or Ray reused)

    def call_all(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """`method(*args, **kwargs)` on every worker (in parallel on Ray); results in order."""
        ...

    def submit(self, index: int, method: str, *args: Any, **kwargs: Any) -> None:
        """Start `method` on worker `index`; at most one call per worker is outstanding."""
        ...

    def wait_any(self, timeout: float | None = None) -> tuple[int, Any]:
        """(worker index, result) of the first submitted call to finish; TimeoutError if none."""
        ...

    def put(self, value: Any) -> Any:
        """`value` placed once, as a handle that `submit` and `call_all` accept as an argument."""
        ...

    def pending(self) -> list[int]:
        """Indices of the workers with a submitted call that `wait_any` has not returned."""
        ...

    def close(self) -> None:
        """Stop the workers (outstanding calls are dropped); the pool cannot be used after."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def make_pool(
    worker_cls: type,
    worker_kwargs: list[dict[str, Any]],
    *,
    backend: Backend,
    address: str | None = None,
    on_event: EventHandler | None = None,
    num_cpus: float = 1.0,
    max_restarts: int = MAX_RESTARTS,
    start_timeout: float = START_TIMEOUT_S,
    shared: dict[str, Any] | None = None,
    lost_calls: LostCalls = "resend",
) -> WorkerPool:
    """A pool of `len(worker_kwargs)` workers, worker i built as `worker_cls(**worker_kwargs[i])`.

    `shared` objects are placed once and passed to every constructor by keyword as well.
    `address`, `num_cpus`, `max_restarts`, `start_timeout` (seconds for the workers to
    be scheduled and constructed) and `lost_calls` apply to the Ray backend; `on_event`
    receives one-line notes (Ray start-up, CPU shares, replaced workers) for the agent.
    """
    if not worker_kwargs:
        raise ValueError("make_pool needs at least one worker (worker_kwargs is empty)")
    if num_cpus < 0 or max_restarts < 0:
        raise ValueError(f"num_cpus ({num_cpus}) and max_restarts ({max_restarts}) must be >= 0")
    if backend == "inprocess":
        check_inprocess_workers(len(worker_kwargs))
        return InProcessPool(worker_cls, worker_kwargs, shared=shared)
    if backend == "ray":
        return RayPool(
            worker_cls,
            worker_kwargs,
            address=address,
            on_event=on_event,
            num_cpus=num_cpus,
            max_restarts=max_restarts,
            start_timeout=start_timeout,
            shared=shared,
            lost_calls=lost_calls,
        )
    raise ValueError(f"unknown pool backend {backend!r}; accepted: inprocess, ray")


CHUNKS_PER_WORKER = 4  # tasks go out in this many chunks per worker: a lost one costs little


@dataclass(frozen=True)
class ChunkedResults:
    """What `map_chunks` returns: one result per task, in task order, and the traffic."""

    results: list[Any]
    bytes_sent: int  # pickled: the shared argument once per worker, and every chunk
    bytes_received: int  # pickled results
    lost_chunks: int  # chunks lost with a dead worker and sent again


def map_chunks(
    pool: WorkerPool,
    method: str,
    tasks: Sequence[Any],
    *,
    shared: Any,
    args: tuple[Any, ...] = (),
    chunks_per_worker: int = CHUNKS_PER_WORKER,
) -> ChunkedResults:
    """Every task's result from `method(shared, chunk, *args)` on whichever worker is free.

    `shared` is put once (`pool.put`) and its handle sent with every chunk; `method`
    returns one result per task of its chunk. A chunk lost with a dead worker (the pool
    made with `lost_calls="return"`) goes to the next worker that finishes one (a
    survivor); the replacement gets work again once the lost chunks are placed.
    """
    size = max(1, math.ceil(len(tasks) / (pool.size * chunks_per_worker)))
    queue = deque(
        (begin, list(tasks[begin : begin + size])) for begin in range(0, len(tasks), size)
    )
    handle = pool.put(shared)
    sent = len(pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)) * pool.size
    received = lost = 0
    results: list[Any] = [None] * len(tasks)
    done = [False] * len(tasks)
    running: dict[int, tuple[int, list[Any]]] = {}
    parked: list[int] = []  # replaced workers wait while lost chunks are pending

    def give(index: int) -> None:
        nonlocal sent
        begin, chunk = queue.popleft()
        running[index] = (begin, chunk)
        sent += len(pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL))
        pool.submit(index, method, handle, chunk, *args)

    for index in range(pool.size):
        if queue:
            give(index)
    while running:
        index, outcome = pool.wait_any()
        begin, chunk = running.pop(index)
        if isinstance(outcome, LostCall):
            lost += 1
            queue.appendleft((begin, chunk))
            parked.append(index)
            if not running:  # nobody left to hand it to: the replacement takes it
                give(parked.pop())
            continue
        received += len(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
        results[begin : begin + len(outcome)] = outcome
        done[begin : begin + len(outcome)] = [True] * len(outcome)
        for free in [index, *parked]:
            if queue and free not in running:
                give(free)
        parked = [worker for worker in parked if worker not in running]
    if not all(done):
        raise RuntimeError(f"map_chunks: '{method}' returned fewer results than tasks")
    return ChunkedResults(results, sent, received, lost)


def _copy(value: Any) -> Any:
    """What a worker on another process would get: a deep copy made through pickle."""
    return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


class InProcessPool(_Pool):
    """Workers as objects in this process; calls run one after another, deterministically."""

    def __init__(
        self,
        worker_cls: type,
        worker_kwargs: list[dict[str, Any]],
        *,
        shared: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(worker_cls, worker_kwargs)
        shared = _copy(shared or {})  # once for all workers, as Ray's object store holds it
        self._workers = [worker_cls(**_copy(kwargs), **shared) for kwargs in worker_kwargs]
        self._submitted: deque[tuple[int, str, Any, Any]] = deque()
        self._put: dict[int, Any] = {}  # id of a copy -> the copy, so it is not copied again

    def call_all(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        self._check_idle(method)
        return [
            self._run(index, method, self._copy_args(args), self._copy_args(kwargs))
            for index in range(self.size)
        ]

    def submit(self, index: int, method: str, *args: Any, **kwargs: Any) -> None:
        self._check_submit(index, method)
        # copied now, as Ray serialises at submission: the caller may change them after
        self._submitted.append((index, method, self._copy_args(args), self._copy_args(kwargs)))

    def put(self, value: Any) -> Any:
        placed = _copy(value)
        self._put[id(placed)] = placed
        return placed

    def _copy_args(self, values: Any) -> Any:
        """Arguments copied as Ray would send them; `put` handles pass as they are."""
        if isinstance(values, dict):
            return {key: self._copy_arg(value) for key, value in values.items()}
        return tuple(self._copy_arg(value) for value in values)

    def _copy_arg(self, value: Any) -> Any:
        return value if self._put.get(id(value)) is value else _copy(value)

    def wait_any(self, timeout: float | None = None) -> tuple[int, Any]:
        """Runs the oldest submitted call now (`timeout` does not apply: it runs here)."""
        if self._closed:
            raise RuntimeError(f"the {self.worker_cls.__name__} pool is closed")
        if not self._submitted:
            raise RuntimeError("wait_any() with no call outstanding; submit() one first")
        index, method, args, kwargs = self._submitted.popleft()
        return index, self._run(index, method, args, kwargs)

    def _run(self, index: int, method: str, args: Any, kwargs: Any) -> Any:
        return _copy(getattr(self._workers[index], method)(*args, **kwargs))

    def pending(self) -> list[int]:
        return sorted(index for index, *_ in self._submitted)

    def close(self) -> None:
        self._closed = True
        self._submitted.clear()
        self._workers = []
        self._put.clear()
