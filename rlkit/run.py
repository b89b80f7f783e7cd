"""What an agent's learning loop gets from the backbone: `Run`.

    def learn(self, total_steps: int, run: Run) -> None:
        while self.step < total_steps and not run.stop_requested:
            ...                                     # act in run.env / run.vector_env, learn
            run.logger.episodes_finished(self.step, returns, lengths, successes)
            run.end_iteration(self, metrics)        # log, progress, evaluate, checkpoint

The run (`rlkit.training`) makes one `Run` per training session: the seeded env, the
logger, periodic evaluation and checkpoints, and a stop flag that Ctrl-C or SIGTERM
sets. Agents import this module, never the orchestrator.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import rlkit
from rlkit import checkpoint
from rlkit.atari import is_atari
from rlkit.environments import EnvFactory, rng_state
from rlkit.errors import Diverged, UserError
from rlkit.evaluation import evaluate
from rlkit.logger import Logger
from rlkit.pool import LostCalls, WorkerPool, check_worker_count, make_pool
from rlkit.rundir import CONFIG_FILE, RECORD_FILE, write_text
from rlkit.safefiles import read_regular
from rlkit.seeding import derive_seed, run_seeds
from rlkit.settings import RunSettings
from rlkit.signals import LearningSignals
from rlkit.workers import WorkerSetup, reset_seeds, worker_seeds

CHECKPOINT_DIR = "checkpoints"


class Run:
    """What an agent's learning loop gets from the backbone."""

    def __init__(
        self,
        *,
        settings: RunSettings,
        run_dir: Path,
        env: gym.Env[Any, Any],
        logger: Logger,
        start_step: int,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.env = env
        self.logger = logger
        self._stop = stop if stop is not None else threading.Event()
        self.last_checkpoint: Path | None = None
        self.signals = LearningSignals.for_run(settings)  # what agents learn from
        self.make_env = EnvFactory.for_run(settings)
        self._vector_env: gym.vector.VectorEnv[Any, Any, Any] | None = None
        self._checkpoint_dir = run_dir / CHECKPOINT_DIR
        every = settings.checkpoint_every
        self._next_checkpoint = (start_step // every + 1) * every
        self._eval_env: gym.Env[Any, Any] | None = None
        self._next_eval = (
            (start_step // settings.eval_every + 1) * settings.eval_every
            if (settings.eval_every)
            else None
        )
        self.eval_seconds = 0.0  # wall-clock spent in evaluations, so far

    @property
    def stop_requested(self) -> bool:
        """Ctrl-C, SIGTERM or the caller's `stop` event asked the learning loop to stop."""
        return self._stop.is_set()

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        if value:
            self._stop.set()
        else:
            self._stop.clear()

    @property
    def vector_env(self) -> gym.vector.VectorEnv[Any, Any, Any]:
        """`settings.num_envs` environments stepped together (NEXT_STEP autoreset), made once.

        Atari uses ale-py's native vector env; other envs a gymnasium SyncVectorEnv.
        Rewards are game scores; agents learn from `signals.rewards(...)`.
        """
        if self._vector_env is None:
            self._vector_env = self.make_env.vector(self.settings.num_envs)
        return self._vector_env

    @property
    def config_file(self) -> Path:
        """The run's resolved config, which `--resume` reads (settings that cannot be
        given with --resume are changed there)."""
        return self.run_dir / CONFIG_FILE

    @property
    def frame_stacked(self) -> bool:
        """Observations are stacks of frames over time (Atari), newest frame last."""
        return is_atari(self.settings.env)

    def reset_seed(self, step: int) -> int:
        """Seed for a vector env's first reset when training starts or resumes at `step`."""
        return derive_seed(self.settings.seed, "env", index=1 + step)

    def close(self) -> None:
        self.env.close()
        if self._vector_env is not None:
            self._vector_env.close()
        if self._eval_env is not None:
            self._eval_env.close()

    def start_workers(
        self,
        worker_cls: type,
        agent: Any,
        seed: int,
        kwargs: dict[str, Any],
        *,
        shared: dict[str, Any] | None = None,
        lost_calls: LostCalls = "resend",
    ) -> WorkerPool:
        """`settings.workers` workers `worker_cls(setup, **kwargs)` on `settings.pool`.

        Worker seeds derive from the agent's `seed` by one scheme (`rlkit.workers`), and
        their first resets from `agent.step` (fresh episodes on a resume); both are
        printed once and recorded in `run.json`. Ray workers use `settings.threads` (1 by
        default) torch threads; in-process ones share the learner's. A replaced worker
        is printed and counted in `workers/restarts`.
        """
        settings = self.settings
        check_worker_count(settings.workers, settings.pool, settings.address)
        seeds = worker_seeds(seed, settings.workers)
        resets = reset_seeds(seeds, agent.step)
        remote = settings.pool == "ray"
        setups = [
            WorkerSetup(
                index=index,
                seed=worker_seed,
                reset_seed=reset,
                make_env=self.make_env,
                signals=self.signals,
                threads=(settings.threads or 1) if remote else None,
            )
            for index, (worker_seed, reset) in enumerate(zip(seeds, resets, strict=True))
        ]
        fresh = "" if agent.step == 0 else f", first resets {resets} (resumed at {agent.step})"
        self.note(f"{settings.workers} {settings.pool} workers, seeds {seeds}{fresh}")
        self._record_workers(seeds, resets, agent.step)
        pool: WorkerPool

        def on_event(message: str) -> None:
            self.note(message)
            if "replaced" in message:
                self.logger.log(agent.step, {"workers/restarts": float(pool.restarts)})

        pool = make_pool(
            worker_cls,
            [{"setup": setup, **kwargs} for setup in setups],
            backend=settings.pool,
            address=settings.address,
            on_event=on_event,
            shared=shared,
            lost_calls=lost_calls,
        )
        if pool.startup_seconds:
            self.logger.log(agent.step, {"time/ray_startup": round(pool.startup_seconds, 3)})
        return pool

    def note(self, message: str) -> None:
        """One line on stderr, `rlkit: <agent>: <message>`."""
        print(f"rlkit: {self.settings.agent}: {message}", file=sys.stderr, flush=True)

    def _record_workers(self, seeds: list[int], resets: list[int], step: int) -> None:
        """Add the worker seeds (and this start's first resets) to `run.json`."""
        path = self.run_dir / RECORD_FILE
        try:
            record = json.loads(read_regular(path, 1 << 20))
        except (OSError, ValueError):
            return  # not a run dir of `rlkit run` (an agent driven by hand)
        record.setdefault("seeds", {})["workers"] = seeds
        starts = record.setdefault("worker_starts", [])
        starts.append({"step": step, "reset_seeds": resets})
        try:
            write_text(path, json.dumps(record, indent=2))
        except OSError as error:  # a full disk: one line, and the run stops
            raise UserError(
                f"cannot write '{path}' ({error.strerror}); free some space (or lift the "
                f"limit), then continue with: rlkit run --resume {self.run_dir}"
            ) from None

    def end_iteration(self, agent: Any, metrics: dict[str, float] | None = None) -> None:
        """The end of a learning iteration: log `metrics` (if any), advance the progress
        bar (and time/sps), evaluate and checkpoint when due."""
        if metrics:
            self.logger.log(agent.step, metrics)
        self.logger.tick(agent.step)
        self.maybe_evaluate(agent)
        self.maybe_checkpoint(agent)

    def maybe_evaluate(self, agent: Any) -> None:
        """Every `eval_every` steps: play `eval_episodes` with `agent.act`, log eval/ metrics.

        The evaluation env is the one `rlkit eval` uses (full Atari games, unclipped
        rewards), on the run's eval seed stream; `time/eval_total` is the wall-clock
        spent evaluating so far, so training time can be told apart.
        """
        if self._next_eval is None or agent.step < self._next_eval:
            return
        started = time.perf_counter()
        if self._eval_env is None:
            eval_seed = run_seeds(self.settings.seed)["eval"]
            self._eval_env = self.make_env.whole_games()(eval_seed)
        stats = evaluate(agent, self._eval_env, self.settings.eval_episodes)
        self.eval_seconds += time.perf_counter() - started
        self.logger.log(
            agent.step,
            {
                "eval/return": stats.mean,
                "eval/return_std": stats.std,
                "eval/length": stats.mean_length,
                "time/eval_total": round(self.eval_seconds, 3),
            },
        )
        every = self.settings.eval_every
        assert every is not None
        self._next_eval = (agent.step // every + 1) * every

    def episode_end(
        self, agent: Any, episode_return: float, length: int, info: dict[str, Any]
    ) -> None:
        """Call after an episode ends, before the next reset: logs it, checkpoints if due."""
        success = info.get("is_success")
        self.logger.episode(
            agent.step, episode_return, length, None if success is None else bool(success)
        )
        self.maybe_evaluate(agent)
        self.maybe_checkpoint(agent)

    def maybe_checkpoint(self, agent: Any) -> None:
        if agent.step >= self._next_checkpoint:
            self.save_checkpoint(agent)

    def save_checkpoint(self, agent: Any) -> Path:
        """Write the agent's state as checkpoint `agent.step`; a state holding a non-finite
        number raises `Diverged` instead, so the last checkpoint written stays a good one."""
        state = agent.state_dict()
        where = non_finite(state)
        if where is not None:
            raise Diverged(f"the agent's state holds {where}", agent.step)
        payload = {
            "format": 1,
            "rlkit_version": rlkit.__version__,
            "agent_name": self.settings.agent,
            "step": agent.step,
            "episodes": self.logger.episodes,
            "agent": state,
            "env_rng": rng_state(self.env),
        }
        path = checkpoint.save(
            self._checkpoint_dir, agent.step, payload, keep=self.settings.keep_checkpoints
        )
        every = self.settings.checkpoint_every
        self._next_checkpoint = (agent.step // every + 1) * every
        self.last_checkpoint = path
        return path


def non_finite(state: Any, path: str = "") -> str | None:
    """'nan in <key path>' for the first NaN or infinity in an agent's state (floating
    tensors, arrays and numbers, nested in dicts and lists), or None."""
    import numpy as np
    import torch

    if isinstance(state, dict):
        items: Any = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    else:
        bad: float | None = None
        if isinstance(state, torch.Tensor) and state.is_floating_point():
            if not bool(torch.isfinite(state).all()):
                bad = float(state[~torch.isfinite(state)].flatten()[0])
        elif isinstance(state, np.ndarray) and np.issubdtype(state.dtype, np.floating):
            if not bool(np.isfinite(state).all()):
                bad = float(state[~np.isfinite(state)].flat[0])
        elif isinstance(state, float) and not math.isfinite(state):
            bad = state
        return None if bad is None else f"{bad} in {path or 'it'}"
    for key, value in items:
        found = non_finite(value, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None
