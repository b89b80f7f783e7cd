"""A3C throughput on CartPole-v1: env steps/s with 1 and 2 Ray workers, and Ray's start-up.

    .venv/bin/python benchmarks/a3c_throughput.py [--steps 40000] [--order arrival]

Starts the embedded local Ray once (its start-up seconds are printed), then trains A3C
with the CartPole preset (20-step segments) through `rlkit.train`, the CLI's code path,
with 1 and then 2 Ray workers. Throughput is the steady state: env steps between the
first and the last `time/sps` row of the run divided by the seconds between them, so
the pool's start (actors, first weights) is left out; the learner runs with one torch
thread and shares the machine's cores with the workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

import rlkit
from rlkit.logger import read_metrics
from rlkit.parallel import init_ray, shutdown_ray


def steady_throughput(run_dir: Path) -> float:
    """Env steps per second between the first and the last time/sps row of a run."""
    rows = [row for row in read_metrics(run_dir / "metrics.jsonl") if "time/elapsed" in row]
    first, last = rows[0], rows[-1]
    return float((last["step"] - first["step"]) / (last["time/elapsed"] - first["time/elapsed"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="env steps per run")
    parser.add_argument("--order", choices=("arrival", "fixed"), default="arrival")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.pop("RAY_ADDRESS", None)

    started = time.perf_counter()
    startup = init_ray(None)
    print(f"ray start-up: {startup:.2f} s (init_ray; {time.perf_counter() - started:.2f} s wall)")
    results: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as out:
        for workers in (1, 2):
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
                name=f"workers-{workers}",
                wandb="disabled",
                progress=False,
                log_every=2_000,
                checkpoint_every=10 * args.steps,
                overrides=[f"apply_order={args.order}"],
            )
            wall = time.perf_counter() - begun
            results[workers] = steady_throughput(result.run_dir)
            print(
                f"{workers} worker(s): {results[workers]:.0f} env steps/s steady "
                f"({args.steps / wall:.0f} over the whole run of {wall:.1f} s, pool start included)"
            )
    shutdown_ray()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"speed-up 1 -> 2 workers: {results[2] / results[1]:.2f}x (target >= 1.5x)")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}; date {date.today()}; commit {commit}; order {args.order}"
    )


if __name__ == "__main__":
    main()
