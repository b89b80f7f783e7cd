"""Many seeds in one command: a seed group.

    rlkit run trpo --env CartPole-v1 --seeds 0-9       # ten runs, side by side on Ray
    rlkit run --resume runs/trpo-CartPole-v1-20261203-101500-seeds   # finish what is not
    rlkit eval runs/trpo-CartPole-v1-20261203-101500-seeds            # every seed's policy
    rlkit plot GROUP_A GROUP_B -o compare.png                          # IQM and 95% CI bands

A group is one run config trained on several seeds, each seed a normal run directory:

    <out_dir>/<group>/          <group> defaults to <agent>-<env>-<date>-<time>-seeds
      group.json                what ran (agent, env, seeds, command, commit) and each seed's
                                state: finished (with its final evaluation), interrupted,
                                failed (one line), not started
      config.yaml               the group's resolved config, less the seed: `rlkit run
                                --config <group>/config.yaml --seeds 0-9` trains it again
      seed-<n>/                 a run dir per seed (config.yaml, metrics.jsonl, checkpoints/,
                                wandb/: one W&B run in the W&B group named after the group)
      logs/seed-<n>.log         everything that seed's process printed
      summary.json              per seed: the final greedy evaluation; over the seeds: IQM
                                and mean with 95% stratified-bootstrap CIs (rlkit.stats)

How the seeds run. One seed is one Ray actor reserving one CPU (`SeedRunner`), so a
machine or a cluster runs as many seeds at once as it has CPUs and queues the rest; the
driver prints a line when a seed starts and one when it ends. Inside its actor a seed's
run keeps its workers in-process (`pool: inprocess`, one torch thread): the seeds already
fill the CPUs, and worker actors of their own would only add processes (each imports
torch: 1-2 s and a few hundred MB), contend for the same CPUs (Ray would grant them
fractions) and make a seed's result depend on how its workers were scheduled; in-process
workers give every seed the same result wherever and however it runs. With `--set
pool=inprocess`, or on a 1-core machine without `--address`, the seeds run one after
another in this process, with the same results.

Every seed evaluates its greedy policy during training (`eval_every`, by default 20
evaluations over the run, so the group's curves exist) and at the end on
`final_episodes` (20) episodes of its own evaluation seed stream, as `rlkit eval` does. A
seed that fails is reported in one line (its traceback is in its log) and the others go
on. Ctrl-C stops every running seed with a checkpoint; `rlkit run --resume GROUP_DIR`
resumes interrupted seeds from their newest checkpoints, starts those never started,
and leaves finished ones alone.

In order: `groupdir` (the group dir, its constants and `--seeds`), `seed` (one seed's run,
wherever it runs), `running` (the group, seed by seed, on Ray or here), `results` (the
summary over the seeds), and `command` (`rlkit run --seeds`, `--resume`, `rlkit eval`,
called by rlkit.cli); here only their public names.
"""

from __future__ import annotations

from rlkit.group.command import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    check_seed_modules,
    eval_command,
    run_command,
)
from rlkit.group.groupdir import (
    EVALUATIONS,
    FAILED,
    FINAL_EPISODES,
    FINISHED,
    GROUP_FILE,
    INTERRUPTED,
    MAX_SEEDS,
    NOT_STARTED,
    SEED_PREFIX,
    SUMMARY_FILE,
    Group,
    SeedRecord,
    is_group_dir,
    new_group,
    parse_seeds,
    read_group,
)
from rlkit.group.results import evaluate_group, format_summary, summary, write_summary
from rlkit.group.running import GroupResult, run_group
from rlkit.group.seed import SeedJob, SeedOutcome, SeedRunner, train_seed

__all__ = [
    "EVALUATIONS",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "FAILED",
    "FINAL_EPISODES",
    "FINISHED",
    "GROUP_FILE",
    "INTERRUPTED",
    "MAX_SEEDS",
    "NOT_STARTED",
    "SEED_PREFIX",
    "SUMMARY_FILE",
    "Group",
    "GroupResult",
    "SeedJob",
    "SeedOutcome",
    "SeedRecord",
    "SeedRunner",
    "check_seed_modules",
    "eval_command",
    "evaluate_group",
    "format_summary",
    "is_group_dir",
    "new_group",
    "parse_seeds",
    "read_group",
    "run_command",
    "run_group",
    "summary",
    "train_seed",
    "write_summary",
]
