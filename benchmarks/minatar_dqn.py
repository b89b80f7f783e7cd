"""DQN on MinAtar Breakout: rlkit's learning curve over 2M frames, beside the MinAtar paper's.

    .venv/bin/python benchmarks/minatar_dqn.py [--steps 2000000] [--seed 0] [--out-dir DIR]
    .venv/bin/python benchmarks/minatar_dqn.py --curve RUN_DIR     # the table of a finished run

Runs `configs/dqn/minatar.yaml` (Young & Tian 2019's DQN settings: replay 100k, batch 32,
one update per frame, target every 1,000 frames, centered RMSProp 2.5e-4 with momentum
0.95, epsilon 1 -> 0.1 over 100k frames, a 3x3x16 conv and a 128-unit layer) through
`rlkit run` with no wrapper, then prints the learning curve: the mean training-episode
return over each window of `--window` frames, and the greedy evaluation (20 episodes)
every `--eval-every` frames. One MinAtar frame is one agent step. The paper's figures
are recorded beside it in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import rlkit
from rlkit.logger import METRICS_FILE, read_metrics

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "dqn" / "minatar.yaml"


def curve(run_dir: Path, window: int) -> list[tuple[int, float, int, float | None]]:
    """(window end, mean training return, episodes, greedy eval return) per window."""
    rows = read_metrics(run_dir / METRICS_FILE)
    episodes = [(row["step"], row["episode/return"]) for row in rows if "episode/return" in row]
    evaluations = {row["step"]: row["eval/return"] for row in rows if "eval/return" in row}
    last = max((step for step, _ in episodes), default=0)
    table = []
    for end in range(window, last + window, window):
        inside = [value for step, value in episodes if end - window < step <= end]
        evals = [value for step, value in evaluations.items() if end - window < step <= end]
        mean = sum(inside) / len(inside) if inside else float("nan")
        table.append((end, mean, len(inside), evals[-1] if evals else None))
    return table


def print_curve(run_dir: Path, window: int) -> None:
    print(f"run dir: {run_dir}")
    print("| frames | mean training return (episodes) | greedy return (20 episodes) |")
    print("| --- | --- | --- |")
    for end, mean, count, greedy in curve(run_dir, window):
        shown = "-" if greedy is None else f"{greedy:.2f}"
        print(f"| {end:,} | {mean:.2f} ({count}) | {shown} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default="runs")
    parser.add_argument("--window", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=250_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--curve", metavar="RUN_DIR", help="only print a finished run's curve")
    args = parser.parse_args()
    if args.curve:
        print_curve(Path(args.curve), args.window)
        return
    started = time.perf_counter()
    result = rlkit.train(
        config=str(CONFIG),
        steps=args.steps,
        seed=args.seed,
        out_dir=args.out_dir,
        wandb="disabled",
        progress=False,
        threads=args.threads,
        eval_every=args.eval_every,
        eval_episodes=20,
        checkpoint_every=250_000,
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"steps": result.step, "seconds": round(seconds, 1)}))
    print_curve(result.run_dir, args.window)


if __name__ == "__main__":
    main()
