"""Hyperparameter sweeps on Ray Tune: `rlkit sweep FILE` and `rlkit sweep --resume DIR`.

One YAML file describes a sweep (docs/sweep.md):

    name: dqn_cartpole                  # default: the file's stem
    run:                                # a run config, as `rlkit run --config` reads it
      agent: dqn
      env: CartPole-v1
      steps: 30000
      hparams: {gamma: 0.99}
    search:                             # run settings or `hparams.<name>`, dotted
      hparams.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
      seed: {grid: [0, 1]}
    metric: episode/return
    mode: max
    num_samples: 4
    scheduler: {kind: asha, grace_period: 5000}

Everything is validated before Ray starts. Each trial is a normal rlkit run
(`rlkit.training.train`) in a Tune trial actor, in `<sweep dir>/trials/<trial>/`, with
its own W&B run in the group named after the sweep. The run's logger hands Tune the
mean of each metric since its previous report, every `log_every` environment steps, so
ASHA (time attribute: environment steps) can stop weak trials; a stopped trial ends as
an interrupted run does (final checkpoint, W&B closed). A retried or resumed trial
continues from its run's newest checkpoint.

The sweep dir `<out_dir>/<name>/` holds `sweep.yaml` (the resolved sweep), `tune/`
(Tune's experiment state, for `--resume`), `trials/`, `logs/<trial>.log` (each trial's
output: on success the terminal shows only the sweep's own lines), and at the end
`best.yaml` (the best trial's config, for `rlkit run --config`) and `curves.png`.

In order: `space` (search keys and kinds), `spec` (the file, validated as its trials will
resolve their runs; the sweep dir made or read), `trials` (a trial's run, the Tune
trainable), `results` (the table, `best.yaml`, `curves.png`), `state` (the sealed record
of Tune's state that `--resume` trusts), and here `run_sweep`, which hands them to Tune.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rlkit.errors import UserError
from rlkit.output import LOGS_DIR
from rlkit.sweep.results import (
    BEST_FILE,
    CURVES_FILE,
    SweepResult,
    TrialRow,
    best_trial,
    format_table,
    plot_trials,
    trial_rows,
    write_best,
)
from rlkit.sweep.spec import (
    TIME_ATTR,
    TUNE_DIR,
    Sweep,
    SweepSpec,
    load_sweep,
    write_new_sweep_dir,
)
from rlkit.sweep.state import check_state, read_sweep_dir, record_state
from rlkit.sweep.trials import progress_callback, run_trial, trainable, trial_name

__all__ = [
    "BEST_FILE",
    "CURVES_FILE",
    "Sweep",
    "SweepResult",
    "SweepSpec",
    "TrialRow",
    "format_table",
    "load_sweep",
    "plot_trials",
    "read_sweep_dir",
    "run_sweep",
    "run_trial",
    "write_best",
    "write_new_sweep_dir",
]


def run_sweep(
    sweep: Sweep, *, address: str | None = None, resume: bool = False, trust_state: bool = False
) -> SweepResult:
    """Run (or with `resume`, continue) a validated sweep; Ray is started if needed.

    The sweep dir must exist already (`write_new_sweep_dir`). `resume` restores Tune's
    state only as this user's rlkit recorded it (`rlkit.sweep.state`), unless
    `trust_state`. Returns the trials, the best one, and whether the sweep was
    interrupted (Ctrl-C) before all trials ended.
    """
    from ray import tune

    from rlkit.parallel import init_ray

    if resume and not trust_state:
        check_state(sweep.directory)  # before anything in it is unpickled
    init_ray(address, forward_worker_output=False)  # trials write their own log files
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's banners off; rlkit prints its own
    tune_dir = (sweep.directory / TUNE_DIR).resolve()
    if resume and not tune.Tuner.can_restore(str(tune_dir)):
        raise UserError(
            f"--resume {sweep.directory}: Tune saved no state there yet; start the sweep "
            "again in a new dir"
        )
    try:
        with _quiet_tune():  # failures get rlkit's one line each (trials.progress_callback)
            _tuner(sweep, tune_dir, resume).fit()
    finally:  # however fit ended (done, Ctrl-C, an error): the state --resume will trust
        try:
            record_state(sweep.directory)
        except (OSError, UserError) as error:
            print(f"rlkit: {error}; --resume will need --trust-state", file=sys.stderr)
    trials = trial_rows(sweep, tune_dir)
    best = best_trial(trials, sweep.spec.mode)
    interrupted = any(row.status == "not finished" for row in trials)
    if best is not None:
        write_best(sweep, best)
    plot_trials(sweep, trials)
    return SweepResult(sweep.directory, trials, best, interrupted)


def _tuner(sweep: Sweep, tune_dir: Path, resume: bool) -> Any:
    """A new Tuner for the sweep, or with `resume` the one restored from `tune_dir`."""
    from ray import tune

    if resume:
        return tune.Tuner.restore(
            str(tune_dir), trainable(sweep), resume_unfinished=True, resume_errored=True
        )
    return tune.Tuner(
        trainable(sweep),
        param_space={key: space.to_tune() for key, space in sweep.space.items()},
        tune_config=tune.TuneConfig(
            metric=sweep.spec.metric,
            mode=sweep.spec.mode,
            num_samples=sweep.spec.num_samples,
            scheduler=_scheduler(sweep),
            # the limit goes to the generator: Tune ignores max_concurrent_trials
            # when given a search algorithm of this kind
            search_alg=tune.search.BasicVariantGenerator(
                random_state=sweep.spec.seed, max_concurrent=sweep.spec.max_concurrent or 0
            ),
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=str(tune_dir.parent),
            failure_config=tune.FailureConfig(max_failures=sweep.spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
            callbacks=[progress_callback(sweep.directory / LOGS_DIR)],
            verbose=0,
        ),
    )


@contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune's driver-side log (a traceback per failed trial) off while the sweep runs."""
    tune_log = logging.getLogger("ray.tune")
    level = tune_log.level
    tune_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        tune_log.setLevel(level)


def _scheduler(sweep: Sweep) -> Any:
    if sweep.spec.scheduler.kind == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler

    grace = sweep.spec.scheduler.grace_period or max(1, sweep.steps // 10)
    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=sweep.steps,
        grace_period=grace,
        reduction_factor=sweep.spec.scheduler.reduction_factor,
    )
