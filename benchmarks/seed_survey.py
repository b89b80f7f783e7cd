"""Seed survey: train a shipped preset on many seeds and check its target on each.

    .venv/bin/python benchmarks/seed_survey.py list
    .venv/bin/python benchmarks/seed_survey.py run PRESET [--seeds 0 1 ... 9]
        [--set key=value ...] [--label NAME] [--note TEXT] [--eval-points 20]
    .venv/bin/python benchmarks/seed_survey.py report [benchmarks/survey/*.json]

`run` trains the preset on each seed, one after another in this process, with one
torch thread, the in-process worker pool (deterministic: the same result as the Ray
pool for every agent's preset here) and W&B off, then evaluates the final policy with
`rlkit.evaluate(run_dir, episodes=20)` (the run's own eval seed stream). Per seed it
records the greedy mean return over the 20 episodes (and the success rate where the env
reports one), the env steps to the first in-training evaluation at or above the target
(`eval_every` = steps / `--eval-points`, 10 greedy episodes each, on the run's eval
env; FrozenLake's return is its success, and the T-maze's target 0.95 is read as a
return of 3.795 = 0.95 x 4 - 0.05 x 0.1), the training wall-clock with the in-training
evaluations taken out, and that curve. The in-training evaluations use their own env and
the agents' deterministic evaluation policies, so they do not change what a run learns.

Results go to `benchmarks/survey/<preset>[--<label>].json`, rewritten after every seed; a rerun
with the same preset, label and settings skips the seeds already there, so an
interrupted survey continues. `--set` adds `key=value` overrides (hyperparameters or
run settings) on top of the preset's config: how a proposed fix is surveyed.

`--also-episodes N` also evaluates each final policy on N episodes (`value_N`): where
20 episodes cannot tell a policy from the target (FrozenLake's optimum, 0.744, is 0.044
above its target of 0.70, within a 20-episode binomial's standard deviation of 0.1).

`report` prints one Markdown table of every survey file: seeds passing, IQM and mean
with 95% stratified-bootstrap confidence intervals (`rlkit.stats`), and per-seed values.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SURVEY_DIR = ROOT / "benchmarks" / "survey"
EVAL_EPISODES = 20  # final evaluation: rlkit.evaluate(run_dir, episodes=20)
CURVE_EPISODES = 10  # each in-training evaluation
DEFAULT_SEEDS = tuple(range(10))


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A shipped preset and its target.

    `metric` is what the target is on: "return" (greedy mean return) or "success"
    (success rate). `curve_target` is the in-training eval/return that counts as reaching
    the target (eval rows log returns only).
    """

    name: str
    config: str  # relative to the repository root
    overrides: tuple[str, ...] = ()
    target: float
    metric: str = "return"
    curve_target: float | None = None
    note: str = ""

    @property
    def return_target(self) -> float:
        return self.target if self.curve_target is None else self.curve_target


PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            name="qlearning-frozenlake",
            config="configs/qlearning/frozenlake.yaml",
            target=0.70,
            metric="success",
            curve_target=0.70,  # FrozenLake's return is 1 on success, else 0
        ),
        Preset(name="qlearning-taxi", config="configs/qlearning/taxi.yaml", target=7.5),
        Preset(name="dqn-cartpole", config="configs/dqn/cartpole.yaml", target=475.0),
        Preset(name="trpo-cartpole", config="configs/trpo/cartpole.yaml", target=475.0),
        Preset(name="trpo-pendulum", config="configs/trpo/pendulum.yaml", target=-250.0),
        Preset(
            name="a3c-cartpole",
            config="configs/a3c/cartpole.yaml",
            target=475.0,
            note="the pool setting of the config (ray) is replaced by inprocess",
        ),
        Preset(
            name="rpg-tmaze",
            config="configs/rpg/tmaze.yaml",
            target=0.95,
            metric="success",
            curve_target=0.95 * 4.0 - 0.05 * 0.1,  # +4 per correct turn, -0.1 per wrong one
        ),
        Preset(name="rpg-cartpole-novel", config="configs/rpg/cartpole_novel.yaml", target=400.0),
        Preset(name="nes-es-cartpole", config="configs/nes/cartpole.yaml", target=475.0),
        Preset(
            name="nes-snes-cartpole",
            config="configs/nes/cartpole.yaml",
            overrides=("variant=snes",),
            target=475.0,
            note="docs/nes.md: rlkit run --config configs/nes/cartpole.yaml --set variant=snes",
        ),
        Preset(name="nes-snes-pendulum", config="configs/nes/pendulum.yaml", target=-300.0),
    )
}


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    return done.stdout.strip() or "unknown"


def survey_path(preset: str, label: str | None) -> Path:
    return SURVEY_DIR / (f"{preset}--{label}.json" if label else f"{preset}.json")


def train_seed(
    preset: Preset, seed: int, overrides: list[str], eval_points: int, also_episodes: int | None
) -> dict[str, Any]:
    """Train and evaluate one seed; the row the survey file keeps for it."""
    import rlkit
    from rlkit.config import load_yaml
    from rlkit.logger import read_metrics

    steps = int(load_yaml(ROOT / preset.config)["steps"])
    for override in overrides:  # a --set steps=N changes the budget, and the curve with it
        key, _, value = override.partition("=")
        if key == "steps":
            steps = int(value)
    eval_every = max(1, steps // eval_points)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = rlkit.train(
            config=str(ROOT / preset.config),
            overrides=[*preset.overrides, *overrides],
            seed=seed,
            threads=1,
            pool="inprocess",
            wandb="disabled",
            progress=False,
            out_dir=out,
            name=f"seed-{seed}",
            eval_every=eval_every,
            eval_episodes=CURVE_EPISODES,
        )
        seconds = time.perf_counter() - started
        stats = rlkit.evaluate(str(result.run_dir), episodes=EVAL_EPISODES)
        more = (
            rlkit.evaluate(str(result.run_dir), episodes=also_episodes) if also_episodes else None
        )
        rows = read_metrics(result.run_dir / "metrics.jsonl")
    curve = [(int(row["step"]), float(row["eval/return"])) for row in rows if "eval/return" in row]
    eval_seconds = max(
        (row["time/eval_total"] for row in rows if "time/eval_total" in row), default=0
    )
    reached = next((step for step, value in curve if value >= preset.return_target), None)
    value = stats.success_rate if preset.metric == "success" else stats.mean
    assert value is not None, f"{preset.name}: the env reports no success"
    extra = {}
    if more is not None:
        extra[f"value_{also_episodes}"] = (
            more.success_rate if preset.metric == "success" else more.mean
        )
    return {
        "seed": seed,
        "value": value,
        **extra,
        "passed": value >= preset.target,
        "mean_return": stats.mean,
        "std_return": stats.std,
        "min_return": stats.min,
        "success_rate": stats.success_rate,
        "steps": result.step,
        "steps_to_target": reached,
        "train_seconds": round(seconds - eval_seconds, 2),
        "eval_seconds": round(eval_seconds, 2),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "curve": curve,
    }


def dump(data: dict[str, Any]) -> str:
    """JSON with one line per seed, so a diff shows which seeds changed."""
    head = {key: value for key, value in data.items() if key != "seeds"}
    lines = [json.dumps(head, indent=1)[:-2] + ',\n "seeds": [']
    lines.append(",\n".join("  " + json.dumps(row) for row in data["seeds"]))
    lines.append(" ]\n}\n")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    preset = PRESETS[args.preset]
    path = survey_path(preset.name, args.label)
    settings = {
        "preset": preset.name,
        "config": preset.config,
        "overrides": [*preset.overrides, *args.set],
        "target": preset.target,
        "metric": preset.metric,
        "eval_points": args.eval_points,
    }
    if args.also_episodes:
        settings["also_episodes"] = args.also_episodes
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text())
        if data["settings"] != settings:
            sys.exit(f"seed_survey: {path} holds another survey ({data['settings']}); use --label")
    data.setdefault("settings", settings)
    data.setdefault("label", args.label)
    data.setdefault("note", " ".join(filter(None, [preset.note, args.note])))
    data.setdefault("seeds", [])
    done = {row["seed"] for row in data["seeds"]}
    for seed in args.seeds:
        if seed in done:
            continue
        row = train_seed(preset, seed, list(args.set), args.eval_points, args.also_episodes)
        row["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        row["commit"] = commit()
        data["seeds"] = sorted([*data["seeds"], row], key=lambda item: item["seed"])
        data["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, threads=1, inprocess pool"
        SURVEY_DIR.mkdir(exist_ok=True)
        path.write_text(dump(data))
        print(
            f"{preset.name} seed {seed}: {preset.metric} {row['value']:.4g} "
            f"({'pass' if row['passed'] else 'FAIL'} at {preset.target:g}); "
            f"mean return {row['mean_return']:.4g}; to target: {row['steps_to_target']} steps; "
            f"trained {row['train_seconds']:.1f} s (+{row['eval_seconds']:.1f} s evaluating); "
            f"load {row['load_average']}",
            flush=True,
        )


def report(args: argparse.Namespace) -> None:
    from rlkit.stats import summarise

    paths = [Path(item) for item in args.files] or sorted(SURVEY_DIR.glob("*.json"))
    print(
        "| preset | label | seeds >= target | IQM [95% CI] | mean [95% CI] | per seed (0, 1, ...) "
        "| steps to target (median) | train s (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path in paths:
        data = json.loads(path.read_text())
        rows = data["seeds"]
        settings = data["settings"]
        reached = [r["steps_to_target"] for r in rows if r["steps_to_target"] is not None]
        median_reach = f"{statistics.median(reached):,.0f}" if reached else "-"
        if len(reached) < len(rows):
            median_reach += f" ({len(rows) - len(reached)} never)"
        seconds = statistics.median(row["train_seconds"] for row in rows)
        keys = ["value"]
        if settings.get("also_episodes"):
            keys.append(f"value_{settings['also_episodes']}")
        for key in keys:
            values = [row[key] for row in rows]
            summary = summarise(values, target=settings["target"], seed=0)
            label = data.get("label") or "-"
            if key != "value":
                label += f", {key.removeprefix('value_')} eval episodes"
            print(
                f"| {settings['preset']} | {label} | {summary.passed}/{summary.count} "
                f"| {_short(summary.iqm)} [{_short(summary.iqm_ci[0])}, "
                f"{_short(summary.iqm_ci[1])}] | {_short(summary.mean)} "
                f"[{_short(summary.mean_ci[0])}, {_short(summary.mean_ci[1])}] "
                f"| {', '.join(_short(value) for value in values)} | {median_reach} "
                f"| {seconds:.0f} |"
            )


def _short(value: float) -> str:
    if math.isfinite(value) and abs(value) < 10:
        return f"{value:.3g}"
    return f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the presets and their targets")
    runner = commands.add_parser("run", help="train a preset on seeds")
    runner.add_argument("preset", choices=sorted(PRESETS))
    runner.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    runner.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    runner.add_argument("--label", default=None, help="names a variant's survey file")
    runner.add_argument("--note", default="", help="kept in the survey file")
    runner.add_argument("--eval-points", type=int, default=20, help="in-training evaluations")
    runner.add_argument(
        "--also-episodes",
        type=int,
        default=None,
        metavar="N",
        help="also evaluate each final policy on N episodes (recorded as value_N)",
    )
    reporter = commands.add_parser("report", help="a Markdown table of survey files")
    reporter.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.command == "list":
        for preset in PRESETS.values():
            extra = " ".join(f"--set {item}" for item in preset.overrides)
            print(f"{preset.name}: {preset.config} {extra} ({preset.metric} >= {preset.target:g})")
    elif args.command == "run":
        run(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
