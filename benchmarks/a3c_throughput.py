"""A3C throughput on CartPole-v1: env steps/s with 1 and 2 Ray workers, and Ray's start-up.

    .venv/bin/python benchmarks/a3c_throughput.py [--steps 40000] [--order arrival]
        [--rounds 3]

Starts the embedded local Ray once (its start-up seconds are printed), then trains A3C
with the CartPole preset through `rlkit.train`, the CLI's code path, with 1 and 2 Ray
workers, interleaved (1, 2, 1, 2, ...) for `--rounds` rounds so that machine noise
hits both alike; the speed-up is the ratio of the medians. Throughput is the steady
state: env steps between the first and the last `time/sps` row of the run divided by
the seconds between them, so the pool's start (actors, first weights) is left out; the
learner runs with one torch thread and shares the machine's cores with the workers.
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

import torch

import rlkit
from rlkit.logger import steady_steps_per_second
from rlkit.parallel import init_ray, shutdown_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="env steps per run")
    parser.add_argument("--order", choices=("arrival", "fixed"), default="arrival")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each pool size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.pop("RAY_ADDRESS", None)

    started = time.perf_counter()
    startup = init_ray(None)
    print(f"ray start-up: {startup:.2f} s (init_ray; {time.perf_counter() - started:.2f} s wall)")
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as out:
        for run, workers in enumerate([1, 2] * args.rounds):
            begun = time.perf_counter()
            result = rlkit.train(
                "a3c",
                env="CartPole-v1",
                steps=args.steps,
                seed=0,
                workers=workers,
                pool="ray",
                threads=1,
                out_dir=out,
                name=f"run-{run}-workers-{workers}",
                wandb="disabled",
                progress=False,
                log_every=2_000,
                checkpoint_every=10 * args.steps,
                overrides=[f"apply_order={args.order}"],
            )
            wall = time.perf_counter() - begun
            results[workers].append(steady_steps_per_second(result.run_dir / "metrics.jsonl"))
            print(
                f"{workers} worker(s): {results[workers][-1]:.0f} env steps/s steady "
                f"({args.steps / wall:.0f} over the whole run of {wall:.1f} s, pool start included)"
            )
    shutdown_ray()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    medians = {workers: statistics.median(runs) for workers, runs in results.items()}
    for workers, runs in results.items():
        listed = ", ".join(f"{value:.0f}" for value in runs)
        print(f"{workers} worker(s): median {medians[workers]:.0f} env steps/s ({listed})")
    print(f"speed-up 1 -> 2 workers: {medians[2] / medians[1]:.2f}x (target >= 1.5x)")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}; date {date.today()}; commit {commit}; order {args.order}"
    )


if __name__ == "__main__":
    main()
