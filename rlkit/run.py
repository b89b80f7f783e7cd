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

import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

import rlkit
from rlkit import checkpoint
from rlkit.atari import is_atari
from rlkit.environments import make_env, make_vector_env, rng_state
from rlkit.evaluation import evaluate
from rlkit.logger import Logger
from rlkit.seeding import derive_seed, run_seeds
from rlkit.settings import RunSettings

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
        self.clip_rewards = is_atari(settings.env) and settings.atari.reward_clipping
        # a lost life is terminal for learning (rlkit.atari.LifeLossTerminals)
        self.episodic_life = is_atari(settings.env) and settings.atari.episodic_life
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
        Rewards are unclipped; agents clip for learning when `clip_rewards` is set.
        """
        if self._vector_env is None:
            self._vector_env = make_vector_env(
                self.settings.env,
                num_envs=self.settings.num_envs,
                env_kwargs=self.settings.env_kwargs,
                atari=self.settings.atari,
            )
        return self._vector_env

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
            self._eval_env = make_env(
                self.settings.env,
                seed=run_seeds(self.settings.seed)["eval"],
                env_kwargs=self.settings.env_kwargs,
                atari=self.settings.atari.model_copy(update={"episodic_life": False}),
            )
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
        payload = {
            "format": 1,
            "rlkit_version": rlkit.__version__,
            "agent_name": self.settings.agent,
            "step": agent.step,
            "episodes": self.logger.episodes,
            "agent": agent.state_dict(),
            "env_rng": rng_state(self.env),
        }
        path = checkpoint.save(
            self._checkpoint_dir, agent.step, payload, keep=self.settings.keep_checkpoints
        )
        every = self.settings.checkpoint_every
        self._next_checkpoint = (agent.step // every + 1) * every
        self.last_checkpoint = path
        return path
