"""Bad input to `rlkit sweep` through the real CLI: exit code 2, exactly one line on
stderr naming what is wrong, no traceback, and nothing written, lost or half-written.

Each case is a sweep file (a change to a good one, or raw YAML) and extra arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_cli, tree_digest

GOOD = {
    "name": "grid",
    "run": {"agent": "qlearning", "env": "rlkit/GridWorld-v0", "steps": 2000},
    "search": {"hparams.gamma": {"choice": [0.9, 0.99]}},
    "scheduler": {"kind": "fifo"},
}
LONG = "x" * 5000
READABLE = 800  # characters: the path, the value cut to 80, what is accepted

# "billion laughs": nine aliases deep, a few hundred bytes that expand to 9**9 strings
LAUGHS = "\n".join(
    [
        'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)),
        "name: laughs",
        "run: {agent: qlearning, env: rlkit/GridWorld-v0, env_kwargs: {size: *l8}}",
        "search: {hparams.gamma: {choice: [0.9]}}",
    ]
)


def changed(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


CASES: list[tuple[str, dict[str, Any] | str, list[str], list[str]]] = [
    # YAML that would grow without bound, or nest past any config's depth
    ("billion-laughs", LAUGHS, [], ["line 1: YAML anchors and aliases", "not accepted"]),
    ("one-anchor", "name: a\nrun: &r {agent: qlearning}\n", [], ["anchors and aliases"]),
    ("deep-nesting", "run: " + "[" * 3000, [], ["nested too deeply"]),
    # user values quoted in errors are cut to a readable length
    ("long-search-key", changed(search={LONG: {"choice": [1]}}), [], ["search key 'xxx", "..."]),
    (
        "long-space",
        changed(search={"hparams.gamma": {"between": [LONG]}}),
        [],
        ["unknown kind 'between'", "..."],
    ),
    ("long-kind", changed(search={"hparams.gamma": {LONG: [1]}}), [], ["unknown kind 'xxx", "..."]),
    ("long-metric", changed(metric=LONG), [], ["metric 'xxx", "..."]),
    ("long-value", changed(search={"hparams.gamma": {"choice": [LONG]}}), [], ["(got 'xxx", "..."]),
    ("long-agent", changed(run={**GOOD["run"], "agent": LONG}), [], ["unknown agent 'xxx", "..."]),
    ("long-env", changed(run={**GOOD["run"], "env": LONG}), [], ["unknown env 'xxx", "..."]),
    # a float sampler over an integer setting would fail every trial
    ("uniform-seed", changed(search={"seed": {"uniform": [0, 100]}}), [], ["uniform", "randint"]),
    ("uniform-steps", changed(search={"steps": {"uniform": [1000, 3000]}}), [], ["randint"]),
    (
        "loguniform-eval-every",
        changed(search={"eval_every": {"loguniform": [100, 1000]}}),
        [],
        ["loguniform samples floats and eval_every takes integers", "randint"],
    ),
    (
        "uniform-trpo-steps-per-worker",
        changed(
            run={"agent": "trpo", "env": "CartPole-v1", "steps": 2000},
            search={"hparams.steps_per_worker": {"uniform": [256, 1024]}},
        ),
        [],
        ["hparams.steps_per_worker takes integers", "randint"],
    ),
    # a name must keep the sweep dir inside --out-dir
    ("name-parent", changed(name="../escaped"), [], ["name '../escaped' is not a folder name"]),
    ("name-nested", changed(name="a/b"), [], ["name 'a/b' is not a folder name"]),
    ("name-dot", changed(name="."), [], ["is not a folder name"]),
    ("name-empty", changed(name=""), [], ["name '' is not a folder name"]),
    ("name-too-long", changed(name="n" * 256), [], ["is not a folder name", "255 bytes"]),
    ("name-newline", changed(name="a\nb"), [], ["name 'a\\nb' is not a folder name"]),
    ("flag-name-parent", GOOD, ["--name", ".."], ["--name '..' is not a folder name"]),
    ("flag-name-empty", GOOD, ["--name", ""], ["--name '' is not a folder name"]),
    ("flag-name-long", GOOD, ["--name", "é" * 128], ["--name 'ééé", "255 bytes"]),
]


@pytest.mark.parametrize(("case", "sweep", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, case: str, sweep: dict[str, Any] | str, args: list[str], expected: list[str]
) -> None:
    path = tmp_path / "in" / f"{case}.yaml"
    path.parent.mkdir()
    path.write_text(sweep if isinstance(sweep, str) else yaml.safe_dump(sweep))
    out = tmp_path / "out" / "sweeps"
    out.mkdir(parents=True)
    absolute = tmp_path / "absolute"
    before = tree_digest(tmp_path)
    done = run_cli("sweep", str(path), "--out-dir", str(out), *args, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlkit: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert len(lines[0]) < READABLE, lines[0][:2000]
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert tree_digest(tmp_path) == before, "a refused sweep wrote or changed files"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"] and not absolute.exists()


def test_an_absolute_name_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    path = tmp_path / "abs.yaml"
    path.write_text(yaml.safe_dump(changed(name=str(target))))
    done = run_cli("sweep", str(path), "--out-dir", str(tmp_path / "sweeps"), cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert f"name '{target}' is not a folder name" in done.stderr
    assert not target.exists() and not (tmp_path / "sweeps").exists()
