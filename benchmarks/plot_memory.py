"""`rlkit plot` of a large metrics file: peak memory (max RSS) and seconds.

    .venv/bin/python benchmarks/plot_memory.py [--rows 2000000]

Writes a run dir whose metrics.jsonl holds `--rows` episode rows (about 170 bytes each:
2M rows are about 350 MB), then runs `rlkit plot RUN -o FILE` in a child process and
prints the child's peak resident memory and wall-clock. The plot reads the file a line
at a time and keeps only the plotted metric's points.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        run.mkdir()
        padding = "x" * 60
        with open(run / "metrics.jsonl", "w") as metrics:
            for step in range(args.rows):
                row = {"step": step, "wall_time": 1.8e9 + step, "episode/return": step % 7,
                       "episode/length": 100, "other/padding": padding}  # fmt: skip
                metrics.write(json.dumps(row) + "\n")
        size = (run / "metrics.jsonl").stat().st_size
        rlkit = str(Path(sys.executable).with_name("rlkit"))
        started = time.perf_counter()
        subprocess.run([rlkit, "plot", str(run), "-o", str(Path(folder) / "plot.png")],
                       check=True, capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"metrics.jsonl {size / 2**20:,.0f} MiB, {args.rows:,} rows: rlkit plot peak "
          f"{peak:,.0f} MiB, {seconds:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
