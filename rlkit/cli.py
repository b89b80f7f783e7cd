"""The `rlkit` command: run, sweep, eval, plot, list.

User errors print one line, `rlkit: <what is wrong>; <what is accepted>`, and exit
with code 2. `rlkit --help` and `rlkit list` import neither torch, ray nor wandb.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from rlkit import __version__
from rlkit.errors import UserError, shorten

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
MESSAGE_LIMIT = 2000  # characters of an error line, whatever it quotes


class _Parser(argparse.ArgumentParser):
    """argparse with rlkit's one-line errors, and no abbreviated options (`--checkpoint`
    must never be read as `--checkpoint-every`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        quoted = re.sub(r"'([^']*)'", lambda match: f"'{shorten(match.group(1))}'", message)
        raise UserError(f"{shorten(quoted, 300)}; see `{self.prog} --help`")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shorten(repr(text))} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shorten(repr(text))} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or a positive integer")
    return value


TRUST_MODULES_HELP = (
    "import the modules RUN_DIR's config names (env module:Id, env_wrappers) even where "
    "rlkit would refuse them: outside the installed env packages, or inside the run dir "
    "(docs/environments.md); only for a run dir you trust"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rlkit",
        description="Train, evaluate and compare reinforcement-learning agents.",
        epilog="Examples: rlkit run qlearning --env FrozenLake-v1 | "
        "rlkit sweep configs/sweeps/dqn_cartpole.yaml | rlkit eval runs/<run> "
        "--episodes 1000 | rlkit plot runs/* -o curve.png | rlkit list agents",
    )
    parser.add_argument("--version", action="version", version=f"rlkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    run = commands.add_parser(
        "run",
        help="train an agent",
        description="Train an agent. Settings merge as: defaults < --config YAML < flags < --set.",
    )
    run.add_argument("agent", nargs="?", help="agent name (see `rlkit list agents`)")
    run.add_argument("--env", help="Gymnasium id, short name (FrozenLake, Taxi) or module:Id")
    run.add_argument("--config", metavar="FILE", help="YAML file of settings (see configs/)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a hyperparameter or run setting; repeatable; nested: epsilon.end=0.05",
    )
    run.add_argument(
        "--steps", type=_positive_int, help="environment steps in total (default: per agent)"
    )
    run.add_argument("--seed", type=_non_negative_int, help="run seed (default 0)")
    run.add_argument("--out-dir", help="folder for run directories (default: runs)")
    run.add_argument("--name", help="run directory name (default: <agent>-<env>-<date>-<time>)")
    run.add_argument(
        "--wandb",
        choices=("offline", "online", "disabled"),
        help="Weights & Biases mode (default: $WANDB_MODE, else offline)",
    )
    run.add_argument(
        "--checkpoint-every", type=_positive_int, help="steps between checkpoints (default 50000)"
    )
    run.add_argument("--keep-checkpoints", type=_positive_int, help="checkpoints kept (default 3)")
    run.add_argument(
        "--log-every", type=_positive_int, help="steps between time/sps rows (default 10000)"
    )
    run.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        default=None,
        help="hide the progress bar",
    )
    run.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="parallel workers for agents that use a worker pool (default 2)",
    )
    run.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="Ray cluster to run workers on (default: $RAY_ADDRESS, else a local Ray)",
    )
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run from its newest checkpoint that loads (newer ones that do not "
        "are set aside, renamed *.damaged), or a seed group: its unfinished seeds",
    )
    run.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="train a group of runs, one per seed, side by side on Ray: 0-9, 0,3,7 or 0-4,10 "
        "(README: Many seeds)",
    )
    run.add_argument(
        "--final-episodes",
        type=_positive_int,
        metavar="N",
        help="with --seeds: episodes of each seed's final greedy evaluation (default 20)",
    )
    run.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="with --resume: continue from this checkpoint of RUN_DIR (newer ones are set "
        "aside, renamed *.superseded)",
    )
    run.add_argument("--trust-modules", action="store_true", help=TRUST_MODULES_HELP)

    sweep = commands.add_parser(
        "sweep",
        help="search hyperparameters with Ray Tune",
        description="Run a hyperparameter sweep described by a YAML file (docs/sweep.md): "
        "each trial is a normal run in <out-dir>/<name>/trials/.",
    )
    sweep.add_argument("file", nargs="?", help="sweep YAML file (see configs/sweeps/)")
    sweep.add_argument("--out-dir", default="sweeps", help="folder for sweep dirs (default sweeps)")
    sweep.add_argument("--name", help="sweep name and dir name (default: the file's name: key)")
    sweep.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="Ray cluster to run trials on (default: $RAY_ADDRESS, else a local Ray)",
    )
    sweep.add_argument(
        "--wandb",
        choices=("offline", "online", "disabled"),
        help="W&B mode of the trials (default: the file's wandb:, $WANDB_MODE, else offline)",
    )
    sweep.add_argument(
        "--max-concurrent", type=_positive_int, metavar="N", help="trials running at once"
    )
    sweep.add_argument(
        "--resume", metavar="SWEEP_DIR", help="continue an interrupted sweep in SWEEP_DIR"
    )
    sweep.add_argument(
        "--trust-state",
        action="store_true",
        help="with --resume: restore SWEEP_DIR's Tune state even where rlkit has no sealed "
        "record of it (a killed sweep, another user's); it is unpickled, so it runs any code "
        "in it: only for a dir you trust (docs/sweep.md)",
    )

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a trained agent",
        description="Evaluate a run's agent (its evaluation policy) on fresh episodes.",
    )
    evaluate.add_argument(
        "run_dir", help="a run directory made by `rlkit run`, or a seed group (--seeds)"
    )
    evaluate.add_argument(
        "--episodes",
        type=_positive_int,
        help="episodes (default 100; for a seed group, its final episodes: 20)",
    )
    evaluate.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default: newest)")
    evaluate.add_argument(
        "--seed",
        type=_non_negative_int,
        help="evaluation seed (default: derived from the run seed)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument(
        "--video", action="store_true", help="write an MP4 of the first episode into the run dir"
    )
    evaluate.add_argument(
        "--max-episode-steps",
        type=_positive_int,
        metavar="N",
        help="cut each episode after N steps (default: the env's own time limit, else 100000)",
    )
    evaluate.add_argument("--trust-modules", action="store_true", help=TRUST_MODULES_HELP)

    plot = commands.add_parser(
        "plot",
        help="draw learning curves",
        description="Plot episode return against steps: one curve per run, or for seed "
        "groups one curve per group (IQM over its seeds with a 95%% CI band).",
    )
    plot.add_argument(
        "run_dirs",
        nargs="+",
        metavar="DIR",
        help="run directories to overlay, or seed group dirs (not both)",
    )
    plot.add_argument(
        "-o",
        "--output",
        default="curve.png",
        help="image file; .png, .svg or .pdf (default curve.png)",
    )
    plot.add_argument(
        "--smooth", type=_positive_int, help="moving-average window in episodes (default: auto)"
    )
    plot.add_argument(
        "--metric",
        help="metric to plot (default: episode/return for runs, eval/return for groups)",
    )
    plot.add_argument(
        "--aggregate",
        choices=("iqm", "mean"),
        default="iqm",
        help="groups: the curve over seeds (default iqm)",
    )
    plot.add_argument(
        "--wall-clock",
        action="store_true",
        help="groups: x in seconds of wall-clock instead of environment steps",
    )

    listing = commands.add_parser(
        "list", help="list installed agents or environments", description="List agents or envs."
    )
    listing.add_argument("what", choices=("agents", "envs"), help="what to list")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from rlkit import group

    if args.seeds is not None or (args.resume is not None and group.is_group_dir(args.resume)):
        return group.run_command(args)
    if args.final_episodes is not None:
        raise UserError("--final-episodes goes with --seeds (a group's final evaluation)")
    from rlkit.training import train

    flags: dict[str, Any] = {
        "env": args.env,
        "steps": args.steps,
        "seed": args.seed,
        "out_dir": args.out_dir,
        "name": args.name,
        "wandb": args.wandb,
        "checkpoint_every": args.checkpoint_every,
        "keep_checkpoints": args.keep_checkpoints,
        "log_every": args.log_every,
        "progress": args.progress,
        "workers": args.workers,
        "address": args.address,
    }
    if args.resume is None and (args.checkpoint is not None or args.trust_modules):
        given = "--checkpoint" if args.checkpoint is not None else "--trust-modules"
        raise UserError(f"{given} goes with --resume RUN_DIR (the run to continue)")
    result = train(
        args.agent,
        config=args.config,
        overrides=args.overrides,
        resume=args.resume,
        checkpoint_file=args.checkpoint,
        trust_modules=args.trust_modules,
        **flags,
    )
    if result.interrupted:
        print(
            f"rlkit: interrupted at step {result.step}; saved {result.checkpoint}; "
            f"continue with: rlkit run --resume {result.run_dir}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    recent = (
        "" if result.recent_return is None else f", recent mean return {result.recent_return:.4g}"
    )
    print(
        f"rlkit: done, {result.step} steps, {result.episodes} episodes{recent}; "
        f"run dir {result.run_dir}"
    )
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from rlkit import sweep
    from rlkit.parallel import check_address, shutdown_ray

    if (args.file is None) == (args.resume is None):
        raise UserError(
            "give a sweep FILE or --resume SWEEP_DIR (one of them); see configs/sweeps/"
        )
    if args.resume is not None:
        given = [
            flag
            for flag, value in (("--name", args.name), ("--max-concurrent", args.max_concurrent))
            if value is not None
        ]
        if given:
            raise UserError(f"--resume continues a sweep as it was; {given[0]} cannot be changed")
        spec = sweep.read_sweep_dir(args.resume, wandb=args.wandb, trust_state=args.trust_state)
        check_address(args.address)
    else:
        if args.trust_state:
            raise UserError("--trust-state goes with --resume SWEEP_DIR; a new sweep has no state")
        spec = sweep.load_sweep(
            args.file,
            out_dir=args.out_dir,
            name=args.name,
            wandb=args.wandb,
            max_concurrent=args.max_concurrent,
        )
        check_address(args.address)
        sweep.write_new_sweep_dir(spec)
    try:
        result = sweep.run_sweep(
            spec,
            address=args.address,
            resume=args.resume is not None,
            trust_state=args.trust_state,
        )
    finally:
        shutdown_ray()
    print(sweep.format_table(spec, result))
    if result.interrupted:
        print(
            f"rlkit: sweep interrupted; finished trials are kept; continue with: "
            f"rlkit sweep --resume {spec.directory}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if result.best is not None:
        print(
            f"rlkit: best trial {result.best.name}; its config: {spec.directory / sweep.BEST_FILE}"
        )
    print(f"rlkit: sweep dir {spec.directory}")
    return 1 if all(row.status == "failed" for row in result.trials) else 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import json

    from rlkit import group

    if group.is_group_dir(args.run_dir):
        return group.eval_command(args)
    from rlkit.training import evaluate_run

    stats = evaluate_run(
        args.run_dir,
        episodes=args.episodes or 100,
        checkpoint=args.checkpoint,
        seed=args.seed,
        video=args.video,
        trust_modules=args.trust_modules,
        max_episode_steps=args.max_episode_steps,
    )
    print(json.dumps(stats.as_dict()) if args.json else stats.summary())
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from rlkit.plot import plot_groups, plot_runs, split_group_dirs

    if split_group_dirs(args.run_dirs):
        path = plot_groups(
            args.run_dirs,
            args.output,
            metric=args.metric or "eval/return",
            aggregate=args.aggregate,
            wall_clock=args.wall_clock,
        )
    else:
        metric = args.metric or "episode/return"
        path = plot_runs(args.run_dirs, args.output, metric=metric, smooth=args.smooth)
    print(f"rlkit: wrote {path}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "agents":
        from rlkit.registry import list_agents

        for info in list_agents():
            print(f"{info.name:<12} {info.summary}")
            print(f"{'':<12} paper: {info.paper}  [{info.distribution}: {info.target}]")
        return 0
    from rlkit.environments import short_names
    from rlkit.registry import env_namespace_plugins, env_plugins, load_env_namespace

    plugins = env_plugins()
    print("Plugin environments (entry point rlkit.envs):")
    for env_id, target in plugins.items():
        print(f"  {env_id:<32} {target}")
    namespaces = env_namespace_plugins()
    if namespaces:
        print("Namespace plugins (rlkit.envs, gymnasium.envs; listing runs each one's function):")
    for name, plugin in namespaces.items():
        print(f"  {name + '/*':<32} {plugin.target}  [{plugin.group}: {plugin.distribution}]")
        try:
            ids = load_env_namespace(plugin)
        except UserError as error:
            print(f"  {'':<32} failed: {error}")
            continue
        listed = textwrap.fill(", ".join(ids) or "(registers no id)", width=100)
        print(textwrap.indent(listed, " " * 35))
    from rlkit.environments import FAMILIES, family_status

    print("Task families (presets per task: `rlkit run AGENT --env ID` names the one it uses):")
    for family, (install, members) in FAMILIES.items():
        print(f"  {family:<32} {family_status(members)}; {install}")
        print(textwrap.indent(textwrap.fill(", ".join(members), width=100), " " * 35))
    print("Short names (name -> Gymnasium id; any registered Gymnasium id works too):")
    for name, env_id in short_names().items():
        if env_id not in plugins:
            print(f"  {name:<32} {env_id}")
    return 0


COMMANDS = {
    "run": _cmd_run,
    "sweep": _cmd_sweep,
    "eval": _cmd_eval,
    "plot": _cmd_plot,
    "list": _cmd_list,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as error:
        print(f"rlkit: {shorten(error, MESSAGE_LIMIT)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("rlkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
