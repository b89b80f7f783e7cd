"""One training session, new or resumed: logger, `Run`, stop handlers, the final checkpoint.

`rlkit.training.train` (a new run) and `rlkit.resume` (`--resume`) build the agent and
hold the run dir's lock; `_execute` does the rest: prints what runs, makes the logger
and the `Run`, lets Ctrl-C (SIGINT) or SIGTERM ask the loop to stop, calls
`agent.learn(steps, run)`, writes a final checkpoint and closes W&B and the metrics file.
Learning that diverges ends in one line naming the likely settings.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import gymnasium as gym

from rlkit import checkpoint
from rlkit.atari import is_atari
from rlkit.config import StrictModel
from rlkit.encoders import EncoderSettings, describe_parts, dropped_parts
from rlkit.errors import Diverged, UserError
from rlkit.logger import Logger, Report
from rlkit.readback import _short
from rlkit.run import CHECKPOINT_DIR, Run
from rlkit.settings import RunSettings
from rlkit.signals import LearningSignals


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    episodes: int
    checkpoint: Path
    interrupted: bool
    recent_return: float | None


@dataclass(frozen=True)
class _Hooks:
    """What a caller that drives runs passes through `train()`: see its docstring."""

    report: Report | None = None
    stop: threading.Event | None = None


def describe_preset(agent: Any, name: str) -> str:
    """The banner's line on the preset used, with its source."""
    sources = {preset.name: preset.source for preset in getattr(type(agent), "presets", ())}
    return f"preset {name}: {sources[name]}" if name in sources else f"preset {name}"


def describe_scaling(config: Any) -> str:
    """The banner's line on observation and reward normalisation, '' when both are off."""
    parts = []
    if getattr(config, "normalize_observations", False):
        parts.append("observations normalised (running mean and std, clipped to +-10)")
    if getattr(config, "normalize_rewards", False):
        parts.append("rewards scaled by the running std of the return (learning only)")
    return "; ".join(parts)


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
    if settings.preset != "none":  # none: the agent's defaults, as config.yaml records
        print(f"rlkit: {describe_preset(agent, settings.preset)}", file=sys.stderr)
    if scaled := describe_scaling(getattr(agent, "config", None)):
        print(f"rlkit: {scaled}", file=sys.stderr)
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
