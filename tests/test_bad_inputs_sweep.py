"""Bad sweep input and sweep dirs rlkit did not write: refused before Ray or Tune start
(tests/bad_inputs.py says how the suites run)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlkit.sweep import load_sweep, write_new_sweep_dir
from rlkit.sweep.state import STATE_RECORD, record_state
from tests.bad_inputs import (
    READABLE,
    run_main,
)
from tests.conftest import run_cli, tree_digest

# ---------------------------------------------------------------- sweeps
# Each case is a sweep file (a change to a good one, or raw YAML) and extra arguments, or
# a sweep dir whose Tune state rlkit did not write, given to `--resume`: a crafted pickle
# there would run code (create a file) if Tune unpickled it. All are refused before Ray or
# Tune start, so they run in-process; the control that shows the crafted pickle is real
# runs a real sweep in a subprocess.

GOOD = {
    "name": "grid",
    "run": {"agent": "qlearning", "env": "rlkit/GridWorld-v0", "steps": 2000},
    "search": {"hparams.gamma": {"choice": [0.9, 0.99]}},
    "scheduler": {"kind": "fifo"},
}
LONG = "x" * 5000

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


SWEEP_CASES: list[tuple[str, dict[str, Any] | str, list[str], list[str]]] = [
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


@pytest.mark.parametrize(
    ("case", "sweep", "args", "expected"), SWEEP_CASES, ids=[c[0] for c in SWEEP_CASES]
)
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
    done = run_main("sweep", str(path), "--out-dir", str(out), *args)
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
    done = run_main("sweep", str(path), "--out-dir", str(tmp_path / "sweeps"))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    # a long temporary path is shortened in the middle: its start and the rule stay
    assert f"name '{str(target)[:12]}" in done.stderr
    assert "is not a folder name inside --out-dir" in done.stderr
    assert not target.exists() and not (tmp_path / "sweeps").exists()


class Plant:
    """Unpickled, this creates the file `marker`: what a crafted Tune state could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


@pytest.fixture()
def recorded(tmp_path: Path) -> Path:
    """A sweep dir as rlkit leaves it: sweep.yaml, Tune's files, a sealed state.json."""
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    sweep = load_sweep(path, out_dir=tmp_path / "sweeps")
    write_new_sweep_dir(sweep)
    tune = sweep.directory / "tune"
    (tune / "trial-00000").mkdir(parents=True)
    (tune / "tuner.pkl").write_bytes(pickle.dumps({"an": "honest state"}))
    (tune / "experiment_state-2026-12-03_10-00-00.json").write_text("{}")
    (tune / "trial-00000" / "result.json").write_text("{}\n")
    record_state(sweep.directory)
    return sweep.directory


def payload(directory: Path) -> bytes:
    return pickle.dumps(Plant(directory.parent / "pwned"))


def replace_tuner(directory: Path) -> None:
    (directory / "tune" / "tuner.pkl").write_bytes(payload(directory))


def add_trial_pickle(directory: Path) -> None:
    checkpoint = directory / "tune" / "trial-00000" / "checkpoint_000000"
    checkpoint.mkdir()
    (checkpoint / "data.pkl").write_bytes(payload(directory))


def link_tuner(directory: Path) -> None:
    outside = directory.parent / "outside.pkl"
    outside.write_bytes(payload(directory))
    (directory / "tune" / "tuner.pkl").unlink()
    (directory / "tune" / "tuner.pkl").symlink_to(outside)


def link_tune_dir(directory: Path) -> None:
    crafted = directory.parent / "crafted-tune"
    shutil.copytree(directory / "tune", crafted)
    (crafted / "tuner.pkl").write_bytes(payload(directory))
    shutil.rmtree(directory / "tune")
    (directory / "tune").symlink_to(crafted)


def forge_record(directory: Path) -> None:
    """The attacker rewrites the digests to match the crafted file; the seal stays."""
    replace_tuner(directory)
    record = json.loads((directory / STATE_RECORD).read_text())
    digest = hashlib.sha256((directory / "tune" / "tuner.pkl").read_bytes()).hexdigest()
    record["files"]["tune/tuner.pkl"] = digest
    (directory / STATE_RECORD).write_text(json.dumps(record))


def seal_with_another_key(directory: Path) -> None:
    """The attacker seals the crafted state with a key of their own."""
    replace_tuner(directory)
    mine = os.environ["RLKIT_SWEEP_KEY_FILE"]
    os.environ["RLKIT_SWEEP_KEY_FILE"] = str(directory.parent / "their.key")
    try:
        record_state(directory)
    finally:
        os.environ["RLKIT_SWEEP_KEY_FILE"] = mine


def edit_sweep_file(directory: Path) -> None:
    sweep = directory / "sweep.yaml"
    sweep.write_text(sweep.read_text().replace("env: rlkit/GridWorld-v0", "env: evil:Env-v0"))


def remove_key(directory: Path) -> None:
    replace_tuner(directory)
    Path(os.environ["RLKIT_SWEEP_KEY_FILE"]).unlink()


def open_key(directory: Path) -> None:
    Path(os.environ["RLKIT_SWEEP_KEY_FILE"]).chmod(0o644)


UNTRUSTED: list[tuple[str, Callable[[Path], None], str]] = [
    ("no-record", lambda d: (replace_tuner(d), (d / STATE_RECORD).unlink()), "no state.json"),
    ("replaced-pickle", replace_tuner, "tune/tuner.pkl changed since rlkit recorded it"),
    ("added-pickle", add_trial_pickle, "checkpoint_000000/data.pkl is not in state.json"),
    ("symlinked-pickle", link_tuner, "tune/tuner.pkl is a symbolic link"),
    ("symlinked-tune-dir", link_tune_dir, "tune is a symbolic link"),
    ("damaged-record", lambda d: (d / STATE_RECORD).write_text("{not json"), "is damaged"),
    ("forged-record", forge_record, "state.json was not sealed with your sweep key"),
    ("another-key", seal_with_another_key, "was not sealed with your sweep key"),
    ("edited-sweep-file", edit_sweep_file, "sweep.yaml changed since rlkit recorded it"),
    ("no-key", remove_key, "your sweep key"),
    ("key-open-to-others", open_key, "open to other users (mode 644)"),
]


@pytest.mark.parametrize(("case", "tamper", "expected"), UNTRUSTED, ids=[c[0] for c in UNTRUSTED])
def test_resume_refuses_state_rlkit_did_not_write(
    recorded: Path, sweep_key: Path, case: str, tamper: Callable[[Path], None], expected: str
) -> None:
    key = sweep_key.read_bytes()
    try:
        tamper(recorded)
        before = tree_digest(recorded)
        done = run_main("sweep", "--resume", str(recorded))
    finally:  # the session's key, as it was, for the tests after this one
        sweep_key.write_bytes(key)
        sweep_key.chmod(0o600)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlkit: "), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert expected in lines[0], lines[0]
    if case != "key-open-to-others":
        assert "start the sweep again in a new dir, or add --trust-state" in lines[0]
    assert not (recorded.parent / "pwned").exists(), "the crafted pickle was unpickled"
    assert tree_digest(recorded) == before, "a refused --resume changed the sweep dir"


@pytest.mark.slow
def test_the_crafted_pickle_is_real_trust_state_unpickles_it(recorded: Path) -> None:
    """The control: told --trust-state, rlkit hands the dir to Tune, which unpickles
    tuner.pkl and so runs the planted code (the refusals above are what stops it)."""
    replace_tuner(recorded)
    done = run_cli("sweep", "--resume", str(recorded), "--trust-state", cwd=recorded.parent)
    assert (recorded.parent / "pwned").exists(), done.stderr[-2000:]


def test_trust_state_without_resume_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    done = run_main("sweep", str(path), "--trust-state", "--out-dir", str(tmp_path / "s"))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "--trust-state goes with --resume" in done.stderr
    assert not (tmp_path / "s").exists()
