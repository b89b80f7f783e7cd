"""`rlkit sweep`: real sweeps on a real local Ray Tune, W&B offline, real files.

Q-learning on rlkit's grid world learns within a thousand steps, and with a learning
rate of 0 it never does: such trials are clearly worse, so ASHA must stop them early.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import yaml
from wandb.proto import wandb_internal_pb2

import rlkit.agent
from rlkit.errors import UserError
from rlkit.logger import read_metrics
from rlkit.resolve import Layer, resolve
from rlkit.sweep import (
    TrialRow,
    format_table,
    load_sweep,
    run_sweep,
    write_best,
    write_new_sweep_dir,
)
from rlkit.training import train
from tests.conftest import cli_env, run_cli, tree_digest
from tests.preset_agent import PRESET_STEPS, PresetAgent

GRID_RUN = {
    "agent": "qlearning",
    "env": "rlkit/GridWorld-v0",
    "steps": 6000,
    "log_every": 500,
    "checkpoint_every": 1000,
    "hparams": {
        "learning_rate": {"kind": "constant", "start": 0.5, "end": 0.5},
        "epsilon": {"kind": "constant", "start": 0.1, "end": 0.1},
    },
}


def write_sweep(path: Path, **changes: object) -> Path:
    spec = {
        "name": "grid",
        "run": GRID_RUN,
        "search": {"hparams.learning_rate.start": {"grid": [0.5, 0.5, 0.0, 0.0]}},
        "metric": "episode/return",
        "mode": "max",
        "max_concurrent": 2,
        "scheduler": {"kind": "asha", "grace_period": 1000, "reduction_factor": 2},
        **changes,
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_digest(run_dir: Path) -> dict[str, str]:
    """Every file of a run dir but W&B's own logs (its service process may still append a
    line after the sweep ends), so a new W&B run still shows, and any other change."""
    return {
        path: digest
        for path, digest in tree_digest(run_dir).items()
        if not (path.startswith("wandb/") and ("/logs/" in path or path.endswith(".log")))
    }


def wandb_runs(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def has_wandb_group(record_file: Path, group: str) -> bool:
    """The offline W&B run record carries `group` in its RunRecord.run_group field."""
    number = wandb_internal_pb2.RunRecord.DESCRIPTOR.fields_by_name["run_group"].number
    encoded = bytes([(number << 3) | 2, len(group)]) + group.encode()
    return encoded in record_file.read_bytes()


@pytest.mark.slow
def test_sweep_trials_are_runs_with_table_best_config_plot_and_asha(
    tmp_path: Path, ray_local: float
) -> None:
    sweep = load_sweep(write_sweep(tmp_path / "grid.yaml"), out_dir=tmp_path / "sweeps")
    write_new_sweep_dir(sweep)
    result = run_sweep(sweep)

    assert not result.interrupted and len(result.trials) == 4
    by_rate = {row.name: row.config["hparams.learning_rate.start"] for row in result.trials}
    for row in result.trials:
        run_dir = sweep.directory / "trials" / row.name
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["hparams"]["learning_rate"]["start"] == by_rate[row.name]
        assert config["wandb_group"] == "grid" and config["threads"] == 1
        returns = [r for r in read_metrics(run_dir / "metrics.jsonl") if "episode/return" in r]
        assert returns and list((run_dir / "checkpoints").glob("step-*.pt"))
        records = wandb_runs(run_dir)
        assert len(records) == 1, "one W&B run per trial"
        assert has_wandb_group(records[0], "grid")
    # ASHA: the learning-rate-0 trials fall far behind at the first rung and stop there
    zero = [row for row in result.trials if by_rate[row.name] == 0.0]
    assert all(row.status == "stopped early" and row.step < 3000 for row in zero)
    assert any(row.status == "finished" and row.step == 6000 for row in result.trials)
    # a stopped trial still ended as a normal run: its final checkpoint and W&B closed
    stopped_dir = sweep.directory / "trials" / zero[0].name
    assert "exitcode" in (wandb_runs(stopped_dir)[0].parent / "logs" / "debug.log").read_text()
    assert result.best is not None and by_rate[result.best.name] == 0.5
    assert result.best.metric is not None and result.best.metric > -20

    table = format_table(sweep, result)
    assert "hparams.learning_rate.start" in table and "stopped early" in table
    assert f"{result.best.name} *" in table

    assert (sweep.directory / "curves.png").stat().st_size > 5000
    best_file = sweep.directory / "best.yaml"
    best = yaml.safe_load(best_file.read_text())
    assert best["agent"] == "qlearning" and best["hparams"]["learning_rate"]["start"] == 0.5
    again = train(config=best_file, steps=500, out_dir=str(tmp_path / "runs"), wandb="disabled")
    assert again.step == 500 and again.run_dir.parent == tmp_path / "runs"


@pytest.mark.slow
def test_failing_trial_is_retried_and_continues_from_its_checkpoint(
    tmp_path: Path, ray_local: float
) -> None:
    marker = tmp_path / "failed-once"
    run = {
        **GRID_RUN,
        "env": "tests.flaky_env:rlkit-test/FlakyGridWorld-v0",
        "steps": 3000,
        "env_kwargs": {"fail_marker": str(marker), "fail_at": 1500},
    }
    path = write_sweep(
        tmp_path / "flaky.yaml",
        name="flaky",
        run=run,
        search={"seed": {"grid": [1, 2]}},
        scheduler={"kind": "fifo"},
        max_failures=1,
    )
    sweep = load_sweep(path, out_dir=tmp_path)
    write_new_sweep_dir(sweep)
    result = run_sweep(sweep)

    assert marker.exists()
    assert sorted(row.failures for row in result.trials) == [0, 1]
    assert all(row.status == "finished" and row.step == 3000 for row in result.trials)
    assert "retried 1x" in format_table(sweep, result)
    retried = sweep.directory / "trials" / next(r.name for r in result.trials if r.failures)
    steps = [row["step"] for row in read_metrics(retried / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] >= 2900, "continued to the end, no step twice"
    # the retry resumed the run made before the failure instead of starting a new one
    assert (retried / "run.json").stat().st_mtime <= marker.stat().st_mtime


@pytest.mark.slow
def test_a_trial_that_fails_on_its_retry_too_counts_one_retry(
    tmp_path: Path, ray_local: float
) -> None:
    """Tune's num_failures counts every failure, the last (not retried) one included."""
    run = {
        **GRID_RUN,
        "env": "tests.flaky_env:rlkit-test/FlakyGridWorld-v0",
        "steps": 3000,
        "env_kwargs": {"fail_always": True, "fail_at": 1500},
    }
    path = write_sweep(
        tmp_path / "doomed.yaml",
        name="doomed",
        run=run,
        search={"seed": {"grid": [1]}},
        scheduler={"kind": "fifo"},
        max_failures=1,
    )
    sweep = load_sweep(path, out_dir=tmp_path)
    write_new_sweep_dir(sweep)
    result = run_sweep(sweep)
    (row,) = result.trials
    assert row.status == "failed" and row.failures == 2 and row.retries == 1
    table = format_table(sweep, result)
    assert "failed (retried 1x)" in table and "retried 2x" not in table


@pytest.mark.slow
def test_ctrl_c_then_resume_finishes_without_redoing_finished_trials(
    tmp_path: Path, sweep_key: Path
) -> None:
    run = {
        **GRID_RUN,
        "env": "tests.flaky_env:rlkit-test/FlakyGridWorld-v0",
        "steps": 2000,
        "env_kwargs": {"step_delay": 0.002},  # ~5 s per trial
    }
    path = write_sweep(
        tmp_path / "slow.yaml",
        name="slow",
        run=run,
        search={"seed": {"grid": [1, 2, 3]}},
        scheduler={"kind": "fifo"},
        max_concurrent=1,
    )
    root = Path(__file__).resolve().parents[1]
    env = {**cli_env(), "PYTHONPATH": str(root)}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "rlkit", "sweep", str(path), "--out-dir", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    trials = tmp_path / "slow" / "trials"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (trials / "trial-00001").exists():
        time.sleep(0.2)
    assert (trials / "trial-00001").exists(), "the second trial never started"
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert f"rlkit sweep --resume {tmp_path / 'slow'}" in stderr
    assert "not finished" in stdout
    # the interrupted sweep sealed its Tune state with the user's key (made 0600), so
    # --resume below trusts it without --trust-state
    assert (tmp_path / "slow" / "state.json").is_file()
    assert sweep_key.stat().st_mode & 0o777 == 0o600
    first = run_digest(trials / "trial-00000")

    resumed = subprocess.run(
        [sys.executable, "-m", "rlkit", "sweep", "--resume", str(tmp_path / "slow")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.count("finished") == 3 and "not finished" not in resumed.stdout
    assert run_digest(trials / "trial-00000") == first, "a finished trial was redone"
    assert "trial-00000 started" not in resumed.stderr
    rows = read_metrics(trials / "trial-00001" / "metrics.jsonl")
    assert rows[-1]["step"] >= 1900
    assert (tmp_path / "slow" / "best.yaml").is_file()


def test_best_yaml_is_written_when_the_trial_dir_is_on_another_node(tmp_path: Path) -> None:
    """On a cluster without a shared file system the driver may not see a trial's run
    dir: best.yaml then comes from the sweep's run block and the trial's values."""
    sweep = load_sweep(write_sweep(tmp_path / "grid.yaml"), out_dir=tmp_path / "sweeps")
    write_new_sweep_dir(sweep)
    row = TrialRow(
        name="trial-00003",
        config={"hparams.learning_rate.start": 0.5},
        metric=-2.0,
        step=6000,
        status="finished",
        failures=0,
    )
    best = yaml.safe_load(write_best(sweep, row).read_text())
    assert best["agent"] == "qlearning" and best["env"] == "rlkit/GridWorld-v0"
    assert best["hparams"]["learning_rate"]["start"] == 0.5 and "threads" not in best
    again = train(config=sweep.directory / "best.yaml", steps=300, wandb="disabled",
                  out_dir=str(tmp_path / "runs"))  # fmt: skip
    assert again.step == 300


@pytest.fixture()
def preset_agent(monkeypatch: pytest.MonkeyPatch) -> str:
    """tests/preset_agent.py registered as agent `preset-test` (in this process)."""
    points = rlkit.agent.agent_entry_points()
    point = EntryPoint("preset-test", "tests.preset_agent:PresetAgent", "rlkit.agents")
    monkeypatch.setattr(rlkit.agent, "agent_entry_points", lambda: {**points, point.name: point})
    return point.name


# preset-test's defaults: batch 32, buffer 1000; its grid-world preset: batch 8, buffer 64
PRESET_CASES = [
    # refused under the bare defaults (batch 32 > buffer 16), valid as the run resolves it
    ({"hparams.buffer_size": {"choice": [16, 64]}}, {"buffer_size": 16}, None),
    # valid under the bare defaults (100 <= 1000), refused as the run resolves it
    (
        {"hparams.batch_size": {"grid": [8, 100]}},
        {"batch_size": 100},
        "search hparams.batch_size: preset-test: batch_size must not exceed buffer_size",
    ),
]


@pytest.mark.parametrize(("search", "trial_hparams", "refused"), PRESET_CASES)
def test_search_values_are_validated_as_the_run_resolves_them_preset_included(
    tmp_path: Path,
    preset_agent: str,
    search: dict[str, object],
    trial_hparams: dict[str, object],
    refused: str | None,
) -> None:
    run = {"agent": preset_agent, "env": "rlkit/GridWorld-v0"}
    path = write_sweep(tmp_path / "preset.yaml", run=run, search=search, scheduler={"kind": "fifo"})
    layer = Layer(settings={"env": "rlkit/GridWorld-v0"}, hparams=trial_hparams)
    if refused is None:
        sweep = load_sweep(path, out_dir=tmp_path)
        assert sweep.steps == PRESET_STEPS, "a trial trains for the preset's steps, as a run"
        assert resolve(preset_agent, PresetAgent, [layer]).settings.steps == PRESET_STEPS
    else:
        with pytest.raises(UserError) as raised:
            load_sweep(path, out_dir=tmp_path)
        assert str(raised.value) == f"sweep '{path}': {refused}"
        with pytest.raises(UserError, match="batch_size must not exceed buffer_size"):
            resolve(preset_agent, PresetAgent, [layer])  # the run refuses it too
    assert list(tmp_path.iterdir()) == [path]


def test_sweep_steps_are_the_steps_its_runs_resolve(tmp_path: Path) -> None:
    """DQN on CartPole without run.steps trains the flat-observation preset's 50,000 steps
    under `rlkit run`; the sweep's trials and its ASHA bounds are the same."""
    run = {"agent": "dqn", "env": "CartPole-v1"}
    search = {"hparams.learning_rate": {"choice": [1e-3, 3e-3]}}
    asha = {"kind": "asha", "grace_period": 5000}
    sweep = load_sweep(
        write_sweep(tmp_path / "dqn.yaml", run=run, search=search, scheduler=asha),
        out_dir=tmp_path,
    )
    assert sweep.steps == 50_000 and "steps" not in sweep.trial_config({})
    settings, _ = sweep.trial_run({"hparams.learning_rate": 1e-3}, "trial-00000")
    assert "steps" not in settings, "the trial resolves its steps as `rlkit run` does"
    too_late = {**asha, "grace_period": 60_000}
    with pytest.raises(UserError, match=r"grace_period 60000 must be below the trial's steps"):
        load_sweep(write_sweep(tmp_path / "late.yaml", run=run, search=search, scheduler=too_late))


BAD_INPUTS = [
    (
        {"search": {"hparams.learning_rate.start": {"loguniform": [0, 1]}}},
        "search hparams.learning_rate.start: {'loguniform': [0, 1]} is malformed "
        "(loguniform needs 0 < low)",
    ),
    ({"search": {"hparams.gamma": {"between": [0, 1]}}}, "unknown kind 'between'"),
    ({"search": {"hparams.gamma": {"uniform": [0.9]}}}, "uniform needs [low, high]"),
    ({"search": {"hparams.gama": {"choice": [0.9]}}}, "search key 'hparams.gama' is unknown"),
    ({"search": {"learning_rate": {"choice": [0.1]}}}, "neither a run setting nor"),
    ({"search": {"hparams.gamma": {"choice": [0.9, 1.5]}}}, "search hparams.gamma"),
    ({"metric": "train/loss"}, "metric 'train/loss' is not reported by every qlearning run"),
    ({"metric": "eval/return"}, "accepted: episode/return, episode/length"),
    ({"colour": "blue"}, "unknown key 'colour'"),
]


@pytest.mark.parametrize(("changes", "expected"), BAD_INPUTS, ids=lambda v: str(v)[:30])
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    path = write_sweep(tmp_path / "bad.yaml", **changes)
    before = tree_digest(tmp_path)
    done = run_cli("sweep", str(path), "--out-dir", str(tmp_path / "sweeps"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlkit: "), done.stderr
    assert (expected in lines[0] and "; accepted" in lines[0]) or "must be" in lines[0]
    assert tree_digest(tmp_path) == before and not (tmp_path / "sweeps").exists()


def test_unreachable_address_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    path = write_sweep(tmp_path / "grid.yaml")
    started = time.monotonic()
    done = run_cli("sweep", str(path), "--address", "127.0.0.1:9", cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    assert done.stderr.startswith("rlkit: --address 127.0.0.1:9: cannot reach a Ray cluster")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.slow
def test_existing_sweep_dir_and_bad_resume_are_user_errors(tmp_path: Path) -> None:
    (tmp_path / "sweeps" / "grid").mkdir(parents=True)
    path = write_sweep(tmp_path / "grid.yaml")
    done = run_cli("sweep", str(path), cwd=tmp_path)
    assert done.returncode == 2 and "already exists; continue it with" in done.stderr
    done = run_cli("sweep", "--resume", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "not a sweep dir" in done.stderr
    done = run_cli("sweep", cwd=tmp_path)
    assert done.returncode == 2 and "give a sweep FILE or --resume" in done.stderr
    assert os.listdir(tmp_path / "sweeps") == ["grid"]
