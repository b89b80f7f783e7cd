"""rlkit.stats: IQM and mean over seeds with stratified-bootstrap intervals (rliable)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rlkit.stats import (
    Estimate,
    align_curves,
    curve_estimates,
    iqm,
    score_estimates,
    summarise,
)

REPS = 200  # enough for these checks; the default is 2000


def test_iqm_by_hand_eight_and_ten_seeds() -> None:
    # 8 seeds: drop the 2 lowest and the 2 highest, mean of 3, 4, 5, 6
    assert iqm([7.0, 1.0, 100.0, 3.0, 5.0, 2.0, 6.0, 4.0]) == 4.5
    # 10 seeds: floor(10 / 4) = 2 dropped from each end, mean of the middle 6 (2..7)
    assert iqm([9.0, 0.0, 1000.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 1.0]) == 4.5
    # 4 seeds: the middle 2
    assert iqm([10.0, -3.0, 4.0, 6.0]) == 5.0


def test_score_estimates_points_and_intervals() -> None:
    values = [7.0, 1.0, 100.0, 3.0, 5.0, 2.0, 6.0, 4.0]
    estimates = score_estimates(values, reps=REPS, seed=0)
    assert estimates.iqm.value == 4.5
    assert estimates.mean.value == 16.0  # 128 / 8
    for estimate in (estimates.iqm, estimates.mean):
        assert min(values) <= estimate.low <= estimate.value <= estimate.high <= max(values)
    # the outlier drags the mean's interval far higher than the IQM's
    assert estimates.mean.high > estimates.iqm.high


def test_interval_of_two_seeds_by_hand() -> None:
    # resamples of (0, 1): means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the 2.5th
    # and 97.5th percentiles are 0 and 1 (the IQM of 2 values drops none: it is the mean)
    estimates = score_estimates([0.0, 1.0], reps=REPS, seed=3)
    assert estimates.mean == Estimate(0.5, 0.0, 1.0)
    assert estimates.iqm == Estimate(0.5, 0.0, 1.0)


def test_equal_seeds_give_a_point_interval() -> None:
    summary = summarise([500.0] * 10, target=475.0, reps=REPS)
    assert summary.iqm == summary.mean == 500.0
    assert summary.iqm_ci == summary.mean_ci == (500.0, 500.0)
    assert summary.passed == 10
    assert str(summary) == (
        "IQM 500.0 [95% CI 500.0, 500.0], mean 500.0 [95% CI 500.0, 500.0]; 10/10 seeds >= 475"
    )
    one = summarise([7.25], reps=REPS)
    assert (one.count, one.iqm_ci, one.mean_ci) == (1, (7.25, 7.25), (7.25, 7.25))
    assert one.text(".2f") == "IQM 7.25 [95% CI 7.25, 7.25], mean 7.25 [95% CI 7.25, 7.25]"


def test_summary_fields_and_text() -> None:
    values = [500.0, 438.0, 500.0, 500.0, 480.0, 500.0, 500.0, 490.0, 500.0, 500.0]
    summary = summarise(values, target=475.0, reps=REPS, seed=1)
    assert dataclasses.is_dataclass(summary)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.iqm = 0.0  # type: ignore[misc]
    assert summary.count == 10
    assert summary.values == tuple(values)
    assert summary.passed == 9
    # sorted: 438, 480, 490, 500 x 7; the middle 6 are 490 and 500 x 5
    assert summary.iqm == pytest.approx(2990 / 6)
    assert summary.mean == pytest.approx(490.8)  # 4908 / 10
    text = str(summary)
    assert text.startswith("IQM 498.3 [95% CI ") and text.endswith("; 9/10 seeds >= 475")
    assert ", mean 490.8 [95% CI " in text


def test_seeded_and_leaves_numpy_global_stream_alone() -> None:
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    first = score_estimates(values, reps=REPS, seed=7)
    assert np.random.random() == expected_next  # the caller's stream went on untouched
    assert score_estimates(values, reps=REPS, seed=7) == first
    others = {score_estimates(values, reps=REPS, seed=seed).mean for seed in range(4)}
    assert len(others) > 1  # the seed does choose the resamples


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        summarise([])
    with pytest.raises(ValueError, match="finite"):
        summarise([1.0, float("nan")])
    with pytest.raises(ValueError, match="reps"):
        summarise([1.0, 2.0], reps=0)


def test_align_curves_on_shared_and_rounded_steps() -> None:
    # identical steps: kept as they are
    steps, values = align_curves([[(10, 1.0), (20, 2.0)], [(10, 3.0), (20, 4.0)]])
    assert steps.tolist() == [10, 20]
    assert values.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    # rlkit evaluates at the first step at or past each multiple of eval_every
    curves = [
        [(5_000, 0.0), (10_194, 1.0), (20_173, 2.0), (30_023, 3.0)],
        [(10_081, 10.0), (20_101, 20.0), (30_000, 30.0)],
        [(10_000, 100.0), (19_999, 150.0), (20_000, 200.0)],  # 19,999 rounds to 10,000
    ]
    steps, values = align_curves(curves, every=10_000)
    assert steps.tolist() == [10_000, 20_000]  # 5,000 and 30,000: not every seed has them
    assert values.tolist() == [[1.0, 2.0], [10.0, 20.0], [150.0, 200.0]]  # later row kept
    with pytest.raises(ValueError, match="no step is common"):
        align_curves(curves)  # exact steps: none shared
    with pytest.raises(ValueError, match="no curves"):
        align_curves([])


def test_curve_estimates_per_step() -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(10, 5))
    curves = [
        [(1000 * (step + 1) + seed, table[seed, step]) for step in range(5)] for seed in range(10)
    ]
    estimates = curve_estimates(curves, every=1000, reps=REPS, seed=0)
    assert estimates.steps == (1000, 2000, 3000, 4000, 5000)
    for step in range(5):
        column = table[:, step]
        assert estimates.iqm[step].value == pytest.approx(iqm(column))
        assert estimates.mean[step].value == pytest.approx(column.mean())
        for estimate in (estimates.iqm[step], estimates.mean[step]):
            assert column.min() <= estimate.low <= estimate.value <= estimate.high <= column.max()
    assert curve_estimates(curves, every=1000, reps=REPS, seed=0) == estimates
    flat = curve_estimates([[(0, 2.0), (1, 3.0)]] * 4, reps=REPS)
    assert flat.iqm == (Estimate(2.0, 2.0, 2.0), Estimate(3.0, 3.0, 3.0))
