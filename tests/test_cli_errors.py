"""Bad input through the real CLI: one line, exit code 2, no traceback, nothing damaged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rlkit.training import TrainResult
from tests.conftest import run_cli, tree_digest


def assert_user_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rlkit: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture()
def out_dir(small_run: TrainResult, tmp_path: Path) -> Path:
    """An out dir holding a copy of a real run; each test checks it is left untouched."""
    out = tmp_path / "runs"
    out.mkdir()
    shutil.copytree(small_run.run_dir, out / small_run.run_dir.name)
    before = tree_digest(out)
    yield out
    assert tree_digest(out) == before, "a failed command changed or added files"


def test_unknown_agent_suggests_closest(out_dir: Path) -> None:
    result = run_cli("run", "qlearnin", "--env", "FrozenLake-v1", "--out-dir", str(out_dir))
    assert_user_error(result, "unknown agent 'qlearnin'", "did you mean 'qlearning'", "installed:")


def test_unknown_env_suggests_closest(out_dir: Path) -> None:
    result = run_cli("run", "qlearning", "--env", "FrozenLak-v1", "--out-dir", str(out_dir))
    assert_user_error(result, "unknown env 'FrozenLak-v1'", "did you mean 'FrozenLake-v1'")


def test_set_unknown_key(out_dir: Path) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "Taxi-v4", "--set", "gama=0.9", "--out-dir", str(out_dir)
    )
    assert_user_error(result, "--set gama=0.9", "unknown key 'gama'", "did you mean 'gamma'")


def test_set_wrong_type(out_dir: Path) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "Taxi-v4", "--set", "gamma=abc", "--out-dir", str(out_dir)
    )
    assert_user_error(result, "--set gamma=abc", "gamma must be a number", "'abc'")


def test_set_nested_wrong_type(out_dir: Path) -> None:
    result = run_cli(
        "run",
        "qlearning",
        "--env",
        "Taxi-v4",
        "--set",
        "epsilon.kind=cubic",
        "--out-dir",
        str(out_dir),
    )
    assert_user_error(result, "epsilon.kind", "'linear', 'exponential' or 'constant'")


def test_set_without_equals(out_dir: Path) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "Taxi-v4", "--set", "gamma", "--out-dir", str(out_dir)
    )
    assert_user_error(result, "--set gamma", "expected key=value")


def test_missing_config_file(out_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_cli("run", "qlearning", "--config", str(missing), "--out-dir", str(out_dir))
    assert_user_error(result, f"config file '{missing}' not found")


def test_malformed_config_file(out_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: FrozenLake-v1\nhparams: {gamma: [0.9\n")
    result = run_cli("run", "qlearning", "--config", str(bad), "--out-dir", str(out_dir))
    assert_user_error(result, f"config file '{bad}' is malformed", "line")


def test_config_file_with_unknown_key(out_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "unknown.yaml"
    bad.write_text("agent: qlearning\nenv: Taxi-v4\nhparams:\n  alpha: 0.1\n")
    result = run_cli("run", "--config", str(bad), "--out-dir", str(out_dir))
    assert_user_error(result, "unknown key 'alpha'", "accepted: epsilon, gamma")


def test_qlearning_refuses_box_observations(out_dir: Path) -> None:
    result = run_cli("run", "qlearning", "--env", "CartPole-v1", "--out-dir", str(out_dir))
    assert_user_error(
        result, "qlearning needs a Discrete observation space", "CartPole-v1 has Box("
    )


@pytest.mark.parametrize("steps", ["0", "-5", "ten"])
def test_bad_step_counts(out_dir: Path, steps: str) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "Taxi-v4", f"--steps={steps}", "--out-dir", str(out_dir)
    )
    assert_user_error(result, "--steps", steps)


def test_resume_of_a_folder_that_is_not_a_run(out_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    result = run_cli("run", "--resume", str(folder))
    assert_user_error(result, "is not an rlkit run directory")


def test_resume_rejects_changed_settings(out_dir: Path) -> None:
    run_dir = next(out_dir.iterdir())
    result = run_cli("run", "--resume", str(run_dir), "--env", "Taxi-v4", "--steps", "30000")
    assert_user_error(result, "--env cannot be changed")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
@pytest.mark.slow
def test_corrupted_checkpoints(tmp_path: Path, small_run: TrainResult, damage: str) -> None:
    """Every checkpoint damaged: nothing to fall back to (tests/test_bad_inputs.py has the
    fallback past a damaged newest one)."""
    run_dir = tmp_path / small_run.run_dir.name
    shutil.copytree(small_run.run_dir, run_dir)
    found = sorted((run_dir / "checkpoints").glob("step-*.pt"))
    for path in found:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 50)
    before = tree_digest(run_dir)
    for args in (["eval", str(run_dir)], ["run", "--resume", str(run_dir), "--steps", "40000"]):
        result = run_cli(*args)
        assert_user_error(
            result, "none of the 3 checkpoints", found[-1].name, "truncated or corrupted"
        )
    assert tree_digest(run_dir) == before


def test_eval_of_missing_run(tmp_path: Path) -> None:
    result = run_cli("eval", str(tmp_path / "missing"))
    assert_user_error(result, "is not an rlkit run directory")


def test_unknown_command() -> None:
    result = run_cli("train", "qlearning")
    assert_user_error(result, "invalid choice: 'train'")


def test_module_env_that_cannot_be_imported(out_dir: Path) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "no_such_pkg.envs:Maze-v0", "--out-dir", str(out_dir)
    )
    assert_user_error(result, "cannot import module 'no_such_pkg.envs'")


NESTED_ALIASES = "{a: &a [x, x, x, x, x, x, x, x, x], " + ", ".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(7)
) + "}"  # fmt: skip


def test_set_with_nested_aliases_is_refused_on_one_short_line(out_dir: Path) -> None:
    """Before: this few-hundred-byte --set expanded to 9**8 strings, and the error that
    quoted it was megabytes long."""
    item = f"env_kwargs={NESTED_ALIASES}"
    assert len(item) < 400
    result = run_cli(
        "run", "qlearning", "--env", "Taxi-v4", "--set", item, "--out-dir", str(out_dir)
    )
    assert_user_error(result, "--set env_kwargs={a: &a", "YAML anchors and aliases")
    assert len(result.stderr) < 300


def test_config_file_with_aliases_is_refused(out_dir: Path, tmp_path: Path) -> None:
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(f"agent: qlearning\nenv: Taxi-v4\nenv_kwargs: {NESTED_ALIASES}\n")
    result = run_cli("run", "--config", str(bomb), "--out-dir", str(out_dir))
    assert_user_error(result, f"config file '{bomb}' line 3: YAML anchors and aliases")


def test_long_set_value_is_quoted_cut_short(out_dir: Path) -> None:
    result = run_cli(
        "run", "qlearning", "--env", "Taxi-v4", "--set", "gamma=" + "9" * 5000 + "x",
        "--out-dir", str(out_dir),
    )  # fmt: skip
    assert_user_error(result, "gamma must be a number", "...")
    assert len(result.stderr) < 300
