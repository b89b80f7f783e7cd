"""The Ray worker pool: one Ray actor per worker, dead ones replaced (see `rlkit.pool`).

`make_pool(..., backend="ray")` builds it. Each actor reserves `num_cpus` CPUs, or an
equal share of the free ones (`_cpu_share`); ray is imported only when a pool starts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlkit.errors import UserError
from rlkit.poolbase import (
    FREE_CPU_WAIT_S,
    MAX_RESTARTS,
    MIN_CPU_PER_WORKER,
    START_TIMEOUT_S,
    EventHandler,
    LostCall,
    LostCalls,
    WorkerPoolError,
    _Pool,
    check_ray_workers,
    check_worker_count,
)

if TYPE_CHECKING:
    from ray import ObjectRef
    from ray.actor import ActorHandle
    from ray.exceptions import RayActorError


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
