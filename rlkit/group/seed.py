"""One seed, wherever it runs: what its run needs (`SeedJob`), how it ended
(`SeedOutcome`), the run itself (`train_seed`) and the Ray actor that runs it in its own
process (`SeedRunner`). Ray pickles these by module path: they live here, importable."""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlkit import checkpoint
from rlkit.config import load_yaml
from rlkit.errors import UserError, shorten
from rlkit.group.groupdir import FAILED, FINISHED, INTERRUPTED, SEED_PREFIX
from rlkit.output import send_output_to
from rlkit.rundir import CONFIG_FILE
from rlkit.workers import drop_from_path, learner_directory


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
    # the driver's current directory, dropped from a Ray seed process's import path when
    # the driver's own imports do not look there (rlkit.workers.WorkerSetup.start)
    drop_from_path: str | None = field(default_factory=lambda: learner_directory())


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
        newest = checkpoint.newest_step(run_dir / "checkpoints")
        found = newest is not None
        step = newest or 0
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
        if job.drop_from_path is not None:
            drop_from_path(job.drop_from_path)  # import as the driver did
        return train_seed(job, self._stop)

    def stop(self) -> None:
        self._stop.set()
