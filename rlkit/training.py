"""One run, top to bottom: config -> environment -> agent -> logger -> checkpoints.

`train()` is what `rlkit run` and `rlkit.train()` call:

1. resolve the configuration (`rlkit.resolve`: defaults < the agent's preset for the
   env's spaces < YAML < flags < `--set`) and validate it;
2. make the seeded environment and let the agent refuse spaces it cannot handle,
   before anything is written (both inside the resolution, which hands over the env);
3. create the run directory: `config.yaml` (resolved config), `run.json` (what ran);
4. build the agent and hand it a `Run`: the env, the logger, checkpointing and a stop
   flag that Ctrl-C (SIGINT) or SIGTERM sets;
5. `agent.learn(steps, run)`; a final checkpoint; close W&B and the metrics file.

`--resume <run-dir>` restores the agent, the env's RNG stream and the step count from
the newest checkpoint, drops metric rows logged after it, and continues.

The pieces beside it: `rlkit.session` (one training session: logger, `Run`, stop
handlers, the final checkpoint), `rlkit.resume` (`--resume`) and `rlkit.readback`
(a run dir read back: its config, a checkpoint, `load`, `evaluate_run`).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

from rlkit import checkpoint
from rlkit.config import dump_yaml
from rlkit.errors import UserError
from rlkit.logger import METRICS_FILE, Report
from rlkit.parallel import check_address
from rlkit.pool import check_worker_count
from rlkit.readback import LoadedRun, evaluate_run, load, read_run
from rlkit.resolve import Layer, chosen_agent, flags_layer, overrides_layer, resolve
from rlkit.resume import RESUME_MAY_CHANGE, _resume
from rlkit.run import CHECKPOINT_DIR
from rlkit.rundir import (
    CONFIG_FILE,
    RECORD_FILE,
    RunLock,
    create_run_dir,
    run_record,
    write_text,
)
from rlkit.seeding import run_seeds
from rlkit.session import TrainResult, _execute, _Hooks
from rlkit.settings import RunSettings

# what callers import from here; each lives in the module named above
__all__ = [
    "RESUME_MAY_CHANGE",
    "LoadedRun",
    "TrainResult",
    "evaluate_run",
    "load",
    "read_run",
    "train",
]


def train(
    agent: str | None = None,
    *,
    config: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    hparams: dict[str, Any] | None = None,
    resume: str | Path | None = None,
    checkpoint_file: str | Path | None = None,
    trust_modules: bool = False,
    report: Report | None = None,
    stop: threading.Event | None = None,
    **flags: Any,
) -> TrainResult:
    """Train `agent` (see `rlkit run --help` for every setting).

    `flags` are run settings (env, steps, seed, out_dir, name, wandb, checkpoint_every,
    keep_checkpoints, log_every, progress, env_kwargs); `hparams` and `overrides`
    (`"key=value"` strings) set agent hyperparameters. With `resume`, only steps,
    wandb, progress and address (another Ray cluster, e.g. after the first one went
    away) may be given; it continues from `checkpoint_file` (one of the run's own
    checkpoints) or else from the newest checkpoint that loads. `trust_modules` lets a
    resumed run import modules its config names that rlkit would refuse
    (`rlkit.trust`).

    For callers that drive runs (a sweep's trials): `report(step, metrics)` is called at
    least every `log_every` steps and at the end with the recent metrics (see
    `rlkit.logger.Logger.report`); setting the `stop` event stops the run as Ctrl-C does
    (final checkpoint, W&B closed).
    """
    hooks = _Hooks(report=report, stop=stop)
    given = {key: value for key, value in flags.items() if value is not None}
    unknown = sorted(set(given) - set(RunSettings.model_fields))
    if unknown:
        raise UserError(
            f"unknown run setting '{unknown[0]}'; accepted: {', '.join(RunSettings.model_fields)}"
        )
    if resume is not None:
        return _resume(
            Path(resume),
            agent,
            config,
            overrides,
            hparams,
            given,
            hooks,
            checkpoint_file=checkpoint_file,
            trust_modules=trust_modules,
        )
    if checkpoint_file is not None:
        raise UserError(
            "--checkpoint goes with --resume RUN_DIR (which checkpoint to continue from); "
            "a new run starts from scratch"
        )

    # lowest first: the file, flags, hparams, --set
    agent_name, agent_cls, layers = chosen_agent(agent, config)
    layers += [
        flags_layer(given),
        Layer(hparams=dict(hparams or {})),
        overrides_layer(overrides, agent_cls),
    ]
    resolved = resolve(agent_name, agent_cls, layers, keep_env=True)
    settings, agent_config, env = resolved.settings, resolved.agent_config, resolved.env
    assert env is not None
    seeds = run_seeds(settings.seed)
    try:
        # more workers than this machine's pool holds: refused before anything starts
        check_worker_count(settings.workers, settings.pool, settings.address)
        if settings.address is not None and settings.pool == "ray":
            check_address(settings.address)  # an unreachable cluster fails before anything starts
        run_dir = create_run_dir(settings, resolved.env_id)
    except BaseException:
        env.close()
        raise
    lock = RunLock.acquire(run_dir)
    try:
        saved = {**settings.model_dump(), "hparams": agent_config.model_dump()}
        write_text(run_dir / CONFIG_FILE, dump_yaml(saved))
        write_text(run_dir / RECORD_FILE, json.dumps(run_record(seeds, saved), indent=2))
        try:
            learner = agent_cls(
                agent_config,
                observation_space=env.observation_space,
                action_space=env.action_space,
                seed=seeds["agent"],
            )
        except (MemoryError, RuntimeError) as error:
            if not isinstance(error, MemoryError) and "allocate memory" not in str(error):
                raise
            raise UserError(
                f"{agent_name}: its networks or tables do not fit in this machine's memory"
                f"{_asked(error)}; make them smaller (hidden layer widths, table or buffer "
                "sizes, --set)"
            ) from None
        return _execute(learner, settings, saved, run_dir, env, hooks=hooks)
    except (UserError, OSError) as error:
        # refused before anything was learned (e.g. a replay buffer too big for memory,
        # more workers than the machine holds): the run directory made a moment ago holds
        # nothing worth keeping
        if not _learned_anything(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(error, OSError):  # writing config.yaml or run.json: a full disk
            raise UserError(
                f"cannot write the run dir '{run_dir}' ({error.strerror}); "
                "give an --out-dir with space"
            ) from None
        raise
    finally:
        lock.release()


def _asked(error: BaseException) -> str:
    """' (N GB asked at once)' from an allocator's message, '' when it names no size."""
    import re

    found = re.search(r"allocate (\d+) bytes", str(error))
    return f" ({int(found.group(1)) / 1e9:.3g} GB asked at once)" if found else ""


def _learned_anything(run_dir: Path) -> bool:
    """The run dir holds a checkpoint or metric rows (a failed run keeps them)."""
    metrics = run_dir / METRICS_FILE
    return bool(checkpoint.list_checkpoints(run_dir / CHECKPOINT_DIR)) or (
        metrics.is_file() and metrics.stat().st_size > 0
    )
