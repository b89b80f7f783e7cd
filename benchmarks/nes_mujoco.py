"""NES (es) on MuJoCo through the default command: the speed-up of 1 -> 2 Ray workers, and
the learning curves of finished runs beside Salimans et al. 2017's mark.

    .venv/bin/python benchmarks/nes_mujoco.py --speed [--env HalfCheetah-v5] [--steps 480000]
    .venv/bin/python benchmarks/nes_mujoco.py --curve RUN_DIR [RUN_DIR ...]

`--speed` runs `rlkit run nes --env ENV --steps STEPS --workers W` (the preset
`nes/mujoco`, W&B off) for W = 1, 2, 1, 2, one run at a time, and reads each run's
`time/sps` rows: env steps per second after the first generation (which holds Ray's and
the workers' start-up), the median of the two runs per worker count, and the ratio.

`--curve` prints each run's mean population return per 480k steps (the search's
learning curve: perturbed policies around the centre, full-length episodes) and the
step at which it first reached 2,386, the HalfCheetah score Salimans et al. 2017 (table
3) give TRPO at 5M steps, which ES matched after 2.88M steps (their table 1).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rlkit.logger import read_metrics, steady_steps_per_second

MARK = 2386.0  # Salimans et al. 2017, table 3: TRPO on HalfCheetah at 5M steps
EPISODE = 1000  # the MuJoCo locomotion tasks' time limit


def speed(env: str, steps: int) -> None:
    rlkit = str(Path(sys.executable).with_name("rlkit"))
    found: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as out:
        for index, workers in enumerate((1, 2, 1, 2)):
            name = f"w{workers}-{index}"
            command = [rlkit, "run", "nes", "--env", env, "--steps", str(steps), "--workers",
                       str(workers), "--wandb", "disabled", "--out-dir", out, "--name", name,
                       "--no-progress"]  # fmt: skip
            subprocess.run(command, check=True, capture_output=True)
            found[workers].append(steady_steps_per_second(Path(out) / name / "metrics.jsonl"))
            print(f"{workers} worker(s): {found[workers][-1]:,.0f} env steps/s", flush=True)
    one, two = statistics.median(found[1]), statistics.median(found[2])
    print("| workers | env steps/s (two runs) | median |\n| --- | --- | --- |")
    for workers, rates in found.items():
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"| {workers} | {shown} | {statistics.median(rates):,.0f} |")
    print(f"speed-up 1 -> 2 workers: {two / one:.2f}x")


def curve(run_dirs: list[Path], every: int = 480_000) -> None:
    for run_dir in run_dirs:
        # generations of whole episodes: the last one is cut short to end on the step total
        rows = read_metrics(run_dir / "metrics.jsonl")
        points = [(row["step"], row["train/population_return"]) for row in rows
                  if "train/population_return" in row
                  and row["train/episode_step_limit"] >= EPISODE]  # fmt: skip
        reached = next((step for step, value in points if value >= MARK), None)
        shown = []
        for end in range(every, int(points[-1][0]) + every, every):
            inside = [value for step, value in points if end - every < step <= end]
            if inside:
                shown.append(f"{end / 1e6:.2f}M {statistics.mean(inside):,.0f}")
        print(f"{run_dir.name}: " + "; ".join(shown))
        print(
            f"  first population mean >= {MARK:,.0f}: " + (f"{reached:,}" if reached else "never")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument("--steps", type=int, default=480_000)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--speed", action="store_true")
    what.add_argument("--curve", type=Path, nargs="+")
    args = parser.parse_args()
    if args.speed:
        speed(args.env, args.steps)
    else:
        curve(args.curve)


if __name__ == "__main__":
    main()
