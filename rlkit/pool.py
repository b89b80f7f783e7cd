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

import contextlib
import math
import pickle
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

from rlkit.errors import UserError

if TYPE_CHECKING:
    from ray import ObjectRef
    from ray.actor import ActorHandle
    from ray.exceptions import RayActorError

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


@dataclass
class _Call:
    index: int
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class RayPool(_Pool):
    """One Ray actor per worker; dead actors are replaced and their lost call sent again."""

    def __init__(
        self,
        worker_cls: type,
        worker_kwargs: list[dict[str, Any]],
        *,
        address: str | None = None,
        on_event: EventHandler | None = None,
        num_cpus: float = 1.0,
        max_restarts: int = MAX_RESTARTS,
        start_timeout: float = START_TIMEOUT_S,
        shared: dict[str, Any] | None = None,
        lost_calls: LostCalls = "resend",
    ) -> None:
        super().__init__(worker_cls, worker_kwargs)
        from rlkit.parallel import cluster_cpus, free_cpus, init_ray, ray_address

        self._on_event = on_event or (lambda message: None)
        check_worker_count(self.size, "ray", address)  # before an embedded Ray starts
        self.startup_seconds = init_ray(address)
        import ray

        self._ray: Any = ray  # partly typed; its untyped calls are used as Any
        total = cluster_cpus()
        if self.startup_seconds > 0:
            target, _ = ray_address(address)
            where = "started a local Ray" if target is None else f"connected to Ray at {target}"
            self._on_event(f"{where} ({total:g} CPUs) in {self.startup_seconds:.1f} s")
        free = _settled_free_cpus(free_cpus, self.size * num_cpus)
        check_ray_workers(self.size, free, total)
        self.cpus_per_worker = _cpu_share(num_cpus, free, self.size)
        if self.cpus_per_worker < num_cpus:
            self._on_event(
                f"{self.size} workers x {num_cpus:g} CPU exceed the {free:g} free CPUs of "
                f"{total:g}; each worker reserves {self.cpus_per_worker:g} CPU"
            )
        # a shared object goes into the object store once; every actor gets its reference
        shared_refs = {name: ray.put(value) for name, value in (shared or {}).items()}
        self._kwargs = [{**kwargs, **shared_refs} for kwargs in worker_kwargs]
        self._max_restarts = max_restarts
        self._resend_lost = lost_calls == "resend"
        self._remote: Any = ray.remote(worker_cls).options(num_cpus=self.cpus_per_worker)
        self._actors: list[ActorHandle[Any]] = [self._start(i) for i in range(self.size)]
        self._pending: dict[ObjectRef[Any], _Call] = {}
        try:
            self._wait_started(start_timeout, total)
        except BaseException:
            self.close()
            raise

    def _start(self, index: int) -> ActorHandle[Any]:
        handle: ActorHandle[Any] = self._remote.remote(**self._kwargs[index])
        return handle

    def _wait_started(self, timeout: float, total_cpus: float) -> None:
        """Wait until every actor is scheduled and constructed; a failed constructor raises."""
        waiting: dict[ObjectRef[Any], int] = {
            actor.__ray_ready__.remote(): index for index, actor in enumerate(self._actors)
        }
        deadline = time.monotonic() + timeout
        while waiting:
            left = deadline - time.monotonic()
            done, _rest = self._ray.wait(list(waiting), num_returns=1, timeout=max(0.0, left))
            if not done:
                free = self._ray.available_resources().get("CPU", 0.0)
                raise WorkerPoolError(
                    f"{len(waiting)} of {self.size} {self.worker_cls.__name__} workers did not "
                    f"start within {timeout:g} s (each needs {self.cpus_per_worker:g} CPU; the "
                    f"cluster has {total_cpus:g} CPUs, {free:g} free)"
                )
            index = waiting.pop(done[0])
            try:
                self._ray.get(done[0])
            except self._ray.exceptions.RayActorError as error:
                raise self._start_failure(index, error) from error

    def _start_failure(self, index: int, error: RayActorError) -> WorkerPoolError:
        return WorkerPoolError(
            f"worker {index} ({self.worker_cls.__name__}) failed to start: {_last_line(error)}"
        )

    def _issue(self, call: _Call) -> None:
        actor = self._actors[call.index]
        ref = getattr(actor, call.method).remote(*call.args, **call.kwargs)
        self._pending[ref] = call

    def call_all(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        self._check_idle(method)
        ray = self._ray

        def put(value: Any) -> Any:  # once for all workers, not once per worker
            return value if isinstance(value, ray.ObjectRef) else ray.put(value)

        shared_args = tuple(put(value) for value in args)
        shared_kwargs = {name: put(value) for name, value in kwargs.items()}
        for index in range(self.size):
            self._issue(_Call(index, method, shared_args, shared_kwargs))
        results: list[Any] = [None] * self.size
        try:
            for _ in range(self.size):
                index, result = self._next_result(None, resend=True)
                results[index] = result
        except BaseException:
            self._pending.clear()  # the collective call failed: forget the rest of it
            raise
        return results

    def submit(self, index: int, method: str, *args: Any, **kwargs: Any) -> None:
        self._check_submit(index, method)
        self._issue(_Call(index, method, args, kwargs))

    def wait_any(self, timeout: float | None = None) -> tuple[int, Any]:
        if self._closed:
            raise RuntimeError(f"the {self.worker_cls.__name__} pool is closed")
        if not self._pending:
            raise RuntimeError("wait_any() with no call outstanding; submit() one first")
        return self._next_result(timeout, resend=self._resend_lost)

    def put(self, value: Any) -> Any:
        if self._closed:
            raise RuntimeError(f"the {self.worker_cls.__name__} pool is closed")
        return self._ray.put(value)

    def _next_result(self, timeout: float | None, *, resend: bool) -> tuple[int, Any]:
        ray = self._ray
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _rest = ray.wait(list(self._pending), num_returns=1, timeout=left)
            if not done:
                raise TimeoutError(f"no worker call finished within {timeout:g} s")
            call = self._pending.pop(done[0])
            try:
                return call.index, ray.get(done[0])
            except ray.exceptions.RayActorError as error:
                reason = self._replace(call, error, resend=resend)
                if not resend:
                    return call.index, LostCall(call.method, call.args, call.kwargs, reason)
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, UserError):
                    raise error.cause from None
                raise

    def _replace(self, call: _Call, error: RayActorError, *, resend: bool) -> str:
        """A worker died: start a new one with the same index and arguments, and resend the
        call to it (`resend`) or leave it to the caller; returns the reason, one line."""
        index = call.index
        if error.actor_init_failed:
            raise self._start_failure(index, error) from error
        reason = _one_line(error)
        if self.restarts >= self._max_restarts:
            raise WorkerPoolError(
                f"worker {index} died ({reason}); the pool already replaced {self.restarts} "
                f"workers (max_restarts={self._max_restarts}), giving up"
            ) from error
        with contextlib.suppress(Exception):  # already gone; kill is only to be sure
            self._ray.kill(self._actors[index], no_restart=True)
        self._actors[index] = self._start(index)
        self.restarts += 1
        if resend:
            self._issue(call)
        where = "sent again" if resend else "returned to the learner"
        self._on_event(
            f"worker {index} died ({reason}); replaced "
            f"(restart {self.restarts} of at most {self._max_restarts}), "
            f"its '{call.method}' call {where}"
        )
        return reason

    def pending(self) -> list[int]:
        return sorted(call.index for call in self._pending.values())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        for actor in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):  # Ray already shut down, or the actor gone
                self._ray.kill(actor, no_restart=True)
        self._actors = []


def _settled_free_cpus(free_cpus: Callable[[], float], wanted: float) -> float:
    """Ray's free CPUs, waiting up to `FREE_CPU_WAIT_S` for `wanted` of them: actors that a
    pool just closed (`ray.kill`) give their CPUs back a moment later."""
    deadline = time.monotonic() + FREE_CPU_WAIT_S
    free = free_cpus()
    while free < wanted and time.monotonic() < deadline:
        time.sleep(0.1)
        free = free_cpus()
    return free


def _cpu_share(wanted: float, free: float, workers: int) -> float:
    """CPUs each worker reserves: `wanted`, or an equal share of `free` when all would not fit.

    A reservation is only Ray's scheduling token (a worker may use more), so sharing
    oversubscribes the CPUs rather than leaving workers waiting for ones that never free up;
    but never below `MIN_CPU_PER_WORKER` (UserError instead: see `check_ray_workers`).
    """
    if wanted * workers <= free:
        return wanted
    check_ray_workers(workers, free)
    return max(MIN_CPU_PER_WORKER, int(free / workers * 10_000) / 10_000)  # Ray: 4 decimals


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


def _one_line(error: BaseException) -> str:
    """Ray's multi-line actor error as one line: the first line, and the worker's pid."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    pid = next((line.removeprefix("pid:").strip() for line in lines if line.startswith("pid:")), "")
    return f"{type(error).__name__}: {lines[0].rstrip('.')}" + (f", pid {pid}" if pid else "")


def _last_line(error: BaseException) -> str:
    """The exception line at the end of a remote traceback (what the constructor raised)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
