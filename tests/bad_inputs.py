"""Shared by the bad-input suites: test_bad_inputs.py (in-process cases),
test_bad_inputs_process.py (subprocess cases, and the controls), test_bad_inputs_sweep.py
(sweeps). A hostile but fair user's bad input, through the real CLI: each case must end
with exit code 2, exactly one line on stderr (`rlkit: <what is wrong>; <what is
accepted>`), no traceback, and nothing in the run dir (or sweep dir, or out dir) lost or
half-written.

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
- The sweep cases are refused before Ray or Tune start and run in-process too; the
  control that shows a crafted Tune state is real (`--trust-state` unpickles it) runs a
  real sweep in a subprocess.

Every case that has a run dir gets its own copy of one made once per session (the
`small_run` Q-learning run of conftest.py, and a few more), and the test compares a
digest of that copy (or of the case's whole folder) before and after.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from rlkit.checkpoint import list_checkpoints
from rlkit.cli import main
from rlkit.rundir import LOCK_FILE
from tests.conftest import CliResult

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
