"""Learning curves from runs' local metrics files (no W&B needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlkit.errors import UserError, describe_exception, shorten
from rlkit.logger import METRICS_FILE, read_metrics


def curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `metric` in a run's metrics file."""
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise UserError(
            f"'{run_dir}' has no {METRICS_FILE}; give run directories made by `rlkit run`"
        )
    rows = [row for row in read_metrics(path) if metric in row]
    for row in rows:
        value = row[metric]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(
                f"'{path}': a '{shorten(metric)}' value at step {row['step']} is not a number "
                f"({shorten(repr(value))}); plot another --metric, or fix the file"
            )
    steps = np.array([row["step"] for row in rows], dtype=np.float64)
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
    try:
        path = output_path(output, figure.canvas.get_supported_filetypes())
        for run_dir in run_dirs:
            steps, values = curve(Path(run_dir), metric)
            if len(values) == 0:
                raise UserError(
                    f"'{shorten(run_dir)}' has no '{shorten(metric)}' rows; "
                    "try --metric episode/length"
                )
            window = smooth or max(1, len(values) // 50)
            axes.plot(steps, moving_average(values, window), label=Path(run_dir).name)
        axes.set_xlabel("environment steps")
        axes.set_ylabel(metric + (" (moving average)" if smooth != 1 else ""))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.tight_layout()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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
