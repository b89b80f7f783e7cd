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
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import gymnasium as gym

from rlkit import checkpoint
from rlkit.agent import load_agent
from rlkit.atari import is_atari
from rlkit.config import StrictModel, dump_yaml, load_yaml, validate
from rlkit.encoders import EncoderSettings, describe_parts, dropped_parts
from rlkit.environments import EnvFactory, set_rng_state
from rlkit.errors import Diverged, UserError, describe_exception, shorten
from rlkit.evaluation import EvalStats, evaluate
from rlkit.logger import METRICS_FILE, Logger, Report, check_metrics, truncate_metrics
from rlkit.parallel import check_address
from rlkit.pool import check_worker_count
from rlkit.resolve import Layer, file_layer, flags_layer, overrides_layer, resolve
from rlkit.run import CHECKPOINT_DIR, Run
from rlkit.rundir import (
    CONFIG_FILE,
    RECORD_FILE,
    RunLock,
    create_run_dir,
    run_record,
    write_text,
)
from rlkit.seeding import run_seeds
from rlkit.settings import RunSettings
from rlkit.signals import LearningSignals
from rlkit.trust import check_run_modules


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    episodes: int
    checkpoint: Path
    interrupted: bool
    recent_return: float | None


# What `--resume` may change: none of them changes what the run learns.
RESUME_MAY_CHANGE = ("steps", "wandb", "progress", "address")


@dataclass(frozen=True)
class _Hooks:
    """What a caller that drives runs passes through `train()`: see its docstring."""

    report: Report | None = None
    stop: threading.Event | None = None


@dataclass(frozen=True)
class LoadedRun:
    agent: Any
    settings: RunSettings
    agent_config: StrictModel
    checkpoint: Path
    step: int


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

    layers: list[Layer] = []  # lowest first: the file, flags, hparams, --set
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
        learner = agent_cls(
            agent_config,
            observation_space=env.observation_space,
            action_space=env.action_space,
            seed=seeds["agent"],
        )
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


def _learned_anything(run_dir: Path) -> bool:
    """The run dir holds a checkpoint or metric rows (a failed run keeps them)."""
    metrics = run_dir / METRICS_FILE
    return bool(checkpoint.list_checkpoints(run_dir / CHECKPOINT_DIR)) or (
        metrics.is_file() and metrics.stat().st_size > 0
    )


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
    settings, agent_config, agent_cls = read_run(run_dir, trust_modules=trust_modules)
    if agent is not None and agent != settings.agent:
        raise UserError(f"--resume {run_dir}: that run is agent '{settings.agent}', not '{agent}'")
    chosen = None if checkpoint_file is None else _run_checkpoint(run_dir, checkpoint_file)
    update = {key: value for key, value in given.items() if key in RESUME_MAY_CHANGE}
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


def _short(path: Path) -> str:
    """`checkpoints/step-....pt`: a checkpoint named inside its run dir."""
    return f"{path.parent.name}/{path.name}"


def _set_aside(path: Path, suffix: str) -> Path:
    """Rename a checkpoint out of the `step-*.pt` set (kept, never loaded or pruned again)."""
    aside = path.with_name(path.name + suffix)
    os.replace(path, aside)
    return aside


def _execute(
    agent: Any,
    settings: RunSettings,
    resolved: dict[str, Any],
    run_dir: Path,
    env: gym.Env[Any, Any],
    episodes: int = 0,
    hooks: _Hooks | None = None,
) -> TrainResult:
    hooks = hooks or _Hooks()
    start_step = agent.step
    print(
        f"rlkit: {settings.agent} on {settings.env}, {settings.steps} steps, seed {settings.seed}, "
        f"W&B {settings.wandb} -> {run_dir}",
        file=sys.stderr,
    )
    encoder = getattr(agent, "config", None) and getattr(agent.config, "encoder", None)
    if isinstance(encoder, EncoderSettings):
        space = env.observation_space
        print(f"rlkit: encoders: {describe_parts(space, encoder)}", file=sys.stderr)
        if dropped := dropped_parts(space, encoder):
            print(f"rlkit: {dropped}", file=sys.stderr)
    if is_atari(settings.env):
        print(f"rlkit: Atari settings: {settings.atari.describe()}", file=sys.stderr)
        if getattr(agent, "learns_from_signals", True):
            signals = LearningSignals.for_run(settings).describe()
        else:
            signals = "ranks whole-episode game scores (reward_clipping, episodic_life unused)"
        print(f"rlkit: {settings.agent} {signals}", file=sys.stderr)
    import torch

    torch.set_num_threads(settings.threads or os.cpu_count() or 1)
    logger = Logger(
        run_dir,
        total_steps=settings.steps,
        start_step=start_step,
        log_every=settings.log_every,
        wandb_mode=settings.wandb,
        config={**resolved, "run_dir": str(run_dir)},
        progress=settings.progress,
        report=hooks.report,
    )
    logger.episodes = episodes
    run = Run(
        settings=settings,
        run_dir=run_dir,
        env=env,
        logger=logger,
        start_step=start_step,
        stop=hooks.stop,
    )
    restore = _install_stop_handlers(run)
    try:
        try:
            agent.learn(settings.steps, run)
        except Diverged as error:
            raise UserError(_diverged(error, agent, run_dir)) from None
        final = run.last_checkpoint
        if (
            final is None
            or checkpoint.checkpoint_path(run_dir / CHECKPOINT_DIR, agent.step) != final
        ):
            final = run.save_checkpoint(agent)
        logger.report(agent.step)
    finally:
        restore()
        logger.close()
        run.close()
    return TrainResult(
        run_dir=run_dir,
        step=agent.step,
        episodes=logger.episodes,
        checkpoint=final,
        interrupted=run.stop_requested,
        recent_return=logger.recent_return,
    )


# hyperparameters that, set too large, make learning diverge (named in the error)
_DIVERGING = re.compile(
    r"learning_rate|^lr$|_lr$|^eta_|max_kl|max_grad_norm|initial_value|^sigma$|step_size"
)


def _diverged(error: Diverged, agent: Any, run_dir: Path) -> str:
    """One line: where learning went non-finite, the likely settings, the last checkpoint."""
    config = getattr(agent, "config", None)
    likely = []
    for name in type(config).model_fields if isinstance(config, StrictModel) else ():
        value = getattr(config, name)
        if not _DIVERGING.search(name) or value is None:
            continue
        if isinstance(value, StrictModel) and hasattr(value, "start"):  # a schedule
            likely.append(f"{name}.start={value.start:g}")
        elif isinstance(value, int | float):
            likely.append(f"{name}={value:g}")
    settings = f"; likely settings: {', '.join(likely)} (try smaller values)" if likely else ""
    found = checkpoint.list_checkpoints(run_dir / CHECKPOINT_DIR)
    kept = (
        f"the last good checkpoint, {_short(found[-1])}, is kept"
        if found
        else "no checkpoint was written before it"
    )
    return f"{error}{settings}; {kept}"


def _install_stop_handlers(run: Run) -> Any:
    """SIGINT/SIGTERM ask the loop to stop (a second SIGINT aborts); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if run.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        run.stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def read_run(run_dir: Path, *, trust_modules: bool = False) -> tuple[RunSettings, StrictModel, Any]:
    """The settings, agent config and agent class of an existing run directory.

    The modules its config names (`env: module:Id`, `env_wrappers`) must pass
    `rlkit.trust.check_run_modules` unless `trust_modules`: they are imported next.
    """
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / RECORD_FILE).is_file():
        raise UserError(
            f"'{run_dir}' is not an rlkit run directory (no {CONFIG_FILE} and {RECORD_FILE}); "
            "give a folder made by `rlkit run`"
        )
    data = load_yaml(run_dir / CONFIG_FILE)
    hparams = data.pop("hparams", {}) or {}
    origin = {key: f"{run_dir / CONFIG_FILE}" for key in data}
    settings = validate(RunSettings, data, origin, "run settings")
    if not trust_modules:
        check_run_modules(run_dir, settings)
    agent_cls = load_agent(settings.agent)
    if not isinstance(hparams, dict):
        raise UserError(f"{run_dir / CONFIG_FILE}: hparams must be a mapping of hyperparameters")
    agent_config = validate(agent_cls.Config, hparams, origin, settings.agent)
    return settings, agent_config, agent_cls


def _run_checkpoint(run_dir: Path, file: str | Path) -> Path:
    """`--checkpoint FILE`, which must be one of `run_dir`'s own checkpoints."""
    path = Path(file)
    directory = run_dir / CHECKPOINT_DIR
    inside = path.resolve().parent == directory.resolve()
    if not inside or not checkpoint.is_checkpoint_name(path.name):
        names = [p.name for p in checkpoint.list_checkpoints(directory)]
        listed = ", ".join(names[-4:]) if names else "none yet"
        raise UserError(
            f"--checkpoint {shorten(file, 200)}: not a checkpoint of this run; give one of "
            f"{shorten(directory, 200)}/: {listed}"
        )
    return directory / path.name


@dataclass(frozen=True)
class _Found:
    """The checkpoint a run continues from (or is evaluated at), and what was passed over."""

    path: Path
    saved: dict[str, Any]
    skipped: list[tuple[Path, str]]  # newer checkpoints that do not load, and why
    superseded: list[Path]  # newer checkpoints passed over for the one chosen


def _restore(
    run_dir: Path,
    settings: RunSettings,
    agent: Any,
    chosen: Path | None,
    *,
    env: gym.Env[Any, Any] | None = None,
) -> _Found:
    """Load `chosen`, or else the newest checkpoint of the run that loads, into `agent`
    (and its env RNG state into `env`); UserError, one line, when none does."""
    found = checkpoint.list_checkpoints(run_dir / CHECKPOINT_DIR)
    if chosen is not None:
        try:
            saved = _load_into(chosen, settings, agent, env)
        except UserError as error:
            earlier = [p.name for p in found if p != chosen][-3:]
            hint = f"; give another with --checkpoint: {', '.join(earlier)}" if earlier else ""
            raise UserError(f"{error}{hint}") from None
        step = int(saved["step"])
        newer = [path for path in found if checkpoint.step_of(path) > step]
        return _Found(chosen, saved, [], newer)
    if not found:
        raise UserError(
            f"'{run_dir}' has no checkpoint yet (checkpoints/step-*.pt); nothing to load"
        )
    skipped: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            saved = _load_into(path, settings, agent, env)
        except UserError as error:
            reason = str(error).removeprefix(f"checkpoint '{path}' ")
            skipped.append((path, reason))
            continue
        return _Found(path, saved, skipped, [])
    raise UserError(
        f"none of the {len(found)} checkpoints of '{run_dir}' loads; the newest, "
        f"{found[-1].name}, {skipped[0][1]}"
    )


def _load_into(
    path: Path, settings: RunSettings, agent: Any, env: gym.Env[Any, Any] | None
) -> dict[str, Any]:
    """Checkpoint `path` loaded into `agent` (and `env`'s RNG); UserError if it does not fit."""
    saved = checkpoint.load(path)
    name = saved.get("agent_name")
    if name is not None and name != settings.agent:
        raise UserError(
            f"checkpoint '{path}' is of agent '{shorten(name)}', not this run's '{settings.agent}'"
        )
    try:
        agent.load_state_dict(saved["agent"])
        if env is not None and "env_rng" in saved:
            set_rng_state(env, saved["env_rng"])
    except Exception as error:  # a missing key, a wrong shape or type: whatever the agent met
        raise UserError(
            f"checkpoint '{path}' does not fit this run's {settings.agent} agent "
            f"({describe_exception(error)})"
        ) from None
    return saved


def load(
    run_dir: str | Path,
    checkpoint_file: str | Path | None = None,
    *,
    trust_modules: bool = False,
) -> LoadedRun:
    """The agent of a run, restored from `checkpoint_file` (one of the run's own) or else the
    newest checkpoint that loads (a note on stderr for each newer one that does not)."""
    directory = Path(run_dir)
    settings, agent_config, agent_cls = read_run(directory, trust_modules=trust_modules)
    chosen = None if checkpoint_file is None else _run_checkpoint(directory, checkpoint_file)
    env = EnvFactory.for_run(settings)(0)
    agent = agent_cls(
        agent_config,
        observation_space=env.observation_space,
        action_space=env.action_space,
        seed=run_seeds(settings.seed)["agent"],
    )
    env.close()
    found = _restore(directory, settings, agent, chosen)
    for path, reason in found.skipped:
        print(f"rlkit: skipped {_short(path)}: it {reason}", file=sys.stderr)
    return LoadedRun(agent, settings, agent_config, found.path, int(found.saved["step"]))


def evaluate_run(
    run_dir: str | Path,
    *,
    episodes: int,
    checkpoint: str | Path | None = None,
    seed: int | None = None,
    video: bool = False,
    trust_modules: bool = False,
) -> EvalStats:
    """Evaluate a run's agent on episodes seeded apart from training (or from `seed`).

    Atari follows the Nature protocol: full games (no episodic life), unclipped rewards,
    the agent's evaluation epsilon. With `video`, the first episode is written to
    `<run>/videos/eval-step-<step>.mp4` and logged to W&B with the statistics.
    """
    if episodes < 1:
        raise UserError(f"--episodes {episodes}: must be a positive integer")
    loaded = load(run_dir, checkpoint, trust_modules=trust_modules)
    settings = loaded.settings
    eval_seed = seed if seed is not None else run_seeds(settings.seed)["eval"]
    make_env = EnvFactory.for_run(settings).whole_games()
    if video:  # asked before the env is made to render: some envs refuse unknown modes
        probe = make_env(eval_seed)
        modes = [str(mode) for mode in probe.metadata.get("render_modes") or []]
        probe.close()
        if "rgb_array" not in modes:
            raise UserError(
                f"--video: {settings.env} cannot render frames (its render modes: "
                f"{', '.join(modes) or 'none'}; a video needs rgb_array); evaluate without --video"
            )
    env = make_env(eval_seed, render_mode="rgb_array" if video else None)
    frames: list[Any] | None = [] if video else None
    try:
        stats = evaluate(loaded.agent, env, episodes, video_frames=frames)
    finally:
        env.close()
    if frames:
        from rlkit.evaluation import write_video

        path = Path(run_dir) / "videos" / f"eval-step-{loaded.step:012d}.mp4"
        path.parent.mkdir(exist_ok=True)
        write_video(frames, path)
        print(f"rlkit: wrote {path}", file=sys.stderr)
        if settings.wandb != "disabled":
            _log_eval_to_wandb(Path(run_dir), settings, stats, path, loaded.step)
    return stats


def _log_eval_to_wandb(
    run_dir: Path, settings: RunSettings, stats: EvalStats, video: Path, step: int
) -> None:
    import wandb

    run = wandb.init(
        project="rlkit",
        name=f"{run_dir.name}-eval",
        group=run_dir.name,
        job_type="eval",
        dir=str(run_dir),
        mode=settings.wandb,
        settings=wandb.Settings(silent=True, init_timeout=20, console="off"),
        reinit="finish_previous",
    )
    metrics = {f"eval/{key}": value for key, value in stats.as_dict().items() if value is not None}
    run.log({**metrics, "eval/video": wandb.Video(str(video), format="mp4")}, step=step)
    run.finish()
