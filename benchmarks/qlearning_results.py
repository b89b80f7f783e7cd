"""Q-learning learning results: default settings, several seeds, greedy evaluation.

    .venv/bin/python benchmarks/qlearning_results.py [--seeds 0 1 2] [--episodes 1000]

Trains through the same code path as `rlkit run` (W&B disabled), evaluates the greedy
policy on fresh seeds, and prints one row per (env, seed) plus the training speed.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import tempfile
import time
from datetime import date

from rlkit.cli import main
from rlkit.logger import read_metrics
from rlkit.training import evaluate_run

ENVS = ("FrozenLake-v1", "Taxi-v4", "rlkit/GridWorld-v0")


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def run(
    env_id: str, seed: int, episodes: int, out: str
) -> tuple[float, float | None, float, float]:
    name = f"{env_id.replace('/', '-')}-{seed}"
    start = time.perf_counter()
    code = main(
        [
            "run",
            "qlearning",
            "--env",
            env_id,
            "--seed",
            str(seed),
            "--wandb",
            "disabled",
            "--no-progress",
            "--out-dir",
            out,
            "--name",
            name,
        ]
    )
    seconds = time.perf_counter() - start
    assert code == 0
    stats = evaluate_run(f"{out}/{name}", episodes=episodes)
    rows = read_metrics(__import__("pathlib").Path(out, name, "metrics.jsonl"))
    sps = [row["time/sps"] for row in rows if "time/sps" in row]
    return stats.mean, stats.success_rate, seconds, sum(sps) / max(1, len(sps))


def main_() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"# {date.today()} {platform.node()} {platform.processor() or platform.machine()} "
        f"commit {commit()}"
    )
    print("| env | seed | greedy mean return | success rate | train wall-clock (s) | steps/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as out:
        for env_id in ENVS:
            for seed in args.seeds:
                mean, success, seconds, sps = run(env_id, seed, args.episodes, out)
                rate = "-" if success is None else f"{success:.3f}"
                print(
                    f"| {env_id} | {seed} | {mean:.3f} | {rate} | {seconds:.1f} | {sps:,.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main_()
