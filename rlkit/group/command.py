"""The command line, called by rlkit.cli: `rlkit run ... --seeds S`, `rlkit run --resume
GROUP_DIR` and `rlkit eval GROUP_DIR`."""

from __future__ import annotations

import argparse
import json

from rlkit.errors import UserError, shorten
from rlkit.group.groupdir import (
    FINAL_EPISODES,
    GROUP_FILE,
    SUMMARY_FILE,
    Group,
    new_group,
    parse_seeds,
    read_group,
)
from rlkit.group.results import evaluate_group, format_summary, summary
from rlkit.group.running import _say, run_group
from rlkit.rundir import CONFIG_FILE, RunLock

GROUP_LOCK = "group.lock"  # held by the one process running a group's seeds
GROUP_FILES = (GROUP_FILE, SUMMARY_FILE, CONFIG_FILE, GROUP_LOCK)

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def check_seed_modules(group: Group) -> None:
    """UserError, one line, before any seed starts, if the group's own config (which
    seeds not yet started train from) or a seed's run dir names modules that rlkit
    imports only with --trust-modules (`rlkit.trust`, the rule for one run dir)."""
    from rlkit.readback import read_config
    from rlkit.training import read_run

    read_config(group.directory)
    for seed in group.seeds:
        run_dir = group.run_dir(seed)
        if (run_dir / CONFIG_FILE).is_file():
            read_run(run_dir)


def check_group_links(group: Group) -> None:
    """One line if a file or folder rlkit keeps in the group dir or a seed's run dir is a
    symlink, before anything changes."""
    from rlkit.rundir import check_run_dir_links
    from rlkit.safefiles import refuse_links

    seed_dirs = [group.run_dir(seed).name for seed in group.seeds]
    refuse_links(group.directory, GROUP_FILES, ["logs", *seed_dirs])
    for seed in group.seeds:
        if group.run_dir(seed).is_dir():
            check_run_dir_links(group.run_dir(seed))


def run_command(args: argparse.Namespace) -> int:
    """`rlkit run ... --seeds S` and `rlkit run --resume GROUP_DIR`."""
    from rlkit.parallel import check_address, shutdown_ray

    if args.resume is not None:
        fixed = {
            "agent": "AGENT",
            "env": "--env",
            "config": "--config",
            "overrides": "--set",
            "steps": "--steps",
            "seed": "--seed",
            "seeds": "--seeds",
            "out_dir": "--out-dir",
            "name": "--name",
            "checkpoint_every": "--checkpoint-every",
            "keep_checkpoints": "--keep-checkpoints",
            "log_every": "--log-every",
            "workers": "--workers",
            "final_episodes": "--final-episodes",
            "checkpoint": "--checkpoint",
        }
        given = [option for key, option in fixed.items() if getattr(args, key, None)]
        if given:
            raise UserError(
                f"--resume continues a group with its saved config and seeds; {given[0]} "
                "cannot be changed (only --wandb and --address can)"
            )
        group = read_group(args.resume)
        check_group_links(group)
        if not args.trust_modules:
            check_seed_modules(group)
        if args.address is not None:
            check_address(args.address)
        address = args.address
        recorded = group.record.get("address")
        if address is None and recorded:
            # Ray trusts its head node fully: a group dir must not pick the cluster
            said = shorten(str(recorded))
            _say(f"the group recorded Ray address {said}; not used (give --address)")
        lock = RunLock.acquire(group.directory, GROUP_LOCK, "group dir")
        _say(f"resuming group {group.directory}")
    else:
        if args.seed is not None:
            raise UserError("give --seed for one run or --seeds for a group, not both")
        if args.checkpoint is not None or args.trust_modules:
            flag = "--checkpoint" if args.checkpoint is not None else "--trust-modules"
            raise UserError(f"{flag} goes with --resume (a new group starts every seed afresh)")
        seeds = parse_seeds(args.seeds)
        flags = {
            "env": args.env,
            "steps": args.steps,
            "out_dir": args.out_dir,
            "wandb": args.wandb,
            "checkpoint_every": args.checkpoint_every,
            "keep_checkpoints": args.keep_checkpoints,
            "log_every": args.log_every,
            "workers": args.workers,
            "address": args.address,
        }
        group = new_group(
            args.agent,
            config=args.config,
            overrides=args.overrides,
            flags=flags,
            seeds=seeds,
            name=args.name,
            final_episodes=args.final_episodes or FINAL_EPISODES,
        )
        address = args.address
        lock = RunLock.acquire(group.directory, GROUP_LOCK, "group dir")
        where = "one after another here" if group.parallel == "inprocess" else "on Ray"
        _say(
            f"group {group.name}: {group.agent} on {group.env}, {group.steps} steps, "
            f"seeds {args.seeds} ({len(seeds)} runs, {where}) -> {group.directory}"
        )
    try:
        result = run_group(
            group,
            address=address,
            wandb=args.wandb if args.resume else None,
            trust_modules=args.trust_modules if args.resume else True,
        )
    finally:
        shutdown_ray()  # the seeds' actors end before another process may take the group
        lock.release()
    print(format_summary(summary(group)))
    if result.interrupted:
        _say(f"group interrupted; continue with: rlkit run --resume {group.directory}")
        return EXIT_INTERRUPTED
    _say(f"group dir {group.directory}; summary {group.directory / SUMMARY_FILE}")
    if result.failed:
        _say(f"{len(result.failed)} of {len(group.seeds)} seeds failed")
        return EXIT_FAILED
    return 0


def eval_command(args: argparse.Namespace) -> int:
    """`rlkit eval GROUP_DIR [--episodes N] [--json]`."""
    for flag, value in (("--checkpoint", args.checkpoint), ("--seed", args.seed)):
        if value is not None:
            raise UserError(f"{flag} is for one run; a group evaluates each seed's newest")
    if args.video:
        raise UserError("--video is for one run; give one of the group's seed-<n> dirs")
    group = read_group(args.run_dir)
    if not args.trust_modules:
        check_seed_modules(group)
    data = evaluate_group(
        group,
        args.episodes or group.final_episodes,
        trust_modules=args.trust_modules,
        max_episode_steps=args.max_episode_steps,
    )
    print(json.dumps(data) if args.json else format_summary(data))
    return 0
