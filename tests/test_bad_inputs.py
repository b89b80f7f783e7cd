"""Bad input refused while rlkit reads its arguments, a config, a run dir's files or
settings: `rlkit.cli.main` in this process (tests/bad_inputs.py says how the suites run)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bad_inputs import (
    assert_user_error,
    copy_run,
    edit_config,
    fill,
    newest,
    run_main,
)
from tests.conftest import Bases, tree_digest

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
    "group-seeds-too-many": Parse((*RUN, "--seeds", "0-5000"), ("--seeds", "more than 1000 seeds")),
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
