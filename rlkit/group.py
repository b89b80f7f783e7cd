"""Many seeds in one command: a seed group.

    rlkit run trpo --env CartPole-v1 --seeds 0-9       # ten runs, side by side on Ray
    rlkit run --resume runs/trpo-CartPole-v1-20261203-101500-seeds   # finish what is not
    rlkit eval runs/trpo-CartPole-v1-20261203-101500-seeds            # every seed's policy
    rlkit plot GROUP_A GROUP_B -o compare.png                          # IQM and 95% CI bands

A group is one run config trained on several seeds, each seed a normal run directory:

    <out_dir>/<group>/          <group> defaults to <agent>-<env>-<date>-<time>-seeds
      group.json                what ran (agent, env, seeds, command, commit) and each seed's
                                state: finished (with its final evaluation), interrupted,
                                failed (one line), not started
      config.yaml               the group's resolved config, less the seed: `rlkit run
                                --config <group>/config.yaml --seeds 0-9` trains it again
      seed-<n>/                 a run dir per seed (config.yaml, metrics.jsonl, checkpoints/,
                                wandb/: one W&B run in the W&B group named after the group)
      logs/seed-<n>.log         everything that seed's process printed
      summary.json              per seed: the final greedy evaluation; over the seeds: IQM
                                and mean with 95% stratified-bootstrap CIs (rlkit.stats)

How the seeds run. One seed is one Ray actor reserving one CPU (`SeedRunner`), so a
machine or a cluster runs as many seeds at once as it has CPUs and queues the rest; the
driver prints a line when a seed starts and one when it ends. Inside its actor a seed's
run keeps its workers in-process (`pool: inprocess`, one torch thread): the seeds already
fill the CPUs, and worker actors of their own would only add processes (each imports
torch: 1-2 s and a few hundred MB), contend for the same CPUs (Ray would grant them
fractions) and make a seed's result depend on how its workers were scheduled; in-process
workers give every seed the same result wherever and however it runs. With `--set
pool=inprocess`, or on a 1-core machine without `--address`, the seeds run one after
another in this process, with the same results.

Every seed evaluates its greedy policy during training (`eval_every`, by default 20
evaluations over the run, so the group's curves exist) and at the end on
`final_episodes` (20) episodes of its own evaluation seed stream, as `rlkit eval` does. A
seed that fails is reported in one line (its traceback is in its log) and the others go
on. Ctrl-C stops every running seed with a checkpoint; `rlkit run --resume GROUP_DIR`
resumes interrupted seeds from their newest checkpoints, starts those never started,
and leaves finished ones alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rlkit import checkpoint
from rlkit.config import dump_yaml, load_yaml
from rlkit.errors import UserError, shorten
from rlkit.output import LOGS_DIR, output_to, send_output_to
from rlkit.rundir import CONFIG_FILE, run_record, write_text

GROUP_FILE = "group.json"
SUMMARY_FILE = "summary.json"
FINAL_EPISODES = 20  # episodes of each seed's final evaluation
EVALUATIONS = 20  # evaluations during each seed's run, unless eval_every is given
MAX_SEEDS = 1000
SEED_PREFIX = "seed-"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

# what a seed's record says
FINISHED, INTERRUPTED, FAILED, NOT_STARTED = "finished", "interrupted", "failed", "not started"


def parse_seeds(text: str) -> list[int]:
    """`0-9`, `0,3,7`, or both (`0-4,10`): the seeds, in the order given, each once."""
    accepted = "accepted: a range 0-9, a list 0,3,7, or both: 0-4,10"
    seeds: list[int] = []
    for item in text.split(","):
        first, dash, last = item.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise UserError(
                f"--seeds '{shorten(text)}': '{shorten(item)}' is not a seed; {accepted}"
            ) from None
        if low < 0 or high < low:
            raise UserError(
                f"--seeds '{shorten(text)}': '{shorten(item)}' is not a range of seeds "
                f"(0 or more, low-high); {accepted}"
            )
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise UserError(f"--seeds '{shorten(text)}': more than {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise UserError(f"--seeds '{shorten(text)}': seed {repeated[0]} is given twice; {accepted}")
    return seeds


def is_group_dir(path: str | Path) -> bool:
    return (Path(path) / GROUP_FILE).is_file()


# ---- the group dir ----


@dataclass
class SeedRecord:
    """One seed's state in `group.json`."""

    seed: int
    status: str = NOT_STARTED
    step: int = 0
    seconds: float = 0.0  # wall-clock of its training and final evaluation, all sessions
    final: dict[str, Any] | None = None  # EvalStats.as_dict() of the final evaluation
    error: str | None = None


@dataclass
class Group:
    """A group dir: what ran and each seed's state (`group.json`), its config (`config.yaml`)."""

    directory: Path
    name: str
    agent: str
    env: str
    steps: int
    seeds: list[int]
    final_episodes: int
    parallel: str  # "ray": one actor per seed; "inprocess": one after another, here
    config: dict[str, Any]  # the group's resolved config: agent, run settings, hparams
    records: dict[int, SeedRecord] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # rlkit version, commit, command

    def run_dir(self, seed: int) -> Path:
        return self.directory / f"{SEED_PREFIX}{seed}"

    def log_file(self, seed: int) -> Path:
        return self.directory / LOGS_DIR / f"{SEED_PREFIX}{seed}.log"

    def save(self) -> None:
        data = {
            "format": 1,
            "name": self.name,
            "agent": self.agent,
            "env": self.env,
            "steps": self.steps,
            "seeds": self.seeds,
            "final_episodes": self.final_episodes,
            "parallel": self.parallel,
            **self.record,
            "runs": {str(seed): asdict(self.records[seed]) for seed in self.seeds},
        }
        write_text(self.directory / GROUP_FILE, json.dumps(data, indent=1))


def read_group(directory: str | Path) -> Group:
    """The group in `directory` (made by `rlkit run --seeds`)."""
    path = Path(directory)
    if not is_group_dir(path):
        raise UserError(
            f"'{shorten(directory)}' is not a seed group dir (no {GROUP_FILE}); give a folder "
            "made by `rlkit run --seeds`"
        )
    try:
        data = json.loads((path / GROUP_FILE).read_text())
        records = {
            int(seed): SeedRecord(**{**fields, "seed": int(seed)})
            for seed, fields in data["runs"].items()
        }
        known = {"format", "name", "agent", "env", "steps", "seeds", "final_episodes", "parallel"}
        group = Group(
            directory=path,
            name=str(data["name"]),
            agent=str(data["agent"]),
            env=str(data["env"]),
            steps=int(data["steps"]),
            seeds=[int(seed) for seed in data["seeds"]],
            final_episodes=int(data["final_episodes"]),
            parallel=str(data["parallel"]),
            config=load_yaml(path / CONFIG_FILE),
            records=records,
            record={key: value for key, value in data.items() if key not in {*known, "runs"}},
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"'{path / GROUP_FILE}' is damaged ({shorten(error)})") from None
    for seed in group.seeds:
        group.records.setdefault(seed, SeedRecord(seed))
    return group


def new_group(
    agent: str | None,
    *,
    config: str | None,
    overrides: list[str],
    flags: dict[str, Any],
    seeds: list[int],
    name: str | None,
    final_episodes: int,
) -> Group:
    """Resolve the group's config (every check `rlkit run` makes), then make its dir."""
    from rlkit.agent import load_agent
    from rlkit.parallel import check_address, ray_address
    from rlkit.resolve import Layer, file_layer, flags_layer, overrides_layer, resolve
    from rlkit.seeding import run_seeds
    from rlkit.settings import RunSettings

    given = {key: value for key, value in flags.items() if value is not None}
    layers: list[Layer] = []
    file_agent = None
    if config is not None:
        file_agent, layer = file_layer(config)
        layers.append(layer)
    agent_name = agent or file_agent
    if agent_name is None:
        raise UserError(
            "no agent given; name one (see `rlkit list agents`) "
            "or use --config FILE with an agent: key"
        )
    if agent and file_agent and agent != file_agent:
        raise UserError(f"config file '{config}' is for agent '{file_agent}', not '{agent}'")
    agent_cls = load_agent(agent_name)
    # a group's runs are quiet, one torch thread each unless told otherwise
    layers.insert(0, Layer(settings={"threads": 1, "progress": False}))
    layers += [
        flags_layer({**given, "seed": seeds[0]}),
        overrides_layer(overrides, agent_cls),
    ]
    resolved = resolve(agent_name, agent_cls, layers)
    settings: RunSettings = resolved.settings
    if settings.eval_every is None:
        settings = settings.model_copy(update={"eval_every": max(1, settings.steps // EVALUATIONS)})
    cluster = ray_address(settings.address)[0]  # --address, else RAY_ADDRESS
    parallel = "ray"
    if settings.pool == "inprocess" or (cluster is None and _cores() == 1):
        parallel = "inprocess"
        if settings.address is not None:
            raise UserError("--address runs seeds on a Ray cluster; pool=inprocess runs them here")
    if parallel == "ray":
        check_address(settings.address)  # an unreachable cluster fails before anything is made
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    env_name = resolved.env_id.replace("/", "-")
    directory = _make_dir(Path(settings.out_dir), name, f"{agent_name}-{env_name}-{stamp}-seeds")
    saved = settings.model_dump(exclude={"seed", "name", "out_dir", "wandb_group", "address"})
    group_config = {"agent": agent_name, **saved, "hparams": resolved.agent_config.model_dump()}
    write_text(directory / CONFIG_FILE, dump_yaml(group_config))
    record = run_record(run_seeds(seeds[0]), group_config)
    group = Group(
        directory=directory,
        name=directory.name,
        agent=agent_name,
        env=settings.env,
        steps=settings.steps,
        seeds=seeds,
        final_episodes=final_episodes,
        parallel=parallel,
        config=group_config,
        records={seed: SeedRecord(seed) for seed in seeds},
        record={
            "rlkit_version": record["rlkit_version"],
            "git_commit": record["git_commit"],
            "python": record["python"],
            "platform": record["platform"],
            "packages": record["packages"],
            "command": record["command"],
            "started": record["started"],
            "address": settings.address,
        },
    )
    group.save()
    return group


def _cores() -> int:
    return os.cpu_count() or 1


def _make_dir(base: Path, name: str | None, default: str) -> Path:
    if name is not None and (name in ("", ".", "..") or "/" in name or "\\" in name):
        raise UserError(f"--name '{shorten(name)}' is not a folder name; accepted: no '/' or '..'")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out-dir {base}: cannot create it ({error.strerror})") from None
    for attempt in range(1, 1000):
        candidate = base / (name or default if attempt == 1 else f"{default}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            if name is not None:
                raise UserError(
                    f"--name {name}: '{candidate}' already exists; choose another name or "
                    f"continue it with `rlkit run --resume {candidate}`"
                ) from None
            continue
        return candidate
    raise UserError(f"cannot create a group directory under '{base}'")


# ---- one seed, wherever it runs ----


@dataclass(frozen=True)
class SeedJob:
    """What a seed's run needs, sent to whichever process (or node) runs it."""

    group_dir: str  # absolute
    group_name: str
    seed: int
    config: dict[str, Any]  # the group's config
    final_episodes: int
    wandb: str | None = None  # --wandb given to --resume
    # import the modules config.yaml names (env module:Id, env_wrappers): a new group's came
    # from the command line; a resumed group's only with --trust-modules (rlkit.trust)
    trust_modules: bool = False


@dataclass(frozen=True)
class SeedOutcome:
    seed: int
    status: str  # finished, interrupted, failed
    step: int
    seconds: float
    final: dict[str, Any] | None = None
    error: str | None = None


def train_seed(job: SeedJob, stop: threading.Event | None) -> SeedOutcome:
    """Train (or resume, or only evaluate) one seed's run; never raises.

    No run dir, or one without a checkpoint: a new run. A checkpoint short of the steps:
    resumed from it. The steps reached: only the final evaluation.
    """
    from rlkit.training import evaluate_run, train

    started = time.perf_counter()
    run_dir = Path(job.group_dir) / f"{SEED_PREFIX}{job.seed}"
    step = 0
    try:
        found = checkpoint.list_checkpoints(run_dir / "checkpoints")
        step = int(checkpoint.load(found[-1])["step"]) if found else 0
        steps = int(load_yaml(run_dir / CONFIG_FILE)["steps"]) if found else 0
        if not found:
            if run_dir.exists():
                shutil.rmtree(run_dir)  # a start that failed before its first checkpoint
            settings = {key: value for key, value in job.config.items() if key != "hparams"}
            settings.pop("agent")
            settings.update(
                seed=job.seed,
                out_dir=job.group_dir,
                name=run_dir.name,
                wandb_group=job.group_name,
                pool="inprocess",
                progress=False,
            )
            if job.wandb is not None:
                settings["wandb"] = job.wandb
            agent, hparams = job.config["agent"], job.config["hparams"]
            result = train(agent, hparams=hparams, stop=stop, **settings)
            step, interrupted = result.step, result.interrupted
        elif step < steps:
            result = train(
                None,
                resume=run_dir,
                stop=stop,
                wandb=job.wandb,
                progress=False,
                trust_modules=job.trust_modules,
            )
            step, interrupted = result.step, result.interrupted
        else:
            interrupted = False
        if interrupted:
            return SeedOutcome(job.seed, INTERRUPTED, step, time.perf_counter() - started)
        stats = evaluate_run(run_dir, episodes=job.final_episodes, trust_modules=job.trust_modules)
        return SeedOutcome(
            job.seed, FINISHED, step, time.perf_counter() - started, final=stats.as_dict()
        )
    except Exception as error:
        traceback.print_exc()  # into the seed's log
        return SeedOutcome(
            job.seed, FAILED, step, time.perf_counter() - started, error=_one_line(error)
        )


def _one_line(error: BaseException) -> str:
    if isinstance(error, UserError):
        return str(error)
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {shorten(lines[0], 300)}" if lines else type(error).__name__


class SeedRunner:
    """A Ray actor that runs one seed, its output going to the seed's log file.

    Made with `max_concurrency=2`: `run` trains in one thread while `stop` (Ctrl-C in the
    driver) can arrive in another and stop the run with a checkpoint.
    """

    def __init__(self, log_file: str) -> None:
        send_output_to(Path(log_file))
        self._stop = threading.Event()

    def run(self, job: SeedJob) -> SeedOutcome:
        return train_seed(job, self._stop)

    def stop(self) -> None:
        self._stop.set()


# ---- the group, seed by seed ----


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


# ---- results over the seeds ----


def summary(group: Group, finals: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per seed, the final evaluation; over the finished seeds, IQM and mean with 95% CIs
    of the greedy return (and of the success rate where the env reports it)."""
    from rlkit.stats import summarise

    finals = (
        finals
        if finals is not None
        else {
            seed: record.final
            for seed, record in group.records.items()
            if record.status == FINISHED and record.final is not None
        }
    )
    seeds: list[dict[str, Any]] = []
    for seed in group.seeds:
        record = group.records[seed]
        final = finals.get(seed)
        seeds.append(
            {
                "seed": seed,
                "status": record.status,
                "step": record.step,
                "seconds": record.seconds,
                "return": None if final is None else final["mean"],
                "return_std": None if final is None else final["std"],
                "length": None if final is None else final["mean_length"],
                "success_rate": None if final is None else final.get("success_rate"),
                "error": record.error,
            }
        )
    aggregate: dict[str, Any] = {}
    returns = [float(row["return"]) for row in seeds if row["return"] is not None]
    if returns and all(math.isfinite(value) for value in returns):
        aggregate["return"] = _estimates(summarise(returns))
    successes = [float(row["success_rate"]) for row in seeds if row["success_rate"] is not None]
    if successes and len(successes) == len(returns):
        aggregate["success_rate"] = _estimates(summarise(successes))
    return {
        "group": group.name,
        "agent": group.agent,
        "env": group.env,
        "steps": group.steps,
        "episodes": group.final_episodes,
        "git_commit": group.record.get("git_commit"),
        "seeds": seeds,
        "aggregate": aggregate,
    }


def _estimates(result: Any) -> dict[str, Any]:
    return {
        "count": result.count,
        "iqm": result.iqm,
        "iqm_ci": list(result.iqm_ci),
        "mean": result.mean,
        "mean_ci": list(result.mean_ci),
    }


def write_summary(group: Group) -> dict[str, Any]:
    data = summary(group)
    write_text(group.directory / SUMMARY_FILE, json.dumps(data, indent=1))
    return data


def format_summary(data: dict[str, Any]) -> str:
    """The per-seed table and the aggregate lines."""
    success = any(row["success_rate"] is not None for row in data["seeds"])
    header = ["seed", "status", "steps", f"return ({data['episodes']} episodes)"]
    header += ["success rate"] if success else []
    header += ["seconds"]
    lines = []
    for row in data["seeds"]:
        cells = [str(row["seed"]), row["status"], str(row["step"])]
        cells.append("-" if row["return"] is None else f"{row['return']:.4g}")
        if success:
            rate = row["success_rate"]
            cells.append("-" if rate is None else f"{rate:.3f}")
        cells.append(f"{row['seconds']:.1f}")
        lines.append(cells)
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *lines]
    ]
    for key, label in (("return", "return"), ("success_rate", "success rate")):
        estimate = data["aggregate"].get(key)
        if estimate is not None:
            fmt = ".3f" if key == "success_rate" else ".4g"
            text.append(
                f"{label} over {estimate['count']} seeds: IQM {_interval(estimate, 'iqm', fmt)}, "
                f"mean {_interval(estimate, 'mean', fmt)}"
            )
    return "\n".join(text)


def _interval(estimate: dict[str, Any], key: str, fmt: str) -> str:
    low, high = estimate[f"{key}_ci"]
    return f"{estimate[key]:{fmt}} [95% CI {low:{fmt}}, {high:{fmt}}]"


def evaluate_group(group: Group, episodes: int, *, trust_modules: bool = False) -> dict[str, Any]:
    """Evaluate every seed's final policy (its newest checkpoint) now: the summary."""
    from rlkit.training import evaluate_run

    finals = {}
    for seed in group.seeds:
        run_dir = group.run_dir(seed)
        if not checkpoint.list_checkpoints(run_dir / "checkpoints"):
            continue
        finals[seed] = evaluate_run(
            run_dir, episodes=episodes, trust_modules=trust_modules
        ).as_dict()
        group.records[seed].step = _newest_step(run_dir)
    data = summary(group, finals)
    data["episodes"] = episodes
    return data


def _newest_step(run_dir: Path) -> int:
    found = checkpoint.list_checkpoints(run_dir / "checkpoints")
    return int(checkpoint.load(found[-1])["step"]) if found else 0


# ---- the command line (called by rlkit.cli) ----


def check_seed_modules(group: Group) -> None:
    """UserError, one line, before any seed starts, if a seed's run dir names modules that
    rlkit imports only with --trust-modules (`rlkit.trust`, as for one run dir)."""
    from rlkit.training import read_run

    for seed in group.seeds:
        run_dir = group.run_dir(seed)
        if (run_dir / CONFIG_FILE).is_file():
            read_run(run_dir)


def run_command(args: argparse.Namespace) -> int:
    """`rlkit run ... --seeds S` and `rlkit run --resume GROUP_DIR`."""
    from rlkit.parallel import check_address, shutdown_ray

    if args.resume is not None:
        fixed = {
            "agent": "AGENT",
            "env": "--env",
            "config": "--config",
            "overrides": "--set",
            "steps": "--steps",
            "seed": "--seed",
            "seeds": "--seeds",
            "out_dir": "--out-dir",
            "name": "--name",
            "checkpoint_every": "--checkpoint-every",
            "keep_checkpoints": "--keep-checkpoints",
            "log_every": "--log-every",
            "workers": "--workers",
            "final_episodes": "--final-episodes",
            "checkpoint": "--checkpoint",
        }
        given = [option for key, option in fixed.items() if getattr(args, key, None)]
        if given:
            raise UserError(
                f"--resume continues a group with its saved config and seeds; {given[0]} "
                "cannot be changed (only --wandb and --address can)"
            )
        group = read_group(args.resume)
        if not args.trust_modules:
            check_seed_modules(group)
        if args.address is not None:
            check_address(args.address)
        address = args.address or group.record.get("address")
        _say(f"resuming group {group.directory}")
    else:
        if args.seed is not None:
            raise UserError("give --seed for one run or --seeds for a group, not both")
        if args.checkpoint is not None or args.trust_modules:
            flag = "--checkpoint" if args.checkpoint is not None else "--trust-modules"
            raise UserError(f"{flag} goes with --resume (a new group starts every seed afresh)")
        seeds = parse_seeds(args.seeds)
        flags = {
            "env": args.env,
            "steps": args.steps,
            "out_dir": args.out_dir,
            "wandb": args.wandb,
            "checkpoint_every": args.checkpoint_every,
            "keep_checkpoints": args.keep_checkpoints,
            "log_every": args.log_every,
            "workers": args.workers,
            "address": args.address,
        }
        group = new_group(
            args.agent,
            config=args.config,
            overrides=args.overrides,
            flags=flags,
            seeds=seeds,
            name=args.name,
            final_episodes=args.final_episodes or FINAL_EPISODES,
        )
        address = args.address
        where = "one after another here" if group.parallel == "inprocess" else "on Ray"
        _say(
            f"group {group.name}: {group.agent} on {group.env}, {group.steps} steps, "
            f"seeds {args.seeds} ({len(seeds)} runs, {where}) -> {group.directory}"
        )
    try:
        result = run_group(
            group,
            address=address,
            wandb=args.wandb if args.resume else None,
            trust_modules=args.trust_modules if args.resume else True,
        )
    finally:
        shutdown_ray()
    print(format_summary(summary(group)))
    if result.interrupted:
        _say(f"group interrupted; continue with: rlkit run --resume {group.directory}")
        return EXIT_INTERRUPTED
    _say(f"group dir {group.directory}; summary {group.directory / SUMMARY_FILE}")
    if result.failed:
        _say(f"{len(result.failed)} of {len(group.seeds)} seeds failed")
        return EXIT_FAILED
    return 0


def eval_command(args: argparse.Namespace) -> int:
    """`rlkit eval GROUP_DIR [--episodes N] [--json]`."""
    for flag, value in (("--checkpoint", args.checkpoint), ("--seed", args.seed)):
        if value is not None:
            raise UserError(f"{flag} is for one run; a group evaluates each seed's newest")
    if args.video:
        raise UserError("--video is for one run; give one of the group's seed-<n> dirs")
    group = read_group(args.run_dir)
    if not args.trust_modules:
        check_seed_modules(group)
    data = evaluate_group(
        group, args.episodes or group.final_episodes, trust_modules=args.trust_modules
    )
    print(json.dumps(data) if args.json else format_summary(data))
    return 0
