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
before/after comparison. Beside the wall-clock, the CPU seconds (user and system) of the
run's process and of what it waited for (W&B's writer process): on a machine whose cores
are busy with other work, W&B's CPU shows in the wall-clock, while on one with a core to
spare the writer's start overlaps the training. The load average is printed with each
run: the project VM is shared, so compare only figures measured side by side.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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


def timed_run(workload: str, mode: str, out: Path, checkout: Path | None) -> tuple[float, float]:
    """Wall-clock seconds of one `rlkit run` from start to exit, and the CPU seconds (user
    and system) of its process and every descendant it waited for (W&B's writer)."""
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    # run in `out`: `python -m` puts the working directory first on the import path, which
    # must not shadow the checkout being timed
    subprocess.run(command, check=True, env=environment, capture_output=True, cwd=out)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu


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
    cpus: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as out:
        for round_index in range(args.rounds):
            modes = MODES if round_index % 2 == 0 else tuple(reversed(MODES))
            for workload in args.workloads:
                for name, checkout in checkouts.items():
                    for mode in modes:
                        seconds, cpu = timed_run(workload, mode, Path(out), checkout)
                        times.setdefault((workload, name, mode), []).append(seconds)
                        cpus.setdefault((workload, name, mode), []).append(cpu)
                        print(
                            f"round {round_index + 1}: {workload} {name} {mode} {seconds:.2f} s, "
                            f"CPU {cpu:.2f} s (load {os.getloadavg()[0]:.2f})",
                            flush=True,
                        )
    print(f"load average after {os.getloadavg()[0]:.2f}")
    print()
    print(
        "| workload | rlkit | disabled s (median; runs) | offline s (median; runs) | ratio "
        "| CPU s disabled / offline (medians) | CPU ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for workload in args.workloads:
        for name in checkouts:
            cells = []
            medians = []
            for mode in MODES:
                runs = times[(workload, name, mode)]
                medians.append(statistics.median(runs))
                cells.append(f"{medians[-1]:.2f}; {', '.join(f'{r:.2f}' for r in runs)}")
            label = "this commit" if name == "this" else f"baseline ({args.baseline})"
            cpu = [statistics.median(cpus[(workload, name, mode)]) for mode in MODES]
            print(
                f"| {workload} | {label} | {cells[0]} | {cells[1]} | "
                f"**{medians[1] / medians[0]:.3f}x** | {cpu[0]:.2f} / {cpu[1]:.2f} "
                f"| {cpu[1] / cpu[0]:.3f}x |"
            )


if __name__ == "__main__":
    main()
