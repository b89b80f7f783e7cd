"""A hostile but fair user's bad input, through the real CLI: each case must end with exit
code 2, exactly one line on stderr (`rlkit: <what is wrong>; <what is accepted>`), no
traceback, and nothing in the run dir (or sweep dir, or out dir) lost or half-written.

How the cases run, and why:

- `PARSE_CASES` are refused while rlkit reads its arguments, a config or sweep file, a
  run dir's files or settings, before any run dir is made or changed, any Ray starts or
  any plugin module is imported. They call `rlkit.cli.main([...])`, the console script's
  own entry point, in this process (a few milliseconds each, rather than seconds of
  Python, torch and gymnasium start-up per case), with stderr captured.
- `PROCESS_CASES` touch runs: they train, resume, evaluate, lock, import plugin modules,
  run out of disk or start Ray. They run as `python -m rlkit ...` subprocesses, as a user
  would, all of them at once in a thread pool (`outcomes`, once per session) so the
  start-up costs overlap; each test then checks its own result.
- The sweep cases (moved here from test_bad_inputs_sweep.py) are refused before Ray or
  Tune start and run in-process too; the control that shows a crafted Tune state is
  real (`--trust-state` unpickles it) runs a real sweep in a subprocess.

Every case that has a run dir gets its own copy of one made once per session (the
`small_run` Q-learning run of conftest.py, and a few more), and the test compares a
digest of that copy (or of the case's whole folder) before and after.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from rlkit.checkpoint import list_checkpoints
from rlkit.cli import main
from rlkit.errors import UserError
from rlkit.rundir import LOCK_FILE, RunLock
from rlkit.sweep import load_sweep, write_new_sweep_dir
from rlkit.sweep.state import STATE_RECORD, record_state
from rlkit.training import TrainResult, train
from tests.conftest import CliResult, cli_env, run_cli, tree_digest

ROOT = Path(__file__).resolve().parents[1]
OLD_RUNS = ROOT / "tests" / "data" / "old_runs"
READABLE = 800  # characters: the path, the value cut to 80, what is accepted


# What a run prints on stderr as it starts, before it learns anything: a run that fails
# after it started (it diverged, the disk filled) has said these, then its one error line.
START_NOTES = (
    re.compile(r"rlkit: \w+ on \S+, \d+ steps, seed \d+, W&B \w+ -> "),
    re.compile(r"rlkit: encoders: "),
    re.compile(r"rlkit: preset \S+"),
    re.compile(r"rlkit: (observations normalised|rewards scaled)"),
    re.compile(r"rlkit: resuming \S+ from step \d+ \(step-\d+\.pt\)$"),
)


def assert_user_error(
    result: CliResult, *fragments: str, limit: int = 2000, started: bool = False
) -> None:
    """Exit code 2, one line on stderr starting `rlkit: `, no traceback, the fragments.

    `started`: the run had started (it failed while learning), so the run's start notes
    come first; the error is then the one line after them.
    """
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.splitlines()
    if started:
        notes, lines = lines[:-1], lines[-1:]
        for note in notes:
            assert any(pattern.match(note) for pattern in START_NOTES), result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("rlkit: "), lines[0]
    assert "Traceback" not in result.stderr
    assert len(lines[0]) < limit, lines[0][:3000]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def run_main(*args: str) -> CliResult:
    """`rlkit ARGS` in this process: the console script's `main`, stdout/stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


# ---------------------------------------------------------------- session run dirs


@dataclass(frozen=True)
class Bases:
    """Run dirs made once per session; cases copy the one they need."""

    qlearning: Path  # FrozenLake, 20,000 steps, checkpoints at ~10k, ~15k, 20k
    taxi: Path  # Taxi, 3,000 steps, checkpoints every 1,000 (24 kB each)
    grid: Path  # rlkit/GridWorld-v0, which renders only as text


@pytest.fixture(scope="session")
def bases(small_run: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Bases:
    out = tmp_path_factory.mktemp("bases")
    common = dict(out_dir=str(out), wandb="disabled", progress=False, seed=1)
    taxi = train(
        "qlearning", env="Taxi-v4", steps=3_000, checkpoint_every=1_000, name="taxi", **common
    )
    grid = train("qlearning", env="rlkit/GridWorld-v0", steps=500, name="grid", **common)
    return Bases(small_run.run_dir, taxi.run_dir, grid.run_dir)


def copy_run(source: Path, folder: Path, name: str = "run") -> Path:
    target = folder / name
    shutil.copytree(source, target)
    (target / LOCK_FILE).unlink(missing_ok=True)  # old dirs have none; a copy holds no lock
    return target


def edit_config(run_dir: Path, **changes: Any) -> None:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config.update(changes)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))


def fill(arg: str, **places: Path) -> str:
    """`arg` with `{run}`, `{tmp}`... replaced by those paths (other braces are kept)."""
    for name, place in places.items():
        arg = arg.replace(f"{{{name}}}", str(place))
    return arg


def newest(run_dir: Path) -> Path:
    return list_checkpoints(run_dir / "checkpoints")[-1]


# ---------------------------------------------------------------- in-process cases


@dataclass(frozen=True)
class Parse:
    """A case for `main()`: arguments (with {run}, {tmp} and {other} filled in), what to
    prepare in the run dir copy, and the fragments the one line must hold."""

    args: tuple[str, ...]
    expected: tuple[str, ...]
    damage: Callable[[Path], None] | None = None  # applied to the run dir copy
    files: dict[str, bytes | str] = field(default_factory=dict)  # written into {tmp}


def metrics_line(run_dir: Path, line: bytes) -> None:
    """Put `line` into the middle of the run's metrics file."""
    path = run_dir / "metrics.jsonl"
    rows = path.read_bytes().splitlines(keepends=True)
    rows.insert(len(rows) // 2, line + b"\n")
    path.write_bytes(b"".join(rows))


NOT_UTF8 = "agent: qlearning\nenv: FrozenLake-v1\nname: caf\xe9\n".encode("latin-1")
RUN = ("run", "qlearning", "--env", "FrozenLake-v1", "--out-dir", "{tmp}/out")
NESTED_ALIASES = (
    "{a: &a [x, x, x, x, x, x, x, x, x], "
    + ", ".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(7)
    )
    + "}"
)

PARSE_CASES: dict[str, Parse] = {
    # the command line itself
    "unknown-command": Parse(("train", "qlearning"), ("invalid choice: 'train'",)),
    "unknown-agent": Parse(
        ("run", "qlearnin", "--env", "FrozenLake-v1"), ("unknown agent 'qlearnin'", "did you mean")
    ),
    "unknown-env": Parse(
        (*RUN[:3], "FrozenLak-v1"), ("unknown env 'FrozenLak-v1'", "did you mean")
    ),
    "steps-zero": Parse((*RUN, "--steps=0"), ("--steps", "0 must be a positive integer")),
    "steps-negative": Parse((*RUN, "--steps=-5"), ("--steps", "-5")),
    "steps-word": Parse((*RUN, "--steps=ten"), ("--steps", "'ten' is not an integer")),
    "seed-negative": Parse((*RUN, "--seed=-1"), ("--seed", "0 or a positive integer")),
    "workers-zero": Parse((*RUN, "--workers", "0"), ("--workers", "must be a positive integer")),
    "keep-zero": Parse((*RUN, "--keep-checkpoints", "0"), ("--keep-checkpoints",)),
    "wandb-mode": Parse((*RUN, "--wandb", "on"), ("--wandb", "invalid choice: 'on'")),
    "abbreviated-option": Parse((*RUN, "--check", "5"), ("unrecognized arguments: --check 5",)),
    "checkpoint-without-resume": Parse(
        (*RUN, "--checkpoint", "x.pt"), ("--checkpoint goes with --resume RUN_DIR",)
    ),
    "trust-modules-without-resume": Parse(
        (*RUN, "--trust-modules"), ("--trust-modules goes with --resume RUN_DIR",)
    ),
    "eval-episodes-zero": Parse(("eval", "{run}", "--episodes", "0"), ("--episodes",)),
    "space-refused": Parse(
        ("run", "qlearning", "--env", "CartPole-v1"), ("qlearning needs a Discrete observation",)
    ),
    # --set
    "set-unknown-key": Parse((*RUN, "--set", "gama=0.9"), ("unknown key 'gama'", "did you mean")),
    "set-wrong-type": Parse((*RUN, "--set", "gamma=abc"), ("gamma must be a number", "'abc'")),
    "set-nested-kind": Parse((*RUN, "--set", "epsilon.kind=cubic"), ("epsilon.kind",)),
    "set-no-equals": Parse((*RUN, "--set", "gamma"), ("expected key=value",)),
    "set-nan": Parse((*RUN, "--set", "gamma=.nan"), ("gamma must be a finite number",)),
    "set-inf-initial-value": Parse(
        (*RUN, "--set", "initial_value=.inf"), ("initial_value must be a finite number (got inf)",)
    ),
    "set-inf-schedule": Parse(
        (*RUN, "--set", "learning_rate.start=-.inf"), ("learning_rate.start must be a finite",)
    ),
    "set-threads-zero": Parse((*RUN, "--set", "threads=0"), ("threads",)),
    "set-aliases": Parse(
        (*RUN, "--set", f"env_kwargs={NESTED_ALIASES}"), ("YAML anchors and aliases",)
    ),
    "set-long-value": Parse((*RUN, "--set", "gamma=" + "9" * 5000 + "x"), ("gamma", "...")),
    "set-name-parent": Parse((*RUN, "--set", "name=../x"), ("name: must be one folder name",)),
    "env-kwargs-rejected": Parse(
        (*RUN, "--set", "env_kwargs.map_name=9x9"), ("env_kwargs.map_name='9x9' rejected",)
    ),
    "env-kwargs-unknown": Parse(
        (*RUN, "--set", "env_kwargs.size=3"), ("FrozenLake-v1 takes no keyword 'size'",)
    ),
    "wrapper-missing-module": Parse(
        (*RUN, "--set", "env_wrappers=[{wrapper: 'no_such_mod:W'}]"),
        ("env_wrappers.0", "cannot import module 'no_such_mod'"),
    ),
    "wrapper-not-a-wrapper": Parse(
        (*RUN, "--set", "env_wrappers=[{wrapper: 'gymnasium.spaces:Box'}]"),
        ("is not a gymnasium.Wrapper class",),
    ),
    "wrapper-relative-module": Parse(
        (*RUN, "--set", "env_wrappers=[{wrapper: '.w:W'}]"), ("cannot import module '.w'",)
    ),
    # --name: one folder inside --out-dir
    "name-slash": Parse((*RUN, "--name", "a/b"), ("--name: name: must be one folder", "'a/b'")),
    "name-parent": Parse((*RUN, "--name", ".."), ("must be one folder name", "(got '..')")),
    "name-absolute": Parse((*RUN, "--name", "/tmp/x"), ("must be one folder name",)),
    "name-too-long": Parse((*RUN, "--name", "n" * 256), ("255 bytes",)),
    "name-empty": Parse((*RUN, "--name", ""), ("(got '')",)),
    "name-newline": Parse((*RUN, "--name", "a\nb"), ("control characters",)),
    # --env forms
    "env-empty-module": Parse((*RUN[:3], ":X"), ("--env :X", "each part non-empty")),
    "env-relative-module": Parse((*RUN[:3], ".m:X"), ("cannot import module '.m'",)),
    "env-four-parts": Parse((*RUN[:3], "a:b:c:d"), ("module:Id", "module:function:Id")),
    "env-missing-module": Parse(
        (*RUN[:3], "no_such_pkg.envs:Maze-v0"), ("cannot import module 'no_such_pkg.envs'",)
    ),
    "env-missing-function": Parse(
        (*RUN[:3], "gymnasium:no_such_function:X-v0"), ("has no function 'no_such_function'",)
    ),
    # config files
    "config-missing": Parse(("run", "--config", "{tmp}/nope.yaml"), ("not found",)),
    "config-folder": Parse(("run", "--config", "{tmp}"), ("is a folder",)),
    "config-malformed": Parse(
        ("run", "--config", "{tmp}/c.yaml"), ("is malformed", "line"), files={"c.yaml": "a: [1\n"}
    ),
    "config-not-utf8": Parse(
        ("run", "--config", "{tmp}/c.yaml"), ("is not UTF-8 text",), files={"c.yaml": NOT_UTF8}
    ),
    "config-device": Parse(("run", "--config", "/dev/zero"), ("is not a regular file",)),
    "config-list": Parse(
        ("run", "--config", "{tmp}/c.yaml"), ("must hold a mapping",), files={"c.yaml": "- 1\n"}
    ),
    "config-agent-list": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("agent must be an agent's name, a string (got ['qlearning'])",),
        files={"c.yaml": "agent: [qlearning]\nenv: FrozenLake-v1\n"},
    ),
    "config-agent-mapping": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("agent must be an agent's name",),
        files={"c.yaml": "agent: {name: qlearning}\nenv: FrozenLake-v1\n"},
    ),
    "config-unknown-key": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("unknown key 'alpha'",),
        files={"c.yaml": "agent: qlearning\nenv: Taxi-v4\nhparams:\n  alpha: 0.1\n"},
    ),
    "config-aliases": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("line 3: YAML anchors and aliases",),
        files={"c.yaml": f"agent: qlearning\nenv: Taxi-v4\nenv_kwargs: {NESTED_ALIASES}\n"},
    ),
    "config-hparams-list": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("hparams must be a mapping",),
        files={"c.yaml": "agent: qlearning\nenv: Taxi-v4\nhparams: [1]\n"},
    ),
    "config-name-escapes": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("must be one folder name",),
        files={"c.yaml": "agent: qlearning\nenv: Taxi-v4\nname: ../../x\n"},
    ),
    "config-other-agent": Parse(
        ("run", "dqn", "--config", "{tmp}/c.yaml"),
        ("is for agent 'qlearning', not 'dqn'",),
        files={"c.yaml": "agent: qlearning\nenv: Taxi-v4\n"},
    ),
    # --resume and eval of run dirs that are not right
    "resume-not-a-run": Parse(("run", "--resume", "{tmp}"), ("is not an rlkit run directory",)),
    "resume-changes-env": Parse(
        ("run", "--resume", "{run}", "--env", "Taxi-v4"), ("--env cannot be changed",)
    ),
    "resume-changes-hparams": Parse(
        ("run", "--resume", "{run}", "--set", "gamma=0.5"), ("--set cannot be changed",)
    ),
    "resume-other-agent": Parse(
        ("run", "dqn", "--resume", "{run}"), ("that run is agent 'qlearning', not 'dqn'",)
    ),
    "resume-already-done": Parse(
        ("run", "--resume", "{run}"), ("already reached 20000 of 20000 steps", "--steps")
    ),
    "resume-metrics-not-utf8": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("metrics.jsonl' line", "is not UTF-8 text"),
        damage=lambda run: metrics_line(run, b'{"step": 5, "x": "\xff"}'),
    ),
    "resume-metrics-not-object": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("is a JSON list, not an object",),
        damage=lambda run: metrics_line(run, b"[1, 2, 3]"),
    ),
    "resume-metrics-step-word": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("has a step that is not a number ('ten')",),
        damage=lambda run: metrics_line(run, b'{"step": "ten"}'),
    ),
    "resume-metrics-no-step": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("has no step",),
        damage=lambda run: metrics_line(run, b'{"episode/return": 1.0}'),
    ),
    "resume-checkpoint-elsewhere": Parse(
        ("run", "--resume", "{run}", "--steps", "30000", "--checkpoint", "{other}"),
        ("--checkpoint", "not a checkpoint of this run; give one of", "step-000000020000.pt"),
    ),
    "resume-checkpoint-missing": Parse(
        ("run", "--resume", "{run}", "--steps", "30000", "--checkpoint", "{run}/checkpoints/x.pt"),
        ("not a checkpoint of this run",),
    ),
    "eval-missing-run": Parse(("eval", "{tmp}/missing"), ("is not an rlkit run directory",)),
    "eval-no-checkpoint": Parse(
        ("eval", "{run}"),
        ("has no checkpoint yet",),
        damage=lambda run: shutil.rmtree(run / "checkpoints"),
    ),
    "eval-config-not-utf8": Parse(
        ("eval", "{run}"),
        ("config.yaml' is not UTF-8 text",),
        damage=lambda run: (run / "config.yaml").write_bytes(NOT_UTF8),
    ),
    "eval-config-malformed": Parse(
        ("eval", "{run}"),
        ("config.yaml' is malformed",),
        damage=lambda run: (run / "config.yaml").write_text("agent: [\n"),
    ),
    "eval-config-unknown-agent": Parse(
        ("eval", "{run}"),
        ("unknown agent 'qlearnin'",),
        damage=lambda run: edit_config(run, agent="qlearnin"),
    ),
    "eval-config-hparams-list": Parse(
        ("eval", "{run}"),
        ("hparams must be a mapping",),
        damage=lambda run: edit_config(run, hparams=[1, 2]),
    ),
    "eval-checkpoint-elsewhere": Parse(
        ("eval", "{run}", "--checkpoint", "{other}"), ("not a checkpoint of this run",)
    ),
    # modules a run dir names (rlkit/trust.py): refused before anything is imported
    "eval-env-stdlib-function": Parse(
        ("eval", "{run}"),
        ("names env 'os:abort:X-v0': module 'os' is in the standard library", "--trust-modules"),
        damage=lambda run: edit_config(run, env="os:abort:X-v0"),
    ),
    "eval-env-pytest-main": Parse(
        ("eval", "{run}"),
        ("module 'pytest' belongs to pytest, not an env package",),
        damage=lambda run: edit_config(run, env="pytest:main:X-v0"),
    ),
    "eval-env-rlkit-cli-main": Parse(
        ("eval", "{run}"),
        ("which calls rlkit.cli:main()", "env registration entry point", "--trust-modules"),
        damage=lambda run: edit_config(run, env="rlkit.cli:main:FrozenLake-v1"),
    ),
    "resume-env-rlkit-cli-main": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("which calls rlkit.cli:main()", "--trust-modules"),
        damage=lambda run: edit_config(run, env="rlkit.cli:main:FrozenLake-v1"),
    ),
    "eval-env-gymnasium-make": Parse(
        ("eval", "{run}"),
        ("which calls gymnasium:make()", "env registration entry point"),
        damage=lambda run: edit_config(run, env="gymnasium:make:FrozenLake-v1"),
    ),
    "eval-env-ray-init": Parse(
        ("eval", "{run}"),
        ("module 'ray' belongs to ray, not an env package",),
        damage=lambda run: edit_config(run, env="ray:init:FrozenLake-v1"),
    ),
    "eval-env-ray-module": Parse(
        ("eval", "{run}"),
        ("module 'ray' belongs to ray, not an env package",),
        damage=lambda run: edit_config(run, env="ray:FrozenLake-v1"),
    ),
    "eval-env-the-agent-cannot-take": Parse(
        ("eval", "{run}"),
        ("qlearning needs a Discrete observation space", "rlkit/TMaze-v0 has Box"),
        damage=lambda run: edit_config(run, env="rlkit/TMaze-v0"),
    ),
    "eval-wrapper-main-module": Parse(
        ("eval", "{run}"),
        ("env_wrappers.0 'pip.__main__:W'", "runs a program when imported"),
        damage=lambda run: edit_config(run, env_wrappers=[{"wrapper": "pip.__main__:W"}]),
    ),
    "resume-env-not-installed": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("module 'tests.flaky_env' is found only in the current directory or beside the run dir",),
        damage=lambda run: edit_config(run, env="tests.flaky_env:rlkit-test/FlakyGridWorld-v0"),
    ),
    # plot
    "plot-missing-run": Parse(("plot", "{tmp}", "-o", "{tmp}/c.png"), ("has no metrics.jsonl",)),
    "plot-unknown-suffix": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.xyz"), ("unknown image format '.xyz'", ".png")
    ),
    "plot-folder": Parse(
        ("plot", "{run}", "-o", "{tmp}"), ("is a folder", "give an image file name")
    ),
    "plot-empty-name": Parse(("plot", "{run}", "-o", ""), ("-o '': give an image file name",)),
    "plot-missing-folder": Parse(
        ("plot", "{run}", "-o", "{tmp}/no/c.png"), ("folder", "does not exist")
    ),
    "plot-unknown-metric": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png", "--metric", "nope"), ("has no 'nope' rows",)
    ),
    "plot-metrics-not-utf8": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png"),
        ("is not UTF-8 text",),
        damage=lambda run: metrics_line(run, b"\xfe\xff"),
    ),
    "plot-metrics-not-object": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png"),
        ("is a JSON int, not an object",),
        damage=lambda run: metrics_line(run, b"42"),
    ),
    "plot-metrics-step-word": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png"),
        ("has a step that is not a number",),
        damage=lambda run: metrics_line(run, b'{"step": [1], "episode/return": 1.0}'),
    ),
    "plot-metrics-step-bool": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png"),
        ("has a step that is not a number (True)",),
        damage=lambda run: metrics_line(run, b'{"step": true, "episode/return": 1.0}'),
    ),
    "plot-metric-value-word": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png"),
        ("a 'episode/return' value at step 7 is not a number ('high')",),
        damage=lambda run: metrics_line(run, b'{"step": 7, "episode/return": "high"}'),
    ),
    # more of the same kind
    "eval-seed-negative": Parse(("eval", "{run}", "--seed", "-1"), ("--seed", "0 or a positive")),
    "plot-smooth-zero": Parse(("plot", "{run}", "--smooth", "0"), ("--smooth",)),
    "list-unknown": Parse(("list", "foo"), ("invalid choice: 'foo'",)),
    "set-env-kwargs-scalar": Parse((*RUN, "--set", "env_kwargs=5"), ("must be a mapping",)),
    "set-eval-every-zero": Parse((*RUN, "--set", "eval_every=0"), ("eval_every must be greater",)),
    "set-deep-nesting": Parse((*RUN, "--set", "env_kwargs=" + "[" * 3000), ("nested too deeply",)),
    "address-not-an-address": Parse((*RUN, "--address", "notaport"), ("not a Ray address",)),
    "env-very-long": Parse((*RUN[:3], "x" * 3000), ("unknown env 'xxx", "...")),
    "config-steps-float": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("steps must be an integer (got 1000.0)",),
        files={"c.yaml": "agent: qlearning\nenv: FrozenLake-v1\nsteps: 1.0e3\n"},
    ),
    "config-gamma-string": Parse(
        ("run", "--config", "{tmp}/c.yaml"),
        ("gamma must be a number (got '0.9')",),
        files={"c.yaml": "agent: qlearning\nenv: FrozenLake-v1\nhparams: {gamma: '0.9'}\n"},
    ),
    "eval-checkpoint-folder": Parse(
        ("eval", "{run}", "--checkpoint", "{run}/checkpoints"), ("not a checkpoint of this run",)
    ),
    "resume-a-file": Parse(
        ("run", "--resume", "{run}/config.yaml"), ("is not an rlkit run directory",)
    ),
    "plot-metrics-folder": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.png"),
        ("metrics.jsonl' cannot be read (Is a directory)",),
        damage=lambda run: ((run / "metrics.jsonl").unlink(), (run / "metrics.jsonl").mkdir()),
    ),
    # seed groups: the command line (a group's dir is named as a run's is)
    "group-name-with-newline": Parse(
        (*RUN, "--seeds", "0-1", "--name", "a\nb"),
        ("--name 'a\\nb' is not a folder name", "control characters"),
    ),
    "group-name-too-long": Parse(
        (*RUN, "--seeds", "0-1", "--name", "x" * 300), ("is not a folder name", "1 to 255 bytes")
    ),
    "group-name-dot-dot": Parse(
        (*RUN, "--seeds", "0-1", "--name", ".."), ("--name '..' is not a folder name",)
    ),
    "group-out-dir-is-a-file": Parse(
        (*RUN[:4], "--seeds", "0-1", "--out-dir", "{tmp}/afile"),
        ("--out-dir", "afile: cannot create it"),
        files={"afile": "a file"},
    ),
    "group-seeds-too-many": Parse((*RUN, "--seeds", "0-5000"), ("--seeds",)),
    # sweeps: the command line
    "sweep-neither-file-nor-resume": Parse(("sweep",), ("give a sweep FILE or --resume",)),
    "sweep-resume-not-a-sweep": Parse(("sweep", "--resume", "{tmp}"), ("not a sweep dir",)),
}


@pytest.mark.parametrize("case", sorted(PARSE_CASES))
def test_refused_while_reading_input(case: str, bases: Bases, tmp_path: Path) -> None:
    spec = PARSE_CASES[case]
    run_dir = copy_run(bases.qlearning, tmp_path, "run")
    other = newest(copy_run(bases.qlearning, tmp_path, "other"))
    (tmp_path / "out").mkdir()
    if spec.damage is not None:
        spec.damage(run_dir)
    for name, content in spec.files.items():
        target = tmp_path / name
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = tree_digest(tmp_path)
    result = run_main(*(fill(arg, run=run_dir, tmp=tmp_path, other=other) for arg in spec.args))
    assert_user_error(result, *spec.expected)
    assert result.stdout == ""
    assert tree_digest(tmp_path) == before, "a refused command changed or added files"
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- subprocess cases


@dataclass
class Prepared:
    """A prepared subprocess case: `python -m rlkit ARGS` (through `limit`, if any)."""

    args: list[str]
    watched: Path | None = None  # must be left exactly as it was (None: `check` decides)
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    limit: str | None = None  # "fsize=N" (RLIMIT_FSIZE) or "no-dac-override" (see LAUNCH)
    expected: tuple[str, ...] = ()  # fragments known only once prepared (a pid)
    holder: subprocess.Popen[str] | None = None  # a process holding the run dir's lock


# Sets a real limit, then becomes `python -m rlkit ARGS`: RLIMIT_FSIZE makes writes past N
# bytes fail with EFBIG as a full disk fails them with ENOSPC (Python ignores SIGXFSZ);
# for root, whom file modes do not stop, dropping CAP_DAC_OVERRIDE from the bounding set
# makes a read-only folder read-only (exit 77 if the system does not allow it).
LAUNCH = """
import ctypes, os, resource, sys
mode = sys.argv[1]
if mode.startswith("fsize="):
    size = int(mode.removeprefix("fsize="))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
elif mode == "no-dac-override" and os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            sys.exit(77)
os.execv(sys.executable, [sys.executable, "-m", "rlkit", *sys.argv[2:]])
"""

HOLD = """
import sys, time
from pathlib import Path
from rlkit.rundir import RunLock
RunLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def start_holder(run_dir: Path) -> subprocess.Popen[str]:
    """Another process that holds `run_dir`'s lock (RunLock, as a run does) until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def execute(prepared: Prepared) -> CliResult:
    command = [sys.executable, "-m", "rlkit", *prepared.args]
    if prepared.limit is not None:
        command = [sys.executable, "-c", LAUNCH, prepared.limit, *prepared.args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=prepared.cwd or ROOT,
        env={**cli_env(), **prepared.env},
        timeout=300,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


MODULES = {
    "badmod.py": 'raise RuntimeError("boom at import")\n',
    "badwrap.py": 'raise RuntimeError("wrapper module broken")\n',
    "ctor_fails.py": (
        "import gymnasium as gym\n"
        "class Broken(gym.Env):\n"
        "    def __init__(self):\n"
        '        raise RuntimeError("the constructor failed")\n'
        'gym.register(id="rlkit-bad/Ctor-v0", entry_point=Broken)\n'
    ),
    "reset_fails.py": (
        "import gymnasium as gym\n"
        "class Broken(gym.Env):\n"
        "    observation_space = gym.spaces.Discrete(2)\n"
        "    action_space = gym.spaces.Discrete(2)\n"
        "    def reset(self, *, seed=None, options=None):\n"
        '        raise RuntimeError("no reset today")\n'
        'gym.register(id="rlkit-bad/Reset-v0", entry_point=Broken)\n'
    ),
}
# imported, it leaves a file `pwned` beside itself: what a planted module could do
PLANTED = "from pathlib import Path\n(Path(__file__).parent / 'pwned').write_text('x')\n"


def modules(folder: Path) -> Path:
    path = folder / "mods"
    path.mkdir()
    for name, text in MODULES.items():
        (path / name).write_text(text)
    return path


def new_run(*args: str, learns: bool = False) -> Callable[[Path, Bases], Prepared]:
    """A new run in the case's own out dir, with the test modules on PYTHONPATH. Refused
    before it starts, it leaves the out dir empty; one that `learns` first keeps its run
    dir (what `after` checks)."""

    def prepare(folder: Path, bases: Bases) -> Prepared:
        out = folder / "out"
        out.mkdir()
        return Prepared(
            [*args, "--out-dir", str(out), "--wandb", "disabled", "--no-progress"],
            watched=None if learns else out,
            env={"PYTHONPATH": str(modules(folder))},
        )

    return prepare


def on_copy(
    base: str,
    *args: str,
    damage: Callable[[Path], None] | None = None,
    cwd: str | None = None,
    env: Callable[[Path], dict[str, str]] | None = None,
) -> Callable[[Path, Bases], Prepared]:
    """A command on a copy of a session run dir (`{run}` in `args`), damaged first."""

    def prepare(folder: Path, bases: Bases) -> Prepared:
        source = getattr(bases, base, None) or OLD_RUNS / base
        run_dir = copy_run(source, folder)
        if damage is not None:
            damage(run_dir)
        where = {"run": run_dir, "parent": folder}
        return Prepared(
            [fill(arg, run=run_dir) for arg in args],
            watched=folder,
            cwd=None if cwd is None else where[cwd],
            env={} if env is None else env(folder),
        )

    return prepare


def put_checkpoint(payload: Callable[[Path], dict[str, Any]], name: str = "step-000000000001.pt"):
    """Damage: a checkpoint file `name` in the run's checkpoints/, saved as torch saves."""

    def damage(run_dir: Path) -> None:
        torch.save(payload(run_dir), run_dir / "checkpoints" / name)

    return damage


def from_newest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], dict[str, Any]]:
    """The run's newest checkpoint, changed by `change`."""

    def payload(run_dir: Path) -> dict[str, Any]:
        saved = torch.load(newest(run_dir), weights_only=True)
        change(saved)
        return saved

    return payload


def truncate_all(run_dir: Path) -> None:
    for path in list_checkpoints(run_dir / "checkpoints"):
        path.write_bytes(path.read_bytes()[:300])


def truncate_newest(run_dir: Path) -> None:
    path = newest(run_dir)
    path.write_bytes(path.read_bytes()[:300])


PLANTED_ENTRY_POINTS = """[rlkit.agents]
plantedagent = planted:Agent

[rlkit.envs]
planted/Env-v0 = planted:Env
"""


def plant(where: str, *config: tuple[str, Any]) -> Callable[[Path], None]:
    """Damage: a module `planted`, a package `minigrid` and a distribution `planted` that
    declares an agent and an env plugin, in the run dir or beside it; and the config
    naming what `config` says."""

    def damage(run_dir: Path) -> None:
        folder = run_dir if where == "run" else run_dir.parent
        (folder / "planted.py").write_text(PLANTED)
        (folder / "minigrid").mkdir()
        (folder / "minigrid" / "__init__.py").write_text(PLANTED)
        info = folder / "planted-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: planted\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(PLANTED_ENTRY_POINTS)
        edit_config(run_dir, **dict(config))

    return damage


def held(folder: Path, bases: Bases) -> Prepared:
    run_dir = copy_run(bases.qlearning, folder)
    holder = start_holder(run_dir)
    return Prepared(
        ["run", "--resume", str(run_dir), "--steps", "30000"],
        watched=folder,
        expected=(f"(pid {holder.pid})",),
        holder=holder,
    )


def read_only_out(folder: Path, bases: Bases) -> Prepared:
    out = folder / "out"
    out.mkdir()
    out.chmod(0o555)
    args = ["run", "qlearning", "--env", "FrozenLake-v1", "--out-dir", str(out)]
    return Prepared(args, watched=folder, limit="no-dac-override")


def file_as_out(folder: Path, bases: Bases) -> Prepared:
    (folder / "out").write_text("a file")
    args = ["run", "qlearning", "--env", "FrozenLake-v1", "--out-dir", str(folder / "out")]
    return Prepared(args, watched=folder)


def full_disk_resume(folder: Path, bases: Bases) -> Prepared:
    run_dir = copy_run(bases.taxi, folder)
    args = ["run", "--resume", str(run_dir), "--steps", "6000", "--no-progress"]
    return Prepared(args, limit="fsize=12000")


def full_disk_new_run(folder: Path, bases: Bases) -> Prepared:
    out = folder / "out"
    out.mkdir()
    args = [
        "run",
        "qlearning",
        "--env",
        "Taxi-v4",
        "--steps",
        "3000",
        "--checkpoint-every",
        "1000",
        "--out-dir",
        str(out),
        "--name",
        "run",
        "--wandb",
        "disabled",
        "--no-progress",
    ]
    return Prepared(args, limit="fsize=12000")


def no_temporary_files(folder: Path) -> None:
    left = [path for path in folder.rglob("*") if path.name.endswith(".tmp")]
    assert not left, f"temporary files left: {left}"


def after_full_disk_resume(folder: Path, bases: Bases) -> None:
    run_dir = folder / "run"
    no_temporary_files(folder)
    saved = {path.name: path.read_bytes() for path in list_checkpoints(bases.taxi / "checkpoints")}
    kept = {path.name: path.read_bytes() for path in list_checkpoints(run_dir / "checkpoints")}
    assert kept == saved, "the checkpoints from before the full disk must be as they were"


def after_full_disk_new_run(folder: Path, bases: Bases) -> None:
    no_temporary_files(folder)
    assert list_checkpoints(folder / "out" / "run" / "checkpoints") == []


def after_divergence(folder: Path, bases: Bases) -> None:
    """The run dir is kept, with its metrics; every checkpoint left is finite and loads."""
    (run_dir,) = (folder / "out").iterdir()
    assert (run_dir / "metrics.jsonl").stat().st_size > 0
    no_temporary_files(folder)
    for path in list_checkpoints(run_dir / "checkpoints"):
        saved = torch.load(path, weights_only=True)
        tensors = [v for v in _leaves(saved["agent"]) if isinstance(v, torch.Tensor)]
        assert all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())
    rows = (run_dir / "metrics.jsonl").read_text()
    assert "NaN" not in rows and "Infinity" not in rows


def _leaves(tree: Any) -> Iterator[Any]:
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


@dataclass(frozen=True)
class Process:
    prepare: Callable[[Path, Bases], Prepared]
    expected: tuple[str, ...]
    after: Callable[[Path, Bases], None] | None = None  # more checks of the case's folder
    started: bool = False  # it fails while learning: the run's start notes come first


def other_agent_checkpoint(run_dir: Path) -> None:
    shutil.copy(newest(OLD_RUNS / "dqn"), run_dir / "checkpoints" / "step-000000000001.pt")


def taxi_checkpoint(run_dir: Path) -> None:
    taxi = run_dir.parent.parent / "taxi-source"
    shutil.copy(newest(taxi), run_dir / "checkpoints" / "step-000000000001.pt")


CHOSEN = "{run}/checkpoints/step-000000000001.pt"
PROCESS_CASES: dict[str, Process] = {
    # modules that fail: plugin modules, env constructors and resets, wrappers
    "env-module-raises-on-import": Process(
        new_run("run", "qlearning", "--env", "badmod:X-v0"),
        ("importing module 'badmod' raised RuntimeError: boom at import", "badmod.py line 1"),
    ),
    "env-constructor-raises": Process(
        new_run("run", "qlearning", "--env", "ctor_fails:rlkit-bad/Ctor-v0"),
        ("cannot make env 'rlkit-bad/Ctor-v0': RuntimeError: the constructor failed",),
    ),
    "env-reset-raises": Process(
        new_run("run", "qlearning", "--env", "reset_fails:rlkit-bad/Reset-v0"),
        ("env 'rlkit-bad/Reset-v0' failed to reset: RuntimeError: no reset today",),
    ),
    "wrapper-module-raises-on-import": Process(
        new_run(
            "run",
            "qlearning",
            "--env",
            "FrozenLake-v1",
            "--set",
            "env_wrappers=[{wrapper: 'badwrap:W'}]",
        ),
        ("env_wrappers.0 (badwrap:W): importing module 'badwrap' raised RuntimeError",),
    ),
    # out dirs that cannot take a run dir
    "out-dir-read-only": Process(read_only_out, ("cannot create a run directory there",)),
    "out-dir-is-a-file": Process(file_as_out, ("cannot create it (File exists)",)),
    # more workers than the pool holds: refused before any starts
    "workers-ray-too-many": Process(
        new_run("run", "nes", "--env", "CartPole-v1", "--workers", "100000"),
        (
            "--workers 100000: the local Ray has this machine's",
            "(8 per CPU",
        ),
    ),
    "workers-inprocess-too-many": Process(
        new_run("run", "nes", "--env", "CartPole-v1", "--workers", "65", "--set", "pool=inprocess"),
        ("--workers 65: pool=inprocess takes at most 64 workers",),
    ),
    # eval --video of envs that cannot render frames
    "video-gridworld": Process(
        on_copy("grid", "eval", "{run}", "--video", "--episodes", "1"),
        ("--video: rlkit/GridWorld-v0 cannot render frames (its render modes: ansi",),
    ),
    "video-tmaze": Process(
        on_copy("rpg", "eval", "{run}", "--video", "--episodes", "1"),
        ("--video: rlkit/TMaze-v0 cannot render frames",),
    ),
    # checkpoints that do not fit the run
    "eval-checkpoint-of-another-agent": Process(
        on_copy(
            "qlearning", "eval", "{run}", "--checkpoint", CHOSEN, damage=other_agent_checkpoint
        ),
        ("is of agent 'dqn', not this run's 'qlearning'",),
    ),
    "resume-checkpoint-of-another-agent": Process(
        on_copy(
            "qlearning",
            "run",
            "--resume",
            "{run}",
            "--steps",
            "30000",
            "--checkpoint",
            CHOSEN,
            damage=other_agent_checkpoint,
        ),
        ("is of agent 'dqn', not this run's 'qlearning'", "give another with --checkpoint"),
    ),
    "eval-checkpoint-without-agent": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(lambda run: {"format": 1, "step": 1}),
        ),
        ("is not an rlkit checkpoint: it has no 'agent'",),
    ),
    "eval-checkpoint-step-mistyped": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved.update(step="ten"))),
        ),
        ("'step' must be a step count (got str)",),
    ),
    "eval-checkpoint-agent-mistyped": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved.update(agent=[1, 2]))),
        ),
        ("'agent' must be a mapping of the agent's state (got list)",),
    ),
    "eval-checkpoint-agent-key-missing": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved["agent"].pop("rng"))),
        ),
        ("does not fit this run's qlearning agent (KeyError: 'rng'",),
    ),
    "eval-checkpoint-table-mistyped": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved["agent"].update(q_table="x"))),
        ),
        ("does not fit this run's qlearning agent (ValueError",),
    ),
    "eval-checkpoint-of-a-bigger-env": Process(
        on_copy("qlearning", "eval", "{run}", "--checkpoint", CHOSEN, damage=taxi_checkpoint),
        ("does not fit this run's qlearning agent", "Q-table shape (500, 6) != (16, 4)"),
    ),
    "eval-checkpoint-truncated": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            "{run}/checkpoints/step-000000020000.pt",
            damage=truncate_newest,
        ),
        ("is truncated or corrupted", "give another with --checkpoint: step-"),
    ),
    "eval-every-checkpoint-truncated": Process(
        on_copy("qlearning", "eval", "{run}", damage=truncate_all),
        ("none of the 3 checkpoints of", "the newest, step-000000020000.pt, is truncated"),
    ),
    "resume-every-checkpoint-truncated": Process(
        on_copy("qlearning", "run", "--resume", "{run}", "--steps", "30000", damage=truncate_all),
        ("none of the 3 checkpoints of", "loads"),
    ),
    # modules a run dir names, refused before they are imported (rlkit/trust.py)
    "eval-module-inside-run-dir": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            cwd="run",
            damage=plant("run", ("env", "planted:FrozenLake-v1")),
        ),
        (
            "names env 'planted:FrozenLake-v1': module 'planted' is found only in the current "
            "directory or beside the run dir",
            "--trust-modules",
        ),
    ),
    "eval-module-beside-run-dir": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("env", "planted:FrozenLake-v1")),
        ),
        ("module 'planted' is found only in the current directory or beside the run dir",),
    ),
    "eval-wrapper-module-inside-run-dir": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            cwd="run",
            damage=plant("run", ("env_wrappers", [{"wrapper": "planted:W"}])),
        ),
        ("names env_wrappers.0 'planted:W': module 'planted'",),
    ),
    "eval-module-shadows-an-installed-one": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("env", "minigrid:MiniGrid-Empty-5x5-v0")),
        ),
        ("module 'minigrid' is shadowed: import would load", "not the installed"),
    ),
    "eval-agent-from-a-planted-distribution": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("agent", "plantedagent")),
        ),
        (
            "names agent 'plantedagent', a plugin (planted:Agent) that no package outside the "
            "run dir and the current directory declares",
        ),
    ),
    "eval-env-from-a-planted-distribution": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("env", "planted/Env-v0")),
        ),
        ("names env 'planted/Env-v0', a plugin (planted:Env) that no package",),
    ),
    "resume-module-beside-run-dir-on-pythonpath": Process(
        on_copy(
            "qlearning",
            "run",
            "--resume",
            "{run}",
            "--steps",
            "30000",
            damage=plant("parent", ("env", "planted:FrozenLake-v1")),
            env=lambda folder: {"PYTHONPATH": str(folder)},
        ),
        ("module 'planted' is found only in the current directory or beside the run dir",),
    ),
    # a run dir another process trains in
    "resume-while-another-process-holds-it": Process(
        held, ("is in use by another rlkit process", "wait for it to end")
    ),
    # a full disk (RLIMIT_FSIZE: writes past 12 kB fail; a Taxi checkpoint is 24 kB)
    "checkpoint-write-fails-on-resume": Process(
        full_disk_resume,
        (
            "cannot write checkpoint",
            "(File too large)",
            "step-000000003000.pt is kept",
            "rlkit run --resume",
        ),
        after=after_full_disk_resume,
        started=True,
    ),
    "checkpoint-write-fails-on-a-new-run": Process(
        full_disk_new_run,
        ("cannot write checkpoint", "(File too large)", "no earlier checkpoint exists"),
        after=after_full_disk_new_run,
        started=True,
    ),
    # learning that goes non-finite
    "qlearning-diverges": Process(
        new_run(
            "run",
            "qlearning",
            "--env",
            "FrozenLake-v1",
            "--steps",
            "4000",
            "--checkpoint-every",
            "500",
            "--set",
            "initial_value=1e300",
            "--set",
            "learning_rate={kind: exponential, start: 1e-300, end: 1e300}",
            learns=True,
        ),
        (
            "training diverged at step",
            "likely settings: learning_rate.start=1e-300, initial_value=1e+300",
            "the last good checkpoint, checkpoints/step-",
        ),
        after=after_divergence,
        started=True,
    ),
    "dqn-loss-goes-nan": Process(
        new_run(
            "run",
            "dqn",
            "--env",
            "CartPole-v1",
            "--steps",
            "3000",
            "--checkpoint-every",
            "100",
            "--log-every",
            "500",
            "--set",
            "learning_rate=1e12",
            "--set",
            "learning_starts=200",
            "--set",
            "threads=1",
            learns=True,
        ),
        (
            "training diverged at step",
            "likely settings: learning_rate=1e+12",
            "the last good checkpoint, checkpoints/step-",
        ),
        after=after_divergence,
        started=True,
    ),
}


@pytest.fixture(scope="session")
def outcomes(
    bases: Bases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[CliResult, dict[str, str] | None, Prepared, Path]]]:
    """Every subprocess case, prepared here and run at once in a thread pool."""
    root = tmp_path_factory.mktemp("process-cases")
    shutil.copytree(bases.taxi, root / "taxi-source")
    prepared: dict[str, tuple[Prepared, dict[str, str] | None, Path]] = {}
    try:
        for case, spec in PROCESS_CASES.items():
            folder = root / case
            folder.mkdir()
            ready = spec.prepare(folder, bases)
            before = None if ready.watched is None else tree_digest(ready.watched)
            prepared[case] = (ready, before, folder)
        with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
            futures = {
                case: pool.submit(execute, ready) for case, (ready, _, _) in prepared.items()
            }
            results = {case: future.result() for case, future in futures.items()}
        yield {
            case: (results[case], before, ready, folder)
            for case, (ready, before, folder) in prepared.items()
        }
    finally:
        for ready, _, _ in prepared.values():
            if ready.holder is not None:
                ready.holder.kill()
                ready.holder.wait()


@pytest.mark.parametrize("case", sorted(PROCESS_CASES))
@pytest.mark.slow
def test_refused_in_a_real_process(case: str, outcomes: dict[str, Any], bases: Bases) -> None:
    result, before, prepared, folder = outcomes[case]
    if result.returncode == 77 and prepared.limit == "no-dac-override":
        pytest.skip("this system does not let root drop CAP_DAC_OVERRIDE")
    spec = PROCESS_CASES[case]
    assert_user_error(result, *spec.expected, *prepared.expected, started=spec.started)
    if prepared.watched is not None:
        assert tree_digest(prepared.watched) == before, "the refused command changed files"
    assert not list(folder.rglob("pwned")), "a module the run dir named was imported"
    if spec.after is not None:
        spec.after(folder, bases)


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


# ---------------------------------------------------------------- controls
# What shows that the refusals above refuse something real.


def test_the_lock_goes_with_its_holder_even_after_kill_9(bases: Bases, tmp_path: Path) -> None:
    run_dir = copy_run(bases.qlearning, tmp_path)
    holder = start_holder(run_dir)
    try:
        with pytest.raises(
            UserError, match=rf"in use by another rlkit process \(pid {holder.pid}\)"
        ):
            RunLock.acquire(run_dir)
    finally:
        holder.kill()  # SIGKILL: no handler runs, the OS drops the lock
        holder.wait()
    RunLock.acquire(run_dir).release()
    assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_trust_modules_imports_what_the_run_dir_names(bases: Bases, tmp_path: Path) -> None:
    """The module refused in `eval-module-inside-run-dir` is real: with --trust-modules,
    eval imports it (it leaves its marker) and evaluates the run."""
    run_dir = copy_run(bases.qlearning, tmp_path)
    (run_dir / "planted.py").write_text(PLANTED)
    edit_config(run_dir, env="planted:FrozenLake-v1")
    done = run_cli("eval", str(run_dir), "--episodes", "2", "--trust-modules", cwd=run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_dir / "pwned").exists()
    assert "2 episodes: return mean" in done.stdout


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_skipped_and_kept(bases: Bases, tmp_path: Path) -> None:
    """--resume falls back to the newest checkpoint that loads, says why it skipped the
    newer one, and keeps it aside (renamed) where neither pruning nor loading will meet it."""
    run_dir = copy_run(bases.qlearning, tmp_path)
    damaged = newest(run_dir)
    damaged.write_bytes(damaged.read_bytes()[:300])
    previous = list_checkpoints(run_dir / "checkpoints")[-2]
    done = run_cli("eval", str(run_dir), "--episodes", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"skipped checkpoints/{damaged.name}: it is truncated or corrupted" in done.stderr
    assert damaged.exists(), "eval changes nothing in the run dir"
    done = run_cli("run", "--resume", str(run_dir), "--steps", "22000", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"kept as {damaged.name}.damaged" in done.stderr
    assert f"from step {int(previous.stem.split('-')[1])} ({previous.name})" in done.stderr
    assert (damaged.parent / f"{damaged.name}.damaged").is_file()
    assert newest(run_dir).name == "step-000000022000.pt"


@pytest.mark.slow
def test_a_second_resume_of_a_running_run_is_refused(bases: Bases, tmp_path: Path) -> None:
    """Two real `--resume`s of one run dir: the second is refused, naming the first's pid,
    and the first goes on writing the one metrics file (before: both ran, and one wrote
    to a file the other had replaced)."""
    run_dir = copy_run(bases.qlearning, tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "rlkit", "run", "--resume", str(run_dir), "--steps", "5000000",
         "--no-progress"],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        lock = run_dir / LOCK_FILE
        while time.monotonic() < deadline and not (
            lock.is_file() and lock.read_text().strip() == str(first.pid)
        ):
            assert first.poll() is None, first.communicate()[1][-2000:]
            time.sleep(0.1)
        second = run_cli("run", "--resume", str(run_dir), "--steps", "6000000")
        assert_user_error(second, f"is in use by another rlkit process (pid {first.pid})")
    finally:
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert steps == sorted(steps) and steps[-1] > 20_000
