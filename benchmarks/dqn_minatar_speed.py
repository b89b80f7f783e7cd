"""DQN on MinAtar Breakout: frames per second with one update per frame, torch on two
threads (the default before the dqn/minatar preset set one) against one thread.

    .venv/bin/python benchmarks/dqn_minatar_speed.py [--steps 30000] [--rounds 2]

Each round runs `rlkit run dqn --env MinAtar/Breakout-v1 --steps STEPS --seed 0` (the
preset dqn/minatar: replay 100k, batch 32, one update per frame after 5,000 frames)
with `--set threads=2` and then `--set threads=1`, one process at a time, and reads the
run's `time/sps` rows: frames per second from the first logged row (updates under way)
to the last. The two settings learn the same way; only the float sums' order differs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rlkit.logger import steady_steps_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rlkit = str(Path(sys.executable).with_name("rlkit"))
    found: dict[int, list[float]] = {2: [], 1: []}
    with tempfile.TemporaryDirectory() as out:
        for round_ in range(args.rounds):
            for threads in (2, 1):
                name = f"t{threads}-{round_}"
                command = [rlkit, "run", "dqn", "--env", "MinAtar/Breakout-v1", "--steps",
                           str(args.steps), "--seed", "0", "--set", f"threads={threads}",
                           "--log-every", "5000", "--wandb", "disabled", "--out-dir", out,
                           "--name", name, "--no-progress"]  # fmt: skip
                subprocess.run(command, check=True, capture_output=True)
                found[threads].append(steady_steps_per_second(Path(out) / name / "metrics.jsonl"))
                print(f"threads={threads}: {found[threads][-1]:,.0f} frames/s", flush=True)
    two, one = statistics.median(found[2]), statistics.median(found[1])
    print("| torch threads | frames/s (each round) | median |\n| --- | --- | --- |")
    for threads, rates in found.items():
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"| {threads} | {shown} | {statistics.median(rates):,.0f} |")
    print(f"one thread / two threads: {one / two:.2f}x")


if __name__ == "__main__":
    main()
