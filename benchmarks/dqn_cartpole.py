"""DQN on CartPole-v1: wall-clock and env steps to a greedy return of 475, rlkit vs SB3.

    pip install -e ".[bench]"
    .venv/bin/python benchmarks/dqn_cartpole.py [--seeds 0 1 2] [--eval-every 2500]

SB3's DQN runs with RL Baselines3 Zoo's tuned CartPole-v1 hyperparameters (50,000
steps, MLP 256x256, lr 2.3e-3, batch 64, 128 updates every 256 steps, target refresh
every 10 steps, epsilon 1 -> 0.04 over 16%); rlkit with its own defaults for flat
observations (`configs/dqn/cartpole.yaml`: the same values plus Double DQN). Every
`--eval-every` env steps both play 10 greedy episodes on a separate env; the first
evaluation with mean return >= 475 marks the time, counting training wall-clock only
(evaluation time is subtracted). Seeds alternate between the frameworks in one process,
with the same torch thread count, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import date

import torch

from rlkit.logger import read_metrics

TARGET = 475.0
STEPS = 50_000  # RL Zoo's n_timesteps for CartPole-v1


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def rlkit_run(seed: int, eval_every: int) -> tuple[float, float, float]:
    """(seconds to target, steps to target, total training seconds); inf when not reached."""
    import rlkit

    with tempfile.TemporaryDirectory() as out:
        result = rlkit.train(
            "dqn",
            env="CartPole-v1",
            steps=STEPS,
            seed=seed,
            out_dir=out,
            name="cartpole",
            wandb="disabled",
            progress=False,
            eval_every=eval_every,
            eval_episodes=10,
            log_every=eval_every,
            threads=torch.get_num_threads(),
        )
        rows = read_metrics(result.run_dir / "metrics.jsonl")
    timing = {row["step"]: row for row in rows if "time/elapsed" in row}
    evals = [row for row in rows if "eval/return" in row]
    last = evals[-1]
    evaluating = last["time/eval_total"]
    if last["step"] == max(timing):  # the final evaluation ran after the final time row
        evaluating -= _last_eval_seconds(evals, last)
    total = timing[max(timing)]["time/elapsed"] - evaluating
    for row in evals:
        if row["eval/return"] >= TARGET:
            # time/elapsed is logged on the same step, just before the evaluation ran
            spent = timing[row["step"]]["time/elapsed"]
            before = row["time/eval_total"] - _last_eval_seconds(evals, row)
            return spent - before, float(row["step"]), total
    return math.inf, math.inf, total


def _last_eval_seconds(evals: list[dict[str, float]], row: dict[str, float]) -> float:
    index = evals.index(row)
    previous = evals[index - 1]["time/eval_total"] if index else 0.0
    return row["time/eval_total"] - previous


def sb3_run(seed: int, eval_every: int) -> tuple[float, float, float]:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    class Evaluate(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_env = gym.make("CartPole-v1")
            self.eval_env.reset(seed=seed + 10_000)
            self.eval_seconds = 0.0
            self.reached: tuple[float, float] | None = None
            self.started = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every or self.reached is not None:
                return True
            clock = time.perf_counter()
            mean, _ = evaluate_policy(
                self.model, self.eval_env, n_eval_episodes=10, deterministic=True
            )
            if mean >= TARGET:
                self.reached = (clock - self.started - self.eval_seconds, self.num_timesteps)
            self.eval_seconds += time.perf_counter() - clock
            return True

    env = gym.make("CartPole-v1")
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1_000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        verbose=0,
        device="cpu",
    )
    callback = Evaluate()
    model.learn(total_timesteps=STEPS, callback=callback)
    total = time.perf_counter() - callback.started - callback.eval_seconds
    if callback.reached is None:
        return math.inf, math.inf, total
    return callback.reached[0], float(callback.reached[1]), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results: dict[str, list[tuple[float, float, float]]] = {"rlkit": [], "SB3": []}
    for index, seed in enumerate(args.seeds):
        order = ("rlkit", "SB3") if index % 2 == 0 else ("SB3", "rlkit")
        for name in order:
            run = rlkit_run if name == "rlkit" else sb3_run
            results[name].append(run(seed, args.eval_every))
            seconds, steps, total = results[name][-1]
            print(
                f"seed {seed} {name}: {seconds:.1f} s and {steps:.0f} steps to {TARGET:.0f} "
                f"(training {total:.1f} s for {STEPS} steps)",
                flush=True,
            )
    print()
    print(
        f"{date.today()}, commit {commit()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {args.threads} threads; evaluation every "
        f"{args.eval_every} steps, 10 greedy episodes"
    )
    print("| framework | seconds to 475 (median) | steps to 475 (median) | per seed (s / steps) |")
    print("| --- | --- | --- | --- |")
    medians = {}
    for name, runs in results.items():
        seconds = statistics.median(run[0] for run in runs)
        steps = statistics.median(run[1] for run in runs)
        medians[name] = seconds
        each = ", ".join(f"{run[0]:.1f} / {run[1]:.0f}" for run in runs)
        print(f"| {name} | {seconds:.1f} | {steps:.0f} | {each} |")
    print(f"wall-clock ratio rlkit / SB3: {medians['rlkit'] / medians['SB3']:.2f}")


if __name__ == "__main__":
    main()
