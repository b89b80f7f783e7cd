"""The group, seed by seed: `run_group` runs every seed not finished yet, one actor per
seed on Ray or one after another in this process, records each one's end in `group.json`
as it comes, and stops them all with a checkpoint on Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from rlkit.errors import shorten
from rlkit.group.groupdir import FAILED, FINISHED, INTERRUPTED, NOT_STARTED, Group, SeedRecord
from rlkit.group.results import write_summary
from rlkit.group.seed import SeedJob, SeedOutcome, SeedRunner, train_seed
from rlkit.output import output_to


@dataclass(frozen=True)
class GroupResult:
    group: Group
    interrupted: bool

    @property
    def failed(self) -> list[SeedRecord]:
        return [self.group.records[seed] for seed in self.group.seeds if self._is(seed, FAILED)]

    def _is(self, seed: int, status: str) -> bool:
        return self.group.records[seed].status == status


def run_group(
    group: Group,
    *,
    address: str | None = None,
    wandb: str | None = None,
    trust_modules: bool = False,
) -> GroupResult:
    """Run every seed of `group` not finished yet; write `group.json` and `summary.json`."""
    todo = [seed for seed in group.seeds if not _done(group.records[seed])]
    jobs = [
        SeedJob(
            group_dir=str(group.directory.absolute()),
            group_name=group.name,
            seed=seed,
            config=group.config,
            final_episodes=group.final_episodes,
            wandb=wandb,
            trust_modules=trust_modules,
        )
        for seed in todo
    ]
    for seed in group.seeds:
        if seed not in todo:
            _say(f"seed {seed} finished before; left as it is")
    stop = threading.Event()
    started = time.perf_counter()
    session: dict[str, Any] = {"started": datetime.now().astimezone().isoformat(timespec="seconds")}
    try:
        with _stop_on_interrupt(stop):
            if group.parallel == "ray" and jobs:
                _run_on_ray(group, jobs, address, stop)
            else:
                _run_here(group, jobs, stop)
    finally:  # the wall-clock of each session of the group, for the learning-results table
        session["seconds"] = round(time.perf_counter() - started, 1)
        group.record.setdefault("sessions", []).append(session)
        group.save()
    interrupted = stop.is_set() or any(
        group.records[seed].status in (INTERRUPTED, NOT_STARTED) for seed in group.seeds
    )
    write_summary(group)
    return GroupResult(group, interrupted)


def _done(record: SeedRecord) -> bool:
    return record.status == FINISHED and record.final is not None


def _record(group: Group, outcome: SeedOutcome) -> None:
    record = group.records[outcome.seed]
    record.status, record.step, record.final = outcome.status, outcome.step, outcome.final
    record.seconds = round(record.seconds + outcome.seconds, 2)
    record.error = outcome.error
    group.save()
    _say(_end_line(group, outcome))


def _end_line(group: Group, outcome: SeedOutcome) -> str:
    seconds = f"{outcome.seconds:.1f} s"
    if outcome.status == FAILED:
        return (
            f"seed {outcome.seed} failed after {seconds}: {outcome.error}; "
            f"log: {group.log_file(outcome.seed)}"
        )
    if outcome.status == INTERRUPTED:
        return f"seed {outcome.seed} interrupted at step {outcome.step} (checkpoint saved)"
    assert outcome.final is not None
    line = (
        f"seed {outcome.seed} finished: {outcome.step} steps in {seconds}; final greedy return "
        f"{outcome.final['mean']:.4g} ({group.final_episodes} episodes)"
    )
    if outcome.final.get("success_rate") is not None:
        line += f", success rate {outcome.final['success_rate']:.3f}"
    return line


def _say(message: str) -> None:
    print(f"rlkit: {message}", file=sys.stderr, flush=True)


def _run_here(group: Group, jobs: list[SeedJob], stop: threading.Event) -> None:
    """One seed after another in this process, each one's output in its log file."""
    for job in jobs:
        if stop.is_set():
            break
        _say(f"seed {job.seed} started: {group.run_dir(job.seed)}")
        with output_to(group.log_file(job.seed)):
            outcome = train_seed(job, stop)
        _record(group, outcome)


def _run_on_ray(
    group: Group, jobs: list[SeedJob], address: str | None, stop: threading.Event
) -> None:
    """One actor per seed, one CPU each: as many at once as the cluster has CPUs."""
    import ray

    from rlkit.parallel import init_ray

    init_ray(address, forward_worker_output=False)
    runner: Any = ray.remote(SeedRunner).options(num_cpus=1, max_concurrency=2, max_restarts=0)
    actors = {job.seed: runner.remote(str(group.log_file(job.seed).absolute())) for job in jobs}
    waiting: dict[Any, tuple[str, int]] = {}
    for job in jobs:
        actor = actors[job.seed]
        waiting[actor.__ray_ready__.remote()] = ("ready", job.seed)
        waiting[actor.run.remote(job)] = ("result", job.seed)
    started: set[int] = set()
    stopping = False
    try:
        while waiting:
            if stop.is_set() and not stopping:
                stopping = True
                for seed, actor in actors.items():
                    if seed in started:
                        actor.stop.remote()
                    else:  # never started: it stays so, and --resume starts it
                        ray.kill(actor, no_restart=True)
            done, _ = ray.wait(list(waiting), num_returns=1, timeout=0.5)
            for ref in done:
                kind, seed = waiting.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayActorError as error:
                    if seed not in started and stopping:
                        continue  # killed before it started
                    if kind == "result":
                        _record(group, _lost(group, seed, error))
                    continue
                if kind == "ready":
                    started.add(seed)
                    _say(f"seed {seed} started: {group.run_dir(seed)}")
                    continue
                _record(group, value)
                actors[seed].__ray_terminate__.remote()  # frees its CPU for the next seed
    finally:
        for actor in actors.values():
            ray.kill(actor, no_restart=True)


def _lost(group: Group, seed: int, error: BaseException) -> SeedOutcome:
    """The outcome of a seed whose actor died (killed, out of memory, its node lost)."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return SeedOutcome(seed, FAILED, 0, 0.0, error=f"its process died ({shorten(first, 200)})")


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) sets `stop`: running seeds end with a checkpoint; a second
    Ctrl-C aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
