"""A sweep's results: the table of trials, `best.yaml` (for `rlkit run --config`) and
`curves.png`, from Tune's experiment state and the trials' run dirs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlkit.config import dump_yaml, load_yaml
from rlkit.logger import METRICS_FILE, read_metrics
from rlkit.rundir import CONFIG_FILE
from rlkit.safefiles import replace_text
from rlkit.sweep.spec import TIME_ATTR, Sweep, describe, format_value, plain

BEST_FILE = "best.yaml"
CURVES_FILE = "curves.png"


@dataclass(frozen=True)
class TrialRow:
    name: str
    config: dict[str, Any]
    metric: float | None
    step: int
    status: str  # finished, stopped early, failed, not finished
    failures: int  # times the trial failed (Tune's num_failures)

    @property
    def retries(self) -> int:
        """Failures that Tune retried: all but a last one that ended the trial."""
        return max(0, self.failures - 1) if self.status == "failed" else self.failures


@dataclass(frozen=True)
class SweepResult:
    directory: Path
    trials: list[TrialRow]
    best: TrialRow | None
    interrupted: bool


def trial_rows(sweep: Sweep, tune_dir: Path) -> list[TrialRow]:
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(tune_dir))
    rows = []
    for trial in sorted(analysis.trials, key=str):
        result = trial.last_result or {}
        step = int(result.get(TIME_ATTR, 0))
        value = result.get(sweep.spec.metric)
        if trial.status == "ERROR":
            status = "failed"
        elif trial.status != "TERMINATED":
            status = "not finished"
        elif step >= _trial_steps(sweep, str(trial), trial.config):
            status = "finished"
        else:
            status = "stopped early"
        rows.append(
            TrialRow(
                name=str(trial),
                config={key: plain(v) for key, v in trial.config.items()},
                metric=None if value is None else float(value),
                step=step,
                status=status,
                failures=int(trial.num_failures),
            )
        )
    return rows


def _trial_steps(sweep: Sweep, name: str, values: dict[str, Any]) -> int:
    """The steps a trial's run trains for: its resolved `config.yaml`, or where its run dir
    is on another node, the run block's (else the most any trial resolved)."""
    config = sweep.trials_dir / name / CONFIG_FILE
    if config.is_file():
        return int(load_yaml(config)["steps"])
    return int(sweep.trial_config(values).get("steps", sweep.steps))


def best_trial(trials: list[TrialRow], mode: str) -> TrialRow | None:
    """The best finished trial by its last reported metric (any trial if none finished)."""
    scored = [row for row in trials if row.metric is not None and math.isfinite(row.metric)]
    finished = [row for row in scored if row.status == "finished"] or scored
    if not finished:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return max(finished, key=lambda row: sign * (row.metric or 0.0))


def write_best(sweep: Sweep, best: TrialRow) -> Path:
    """`best.yaml`: the best trial's resolved config, for `rlkit run --config`.

    On a cluster without a shared file system the trial's run dir may be on another
    node; then the sweep's run block with the trial's values stands in for it.
    """
    resolved = sweep.trials_dir / best.name / CONFIG_FILE
    if resolved.is_file():
        config = load_yaml(resolved)
        reset = {"name": None, "out_dir": "runs", "wandb_group": None, "threads": None}
        config.update({**reset, "progress": True})
    else:
        config = {"agent": sweep.agent, **sweep.trial_config(best.config)}
        config.pop("threads", None)
    header = (
        f"# Best trial of sweep '{sweep.name}': {best.name}, {sweep.spec.metric} "
        f"{best.metric:.6g} ({sweep.spec.mode}) at step {best.step}.\n"
        f"# Searched: {describe(best.config)}\n"
        f"# Train it: rlkit run --config {sweep.directory / BEST_FILE}\n"
    )
    path = sweep.directory / BEST_FILE
    replace_text(path, header + dump_yaml(config))
    return path


def plot_trials(sweep: Sweep, trials: list[TrialRow]) -> Path | None:
    """`curves.png`: every trial's curve of the sweep's metric."""
    from rlkit.plot import plot_runs

    run_dirs = []
    for row in trials:
        metrics = sweep.trials_dir / row.name / METRICS_FILE
        if metrics.is_file() and any(sweep.spec.metric in r for r in read_metrics(metrics)):
            run_dirs.append(sweep.trials_dir / row.name)
    if not run_dirs:
        return None
    return plot_runs(run_dirs, sweep.directory / CURVES_FILE, metric=sweep.spec.metric, smooth=None)


def format_table(sweep: Sweep, result: SweepResult) -> str:
    """The trials as a text table: name, searched values, metric, steps, status."""
    keys = list(sweep.space)
    header = ["trial", *keys, sweep.spec.metric, "steps", "status"]
    lines = []
    for row in result.trials:
        status = row.status + (f" (retried {row.retries}x)" if row.retries else "")
        metric = "-" if row.metric is None else f"{row.metric:.4g}"
        best = " *" if result.best is not None and row.name == result.best.name else ""
        values = [format_value(row.config.get(key, "")) for key in keys]
        lines.append([row.name + best, *values, metric, str(row.step), status])
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        for cells in [header, *lines]
    ]
    return "\n".join(line.rstrip() for line in text)
