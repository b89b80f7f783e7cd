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
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlkit.checkpoint import list_checkpoints
from rlkit.cli import main
from rlkit.rundir import LOCK_FILE
from rlkit.training import TrainResult, train
from tests.conftest import CliResult, tree_digest

ROOT = Path(__file__).resolve().parents[1]
OLD_RUNS = ROOT / "tests" / "data" / "old_runs"
READABLE = 800  # characters: the path, the value cut to 80, what is accepted


def assert_user_error(result: CliResult, *fragments: str, limit: int = 2000) -> None:
    """Exit code 2, one line on stderr starting `rlkit: `, no traceback, the fragments."""
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = result.stderr.splitlines()
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
NESTED_ALIASES = "{a: &a [x, x, x, x, x, x, x, x, x], " + ", ".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(7)
) + "}"  # fmt: skip

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
    "config-device": Parse(("run", "--config", "/dev/zero"), ("larger than 1 MiB",)),
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
    "eval-wrapper-main-module": Parse(
        ("eval", "{run}"),
        ("env_wrappers.0 'pip.__main__:W'", "runs a program when imported"),
        damage=lambda run: edit_config(run, env_wrappers=[{"wrapper": "pip.__main__:W"}]),
    ),
    "resume-env-not-installed": Parse(
        ("run", "--resume", "{run}", "--steps", "30000"),
        ("module 'tests.flaky_env' is found outside the Python installation",),
        damage=lambda run: edit_config(run, env="tests.flaky_env:rlkit-test/FlakyGridWorld-v0"),
    ),
    # plot
    "plot-missing-run": Parse(("plot", "{tmp}", "-o", "{tmp}/c.png"), ("has no metrics.jsonl",)),
    "plot-unknown-suffix": Parse(
        ("plot", "{run}", "-o", "{tmp}/c.xyz"), ("unknown image format '.xyz'", ".png")
    ),
    "plot-folder": Parse(("plot", "{run}", "-o", "{tmp}"), ("is a folder", "curve.png")),
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
