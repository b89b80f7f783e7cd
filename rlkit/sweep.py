"""Hyperparameter sweeps on Ray Tune: `rlkit sweep FILE` and `rlkit sweep --resume DIR`.

One YAML file describes a sweep (docs/sweep.md):

    name: dqn_cartpole                  # default: the file's stem
    run:                                # a run config, as `rlkit run --config` reads it
      agent: dqn
      env: CartPole-v1
      steps: 30000
      hparams: {gamma: 0.99}
    search:                             # run settings or `hparams.<name>`, dotted
      hparams.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
      seed: {grid: [0, 1]}
    metric: episode/return
    mode: max
    num_samples: 4
    scheduler: {kind: asha, grace_period: 5000}

Everything is validated before Ray starts. Each trial is a normal rlkit run
(`rlkit.training.train`) in a Tune trial actor, in `<sweep dir>/trials/<trial>/`, with
its own W&B run in the group named after the sweep. The run's logger hands Tune the
mean of each metric since its previous report, every `log_every` environment steps, so
ASHA (time attribute: environment steps) can stop weak trials; a stopped trial ends as
an interrupted run does (final checkpoint, W&B closed). A retried or resumed trial
continues from its run's newest checkpoint.

The sweep dir `<out_dir>/<name>/` holds `sweep.yaml` (the resolved sweep), `tune/`
(Tune's experiment state, for `--resume`), `trials/`, and at the end `best.yaml` (the
best trial's config, for `rlkit run --config`) and `curves.png`.
"""

from __future__ import annotations

import copy
import math
import os
import queue
import shutil
import sys
import threading
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PositiveInt

from rlkit import checkpoint
from rlkit.agent import load_agent
from rlkit.config import StrictModel, dump_yaml, load_yaml, merge, validate
from rlkit.errors import UserError, suggest
from rlkit.logger import METRICS_FILE, read_metrics, resolve_wandb_mode
from rlkit.settings import RunSettings, WandbMode

SWEEP_FILE = "sweep.yaml"
TUNE_DIR = "tune"
TRIALS_DIR = "trials"
BEST_FILE = "best.yaml"
CURVES_FILE = "curves.png"
TIME_ATTR = "step"  # Tune's time attribute: environment steps
# Run settings that the sweep sets for each trial itself.
SET_BY_SWEEP = ("name", "out_dir", "wandb", "wandb_group", "progress")
ACCEPTED_SPACES = (
    "{choice: [v, ...]}, {grid: [v, ...]}, {uniform: [low, high]}, "
    "{loguniform: [low, high]} with 0 < low < high, {randint: [low, high]} (high excluded)"
)


class Scheduler(StrictModel):
    """Trial scheduler: ASHA (Li et al. 2020) stops weak trials early; FIFO runs all."""

    kind: Literal["asha", "fifo"] = Field(default="asha", description="asha or fifo")
    grace_period: PositiveInt | None = Field(
        default=None,
        description="environment steps every trial runs before ASHA may stop it "
        "(default: a tenth of the steps)",
    )
    reduction_factor: float = Field(
        default=3.0, gt=1.0, description="ASHA keeps the best 1/reduction_factor at each rung"
    )


class Resources(StrictModel):
    cpu: float = Field(default=1.0, gt=0.0, description="CPUs reserved for each trial")
    gpu: float = Field(default=0.0, ge=0.0, description="GPUs reserved for each trial")


class SweepSpec(StrictModel):
    """A sweep file, as written; `load_sweep` checks the parts that need the agent."""

    name: str | None = Field(default=None, description="sweep name (default: the file's stem)")
    run: dict[str, Any] = Field(description="the fixed run config (agent, env, ..., hparams)")
    search: dict[str, Any] = Field(description="setting name -> search space")
    metric: str = Field(default="episode/return", description="metric to optimise")
    mode: Literal["max", "min"] = Field(default="max", description="max or min")
    num_samples: PositiveInt = Field(
        default=1, description="samples of the search space (each grid point num_samples times)"
    )
    max_concurrent: PositiveInt | None = Field(
        default=None, description="trials running at once (default: as resources allow)"
    )
    resources: Resources = Field(default_factory=Resources, description="per trial")
    max_failures: int = Field(default=1, ge=0, description="retries of a failing trial")
    scheduler: Scheduler = Field(default_factory=Scheduler, description="asha or fifo")
    wandb: WandbMode | None = Field(
        default=None, description="W&B mode of the trials (default: $WANDB_MODE, else offline)"
    )
    seed: int = Field(default=0, ge=0, description="seed of the search's random sampling")


@dataclass(frozen=True)
class Space:
    """One search space: `kind` and its arguments, as written in the file."""

    kind: str
    values: list[Any]

    def candidates(self) -> list[Any]:
        """Values to validate before the sweep: every listed value, or the bounds."""
        if self.kind == "randint":
            return [self.values[0], self.values[1] - 1]
        return list(self.values)

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(self.values)
        if self.kind == "grid":
            return tune.grid_search(self.values)
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        return tune.randint(*self.values)


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: the spec, its parsed search space, and where it lives."""

    spec: SweepSpec
    name: str
    directory: Path
    agent: str
    run: dict[str, Any]  # the run block, less agent
    space: dict[str, Space]
    steps: int
    wandb: str

    @property
    def trials_dir(self) -> Path:
        return self.directory / TRIALS_DIR

    def trial_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """The run block with one trial's searched values put in place (nested)."""
        data = copy.deepcopy(self.run)
        for key, value in values.items():
            _assign(data, key, _plain(value))
        return data


def _plain(value: Any) -> Any:
    """numpy scalars (from Tune's samplers) as Python values, for YAML and pydantic."""
    return value.item() if hasattr(value, "item") else value


def _assign(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


# --------------------------------------------------------------------------- validation


def load_sweep(
    path: str | Path,
    *,
    out_dir: str | Path = "sweeps",
    name: str | None = None,
    wandb: str | None = None,
    max_concurrent: int | None = None,
) -> Sweep:
    """Read and validate a sweep file; nothing is written, Ray is not started."""
    where = f"sweep '{path}'"
    data = load_yaml(path)
    spec: SweepSpec = validate(SweepSpec, data, {key: where for key in data}, "a sweep")
    updates: dict[str, Any] = {"name": name or spec.name or Path(path).stem}
    if wandb is not None:
        updates["wandb"] = wandb
    if max_concurrent is not None:
        updates["max_concurrent"] = max_concurrent
    spec = spec.model_copy(update=updates)
    return _check(spec, (Path(out_dir) / str(spec.name)).absolute(), where)


def _check(spec: SweepSpec, directory: Path, where: str) -> Sweep:
    run = dict(spec.run)
    agent_name = run.pop("agent", None)
    if not isinstance(agent_name, str):
        raise UserError(f"{where}: run.agent is required; name an agent (see `rlkit list agents`)")
    agent_cls = load_agent(agent_name)
    for key in SET_BY_SWEEP:
        if key in run:
            raise UserError(
                f"{where}: run.{key} is set by the sweep for each trial; remove it "
                "(use --out-dir, --name and --wandb of `rlkit sweep`)"
            )
    if "env" not in run:
        raise UserError(f"{where}: run.env is required; give a Gymnasium id or short name")
    run.setdefault("steps", agent_cls.default_steps)
    run.setdefault("threads", 1)  # trials run side by side: one torch thread each
    if not isinstance(run.get("hparams", {}), dict):
        raise UserError(f"{where}: run.hparams must be a mapping of hyperparameters")
    run.setdefault("hparams", {})

    space: dict[str, Space] = {}
    for key, raw in spec.search.items():
        _check_key(key, agent_cls, agent_name, where)
        space[key] = _parse_space(key, raw, where)
    if not space:
        raise UserError(f"{where}: search is empty; give at least one key: {{choice: [...]}}")

    _validate_run(run, agent_cls, agent_name, where, "run")
    for key, searched in space.items():
        for value in searched.candidates():
            trial = copy.deepcopy(run)
            _assign(trial, key, value)
            _validate_run(trial, agent_cls, agent_name, where, f"search {key}")

    settings = validate(RunSettings, {**_settings_part(run), "agent": agent_name}, {}, where)
    accepted = ["episode/return", "episode/length"]
    if settings.eval_every is not None:
        accepted += ["eval/return", "eval/length"]
    if spec.metric not in accepted:
        extra = "" if settings.eval_every else " (eval/return with run.eval_every set)"
        raise UserError(
            f"{where}: metric '{spec.metric}' is not reported by every {agent_name} run"
            f"{suggest(spec.metric, accepted)}; accepted: {', '.join(accepted)}{extra}"
        )
    steps = max([settings.steps, *[int(v) for v in _steps_candidates(space)]])
    grace = spec.scheduler.grace_period
    if spec.scheduler.kind == "asha" and grace is not None and grace >= steps:
        raise UserError(
            f"{where}: scheduler.grace_period {grace} must be below the "
            f"trial's steps ({steps}); accepted: 1 to {steps - 1}"
        )
    _check_env(settings, agent_cls)
    return Sweep(
        spec=spec,
        name=str(spec.name),
        directory=directory,
        agent=agent_name,
        run=run,
        space=space,
        steps=steps,
        wandb=resolve_wandb_mode(spec.wandb),
    )


def _steps_candidates(space: dict[str, Space]) -> list[Any]:
    return space["steps"].candidates() if "steps" in space else []


def _settings_part(run: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in run.items() if key != "hparams"}


def _validate_run(
    run: dict[str, Any], agent_cls: Any, agent_name: str, where: str, part: str
) -> None:
    origins = {key: f"{where}: {part}" for key in run}
    validate(RunSettings, {**_settings_part(run), "agent": agent_name}, origins, "run settings")
    hparams = run.get("hparams", {})
    origins = {key: f"{where}: {part}" for key in hparams}
    validate(agent_cls.Config, merge(agent_cls.Config().model_dump(), hparams), origins, agent_name)


def _check_key(key: str, agent_cls: Any, agent_name: str, where: str) -> None:
    """A search key names a run setting or `hparams.<hyperparameter>`, nested with dots."""
    parts = key.split(".")
    run_names = [name for name in RunSettings.model_fields if name not in (*SET_BY_SWEEP, "agent")]
    model: type[BaseModel]
    if parts[0] == "hparams" and len(parts) > 1:
        model, path, prefix = agent_cls.Config, parts[1:], "hparams."
    elif parts[0] in run_names:
        model, path, prefix = RunSettings, parts, ""
    else:
        names = [*run_names, *(f"hparams.{name}" for name in agent_cls.Config.model_fields)]
        raise UserError(
            f"{where}: search key '{key}' is neither a run setting nor a {agent_name} "
            f"hyperparameter{suggest(key, names)}; accepted: {', '.join(names)}"
        )
    for depth, part in enumerate(path):
        fields = model.model_fields
        if part not in fields:
            names = [f"{prefix}{name}" for name in fields]
            raise UserError(
                f"{where}: search key '{key}' is unknown{suggest(prefix + part, names)}; "
                f"accepted: {', '.join(names)}"
            )
        annotation = fields[part].annotation
        nested = _nested_model(annotation)
        if depth == len(path) - 1 or (nested is None and _is_mapping(annotation)):
            return
        if nested is None:
            raise UserError(
                f"{where}: search key '{key}': {prefix}{part} is a single value; "
                f"accepted: {prefix}{part} itself"
            )
        model, prefix = nested, f"{prefix}{part}."


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return annotation is dict or origin is dict or annotation is Any


def _parse_space(key: str, raw: Any, where: str) -> Space:
    def malformed(problem: str) -> UserError:
        return UserError(
            f"{where}: search {key}: {raw!r} is malformed ({problem}); accepted: {ACCEPTED_SPACES}"
        )

    if not isinstance(raw, dict) or len(raw) != 1:
        raise malformed("give one kind with its values")
    ((kind, values),) = raw.items()
    if kind not in ("choice", "grid", "uniform", "loguniform", "randint"):
        raise malformed(f"unknown kind '{kind}'{suggest(str(kind), ['choice', 'grid'])}")
    if not isinstance(values, list) or not values:
        raise malformed(f"{kind} needs a non-empty list")
    if kind in ("choice", "grid"):
        return Space(kind, values)
    if len(values) != 2:
        raise malformed(f"{kind} needs [low, high], got {len(values)} values")
    low, high = values
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numbers or not all(math.isfinite(v) for v in values):
        raise malformed(f"{kind} bounds must be numbers")
    if kind == "randint" and not all(isinstance(v, int) for v in values):
        raise malformed("randint bounds must be integers")
    if not low < high:
        raise malformed(f"{kind} needs low < high")
    if kind == "loguniform" and low <= 0:
        raise malformed("loguniform needs 0 < low")
    return Space(kind, [low, high])


def _check_env(settings: RunSettings, agent_cls: Any) -> None:
    """The env exists and the agent accepts its spaces (the first trial would fail anyway)."""
    from rlkit.agent import check_spaces
    from rlkit.environments import make_env, resolve_env_id

    env_id = resolve_env_id(settings.env)
    env = make_env(settings.env, seed=0, env_kwargs=settings.env_kwargs, atari=settings.atari)
    try:
        check_spaces(settings.agent, agent_cls, env_id, env.observation_space, env.action_space)
    finally:
        env.close()


def write_new_sweep_dir(sweep: Sweep) -> None:
    """Create the sweep dir with `sweep.yaml`; an existing one is an error (use --resume)."""
    if sweep.directory.exists():
        raise UserError(
            f"sweep dir '{sweep.directory}' already exists; continue it with "
            f"`rlkit sweep --resume {sweep.directory}` or choose another --name"
        )
    try:
        sweep.trials_dir.mkdir(parents=True)
    except OSError as error:
        raise UserError(
            f"--out-dir: cannot create '{sweep.directory}' ({error.strerror})"
        ) from None
    resolved = {**sweep.spec.model_dump(exclude_none=True), "wandb": sweep.wandb}
    (sweep.directory / SWEEP_FILE).write_text(dump_yaml(resolved))


def read_sweep_dir(directory: str | Path, wandb: str | None = None) -> Sweep:
    """The sweep of an existing sweep dir (for --resume)."""
    path = Path(directory)
    if not (path / SWEEP_FILE).is_file() or not (path / TUNE_DIR).is_dir():
        raise UserError(
            f"--resume {directory}: not a sweep dir (no {SWEEP_FILE} and {TUNE_DIR}/); "
            "give a folder made by `rlkit sweep`"
        )
    where = f"sweep '{path / SWEEP_FILE}'"
    data = load_yaml(path / SWEEP_FILE)
    path = path.absolute()
    spec: SweepSpec = validate(SweepSpec, data, {}, "a sweep")
    if wandb is not None:
        spec = spec.model_copy(update={"wandb": wandb})
    return _check(spec, path, where)


# --------------------------------------------------------------------------- trials


def trial_name(trial: Any) -> str:
    """Tune's trial name and dir name: trial-<index>, stable across retries and --resume."""
    return f"trial-{str(trial.trial_id).rsplit('_', 1)[-1]}"


def run_trial(
    sweep: Sweep,
    values: dict[str, Any],
    name: str,
    *,
    report: Any,
    stop: threading.Event,
) -> int | None:
    """Train one trial in `<sweep>/trials/<name>`; returns its step count, or None if the
    run had already finished (a resumed sweep)."""
    from rlkit.training import train

    run_dir = sweep.trials_dir / name
    if run_dir.exists():
        found = checkpoint.list_checkpoints(run_dir / "checkpoints")
        if found:
            if int(checkpoint.load(found[-1])["step"]) >= sweep.trial_config(values)["steps"]:
                return None
            result = train(
                None, resume=run_dir, wandb=sweep.wandb, progress=False, report=report, stop=stop
            )
            return result.step
        shutil.rmtree(run_dir)  # an attempt that failed before its first checkpoint
    config = sweep.trial_config(values)
    hparams = config.pop("hparams")
    result = train(
        sweep.agent,
        hparams=hparams,
        out_dir=str(sweep.trials_dir),
        name=name,
        wandb=sweep.wandb,
        wandb_group=sweep.name,
        progress=False,
        report=report,
        stop=stop,
        **config,
    )
    return result.step


def _final_metrics(run_dir: Path) -> dict[str, float]:
    """Means over the last `log_every` steps of a finished run's metrics (for --resume)."""
    rows = read_metrics(run_dir / METRICS_FILE)
    config = load_yaml(run_dir / "config.yaml")
    last = max((row["step"] for row in rows), default=0)
    window = [row for row in rows if row["step"] > last - int(config["log_every"])]
    names = {key for row in window for key in row if key.startswith(("episode/", "eval/"))}
    metrics = {}
    for metric in names:
        values = [row[metric] for row in window if metric in row]
        metrics[metric] = sum(values) / len(values)
    metrics[TIME_ATTR] = float(last)
    return metrics


def _trainable(sweep: Sweep) -> Any:
    """The Tune trainable: a class whose `step()` hands Tune the run's next report.

    The run itself trains in a thread of the trial actor; `cleanup()` (ASHA stopping the
    trial, or the sweep ending) asks it to stop and waits, so the run ends normally.
    """
    from ray import tune

    class SweepTrial(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            self._reports: queue.Queue[tuple[str, Any]] = queue.Queue()
            self._stop = threading.Event()
            self._last: dict[str, float] = {}
            self._thread = threading.Thread(
                target=self._train, args=(dict(config),), name="rlkit-trial", daemon=True
            )
            self._thread.start()

        def _train(self, values: dict[str, Any]) -> None:
            def report(step: int, metrics: dict[str, float]) -> None:
                self._reports.put(("report", {**metrics, TIME_ATTR: step}))

            try:
                step = run_trial(sweep, values, self.trial_name, report=report, stop=self._stop)
                if step is None:
                    self._reports.put(
                        ("report", _final_metrics(sweep.trials_dir / self.trial_name))
                    )
                self._reports.put(("done", None))
            except BaseException as error:  # handed to Tune, which retries the trial
                self._reports.put(("error", error))

        def step(self) -> dict[str, Any]:
            while True:
                kind, payload = self._reports.get()
                if kind == "error":
                    raise payload
                if kind == "done":
                    return {**self._last, "done": True}
                if sweep.spec.metric in payload:
                    self._last = payload
                    return dict(payload)

        def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
            # the run keeps its own checkpoints; a restored trial resumes from them
            return {"run_dir": str(sweep.trials_dir / self.trial_name)}

        def load_checkpoint(self, checkpoint: dict[str, Any] | None) -> None:
            pass

        def cleanup(self) -> None:
            self._stop.set()
            self._thread.join(timeout=300)

    resources = {"cpu": sweep.spec.resources.cpu, "gpu": sweep.spec.resources.gpu}
    return tune.with_resources(SweepTrial, resources)


def _progress_callback() -> Any:
    from ray import tune

    class Progress(tune.Callback):
        """One line per trial event on stderr (Tune's own output is off)."""

        def on_trial_start(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(f"rlkit: {trial} started: {_searched(trial.config)}", file=sys.stderr)

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(
                f"rlkit: {trial} ended at step {trial.last_result.get(TIME_ATTR)}", file=sys.stderr
            )

        def on_trial_recover(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(f"rlkit: {trial} failed; retrying", file=sys.stderr)

        def on_trial_error(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(f"rlkit: {trial} failed (see {trial.error_file})", file=sys.stderr)

    return Progress()


def _searched(config: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_format(value)}" for key, value in config.items())


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(_plain(value))


# --------------------------------------------------------------------------- the sweep


@dataclass(frozen=True)
class TrialRow:
    name: str
    config: dict[str, Any]
    metric: float | None
    step: int
    status: str  # finished, stopped early, failed, not finished
    failures: int


@dataclass(frozen=True)
class SweepResult:
    directory: Path
    trials: list[TrialRow]
    best: TrialRow | None
    interrupted: bool


def run_sweep(sweep: Sweep, *, address: str | None = None, resume: bool = False) -> SweepResult:
    """Run (or with `resume`, continue) a validated sweep; Ray is started if needed.

    The sweep dir must exist already (`write_new_sweep_dir`). Returns the trials, the
    best one, and whether the sweep was interrupted (Ctrl-C) before all trials ended.
    """
    from ray import tune

    from rlkit.parallel import init_ray

    init_ray(address)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's banners off; rlkit prints its own
    tune_dir = (sweep.directory / TUNE_DIR).resolve()
    trainable = _trainable(sweep)
    if resume:
        if not tune.Tuner.can_restore(str(tune_dir)):
            raise UserError(
                f"--resume {sweep.directory}: Tune saved no state there yet; start the sweep "
                "again in a new dir"
            )
        tuner = tune.Tuner.restore(
            str(tune_dir), trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={key: space.to_tune() for key, space in sweep.space.items()},
            tune_config=tune.TuneConfig(
                metric=sweep.spec.metric,
                mode=sweep.spec.mode,
                num_samples=sweep.spec.num_samples,
                scheduler=_scheduler(sweep),
                # the limit goes to the generator: Tune ignores max_concurrent_trials
                # when given a search algorithm of this kind
                search_alg=tune.search.BasicVariantGenerator(
                    random_state=sweep.spec.seed, max_concurrent=sweep.spec.max_concurrent or 0
                ),
                trial_name_creator=trial_name,
                trial_dirname_creator=trial_name,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=str(tune_dir.parent),
                failure_config=tune.FailureConfig(max_failures=sweep.spec.max_failures),
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
                callbacks=[_progress_callback()],
                verbose=0,
            ),
        )
    tuner.fit()
    trials = _trial_rows(sweep, tune_dir)
    best = _best(trials, sweep.spec.mode)
    interrupted = any(row.status == "not finished" for row in trials)
    if best is not None:
        write_best(sweep, best)
    plot_trials(sweep, trials)
    return SweepResult(sweep.directory, trials, best, interrupted)


def _scheduler(sweep: Sweep) -> Any:
    if sweep.spec.scheduler.kind == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler

    grace = sweep.spec.scheduler.grace_period or max(1, sweep.steps // 10)
    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=sweep.steps,
        grace_period=grace,
        reduction_factor=sweep.spec.scheduler.reduction_factor,
    )


def _trial_rows(sweep: Sweep, tune_dir: Path) -> list[TrialRow]:
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(tune_dir))
    rows = []
    for trial in sorted(analysis.trials, key=str):
        result = trial.last_result or {}
        step = int(result.get(TIME_ATTR, 0))
        value = result.get(sweep.spec.metric)
        steps = sweep.trial_config(trial.config)["steps"]
        if trial.status == "ERROR":
            status = "failed"
        elif trial.status != "TERMINATED":
            status = "not finished"
        elif step >= steps:
            status = "finished"
        else:
            status = "stopped early"
        rows.append(
            TrialRow(
                name=str(trial),
                config={key: _plain(v) for key, v in trial.config.items()},
                metric=None if value is None else float(value),
                step=step,
                status=status,
                failures=int(trial.num_failures),
            )
        )
    return rows


def _best(trials: list[TrialRow], mode: str) -> TrialRow | None:
    """The best finished trial by its last reported metric (any trial if none finished)."""
    scored = [row for row in trials if row.metric is not None and math.isfinite(row.metric)]
    finished = [row for row in scored if row.status == "finished"] or scored
    if not finished:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(finished, key=lambda row: sign * (row.metric or 0.0))


def write_best(sweep: Sweep, best: TrialRow) -> Path:
    """`best.yaml`: the best trial's resolved config, for `rlkit run --config`.

    On a cluster without a shared file system the trial's run dir may be on another
    node; then the sweep's run block with the trial's values stands in for it.
    """
    resolved = sweep.trials_dir / best.name / "config.yaml"
    if resolved.is_file():
        config = load_yaml(resolved)
        reset = {"name": None, "out_dir": "runs", "wandb_group": None, "threads": None}
        config.update({**reset, "progress": True})
    else:
        config = {"agent": sweep.agent, **sweep.trial_config(best.config)}
        config.pop("threads", None)
    header = (
        f"# Best trial of sweep '{sweep.name}': {best.name}, {sweep.spec.metric} "
        f"{best.metric:.6g} ({sweep.spec.mode}) at step {best.step}.\n"
        f"# Searched: {_searched(best.config)}\n"
        f"# Train it: rlkit run --config {sweep.directory / BEST_FILE}\n"
    )
    path = sweep.directory / BEST_FILE
    path.write_text(header + dump_yaml(config))
    return path


def plot_trials(sweep: Sweep, trials: list[TrialRow]) -> Path | None:
    """`curves.png`: every trial's curve of the sweep's metric."""
    from rlkit.plot import plot_runs

    run_dirs = []
    for row in trials:
        metrics = sweep.trials_dir / row.name / METRICS_FILE
        if metrics.is_file() and any(sweep.spec.metric in r for r in read_metrics(metrics)):
            run_dirs.append(sweep.trials_dir / row.name)
    if not run_dirs:
        return None
    return plot_runs(run_dirs, sweep.directory / CURVES_FILE, metric=sweep.spec.metric, smooth=None)


def format_table(sweep: Sweep, result: SweepResult) -> str:
    """The trials as a text table: name, searched values, metric, steps, status."""
    keys = list(sweep.space)
    header = ["trial", *keys, sweep.spec.metric, "steps", "status"]
    lines = []
    for row in result.trials:
        status = row.status + (f" (retried {row.failures}x)" if row.failures else "")
        metric = "-" if row.metric is None else f"{row.metric:.4g}"
        best = " *" if result.best is not None and row.name == result.best.name else ""
        values = [_format(row.config.get(key, "")) for key in keys]
        lines.append([row.name + best, *values, metric, str(row.step), status])
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        for cells in [header, *lines]
    ]
    return "\n".join(line.rstrip() for line in text)
