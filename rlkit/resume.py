"""`--resume <run-dir>`: continue a run from its newest checkpoint that loads.

The agent, the env's RNG stream and the step count come back from the checkpoint (or
the one `--checkpoint` names); metric rows logged after it are dropped; newer
checkpoints that do not load, or that the chosen one passes over, are set aside, never
deleted. Only what does not change what the run learns may be given again
(`RESUME_MAY_CHANGE`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from rlkit.config import dump_yaml
from rlkit.environments import EnvFactory
from rlkit.errors import UserError, shorten
from rlkit.logger import METRICS_FILE, check_metrics, truncate_metrics
from rlkit.parallel import check_address
from rlkit.readback import _restore, _run_checkpoint, _short, read_run
from rlkit.rundir import CONFIG_FILE, RunLock, check_run_dir_links, write_text
from rlkit.seeding import run_seeds
from rlkit.session import TrainResult, _execute, _Hooks

# What `--resume` may change: none of them changes what the run learns.
RESUME_MAY_CHANGE = ("steps", "wandb", "progress", "address")


def _resume(
    run_dir: Path,
    agent: str | None,
    config: str | Path | None,
    overrides: list[str] | tuple[str, ...],
    hparams: dict[str, Any] | None,
    given: dict[str, Any],
    hooks: _Hooks,
    *,
    checkpoint_file: str | Path | None,
    trust_modules: bool,
) -> TrainResult:
    changed = [f"--{key.replace('_', '-')}" for key in given if key not in RESUME_MAY_CHANGE]
    if config is not None:
        changed.append("--config")
    if overrides or hparams:
        changed.append("--set")
    if changed:
        raise UserError(
            f"--resume continues a run with its saved config; {changed[0]} cannot be changed "
            "(only --steps, --wandb, --no-progress and --address can)"
        )
    check_run_dir_links(run_dir)  # before anything is read or changed
    settings, agent_config, agent_cls = read_run(run_dir, trust_modules=trust_modules)
    if agent is not None and agent != settings.agent:
        raise UserError(f"--resume {run_dir}: that run is agent '{settings.agent}', not '{agent}'")
    chosen = None if checkpoint_file is None else _run_checkpoint(run_dir, checkpoint_file)
    update = {key: value for key, value in given.items() if key in RESUME_MAY_CHANGE}
    if "address" not in update and settings.address is not None:
        # Ray trusts its head node fully: a run dir from elsewhere must not pick the cluster
        print(
            f"rlkit: the run recorded Ray address {shorten(settings.address)}; not used "
            "(give --address to run there)",
            file=sys.stderr,
        )
        update["address"] = None
    settings = settings.model_copy(update=update)
    if "address" in update:
        check_address(settings.address)  # before anything in the run dir changes
    check_metrics(run_dir / METRICS_FILE)  # a damaged file is refused before anything changes
    env = EnvFactory.for_run(settings)(run_seeds(settings.seed)["env"])
    try:
        learner = agent_cls(
            agent_config,
            observation_space=env.observation_space,
            action_space=env.action_space,
            seed=run_seeds(settings.seed)["agent"],
        )
        found = _restore(run_dir, settings, learner, chosen, env=env)
        step = int(found.saved["step"])
        if step >= settings.steps:
            raise UserError(
                f"--resume {run_dir}: the run already reached {step} of {settings.steps} "
                f"steps; give --steps larger than {step} to train further"
            )
        lock = RunLock.acquire(run_dir)
    except BaseException:
        env.close()
        raise
    try:
        resolved = {**settings.model_dump(), "hparams": agent_config.model_dump()}
        try:
            write_text(run_dir / CONFIG_FILE, dump_yaml(resolved))
            truncate_metrics(run_dir / METRICS_FILE, step)
        except OSError as error:
            raise UserError(
                f"cannot write in '{run_dir}' ({error.strerror}); free some space (or lift "
                "the limit), then resume again"
            ) from None
        for path, reason in found.skipped:
            aside = _set_aside(path, ".damaged")
            print(
                f"rlkit: skipped {_short(path)}: it {reason}; kept as {aside.name}", file=sys.stderr
            )
        for path in found.superseded:
            aside = _set_aside(path, ".superseded")
            print(
                f"rlkit: set aside {_short(path)}, newer than the checkpoint chosen, as "
                f"{aside.name}",
                file=sys.stderr,
            )
        print(f"rlkit: resuming {run_dir} from step {step} ({found.path.name})", file=sys.stderr)
        return _execute(
            learner,
            settings,
            resolved,
            run_dir,
            env,
            episodes=int(found.saved.get("episodes", 0)),
            hooks=hooks,
        )
    finally:
        lock.release()


def _set_aside(path: Path, suffix: str) -> Path:
    """Rename a checkpoint out of the `step-*.pt` set (kept, never loaded or pruned again)."""
    aside = path.with_name(path.name + suffix)
    os.replace(path, aside)
    return aside
