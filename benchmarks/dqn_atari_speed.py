"""DQN on Breakout: agent steps/s with learning at the Nature replay ratio, rlkit vs SB3.

    pip install -e ".[bench]"
    .venv/bin/python benchmarks/dqn_atari_speed.py [--steps 3000] [--warmup 1000] [--rounds 2]

Both agents: ALE/Breakout-v5 with frame skip 4, 84x84 grayscale, a stack of 4, the
Nature CNN, one batch-32 update every 4 agent steps, epsilon fixed at 0.1, one env,
sticky actions 0.25 (ALE v5), the same torch thread count. Speed is measured after
`--warmup` steps of acting alone, so it covers acting, storing, sampling and learning
together. The frameworks run alternately, `--rounds` times each, in this one process,
so machine noise hits both alike. Also prints the replay memory per transition of
each (rlkit's buffer vs SB3's ReplayBuffer).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import date
from typing import Any

import numpy as np
import torch

from rlkit.logger import read_metrics
from rlkit.replay import ReplayBuffer

# Nature's final exploration rate, held fixed, so both act greedily (a network forward)
# on 90% of steps, as in most of a real run.
EPSILON = 0.1


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def rlkit_speed(steps: int, warmup: int, buffer_size: int) -> float:
    """Agent steps/s from `warmup` to `steps`, read from the run's own time/elapsed rows."""
    import rlkit

    with tempfile.TemporaryDirectory() as out:
        result = rlkit.train(
            "dqn",
            env="Breakout",
            steps=steps,
            seed=0,
            out_dir=out,
            name="speed",
            wandb="disabled",
            progress=False,
            log_every=warmup,
            checkpoint_every=10 * steps,
            threads=torch.get_num_threads(),
            hparams={
                "buffer_size": buffer_size,
                "learning_starts": warmup,
                "epsilon": {"kind": "constant", "start": EPSILON, "end": EPSILON},
            },
        )
        rows = [row for row in read_metrics(result.run_dir / "metrics.jsonl") if "time/sps" in row]
    start = next(row for row in rows if row["step"] == warmup)
    end = rows[-1]
    return (end["step"] - start["step"]) / (end["time/elapsed"] - start["time/elapsed"])


def sb3_speed(steps: int, warmup: int, buffer_size: int) -> tuple[float, float]:
    """SB3's DQN under the same settings; (agent steps/s after warmup, bytes per transition)."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)

    class Clock(BaseCallback):
        started = finished = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps == warmup:
                self.started = time.perf_counter()
            return True

        def _on_training_end(self) -> None:
            self.finished = time.perf_counter()

    # frameskip=1 in the ALE env: SB3's AtariWrapper does the skip of 4 itself
    atari = make_atari_env("ALE/Breakout-v5", n_envs=1, seed=0, env_kwargs={"frameskip": 1})
    env = VecFrameStack(atari, n_stack=4)
    model = DQN(
        "CnnPolicy",
        env,
        buffer_size=buffer_size,
        learning_starts=warmup,
        batch_size=32,
        train_freq=4,
        gradient_steps=1,
        target_update_interval=10_000,
        exploration_initial_eps=EPSILON,
        exploration_final_eps=EPSILON,
        seed=0,
        verbose=0,
        device="cpu",
    )
    buffer: Any = model.replay_buffer
    arrays = [value for value in vars(buffer).values() if isinstance(value, np.ndarray)]
    per_transition = sum(array.nbytes for array in arrays) / buffer_size
    clock = Clock()
    model.learn(total_timesteps=steps, callback=clock)
    env.close()
    return (steps - warmup) / (clock.finished - clock.started), per_transition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rlkit_runs: list[float] = []
    sb3_runs: list[float] = []
    sb3_bytes = 0.0
    for round_index in range(args.rounds):
        rlkit_runs.append(rlkit_speed(args.steps, args.warmup, args.buffer_size))
        speed, sb3_bytes = sb3_speed(args.steps, args.warmup, args.buffer_size)
        sb3_runs.append(speed)
        print(
            f"round {round_index + 1}: rlkit {rlkit_runs[-1]:.1f} steps/s, "
            f"SB3 {sb3_runs[-1]:.1f} steps/s",
            flush=True,
        )
    buffer = ReplayBuffer(
        capacity=args.buffer_size,
        num_envs=1,
        observation_shape=(4, 84, 84),
        dtype=np.uint8,
        stacked=True,
    )
    rlkit_bytes = buffer.nbytes / args.buffer_size
    rlkit_median = statistics.median(rlkit_runs)
    sb3_median = statistics.median(sb3_runs)
    print()
    print(
        f"{date.today()}, commit {commit()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {args.threads} threads"
    )
    print(
        f"Breakout, 1 env, Nature CNN, batch 32 every 4 steps; {args.steps - args.warmup} "
        f"steps measured after {args.warmup} of warm-up, {args.rounds} rounds (median)"
    )
    print("| framework | agent steps/s (median) | runs | replay bytes per transition |")
    print("| --- | --- | --- | --- |")
    runs = ", ".join(f"{speed:.1f}" for speed in rlkit_runs)
    print(f"| rlkit | {rlkit_median:.1f} | {runs} | {rlkit_bytes:,.0f} |")
    runs = ", ".join(f"{speed:.1f}" for speed in sb3_runs)
    print(f"| Stable-Baselines3 | {sb3_median:.1f} | {runs} | {sb3_bytes:,.0f} |")
    print(f"speed ratio rlkit / SB3: {rlkit_median / sb3_median:.2f}x")
    print(f"memory ratio SB3 / rlkit: {sb3_bytes / rlkit_bytes:.1f}x")


if __name__ == "__main__":
    main()
