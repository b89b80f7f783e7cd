"""Results over the seeds: the summary (each seed's final evaluation; IQM and mean with
95% CIs over the seeds), `summary.json`, the table printed at the end, and `rlkit eval`
of every seed's newest checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rlkit import checkpoint
from rlkit.group.groupdir import FINISHED, SUMMARY_FILE, Group
from rlkit.rundir import write_text


def summary(group: Group, finals: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per seed, the final evaluation; over the finished seeds, IQM and mean with 95% CIs
    of the greedy return (and of the success rate where the env reports it)."""
    from rlkit.stats import summarise

    finals = (
        finals
        if finals is not None
        else {
            seed: record.final
            for seed, record in group.records.items()
            if record.status == FINISHED and record.final is not None
        }
    )
    seeds: list[dict[str, Any]] = []
    for seed in group.seeds:
        record = group.records[seed]
        final = finals.get(seed)
        seeds.append(
            {
                "seed": seed,
                "status": record.status,
                "step": record.step,
                "seconds": record.seconds,
                "return": None if final is None else final["mean"],
                "return_std": None if final is None else final["std"],
                "length": None if final is None else final["mean_length"],
                "success_rate": None if final is None else final.get("success_rate"),
                "error": record.error,
            }
        )
    aggregate: dict[str, Any] = {}
    returns = [float(row["return"]) for row in seeds if row["return"] is not None]
    if returns and all(math.isfinite(value) for value in returns):
        aggregate["return"] = _estimates(summarise(returns))
    successes = [float(row["success_rate"]) for row in seeds if row["success_rate"] is not None]
    if successes and len(successes) == len(returns):
        aggregate["success_rate"] = _estimates(summarise(successes))
    return {
        "group": group.name,
        "agent": group.agent,
        "env": group.env,
        "steps": group.steps,
        "episodes": group.final_episodes,
        "git_commit": group.record.get("git_commit"),
        "seeds": seeds,
        "aggregate": aggregate,
    }


def _estimates(result: Any) -> dict[str, Any]:
    return {
        "count": result.count,
        "iqm": result.iqm,
        "iqm_ci": list(result.iqm_ci),
        "mean": result.mean,
        "mean_ci": list(result.mean_ci),
    }


def write_summary(group: Group) -> dict[str, Any]:
    data = summary(group)
    write_text(group.directory / SUMMARY_FILE, json.dumps(data, indent=1))
    return data


def format_summary(data: dict[str, Any]) -> str:
    """The per-seed table and the aggregate lines."""
    success = any(row["success_rate"] is not None for row in data["seeds"])
    header = ["seed", "status", "steps", f"return ({data['episodes']} episodes)"]
    header += ["success rate"] if success else []
    header += ["seconds"]
    lines = []
    for row in data["seeds"]:
        cells = [str(row["seed"]), row["status"], str(row["step"])]
        cells.append("-" if row["return"] is None else f"{row['return']:.4g}")
        if success:
            rate = row["success_rate"]
            cells.append("-" if rate is None else f"{rate:.3f}")
        cells.append(f"{row['seconds']:.1f}")
        lines.append(cells)
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *lines]
    ]
    for key, label in (("return", "return"), ("success_rate", "success rate")):
        estimate = data["aggregate"].get(key)
        if estimate is not None:
            fmt = ".3f" if key == "success_rate" else ".4g"
            text.append(
                f"{label} over {estimate['count']} seeds: IQM {_interval(estimate, 'iqm', fmt)}, "
                f"mean {_interval(estimate, 'mean', fmt)}"
            )
    return "\n".join(text)


def _interval(estimate: dict[str, Any], key: str, fmt: str) -> str:
    low, high = estimate[f"{key}_ci"]
    return f"{estimate[key]:{fmt}} [95% CI {low:{fmt}}, {high:{fmt}}]"


def evaluate_group(
    group: Group,
    episodes: int,
    *,
    trust_modules: bool = False,
    max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """Evaluate every seed's final policy (its newest checkpoint) now: the summary."""
    from rlkit.training import evaluate_run

    finals = {}
    for seed in group.seeds:
        run_dir = group.run_dir(seed)
        if not checkpoint.list_checkpoints(run_dir / "checkpoints"):
            continue
        finals[seed] = evaluate_run(
            run_dir,
            episodes=episodes,
            trust_modules=trust_modules,
            max_episode_steps=max_episode_steps,
        ).as_dict()
        group.records[seed].step = _newest_step(run_dir)
    data = summary(group, finals)
    data["episodes"] = episodes
    return data


def _newest_step(run_dir: Path) -> int:
    """The step of the checkpoint `evaluate_run` chose: the newest that loads."""
    return checkpoint.newest_step(run_dir / "checkpoints") or 0
