"""The learning-results table, from seed groups: how anyone re-creates it.

    # 1. train each shipped preset on seeds 0-9 (one command each; a cluster: --address)
    rlkit run --config configs/qlearning/taxi.yaml --seeds 0-9 --out-dir results
    rlkit run --config configs/nes/cartpole.yaml --set variant=snes --seeds 0-9 --out-dir results
    # 2. the table (Markdown, on stdout)
    .venv/bin/python benchmarks/learning_results.py results/*-seeds
    .venv/bin/python benchmarks/learning_results.py --list          # the built-in targets

One row per group (agent x task), from its `group.json`, `summary.json` and the seeds'
`metrics.jsonl` (`rlkit run --seeds` writes them; see README, "Many seeds"):

- target: the issue "Results that hold across seeds" states one per agent x task (the
  table `TARGETS` below); it is on the greedy return, or on the success rate where the
  env reports success (FrozenLake, the T-maze);
- seeds >= target: each seed's final greedy evaluation (its `final_episodes` episodes, 20
  by default, on the run's own evaluation seed stream), against the target;
- IQM and mean [95% CI]: over the seeds, stratified bootstrap (`rlkit.stats`, rliable);
- steps to target: median over the seeds of the first in-training evaluation
  (`eval/return`, every `eval_every` steps) at or above the target's return; seeds that
  never get there are counted beside it. On FrozenLake the return is the success (1 or
  0); on the T-maze a success rate of 0.95 is a return of 0.95 x 4 - 0.05 x 0.1 = 3.795;
- wall-clock: the median seed's seconds (training and final evaluation) and the whole
  group's (all its sessions), which depends on how many seeds ran at once;
- commit: the git commit the group ran at (`group.json`); the table's header names the
  commit that made the table.

A group whose agent x task has no built-in target gets its IQM and mean without the
target columns. Several groups of one agent x task (a variant with `--set`) each get a row,
labelled by the group's name.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """An agent x task's stated target, and how a group is matched to it."""

    agent: str
    env: str
    task: str  # as the table names it
    value: float
    metric: str = "return"  # or "success"
    curve_value: float | None = None  # the eval/return that counts as the target reached
    variant: str | None = None  # nes: es or snes
    tmaze_length: int | None = None

    @property
    def return_value(self) -> float:
        return self.value if self.curve_value is None else self.curve_value

    def matches(self, agent: str, env: str, config: dict[str, Any]) -> bool:
        if (agent, env) != (self.agent, self.env):
            return False
        hparams = config.get("hparams") or {}
        if self.variant is not None and hparams.get("variant") != self.variant:
            return False
        if self.tmaze_length is not None:
            return (config.get("env_kwargs") or {}).get("length") == self.tmaze_length
        return True


TARGETS = (
    Target("qlearning", "FrozenLake-v1", "FrozenLake-v1", 0.70, "success", curve_value=0.70),
    Target("qlearning", "Taxi-v4", "Taxi-v4", 7.5),
    Target("dqn", "CartPole-v1", "CartPole-v1", 475.0),
    Target("trpo", "CartPole-v1", "CartPole-v1", 475.0),
    Target("trpo", "Pendulum-v1", "Pendulum-v1", -250.0),
    Target("a3c", "CartPole-v1", "CartPole-v1", 475.0),
    Target(
        "rpg",
        "rlkit/TMaze-v0",
        "T-maze, length 10",
        0.95,
        "success",
        curve_value=0.95 * 4.0 - 0.05 * 0.1,  # +4 per correct turn, -0.1 per wrong one
        tmaze_length=10,
    ),
    Target("rpg", "rlkit/CartPoleNoVel-v0", "CartPoleNoVel", 400.0),
    Target("nes", "CartPole-v1", "CartPole-v1 (es)", 475.0, variant="es"),
    Target("nes", "CartPole-v1", "CartPole-v1 (snes)", 475.0, variant="snes"),
    Target("nes", "Pendulum-v1", "Pendulum-v1 (snes)", -300.0, variant="snes"),
)


def target_for(agent: str, env: str, config: dict[str, Any]) -> Target | None:
    return next((t for t in TARGETS if t.matches(agent, env, config)), None)


def git_commit(path: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def steps_to(run_dir: Path, value: float) -> int | None:
    """The step of the run's first in-training evaluation at or above `value`."""
    from rlkit.logger import read_metrics

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    for row in read_metrics(path):
        if "eval/return" in row and row["eval/return"] >= value:
            return int(row["step"])
    return None


def row_of(directory: Path) -> list[str]:
    """One table row for the group in `directory`."""
    from rlkit.group import SUMMARY_FILE, read_group, summary
    from rlkit.stats import summarise

    group = read_group(directory)
    path = directory / SUMMARY_FILE
    data = json.loads(path.read_text()) if path.is_file() else summary(group)
    target = target_for(group.agent, group.env, group.config)
    key = "success_rate" if target is not None and target.metric == "success" else "return"
    finished = [row for row in data["seeds"] if row.get(key) is not None]
    values = [float(row[key]) for row in finished]
    if not values:
        raise SystemExit(f"learning_results: {directory}: no seed has a final evaluation yet")
    result = summarise(values, target=None if target is None else target.value)
    task = target.task if target is not None else group.env
    label = f"{task} ({group.name})"
    if target is None:
        reached, steps_text, target_text = "-", "-", "-"
    else:
        reached = f"{result.passed}/{len(group.seeds)}"
        firsts = [steps_to(group.run_dir(row["seed"]), target.return_value) for row in finished]
        got = [step for step in firsts if step is not None]
        steps_text = f"{statistics.median(got):,.0f}" if got else "never"
        if got and len(got) < len(firsts):
            steps_text += f" ({len(firsts) - len(got)} never)"
        name = "success" if target.metric == "success" else "return"
        target_text = f"{name} >= {target.value:g}"
        episodes = int(data.get("episodes") or group.final_episodes)
        target_text += f" ({episodes} episodes)" if episodes != 20 else ""
    if len(values) < len(group.seeds):
        reached += f" ({len(group.seeds) - len(values)} not finished)"
    seconds = [float(row["seconds"]) for row in finished]
    sessions = group.record.get("sessions", [])
    total = f"{sum(float(s.get('seconds', 0.0)) for s in sessions):.0f} s" if sessions else "-"
    wall = f"{statistics.median(seconds):.0f} s / {total}"
    return [
        group.agent,
        label,
        target_text,
        reached,
        f"{_short(result.iqm)} [{_short(result.iqm_ci[0])}, {_short(result.iqm_ci[1])}]",
        f"{_short(result.mean)} [{_short(result.mean_ci[0])}, {_short(result.mean_ci[1])}]",
        steps_text,
        wall,
        str(group.record.get("git_commit") or "unknown")[:7],
    ]


def _short(value: float) -> str:
    if math.isfinite(value) and abs(value) < 10:
        return f"{value:.3g}"
    return f"{value:.1f}"


def table(directories: list[Path]) -> str:
    header = [
        "agent",
        "task (group)",
        "target",
        "seeds >= target",
        "IQM [95% CI]",
        "mean [95% CI]",
        "steps to target (median)",
        "wall-clock: median seed / group",
        "commit",
    ]
    lines = [
        f"Learning results over seeds: `benchmarks/learning_results.py`, commit "
        f"{git_commit(ROOT)}, {datetime.now(UTC).date().isoformat()}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    lines += ["| " + " | ".join(row_of(directory)) + " |" for directory in directories]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("groups", nargs="*", type=Path, help="seed group dirs (rlkit run --seeds)")
    parser.add_argument("--list", action="store_true", help="print the built-in targets")
    parser.add_argument(
        "--agent", help="only the groups of this agent (the table in its docs page)"
    )
    args = parser.parse_args(argv)
    if args.list:
        for target in TARGETS:
            name = "success" if target.metric == "success" else "return"
            print(f"{target.agent:<10} {target.task:<22} {name} >= {target.value:g}")
        return 0
    if not args.groups:
        parser.error("give seed group dirs (or --list)")
    from rlkit.errors import UserError

    try:
        groups = args.groups
        if args.agent is not None:
            from rlkit.group import read_group

            groups = [d for d in groups if read_group(d).agent == args.agent]
        print(table(groups))
    except UserError as error:
        print(f"learning_results: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
