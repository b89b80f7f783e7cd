"""Find and kill the Ray actor processes a test started (for worker-failure tests)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from rlkit.logger import read_metrics


def ray_worker_pids(parent: int, actor_class: str) -> list[int]:
    """PIDs of the `actor_class` Ray actor processes that descend from process `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
            if not title.startswith(f"ray::{actor_class}"):
                continue
            pid = int(entry.name)
            ancestor = pid
            while ancestor > 1 and ancestor != parent:
                stat = Path(f"/proc/{ancestor}/stat").read_text()
                ancestor = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ancestor == parent:
            found.append(pid)
    return sorted(found)


def kill_one_worker_at(run_dir: Path, step: int, killed: list[int], actor_class: str) -> None:
    """SIGKILL one `actor_class` Ray worker once the run's metrics pass `step`."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = (
            read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
        )
        pids = ray_worker_pids(os.getpid(), actor_class)
        if rows and rows[-1]["step"] >= step and pids:
            os.kill(pids[-1], signal.SIGKILL)
            killed.append(pids[-1])
            return
        time.sleep(0.05)
