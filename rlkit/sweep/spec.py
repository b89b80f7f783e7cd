"""The sweep file: read, validated whole before Ray starts, and its sweep dir made or read.

Each search candidate (every listed value, both bounds of every range) is resolved as the
trial that gets it will resolve its run (`rlkit.resolve`: defaults < the agent's preset
for the env's spaces < the run block < the searched value), so the sweep refuses what
its runs would refuse, and its steps are the steps its runs will train for.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt

from rlkit.agent import load_agent
from rlkit.config import StrictModel, assign, dump_yaml, load_yaml, validate
from rlkit.errors import UserError, shorten, suggest
from rlkit.logger import resolve_wandb_mode
from rlkit.resolve import Layer, resolve
from rlkit.rundir import write_text
from rlkit.settings import FOLDER_NAME_RULE, RunSettings, WandbMode, is_folder_name
from rlkit.sweep.space import SET_BY_SWEEP, Space, search_space

SWEEP_FILE = "sweep.yaml"
TUNE_DIR = "tune"
TRIALS_DIR = "trials"
TIME_ATTR = "step"  # Tune's time attribute: environment steps


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
class Sweep:
    """A validated sweep: the spec, its parsed search space, and where it lives."""

    spec: SweepSpec
    name: str
    directory: Path
    agent: str
    run: dict[str, Any]  # the run block, less agent
    space: dict[str, Space]
    steps: int  # the most steps a trial trains for (ASHA's max_t)
    wandb: str

    @property
    def trials_dir(self) -> Path:
        return self.directory / TRIALS_DIR

    def trial_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """The run block with one trial's searched values put in place (nested)."""
        data = copy.deepcopy(self.run)
        for key, value in values.items():
            assign(data, key, plain(value))
        return data

    def trial_run(self, values: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The run settings and hyperparameters trial `name` trains with: its config and
        what the sweep sets for every trial (where it lives, W&B, no progress bar)."""
        config = self.trial_config(values)
        hparams = config.pop("hparams")
        for_trials = {
            "out_dir": str(self.trials_dir),
            "name": name,
            "wandb": self.wandb,
            "wandb_group": self.name,
            "progress": False,
        }
        return {**config, **for_trials}, hparams


def plain(value: Any) -> Any:
    """numpy scalars (from Tune's samplers) as Python values, for YAML and pydantic."""
    return value.item() if hasattr(value, "item") else value


def describe(values: dict[str, Any]) -> str:
    """A trial's searched values, `key=value, ...`, floats to 4 significant digits."""
    return ", ".join(f"{key}={format_value(value)}" for key, value in values.items())


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(plain(value))


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
    if name is not None:
        check_name(name, "--name")
    elif spec.name is not None:
        check_name(spec.name, f"{where}: name")
    updates: dict[str, Any] = {"name": next(n for n in (name, spec.name, Path(path).stem) if n)}
    if wandb is not None:
        updates["wandb"] = wandb
    if max_concurrent is not None:
        updates["max_concurrent"] = max_concurrent
    spec = spec.model_copy(update=updates)
    return check_sweep(spec, (Path(out_dir) / str(spec.name)).absolute(), where)


def check_name(name: str, origin: str) -> None:
    """A sweep name is one folder name: the sweep dir must stay inside --out-dir."""
    if not is_folder_name(name):
        raise UserError(
            f"{origin} '{shorten(name)}' is not a folder name inside --out-dir; accepted: "
            f"{FOLDER_NAME_RULE}"
        )


def check_sweep(spec: SweepSpec, directory: Path, where: str) -> Sweep:
    """The validated sweep of `spec`, living in `directory`; `where` names it in errors."""
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
    run.setdefault("threads", 1)  # trials run side by side: one torch thread each
    if not isinstance(run.get("hparams", {}), dict):
        raise UserError(f"{where}: run.hparams must be a mapping of hyperparameters")
    run.setdefault("hparams", {})

    space: dict[str, Space] = {}
    for key, raw in spec.search.items():
        space[key] = search_space(key, raw, agent_cls, agent_name, where)
    if not space:
        raise UserError(f"{where}: search is empty; give at least one key: {{choice: [...]}}")
    sweep = Sweep(
        spec=spec,
        name=str(spec.name),
        directory=directory,
        agent=agent_name,
        run=run,
        space=space,
        steps=0,
        wandb=resolve_wandb_mode(spec.wandb),
    )

    def resolve_trial(values: dict[str, Any], part: str) -> RunSettings:
        """Resolved as the trial with these values will resolve its run."""
        settings, hparams = sweep.trial_run(values, "trial-00000")
        layer = Layer.given(f"{where}: {part}", settings, hparams)
        resolved: RunSettings = resolve(agent_name, agent_cls, [layer]).settings
        return resolved

    settings = resolve_trial({}, "run")
    steps = [settings.steps]
    for key, searched in space.items():
        for value in searched.candidates():
            steps.append(resolve_trial({key: value}, f"search {key}").steps)

    accepted = ["episode/return", "episode/length"]
    if settings.eval_every is not None:
        accepted += ["eval/return", "eval/length"]
    if spec.metric not in accepted:
        extra = "" if settings.eval_every else " (eval/return with run.eval_every set)"
        raise UserError(
            f"{where}: metric '{shorten(spec.metric)}' is not reported by every {agent_name} run"
            f"{suggest(spec.metric, accepted)}; accepted: {', '.join(accepted)}{extra}"
        )
    grace = spec.scheduler.grace_period
    if spec.scheduler.kind == "asha" and grace is not None and grace >= max(steps):
        raise UserError(
            f"{where}: scheduler.grace_period {grace} must be below the "
            f"trial's steps ({max(steps)}); accepted: 1 to {max(steps) - 1}"
        )
    return dataclasses.replace(sweep, steps=max(steps))


def write_new_sweep_dir(sweep: Sweep) -> None:
    """Create the sweep dir with `sweep.yaml`; an existing one is an error (use --resume)."""
    exists = UserError(
        f"sweep dir '{sweep.directory}' already exists; continue it with "
        f"`rlkit sweep --resume {sweep.directory}` or choose another --name"
    )
    if sweep.directory.exists():
        raise exists
    try:
        sweep.directory.parent.mkdir(parents=True, exist_ok=True)
        sweep.directory.mkdir()  # not exist_ok: a dir made meanwhile is someone else's
        sweep.trials_dir.mkdir()
    except FileExistsError:
        raise exists from None
    except OSError as error:
        raise UserError(
            f"--out-dir: cannot create '{sweep.directory}' ({error.strerror})"
        ) from None
    resolved = {**sweep.spec.model_dump(exclude_none=True), "wandb": sweep.wandb}
    write_text(sweep.directory / SWEEP_FILE, dump_yaml(resolved))
