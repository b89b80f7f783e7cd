"""Learning curves from runs' local metrics files (no W&B needed).

    plot_runs(["runs/a", "runs/b"], "curve.png", metric="episode/return", smooth=None)
    plot_groups(["runs/trpo-seeds", "runs/dqn-seeds"], "compare.svg", metric="eval/return")

`plot_runs` overlays one moving-average curve per run. `plot_groups` draws one curve per
seed group (`rlkit run --seeds`): at each evaluation step, the IQM (or mean) over the
group's seeds with a shaded 95% stratified-bootstrap confidence interval (`rlkit.stats`).
Each seed's rows are put in bins of the group's `eval_every` steps (a row at step s goes
to the bin starting at s // eval_every x eval_every, where the evaluation scheduled there
lands) and averaged within a bin; a group's curve has the bins all its seeds reached. On
a wall-clock axis, a bin's x is the median over seeds of the seconds from a seed's first
row to its rows in that bin (a resumed run's pause counts). The figure's format follows
the file's suffix (.png, .svg, .pdf, ...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlkit.errors import UserError, describe_exception, shorten
from rlkit.logger import METRICS_FILE, iter_metrics
from rlkit.safefiles import fresh_temporary


def curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `metric` in a run's metrics file."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        raise UserError(
            f"'{run_dir}' has no {METRICS_FILE}; give run directories made by `rlkit run`"
        )
    steps, values = [], []
    for _, row in iter_metrics(path):  # a line at a time: only the metric's points are kept
        if metric in row:
            steps.append(float(row["step"]))
            values.append(metric_value(path, row, metric))
    return np.array(steps, dtype=np.float64), np.array(values, dtype=np.float64)


def metric_value(path: Path, row: dict[str, Any], metric: str) -> float:
    """`row[metric]` as a float; UserError naming the file and step when it is no number."""
    value = row[metric]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(
            f"'{path}': a '{shorten(metric)}' value at step {row['step']} is not a number "
            f"({shorten(repr(value))}); plot another --metric, or fix the file"
        )
    return float(value)


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (shorter at the start)."""
    if window <= 1 or len(values) == 0:
        return values
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    averaged = (cumulative[1:] - cumulative[np.arange(len(values)) + 1 - counts]) / counts
    return np.asarray(averaged, dtype=np.float64)


def output_path(output: str | Path, formats: dict[str, str]) -> Path:
    """The image file `-o` names: a file name whose suffix is one of `formats` (matplotlib's),
    or no suffix (`.png` added); UserError for an empty name, a folder, an unknown suffix or
    a missing parent folder."""
    text = str(output)
    accepted = ", ".join(f".{suffix}" for suffix in sorted(formats))
    if not text.strip():
        raise UserError("-o '': give an image file name, e.g. -o curve.png")
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        raise UserError(
            f"-o {shorten(text)} is a folder; give an image file name, e.g. "
            f"-o {shorten(path / 'curve.png')}"
        )
    suffix = path.suffix.lower().removeprefix(".")
    if not suffix:
        path = path.with_name(path.name + ".png")
    elif suffix not in formats:
        raise UserError(
            f"-o {shorten(text)}: unknown image format '.{shorten(suffix)}'; accepted: {accepted}"
        )
    if not path.parent.is_dir():
        raise UserError(
            f"-o {shorten(text)}: folder '{shorten(path.parent)}' does not exist; create it first"
        )
    return path


def plot_runs(
    run_dirs: Sequence[str | Path], output: str | Path, *, metric: str, smooth: int | None
) -> Path:
    """Overlay `metric` against steps for each run; write the figure to `output` (whole or
    not at all: a temporary file, then a rename) and return the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for run_dir in run_dirs:
        steps, values = curve(Path(run_dir), metric)
        if len(values) == 0:
            raise UserError(
                f"'{shorten(run_dir)}' has no '{shorten(metric)}' rows; try --metric episode/length"
            )
        window = smooth or max(1, len(values) // 50)
        axes.plot(steps, moving_average(values, window), label=Path(run_dir).name)
    axes.set_xlabel("environment steps")
    axes.set_ylabel(metric + (" (moving average)" if smooth != 1 else ""))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return _save(figure, output)


def _save(figure: Any, output: str | Path) -> Path:
    """Write `figure` to `output` in its suffix's format (see `output_path`), whole or not
    at all (a temporary file, then a rename); close it; return the path written."""
    import matplotlib.pyplot as plt

    try:
        path = output_path(output, figure.canvas.get_supported_filetypes())
        fd, temporary = fresh_temporary(path)
        os.close(fd)
        try:
            figure.savefig(temporary, dpi=120, format=path.suffix.lower().removeprefix("."))
            os.replace(temporary, path)
        except Exception as error:  # OSError; RuntimeError: .pgf needs LaTeX
            temporary.unlink(missing_ok=True)
            reason = error.strerror if isinstance(error, OSError) else describe_exception(error)
            raise UserError(f"-o {shorten(output)}: cannot write the figure ({reason})") from None
    finally:
        plt.close(figure)
    return path


@dataclass(frozen=True)
class GroupCurve:
    """A seed group's curve: per bin, x, the aggregate and its 95% CI, over `seeds`."""

    label: str
    seeds: int
    x: np.ndarray
    center: np.ndarray
    low: np.ndarray
    high: np.ndarray


def split_group_dirs(directories: Sequence[str | Path]) -> bool:
    """True when every dir is a seed group, False when none is; mixing them is an error."""
    from rlkit.group import is_group_dir

    groups = [is_group_dir(directory) for directory in directories]
    if any(groups) and not all(groups):
        mixed = next(d for d, group in zip(directories, groups, strict=True) if not group)
        raise UserError(
            f"'{mixed}' is a run dir among seed group dirs; plot groups or runs, not both "
            "(a seed's run dir is <group>/seed-<n>)"
        )
    return all(groups)


def group_curve(
    group_dir: str | Path, *, metric: str, aggregate: str = "iqm", wall_clock: bool = False
) -> GroupCurve:
    """The curve of `metric` over a seed group's seeds (see the module docstring)."""
    from rlkit.group import read_group
    from rlkit.stats import curve_estimates

    group = read_group(group_dir)
    every = int(group.config.get("eval_every") or group.config.get("log_every") or 1)
    per_seed: list[list[tuple[float, float]]] = []
    seconds: list[dict[int, float]] = []
    for seed in group.seeds:
        path = group.run_dir(seed) / METRICS_FILE
        if not path.is_file():
            continue
        start = math.inf
        values: dict[int, list[float]] = {}
        times: dict[int, list[float]] = {}
        for _, row in iter_metrics(path):  # a line at a time: only the metric is kept
            wall_time = float(row.get("wall_time", 0.0))
            start = min(start, wall_time)
            if metric in row:
                key = int(row["step"]) // every * every
                values.setdefault(key, []).append(metric_value(path, row, metric))
                times.setdefault(key, []).append(wall_time)
        times = {key: [moment - start for moment in moments] for key, moments in times.items()}
        if values:
            per_seed.append([(step, float(np.mean(v))) for step, v in sorted(values.items())])
            seconds.append({step: float(np.mean(t)) for step, t in times.items()})
    if not per_seed:
        raise UserError(
            f"'{group_dir}': no seed has '{metric}' rows yet; try --metric episode/return"
        )
    try:
        estimates = curve_estimates(per_seed)
    except ValueError:
        raise UserError(
            f"'{group_dir}': its seeds' '{metric}' rows share no step; plot its seed-<n> "
            "run dirs instead"
        ) from None
    chosen = estimates.iqm if aggregate == "iqm" else estimates.mean
    steps = np.asarray(estimates.steps, dtype=np.float64)
    if wall_clock:
        x = np.array([np.median([times[int(s)] for times in seconds]) for s in steps])
    else:
        x = steps
    return GroupCurve(
        label=group.name,
        seeds=len(per_seed),
        x=x,
        center=np.array([e.value for e in chosen]),
        low=np.array([e.low for e in chosen]),
        high=np.array([e.high for e in chosen]),
    )


def draw_groups(
    group_dirs: Sequence[str | Path],
    *,
    metric: str,
    aggregate: str = "iqm",
    wall_clock: bool = False,
) -> Any:
    """A matplotlib figure: one curve and one 95% CI band (a PolyCollection) per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [
        group_curve(d, metric=metric, aggregate=aggregate, wall_clock=wall_clock)
        for d in group_dirs
    ]
    figure, axes = plt.subplots(figsize=(8, 5))
    for curve in curves:
        (line,) = axes.plot(curve.x, curve.center, label=f"{curve.label} ({curve.seeds} seeds)")
        axes.fill_between(curve.x, curve.low, curve.high, color=line.get_color(), alpha=0.2)
    axes.set_xlabel("wall-clock (s)" if wall_clock else "environment steps")
    axes.set_ylabel(
        f"{metric}, {aggregate.upper() if aggregate == 'iqm' else aggregate} over seeds (95% CI)"
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


def plot_groups(
    group_dirs: Sequence[str | Path],
    output: str | Path,
    *,
    metric: str,
    aggregate: str = "iqm",
    wall_clock: bool = False,
) -> Path:
    """One curve with its 95% CI band per seed group; the figure written to `output`."""
    figure = draw_groups(group_dirs, metric=metric, aggregate=aggregate, wall_clock=wall_clock)
    return _save(figure, output)
