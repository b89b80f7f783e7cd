"""Golden files: the metric rows of short seeded runs, one per agent and path.

A refactor must keep every seeded result; these files pin them. Each case trains with
one torch thread and W&B off, then keeps every metric row without its clock readings
(`wall_time`, `time/*`). `tests/test_golden.py` compares a fresh run with the file.

    .venv/bin/python -m tests.golden            # check every case, print what differs
    .venv/bin/python -m tests.golden --write    # regenerate (only in a commit that says why)
    .venv/bin/python -m tests.golden --write a3c_cartpole_ray

A change of behaviour regenerates the files in its own commit, with the reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).parent / "golden"
# Float noise between CPUs, not behaviour: a float may differ from its golden value by this
# fraction of the larger of the two values and the column's largest magnitude in the file.
# The column's scale matters for values that pass near zero: a policy loss is a sum of
# terms that nearly cancel, so one CPU's vector kernels against another's (the Intel CPU
# that wrote the files, the AMD EPYC that CI now runs on) move its last float32 digits by
# 1e-8 around 2e-5 (1e-3 of the value, 1e-6 of its column), and the T-maze's LSTM, after
# 30 updates, by 1.4e-5 of its column. A change of behaviour moves values by far more
# (tests/test_golden.py checks that 1e-3 of a column is caught).
RELATIVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Case:
    name: str
    agent: str
    env: str
    steps: int
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    ray: bool = False  # on the Ray pool (the test shares one embedded Ray)


BREAKOUT_LIFE = ("atari.episodic_life=true",)  # pins reward clipping and lost-life terminals

CASES = (
    Case("qlearning_frozenlake", "qlearning", "FrozenLake-v1", 5_000),
    Case("dqn_cartpole", "dqn", "CartPole-v1", 3_000, overrides=("log_every=500",)),
    Case(
        "dqn_breakout",
        "dqn",
        "ALE/Breakout-v5",
        400,
        overrides=(
            *BREAKOUT_LIFE,
            "buffer_size=1000",
            "learning_starts=100",
            "target_update_period=100",
            "log_every=100",
        ),
    ),
    Case("trpo_cartpole", "trpo", "CartPole-v1", 2_048, {"pool": "inprocess"}),
    Case("trpo_pendulum", "trpo", "Pendulum-v1", 4_096, {"pool": "inprocess"}),
    Case(
        "trpo_breakout",
        "trpo",
        "ALE/Breakout-v5",
        256,
        {"pool": "inprocess"},
        overrides=(*BREAKOUT_LIFE, "steps_per_worker=64", "cg_iterations=3", "value_epochs=1"),
    ),
    Case(
        "rpg_cartpole_novel",
        "rpg",
        "rlkit/CartPoleNoVel-v0",
        2_000,
        {"pool": "inprocess", "preset": "none"},  # the agent's own defaults, as first pinned
        overrides=("steps_per_worker=256", "normalize_observations=true"),
    ),
    Case(
        "rpg_tmaze",
        "rpg",
        "rlkit/TMaze-v0",
        1_500,
        {"pool": "inprocess", "preset": "none"},  # the agent's own defaults, as first pinned
        overrides=("env_kwargs.length=4", "steps_per_worker=100"),
    ),
    Case(
        "rpg_breakout",
        "rpg",
        "ALE/Breakout-v5",
        600,
        {"pool": "inprocess"},
        overrides=(*BREAKOUT_LIFE, "steps_per_worker=50", "hidden=[32]", "lstm_size=16"),
    ),
    Case("a3c_cartpole", "a3c", "CartPole-v1", 2_000, {"pool": "inprocess"}),
    Case("a3c_cartpole_ray", "a3c", "CartPole-v1", 2_000, {"pool": "ray"}, ray=True),
    Case(
        "a3c_breakout",
        "a3c",
        "ALE/Breakout-v5",
        300,
        {"pool": "inprocess"},
        overrides=(*BREAKOUT_LIFE, "apply_order=fixed", "log_every=50"),
    ),
    Case(
        "nes_es_cartpole",
        "nes",
        "CartPole-v1",
        3_000,
        {"pool": "inprocess"},
        overrides=("population=8", "noise_table_size=100000", "hidden=[16]"),
    ),
    Case(
        "nes_snes_pendulum",
        "nes",
        "Pendulum-v1",
        4_000,
        {"pool": "inprocess"},
        overrides=("variant=snes", "population=10", "noise_table_size=100000", "hidden=[16]"),
    ),
)
BY_NAME = {case.name: case for case in CASES}


def run_case(case: Case, out_dir: Path) -> list[dict[str, Any]]:
    """Train the case; its metric rows without clock readings."""
    import rlkit
    from rlkit.logger import METRICS_FILE, read_metrics

    result = rlkit.train(
        case.agent,
        env=case.env,
        steps=case.steps,
        seed=0,
        out_dir=str(out_dir),
        name=case.name,
        wandb="disabled",
        progress=False,
        threads=1,
        overrides=[*case.overrides],
        **case.settings,
    )
    rows = read_metrics(result.run_dir / METRICS_FILE)
    return [
        {key: value for key, value in row.items() if not _clock(key)}
        for row in rows
        if any(not _clock(key) and key != "step" for key in row)
    ]


def _clock(key: str) -> bool:
    return key == "wall_time" or key.startswith("time/")


def path_of(case: Case) -> Path:
    return GOLDEN_DIR / f"{case.name}.json"


def read_golden(case: Case) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(path_of(case).read_text())["rows"]
    return rows


def write_golden(case: Case, rows: list[dict[str, Any]]) -> Path:
    GOLDEN_DIR.mkdir(exist_ok=True)
    path = path_of(case)
    record = {"case": {"agent": case.agent, "env": case.env, "steps": case.steps}, "rows": rows}
    path.write_text(json.dumps(record, indent=0) + "\n")
    return path


def column_scales(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each key's largest magnitude over the rows (floats and ints alike)."""
    scale: dict[str, float] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                scale[key] = max(scale.get(key, 0.0), abs(value))
    return scale


def differences(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> list[str]:
    """What differs between two lists of rows (empty when they match within tolerance)."""
    found = []
    scale = column_scales(expected)
    if len(expected) != len(got):
        found.append(f"{len(got)} rows, golden has {len(expected)}")
    for index, (want, have) in enumerate(zip(expected, got, strict=False)):
        if set(want) != set(have):
            found.append(f"row {index}: keys {sorted(have)} != golden {sorted(want)}")
            continue
        for key, value in want.items():
            other = have[key]
            same = (
                math.isclose(
                    value, other, abs_tol=RELATIVE_TOLERANCE * max(scale.get(key, 0.0), abs(other))
                )
                if isinstance(value, float) or isinstance(other, float)
                else value == other
            )
            if not same:
                found.append(f"row {index} (step {want.get('step')}): {key} {other} != {value}")
        if len(found) > 10:
            break
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the golden files")
    parser.add_argument("cases", nargs="*", help=f"case names (default all): {', '.join(BY_NAME)}")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.cases or list(BY_NAME):
        case = BY_NAME[name]
        with tempfile.TemporaryDirectory() as out:
            rows = run_case(case, Path(out))
        if args.write:
            print(f"wrote {write_golden(case, rows)} ({len(rows)} rows)")
            continue
        found = differences(read_golden(case), rows)
        print(f"{name}: {'ok' if not found else 'DIFFERS'}")
        for line in found:
            print(f"  {line}")
        failed += bool(found)
    if any(case.ray for case in CASES):
        from rlkit.parallel import shutdown_ray

        shutdown_ray()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
