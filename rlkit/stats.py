"""Results over seeds: interquartile mean and mean with stratified-bootstrap intervals.

Agarwal, Schwarzer, Castro, Courville, Bellemare (2021), *Deep Reinforcement Learning
at the Edge of the Statistical Precipice*, NeurIPS: report the interquartile mean (IQM,
the mean of the middle half of the runs) and the mean over runs, each with a 95%
stratified-bootstrap confidence interval. Their `rliable` package computes both::

    from rlkit.stats import curve_estimates, score_estimates, summarise

    returns = [500.0, 500.0, 438.0, 500.0, 500.0, 500.0, 500.0, 490.0, 500.0, 500.0]
    summary = summarise(returns, target=475.0)          # one value per seed
    print(summary)
    # IQM 500.0 [95% CI 486.3, 500.0], mean 492.8 [95% CI 479.4, 500.0]; 9/10 seeds >= 475
    final = score_estimates(returns)                    # .iqm, .mean: Estimate(value, low, high)
    curve = curve_estimates([seed0_rows, seed1_rows, ...], every=5000)  # rows: (step, value)

Definitions (rliable 1.2's, which these call):

- IQM: `scipy.stats.trim_mean(values, 0.25)`, which drops `floor(n / 4)` values from
  each end: of 10 seeds, the mean of the middle 6; of 8, the middle 4.
- Confidence interval: percentile bootstrap over seeds (`rliable.library.
  get_interval_estimates`, "percentile" method), `reps` resamples with replacement. With
  one task the stratified bootstrap resamples the seeds; for a curve each step's seeds are
  resampled independently, so the intervals are pointwise.
- Seeding: rliable 1.2's `StratifiedBootstrap.update_indices` draws its resamples from
  NumPy's global RNG (`np.random.choice`), not from the `random_state` it is given. So the
  estimates here seed the global RNG with `seed` for the bootstrap and put its previous
  state back afterwards: the same inputs and seed give the same intervals, and the
  caller's global NumPy stream is left as it was. (The `random_state` is passed too, so a
  rliable that honours it stays reproducible.)

A curve's seeds need not share evaluation steps (`align_curves`): with `every`, each
evaluation's step is rounded down to a multiple of `every`, which maps rlkit's
evaluations (made at the first agent step at or past each multiple of `eval_every`) back
to their scheduled step; then only the steps every seed has are kept.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DEFAULT_REPS = 2000
CONFIDENCE = 0.95

_GLOBAL_RNG = threading.Lock()  # the bootstrap borrows NumPy's global RNG (see above)


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval [low, high]."""

    value: float
    low: float
    high: float

    def text(self, fmt: str = ".1f", confidence: float = CONFIDENCE) -> str:
        """`487.5 [95% CI 471.0, 500.0]`."""
        return f"{self.value:{fmt}} [{confidence:.0%} CI {self.low:{fmt}}, {self.high:{fmt}}]"


@dataclass(frozen=True)
class ScoreEstimates:
    """IQM and mean of one score per seed, with their confidence intervals."""

    iqm: Estimate
    mean: Estimate


@dataclass(frozen=True)
class CurveEstimates:
    """IQM and mean over seeds at each common step of their curves."""

    steps: tuple[int, ...]
    iqm: tuple[Estimate, ...]
    mean: tuple[Estimate, ...]
    values: tuple[tuple[float, ...], ...]  # [seed][step], aligned


@dataclass(frozen=True)
class Summary:
    """One result over seeds: `str(summary)` is its one-line text form."""

    count: int
    mean: float
    mean_ci: tuple[float, float]
    iqm: float
    iqm_ci: tuple[float, float]
    values: tuple[float, ...]  # per seed, in the order given
    target: float | None = None
    passed: int | None = None  # seeds at or above the target
    confidence: float = CONFIDENCE

    def text(self, fmt: str = ".1f") -> str:
        """`IQM 487.5 [95% CI 471.0, 500.0], mean 481.2 [95% CI ...]; 9/10 seeds >= 475`."""
        iqm = Estimate(self.iqm, *self.iqm_ci).text(fmt, self.confidence)
        mean = Estimate(self.mean, *self.mean_ci).text(fmt, self.confidence)
        line = f"IQM {iqm}, mean {mean}"
        if self.target is not None:
            line += f"; {self.passed}/{self.count} seeds >= {self.target:g}"
        return line

    def __str__(self) -> str:
        return self.text()


def iqm(values: Sequence[float] | NDArray[np.float64]) -> float:
    """Interquartile mean: the mean after dropping floor(n/4) values from each end."""
    from rliable import metrics

    return float(metrics.aggregate_iqm(np.asarray(values, dtype=np.float64)))


def score_estimates(
    scores: Sequence[float],
    *,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> ScoreEstimates:
    """IQM and mean of one final score per seed, each with a stratified-bootstrap CI."""
    table = _as_runs(scores)[:, None]  # rliable's (runs, tasks): one task

    def aggregates(resampled: NDArray[np.float64]) -> NDArray[np.float64]:
        from rliable import metrics

        return np.array([metrics.aggregate_iqm(resampled), metrics.aggregate_mean(resampled)])

    points, intervals = _bootstrap(table, aggregates, reps, seed, confidence)
    return ScoreEstimates(
        iqm=Estimate(float(points[0]), float(intervals[0, 0]), float(intervals[1, 0])),
        mean=Estimate(float(points[1]), float(intervals[0, 1]), float(intervals[1, 1])),
    )


def align_curves(
    curves: Sequence[Sequence[tuple[float, float]]], *, every: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per-seed `(step, value)` rows on the steps every seed has: (steps, values[seed, step]).

    With `every`, each step is first rounded down to a multiple of `every` (rlkit evaluates
    at the first agent step at or past each multiple of `eval_every`; pass that); a seed
    with two rows on one rounded step keeps the later. Steps that some seed lacks are
    dropped (no interpolation). Raises ValueError when no step is common to all seeds.
    """
    if not curves:
        raise ValueError("align_curves: no curves given")
    if every is not None and every < 1:
        raise ValueError(f"align_curves: every must be a positive integer (got {every})")
    per_seed: list[dict[int, float]] = []
    for rows in curves:
        by_step: dict[int, float] = {}
        for step, value in sorted(rows, key=lambda row: row[0]):
            key = int(step) if every is None else int(step) // every * every
            by_step[key] = float(value)
        per_seed.append(by_step)
    common = sorted(set.intersection(*(set(by_step) for by_step in per_seed)))
    if not common:
        hint = "" if every is not None else "; pass every= (the evaluation period) to round"
        raise ValueError(f"align_curves: no step is common to all {len(curves)} curves{hint}")
    values = np.array([[by_step[step] for step in common] for by_step in per_seed])
    return np.array(common, dtype=np.int64), values.astype(np.float64)


def curve_estimates(
    curves: Sequence[Sequence[tuple[float, float]]],
    *,
    every: int | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> CurveEstimates:
    """IQM and mean over seeds at each common step (see `align_curves`), with pointwise CIs."""
    steps, values = align_curves(curves, every=every)
    if not np.isfinite(values).all():
        raise ValueError("curve_estimates: every value must be finite")
    table = values[:, None, :]  # rliable's (runs, tasks, steps): one task

    def aggregates(resampled: NDArray[np.float64]) -> NDArray[np.float64]:
        by_step = resampled[:, 0, :]
        return np.concatenate([_iqm_by_column(by_step), by_step.mean(axis=0)])

    points, intervals = _bootstrap(table, aggregates, reps, seed, confidence)
    count = len(steps)

    def estimates(offset: int) -> tuple[Estimate, ...]:
        return tuple(
            Estimate(
                float(points[offset + i]),
                float(intervals[0, offset + i]),
                float(intervals[1, offset + i]),
            )
            for i in range(count)
        )

    return CurveEstimates(
        steps=tuple(int(step) for step in steps),
        iqm=estimates(0),
        mean=estimates(count),
        values=tuple(tuple(float(value) for value in row) for row in values),
    )


def summarise(
    values: Sequence[float],
    *,
    target: float | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Summary:
    """Count, mean and IQM with their CIs, the values, and how many reach `target`."""
    scores = _as_runs(values)
    estimates = score_estimates(values, reps=reps, seed=seed, confidence=confidence)
    return Summary(
        count=len(scores),
        mean=estimates.mean.value,
        mean_ci=(estimates.mean.low, estimates.mean.high),
        iqm=estimates.iqm.value,
        iqm_ci=(estimates.iqm.low, estimates.iqm.high),
        values=tuple(float(value) for value in scores),
        target=target,
        passed=None if target is None else int((scores >= target).sum()),
        confidence=confidence,
    )


def _iqm_by_column(table: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each column's IQM, as rliable's `metrics.aggregate_iqm` (scipy's trim_mean, 0.25)."""
    cut = int(0.25 * table.shape[0])
    ordered = np.sort(table, axis=0)
    return ordered[cut : table.shape[0] - cut].mean(axis=0)  # type: ignore[no-any-return]


def _as_runs(values: Sequence[float] | NDArray[np.float64]) -> NDArray[np.float64]:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"need one value per seed, at least one (got shape {scores.shape})")
    if not np.isfinite(scores).all():
        raise ValueError("every value must be finite")
    return scores


def _bootstrap(
    table: NDArray[np.float64],
    aggregates: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    reps: int,
    seed: int,
    confidence: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """rliable's stratified bootstrap: (point estimates, intervals[low/high, estimate])."""
    if reps < 1:
        raise ValueError(f"reps must be a positive integer (got {reps})")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence})")
    from rliable import library

    with _seeded_global_rng(seed), warnings.catch_warnings():
        # arch deprecates random_state; rliable 1.2 passes it through (and ignores it)
        warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
        points, intervals = library.get_interval_estimates(
            {"runs": table},
            aggregates,
            method="percentile",
            reps=reps,
            confidence_interval_size=confidence,
            random_state=np.random.RandomState(seed),
        )
    return np.asarray(points["runs"], dtype=np.float64), np.asarray(
        intervals["runs"], dtype=np.float64
    )


@contextmanager
def _seeded_global_rng(seed: int) -> Iterator[None]:
    """NumPy's global RNG seeded with `seed` inside, its earlier state restored after."""
    with _GLOBAL_RNG:
        saved = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(saved)
