"""What W&B costs a run: wall-clock with `--wandb offline` against `--wandb disabled`.

    .venv/bin/python benchmarks/wandb_overhead.py [--rounds 3]
    .venv/bin/python benchmarks/wandb_overhead.py --baseline /tmp/rlkit-old   # before/after

Two runs, each the whole `rlkit run` command as a user types it (a fresh process: imports,
W&B's start and finish included), timed from start to exit:

- `rlkit run qlearning --env Taxi-v4 --steps 200000`: about 12,000 short episodes;
- `rlkit run dqn --env CartPole-v1`: the preset, 50,000 steps, a few hundred episodes.

Each round runs every (workload, mode) pair once, in an order that alternates from round to
round (disabled first, then offline first), so a machine that gets busier or quieter during
the benchmark weighs on both modes alike. The ratio of a workload is the median offline
time over the median disabled time. `--baseline DIR` also times another rlkit checkout (its
`rlkit/` put first on PYTHONPATH, agents and envs from this one) in the same rounds, for a
before/after comparison. The load average is printed before and after: the project VM is
shared, so compare only figures measured side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {
    "taxi": ["qlearning", "--env", "Taxi-v4", "--steps", "200000"],
    "dqn": ["dqn", "--env", "CartPole-v1"],
}
MODES = ("disabled", "offline")


def timed_run(workload: str, mode: str, out: Path, checkout: Path | None) -> float:
    """Seconds of one `rlkit run` from start to exit."""
    environment = dict(os.environ)
    environment.pop("WANDB_MODE", None)
    if checkout is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(checkout), environment.get("PYTHONPATH")])
        )
    command = [
        sys.executable, "-m", "rlkit", "run", *WORKLOADS[workload], "--wandb", mode,
        "--out-dir", str(out), "--no-progress",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, env=environment, capture_output=True)
    return time.perf_counter() - started


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--baseline", type=Path, help="another rlkit checkout to time too")
    args = parser.parse_args()
    checkouts: dict[str, Path | None] = {"this": None}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    print(
        f"wandb_overhead: commit {commit()}, {datetime.now(UTC).isoformat(timespec='minutes')}, "
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average before {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    times: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as out:
        for round_index in range(args.rounds):
            modes = MODES if round_index % 2 == 0 else tuple(reversed(MODES))
            for workload in args.workloads:
                for name, checkout in checkouts.items():
                    for mode in modes:
                        seconds = timed_run(workload, mode, Path(out), checkout)
                        times.setdefault((workload, name, mode), []).append(seconds)
                        print(
                            f"round {round_index + 1}: {workload} {name} {mode} {seconds:.2f} s "
                            f"(load {os.getloadavg()[0]:.2f})",
                            flush=True,
                        )
    print(f"load average after {os.getloadavg()[0]:.2f}")
    print()
    print("| workload | rlkit | disabled s (median; runs) | offline s (median; runs) | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for workload in args.workloads:
        for name in checkouts:
            cells = []
            medians = []
            for mode in MODES:
                runs = times[(workload, name, mode)]
                medians.append(statistics.median(runs))
                cells.append(f"{medians[-1]:.2f}; {', '.join(f'{r:.2f}' for r in runs)}")
            label = "this commit" if name == "this" else f"baseline ({args.baseline})"
            print(
                f"| {workload} | {label} | {cells[0]} | {cells[1]} | "
                f"**{medians[1] / medians[0]:.3f}x** |"
            )


if __name__ == "__main__":
    main()
