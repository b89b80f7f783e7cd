"""Learning curves from runs' local metrics files (no W&B needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlkit.errors import UserError
from rlkit.logger import METRICS_FILE, read_metrics


def curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `metric` in a run's metrics file."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise UserError(
            f"'{run_dir}' has no {METRICS_FILE}; give run directories made by `rlkit run`"
        )
    rows = [row for row in read_metrics(path) if metric in row]
    steps = np.array([row["step"] for row in rows], dtype=np.int64)
    values = np.array([row[metric] for row in rows], dtype=np.float64)
    return steps, values


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (shorter at the start)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    averaged = (cumulative[1:] - cumulative[np.arange(len(values)) + 1 - counts]) / counts
    return np.asarray(averaged, dtype=np.float64)


def plot_runs(
    run_dirs: Sequence[str | Path], output: str | Path, *, metric: str, smooth: int | None
) -> Path:
    """Overlay `metric` against steps for each run; write the figure to `output`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for run_dir in run_dirs:
        steps, values = curve(Path(run_dir), metric)
        if len(values) == 0:
            raise UserError(f"'{run_dir}' has no '{metric}' rows; try --metric episode/length")
        window = smooth or max(1, len(values) // 50)
        axes.plot(steps, moving_average(values, window), label=Path(run_dir).name)
    axes.set_xlabel("environment steps")
    axes.set_ylabel(metric + (" (moving average)" if smooth != 1 else ""))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = Path(output)
    try:
        figure.savefig(path, dpi=120)
    except OSError as error:
        raise UserError(f"-o {output}: cannot write the figure ({error.strerror})") from None
    finally:
        plt.close(figure)
    return path
