"""One logger for every agent: local metrics file, Weights & Biases, progress bar.

Metric names are shared across agents: `episode/return`, `episode/length`,
`episode/success`, `train/<name>` (agent-specific), `time/sps`, `time/elapsed`.
Rows go to `metrics.jsonl` in the run directory, one JSON object per line with a
`step` and a `wall_time`: every training episode, every row. W&B runs in the run
directory (`<run>/wandb/`), project `rlkit`, named after the run directory, in the W&B
group `wandb_group` when the run has one (a sweep's or a seed group's name), offline
unless asked otherwise, kept by a child process (`rlkit.wandb_writer`).

W&B gets every row but the training episodes' as it is. Training episodes go as one row
per window, under the same names: `episode/return`, `episode/length` (and
`episode/success`) are the window's means, beside `episode/return_min`,
`episode/return_max`, `episode/length_min`, `episode/length_max` and `episode/count`
(episodes in the window). A window closes when a second of wall-clock has passed since
the previous one, and before any other row (so W&B's steps never go back): episodes that
end less than once a second (Atari) each get their own row, as before; CartPole's or
Taxi's thousands become about one row a second.

A `report` callback (given by `rlkit.sweep` to each trial) receives, at least every
`log_every` steps and once at the end, the step and the mean of each metric logged
since the previous report (metrics not logged since then keep their last value).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO

from rlkit.errors import Diverged, UserError, shorten
from rlkit.safefiles import open_no_follow, open_regular, replace_text
from rlkit.wandb_writer import WandbWriter

METRICS_FILE = "metrics.jsonl"
RECENT_EPISODES = 100
WANDB_EPISODE_WINDOW_S = 1.0  # the most wall-clock one W&B row of training episodes covers

Report = Callable[[int, dict[str, float]], None]


class FinishedEpisodes(Protocol):
    """Episodes a worker finished (`rlkit.rollout.Rollout`, A3C's gradient result)."""

    episode_returns: list[float]
    episode_lengths: list[int]
    episode_successes: list[bool | None]


def resolve_wandb_mode(requested: str | None) -> str:
    """`--wandb` if given, else the user's WANDB_MODE, else offline."""
    if requested is not None:
        return requested
    from_env = os.environ.get("WANDB_MODE", "").strip().lower()
    if from_env in ("offline", "online", "disabled"):
        return from_env
    if from_env == "dryrun":
        return "offline"
    return "offline"


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop rows after `last_step` (a resumed run redoes them), rewriting atomically.

    A damaged file (see `read_metrics`) is refused before anything changes; a last line
    cut short by a crash is dropped.
    """
    if not path.is_file():
        return
    kept = [line + "\n" for line, row in _scan(path) if row["step"] <= last_step]
    replace_text(path, "".join(kept))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics file, skipping a line cut short by a crash (not valid JSON).

    A row that is not UTF-8 text, not a JSON object, or without a numeric `step` is a
    UserError naming the file and line: the file was damaged, and a plot or a resume
    built on a guess at it would mislead.
    """
    return [row for _, row in _scan(path)]


def steady_steps_per_second(path: Path) -> float:
    """Env steps per second between the first and the last `time/elapsed` row of the
    metrics file at `path`: the run's speed once under way (start-up and the steps
    before the first row left out). Benchmarks read a run's speed this way."""
    rows = [row for row in read_metrics(path) if "time/elapsed" in row]
    first, last = rows[0], rows[-1]
    return float((last["step"] - first["step"]) / (last["time/elapsed"] - first["time/elapsed"]))


def check_metrics(path: Path) -> None:
    """UserError, one line, if the metrics file at `path` (if any) is damaged."""
    if path.is_file():
        _scan(path)


def _scan(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, row) of each row of a metrics file; see `read_metrics`."""
    return list(iter_metrics(path))


def iter_metrics(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(line, row) of each row of a metrics file, read a line at a time (a plot of a
    large file keeps only what it needs); checked as `read_metrics` checks them."""
    try:
        with open_regular(path) as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8").rstrip("\n")
                except UnicodeDecodeError:
                    raise UserError(_damaged(path, number, "is not UTF-8 text")) from None
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by kill -9
                problem = _row_problem(row)
                if problem is not None:
                    raise UserError(_damaged(path, number, problem))
                yield line, row
    except OSError as error:
        raise UserError(f"'{path}' cannot be read ({error.strerror})") from None


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f"is a JSON {type(row).__name__}, not an object"
    if "step" not in row:
        return "has no step"
    step = row["step"]
    if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step):
        return f"has a step that is not a number ({shorten(repr(step))})"
    return None


def _damaged(path: Path, number: int, problem: str) -> str:
    return (
        f"'{path}' line {number} {problem}; every line of a metrics file is a JSON object "
        "with a numeric step (the file was changed or damaged: remove or fix that line)"
    )


class Logger:
    """What agents call to report; owned and closed by the run."""

    def __init__(
        self,
        run_dir: Path,
        *,
        total_steps: int,
        start_step: int,
        log_every: int,
        wandb_mode: str,
        config: dict[str, Any],
        progress: bool,
        stream: TextIO | None = None,
        report: Report | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.total_steps = total_steps
        self._log_every = log_every
        self._next_log = (start_step // log_every + 1) * log_every
        metrics_fd = open_no_follow(run_dir / METRICS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._metrics = open(metrics_fd, "a", buffering=1)  # noqa: SIM115 closed in close()
        self._returns: deque[float] = deque(maxlen=RECENT_EPISODES)
        self.episodes = 0
        self._start_time = time.perf_counter()
        self._last_time = self._start_time
        self._last_step = start_step
        self._report = report
        self._unreported: dict[str, list[float]] = {}  # metric -> values since the last report
        self._reported: dict[str, float] = {}
        self._report_step = start_step
        self._wandb: WandbWriter | None = None
        if wandb_mode != "disabled":
            self._wandb = WandbWriter(
                run_dir, mode=wandb_mode, config=config, group=config.get("wandb_group")
            )
        self._window = _EpisodeWindow()
        self._bar: Any = None
        stream = stream if stream is not None else sys.stderr
        if progress and stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total_steps,
                initial=start_step,
                unit="step",
                dynamic_ncols=True,
                file=stream,
                smoothing=0.05,
            )

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Write one row of metrics at `step` to every sink (see `_write`)."""
        self._write(step, metrics)
        if self._wandb is not None:
            self._flush_window()
            self._wandb.log(metrics, step=step)

    def _write(self, step: int, metrics: dict[str, float]) -> None:
        """One row to `metrics.jsonl` (and to the report's means); a non-finite value raises
        `Diverged` instead (the row is not written)."""
        for name, value in metrics.items():
            number = float(value)
            if not math.isfinite(number):
                raise Diverged(f"{name} became {number}", step)
        row = {"step": step, "wall_time": round(time.time(), 3), **metrics}
        try:
            self._metrics.write(json.dumps(row) + "\n")
        except OSError as error:  # a full disk: one line, and the run stops
            raise UserError(
                f"cannot write '{self.run_dir / METRICS_FILE}' ({error.strerror}); the run "
                "stopped and its checkpoints are kept; free some space (or lift the limit), "
                f"then continue with: rlkit run --resume {self.run_dir}"
            ) from None
        if self._report is not None:
            for name, value in metrics.items():
                self._unreported.setdefault(name, []).append(float(value))

    def _flush_window(self) -> None:
        """Send W&B the training episodes of the open window as one row."""
        if self._wandb is not None and self._window.count:
            self._wandb.log(self._window.row(), step=self._window.step)
        self._window = _EpisodeWindow()

    def episode(
        self, step: int, episode_return: float, length: int, success: bool | None = None
    ) -> None:
        """Report a finished training episode."""
        self.episodes += 1
        self._returns.append(episode_return)
        metrics = {"episode/return": float(episode_return), "episode/length": length}
        if success is not None:
            metrics["episode/success"] = float(success)
        self._write(step, metrics)
        if self._wandb is not None:
            self._window.add(step, float(episode_return), length, success)
            if self._window.seconds() >= WANDB_EPISODE_WINDOW_S:
                self._flush_window()
        self.tick(step)

    def episodes_finished(
        self,
        step: int,
        returns: list[float],
        lengths: list[int],
        successes: list[bool | None],
    ) -> None:
        """Report several finished training episodes (a worker's rollout), all at `step`."""
        for episode_return, length, success in zip(returns, lengths, successes, strict=True):
            self.episode(step, episode_return, length, success)

    def log_episodes(self, step: int, finished: FinishedEpisodes) -> None:
        """Report the episodes a worker finished, all at `step`."""
        self.episodes_finished(
            step, finished.episode_returns, finished.episode_lengths, finished.episode_successes
        )

    def tick(self, step: int) -> None:
        """Advance the progress bar; every `log_every` steps also log time/sps."""
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            if self._returns:
                recent = sum(self._returns) / len(self._returns)
                self._bar.set_postfix(
                    episodes=self.episodes, recent_return=f"{recent:.3g}", refresh=False
                )
        if step >= self._next_log:
            now = time.perf_counter()
            sps = (step - self._last_step) / max(now - self._last_time, 1e-9)
            self.log(
                step, {"time/sps": round(sps, 1), "time/elapsed": round(now - self._start_time, 3)}
            )
            self._last_time, self._last_step = now, step
            self._next_log = (step // self._log_every + 1) * self._log_every
            self.report(step)

    def report(self, step: int) -> None:
        """Hand the `report` callback the means of the metrics logged since its last call."""
        if self._report is None or (step <= self._report_step and not self._unreported):
            return
        for name, values in self._unreported.items():
            self._reported[name] = sum(values) / len(values)
        self._unreported = {}
        self._report_step = step
        self._report(step, dict(self._reported))

    @property
    def recent_return(self) -> float | None:
        return sum(self._returns) / len(self._returns) if self._returns else None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._wandb is not None:
            self._flush_window()
            self._wandb.close()
            self._wandb = None
        if not self._metrics.closed:
            with contextlib.suppress(OSError):  # what a full disk did not take: the write said so
                self._metrics.close()


class _EpisodeWindow:
    """Training episodes not yet sent to W&B: one W&B row when the window closes."""

    def __init__(self) -> None:
        self.opened = time.perf_counter()
        self.step = 0
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.successes: list[bool] = []

    @property
    def count(self) -> int:
        return len(self.returns)

    def seconds(self) -> float:
        return time.perf_counter() - self.opened

    def add(self, step: int, episode_return: float, length: int, success: bool | None) -> None:
        self.step = step
        self.returns.append(episode_return)
        self.lengths.append(length)
        if success is not None:
            self.successes.append(success)

    def row(self) -> dict[str, float]:
        """Means under the per-episode names, with the window's extremes and count."""
        count = len(self.returns)
        row = {
            "episode/return": sum(self.returns) / count,
            "episode/return_min": min(self.returns),
            "episode/return_max": max(self.returns),
            "episode/length": sum(self.lengths) / count,
            "episode/length_min": float(min(self.lengths)),
            "episode/length_max": float(max(self.lengths)),
            "episode/count": float(count),
        }
        if self.successes:
            row["episode/success"] = sum(self.successes) / len(self.successes)
        return row
