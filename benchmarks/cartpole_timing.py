"""Timing helpers shared by the CartPole benchmarks: time to a greedy return of 475.

Both frameworks evaluate 10 greedy episodes on a separate env every `eval_every` env
steps; the first evaluation with mean return >= `TARGET` marks the time, counting
training wall-clock only (evaluation time is subtracted).

rlkit's side is read back from the run's metrics.jsonl. Every row carries `wall_time`
(time.time()) and the `time/elapsed` rows carry the seconds since the run's logger
started, so one `time/elapsed` row fixes the start on the wall clock; training seconds
at any row are then its wall time, less the start, less `time/eval_total` so far. An
evaluation row is written when its evaluation ends, so the evaluation itself drops out.
The SB3 side measures the same in a callback (`EvaluationClock`).

Both sides stop training at the first evaluation that reaches the target (rlkit through
`rlkit.train`'s `report`/`stop` hooks, SB3 by its callback returning False): what is
measured is the time to the target, and the rest of the budget would only cost time.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

import torch

from rlkit.logger import read_metrics

TARGET = 475.0
EVAL_EPISODES = 10


class Reach(NamedTuple):
    """One run: seconds and env steps to the target (inf when not reached), training seconds."""

    seconds: float
    steps: float
    total: float


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def machine_line(threads: int, eval_every: int) -> str:
    """Date, commit, machine and torch threads, for the line above a results table."""
    return (
        f"{date.today()}, commit {commit()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {threads} threads; evaluation every "
        f"{eval_every} steps, {EVAL_EPISODES} greedy episodes"
    )


def rlkit_reach(agent: str, seed: int, eval_every: int, **settings: Any) -> Reach:
    """Train `agent` with `rlkit.train` (evaluating every `eval_every` steps) and time it.

    `settings` are `rlkit.train`'s (env, steps, config, workers, threads, ...); the run
    directory is temporary.
    """
    import threading

    import rlkit

    stop = threading.Event()

    def report(step: int, metrics: dict[str, float]) -> None:
        if metrics.get("eval/return", -math.inf) >= TARGET:
            stop.set()

    with tempfile.TemporaryDirectory() as out:
        result = rlkit.train(
            agent,
            seed=seed,
            out_dir=out,
            name="cartpole",
            wandb="disabled",
            progress=False,
            eval_every=eval_every,
            eval_episodes=EVAL_EPISODES,
            log_every=eval_every,
            report=report,
            stop=stop,
            **settings,
        )
        rows = read_metrics(result.run_dir / "metrics.jsonl")
    return reach_from_metrics(rows)


def reach_from_metrics(rows: list[dict[str, Any]]) -> Reach:
    """Seconds and steps to `TARGET`, and training seconds, from a run's metric rows."""
    anchor = next(row for row in rows if "time/elapsed" in row)
    started = anchor["wall_time"] - anchor["time/elapsed"]
    evaluating = 0.0

    def training_seconds(row: dict[str, Any]) -> float:
        return float(row["wall_time"] - started - evaluating)

    reached: tuple[float, float] | None = None
    for row in rows:
        if "time/eval_total" not in row:
            continue
        evaluating = row["time/eval_total"]
        if reached is None and row["eval/return"] >= TARGET:
            reached = training_seconds(row), float(row["step"])
    total = training_seconds(rows[-1])
    if reached is None:
        return Reach(math.inf, math.inf, total)
    return Reach(reached[0], reached[1], total)


def greedy_mean(env_id: str, seed: int, normalized: bool = False) -> Callable[[Any], float]:
    """`model -> mean return of EVAL_EPISODES deterministic episodes` of an SB3 model on
    its own env, seeded `seed + 10_000`.

    With `normalized`, observations are scaled by the training env's VecNormalize
    statistics, copied before each evaluation (rewards are left raw).
    """
    import gymnasium as gym
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import (
        DummyVecEnv,
        VecEnv,
        VecNormalize,
        sync_envs_normalization,
    )

    eval_env: VecEnv = DummyVecEnv([lambda: Monitor(gym.make(env_id))])
    eval_env.seed(seed + 10_000)
    if normalized:
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)

    def evaluate(model: Any) -> float:
        if normalized:
            sync_envs_normalization(model.get_env(), eval_env)
        # for RecurrentPPO, evaluate_policy passes the LSTM state and episode_start flags
        mean, _ = evaluate_policy(
            model, eval_env, n_eval_episodes=EVAL_EPISODES, deterministic=True
        )
        return float(mean)

    return evaluate


def evaluation_clock(evaluate: Callable[[Any], float], eval_every: int) -> Any:
    """An SB3 callback that times the model's training to a greedy mean return of `TARGET`.

    `evaluate(model)` returns the mean return of `EVAL_EPISODES` greedy episodes. It
    runs once `eval_every` more env steps have passed (SB3 counts all of a vector env's
    steps), until the target is reached; its wall-clock is left out of the times.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class EvaluationClock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_seconds = 0.0
            self.next_eval = eval_every
            self.reached: tuple[float, float] | None = None
            self.started = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval or self.reached is not None:
                return True
            self.next_eval = (self.num_timesteps // eval_every + 1) * eval_every
            clock = time.perf_counter()
            if evaluate(self.model) >= TARGET:
                self.reached = (clock - self.started - self.eval_seconds, self.num_timesteps)
            self.eval_seconds += time.perf_counter() - clock
            return self.reached is None  # False ends learn(): the target is reached

        def result(self) -> Reach:
            """Call when learning has ended."""
            total = time.perf_counter() - self.started - self.eval_seconds
            if self.reached is None:
                return Reach(math.inf, math.inf, total)
            return Reach(self.reached[0], float(self.reached[1]), total)

    return EvaluationClock()


def report_seed(seed: int, name: str, reach: Reach, budget: int) -> None:
    print(
        f"seed {seed} {name}: {reach.seconds:.1f} s and {reach.steps:.0f} steps to "
        f"{TARGET:.0f} (trained {reach.total:.1f} s; budget {budget} steps)",
        flush=True,
    )


def print_table(results: dict[str, list[Reach]]) -> dict[str, Reach]:
    """A Markdown table of medians and per-seed figures; the first framework over the second.

    Returns each framework's medians.
    """
    print("| framework | seconds to 475 (median) | steps to 475 (median) | per seed (s / steps) |")
    print("| --- | --- | --- | --- |")
    medians = {}
    for name, runs in results.items():
        medians[name] = Reach(
            statistics.median(run.seconds for run in runs),
            statistics.median(run.steps for run in runs),
            statistics.median(run.total for run in runs),
        )
        each = ", ".join(f"{run.seconds:.1f} / {run.steps:.0f}" for run in runs)
        print(f"| {name} | {medians[name].seconds:.1f} | {medians[name].steps:.0f} | {each} |")
    first, second = list(medians)[:2]
    print(
        f"wall-clock ratio {first} / {second}: "
        f"{ratio(medians[first].seconds, medians[second].seconds)}"
    )
    return medians


def ratio(mine: float, theirs: float) -> str:
    """`mine / theirs` to two decimals; undefined when either did not reach the target."""
    if math.isinf(mine) or math.isinf(theirs):
        return f"undefined ({TARGET:.0f} not reached)"
    return f"{mine / theirs:.2f}"
