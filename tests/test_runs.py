"""Whole runs: determinism, resume, interruption (SIGINT, kill -9), eval, plot, the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import rlkit
from rlkit.checkpoint import list_checkpoints
from rlkit.logger import read_metrics
from rlkit.training import TrainResult, train
from tests.conftest import cli_env, run_cli


def learning_rows(run_dir: Path) -> list[dict]:
    """Metric rows without wall-clock fields, which differ between identical runs."""
    rows = []
    for row in read_metrics(run_dir / "metrics.jsonl"):
        kept = {k: v for k, v in row.items() if k != "wall_time" and not k.startswith("time/")}
        if len(kept) > 1:
            rows.append(kept)
    return rows


def quick(out: Path, **settings) -> TrainResult:
    defaults = dict(
        env="Taxi-v4",
        steps=12_000,
        seed=7,
        out_dir=str(out),
        wandb="disabled",
        checkpoint_every=3_000,
        log_every=2_000,
        progress=False,
    )
    return train("qlearning", **{**defaults, **settings})


def final_table(result: TrainResult) -> np.ndarray:
    return np.asarray(rlkit.load(result.run_dir).agent.q_table)


def test_same_seed_gives_identical_metrics_and_table(tmp_path: Path) -> None:
    first, second = quick(tmp_path, name="a"), quick(tmp_path, name="b")
    assert learning_rows(first.run_dir) == learning_rows(second.run_dir)
    assert len(learning_rows(first.run_dir)) > 50
    np.testing.assert_array_equal(final_table(first), final_table(second))
    other = quick(tmp_path, name="c", seed=8)
    assert learning_rows(other.run_dir) != learning_rows(first.run_dir)


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    whole = quick(tmp_path, name="whole")
    part = quick(tmp_path, name="part", steps=6_000)
    assert part.step == 6_000
    resumed = train(None, resume=part.run_dir, steps=12_000)
    assert resumed.run_dir == part.run_dir and resumed.step == 12_000
    # Periodic checkpoints fall at episode ends, so the resumed run replays the same
    # RNG streams; the final checkpoint of the short run was mid-episode, so compare
    # against a resume from the last periodic checkpoint instead.
    periodic = quick(tmp_path, name="periodic")
    checkpoints = list_checkpoints(periodic.run_dir / "checkpoints")
    for newer in checkpoints[checkpoints.index(_at_or_after(checkpoints, 6_000)) + 1 :]:
        newer.unlink()
    train(None, resume=periodic.run_dir, steps=12_000)
    np.testing.assert_array_equal(final_table(whole), final_table(periodic))
    assert learning_rows(whole.run_dir) == learning_rows(periodic.run_dir)
    config = yaml.safe_load((part.run_dir / "config.yaml").read_text())
    assert config["steps"] == 12_000


def _at_or_after(checkpoints: list[Path], step: int) -> Path:
    return next(p for p in checkpoints if int(p.stem.split("-")[1]) >= step)


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "rlkit",
        "run",
        "qlearning",
        "--env",
        "Taxi-v4",
        "--steps",
        "5000000",
        "--checkpoint-every",
        "20000",
        "--wandb",
        "disabled",
        "--out-dir",
        str(tmp_path),
        "--name",
        "killed",
        "--no-progress",
    ]
    process = subprocess.Popen(
        args, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    run_dir = tmp_path / "killed"
    deadline = time.monotonic() + 120
    while len(list_checkpoints(run_dir / "checkpoints")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert len(checkpoints) >= 2
    newest_step = int(checkpoints[-1].stem.split("-")[1])
    loaded = rlkit.load(run_dir)
    assert loaded.step == newest_step
    result = run_cli(
        "run", "--resume", str(run_dir), "--steps", str(newest_step + 5000), "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert f"from step {newest_step}" in result.stderr
    assert rlkit.load(run_dir).step == newest_step + 5000
    rows = read_metrics(run_dir / "metrics.jsonl")
    steps = [row["step"] for row in rows]
    assert steps == sorted(steps), "resumed metrics must continue, not repeat, the old rows"


def test_sigint_saves_a_checkpoint_and_exits_cleanly(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "rlkit",
        "run",
        "qlearning",
        "--env",
        "Taxi-v4",
        "--steps",
        "5000000",
        "--checkpoint-every",
        "1000000",
        "--wandb",
        "offline",
        "--out-dir",
        str(tmp_path),
        "--name",
        "interrupted",
        "--no-progress",
    ]
    process = subprocess.Popen(
        args, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    run_dir = tmp_path / "interrupted"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.is_file() and metrics.stat().st_size > 2000:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted at step" in stderr and f"--resume {run_dir}" in stderr
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert len(checkpoints) == 1
    loaded = rlkit.load(run_dir)
    assert 0 < loaded.step < 1_000_000
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert offline_runs and list(offline_runs[0].glob("*.wandb")), "W&B run not closed in run dir"


def test_run_directory_records_what_ran(small_run: TrainResult) -> None:
    record = json.loads((small_run.run_dir / "run.json").read_text())
    assert record["rlkit_version"] == rlkit.__version__
    assert record["seeds"]["run"] == 1 and {"env", "agent", "eval"} <= set(record["seeds"])
    assert {"numpy", "gymnasium", "torch"} <= set(record["packages"])
    assert record["config"]["hparams"]["gamma"] == 0.99
    config = yaml.safe_load((small_run.run_dir / "config.yaml").read_text())
    assert config["env"] == "FrozenLake-v1" and config["steps"] == 20_000
    assert small_run.run_dir.name.startswith("qlearning-FrozenLake-v1-")
    checkpoints = list_checkpoints(small_run.run_dir / "checkpoints")
    assert len(checkpoints) == 3  # keep_checkpoints default
    assert checkpoints[-1].name == "step-000000020000.pt"  # the final one
    steps = [int(p.stem.split("-")[1]) for p in checkpoints]
    assert 10_000 <= steps[0] < steps[1] < 20_000  # periodic ones, at episode ends past 5k marks


def test_saved_config_reruns_with_config_flag(small_run: TrainResult, tmp_path: Path) -> None:
    result = train(
        None, config=small_run.run_dir / "config.yaml", out_dir=str(tmp_path), name="again"
    )
    assert learning_rows(result.run_dir) == learning_rows(small_run.run_dir)


@pytest.mark.slow
def test_eval_cli_prints_statistics(small_run: TrainResult) -> None:
    result = run_cli("eval", str(small_run.run_dir), "--episodes", "50", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["episodes"] == 50
    assert stats["min"] <= stats["mean"] <= stats["max"]
    assert stats["success_rate"] == pytest.approx(stats["mean"])  # FrozenLake: return is 0 or 1
    text = run_cli("eval", str(small_run.run_dir), "--episodes", "20")
    assert "return mean" in text.stdout and "success rate" in text.stdout


def test_eval_uses_chosen_checkpoint(small_run: TrainResult) -> None:
    oldest = list_checkpoints(small_run.run_dir / "checkpoints")[0]
    loaded = rlkit.load(small_run.run_dir, str(oldest))
    assert loaded.step == int(oldest.stem.split("-")[1]) < small_run.step


def test_plot_overlays_runs(small_run: TrainResult, tmp_path: Path) -> None:
    other = quick(tmp_path, env="FrozenLake-v1", steps=5_000)
    output = tmp_path / "curve.png"
    result = run_cli("plot", str(small_run.run_dir), str(other.run_dir), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and output.stat().st_size > 10_000


def test_python_api_trains_loads_and_acts(tmp_path: Path) -> None:
    result = rlkit.train(
        "qlearning",
        env="rlkit/GridWorld-v0",
        steps=3_000,
        seed=0,
        hparams={"gamma": 0.95},
        out_dir=str(tmp_path),
        wandb="disabled",
        progress=False,
    )
    loaded = rlkit.load(result.run_dir)
    assert loaded.agent_config.gamma == 0.95 and loaded.step == 3_000
    action, state = loaded.agent.act(0, loaded.agent.initial_state())
    assert action in range(4) and state is None
    stats = rlkit.evaluate(result.run_dir, episodes=3)
    assert stats.episodes == 3


def test_wandb_offline_run_lives_in_run_dir(tmp_path: Path) -> None:
    result = quick(tmp_path, steps=3_000, wandb="offline")
    runs = list((result.run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = [p.name for p in runs[0].iterdir()]
    assert any(name.endswith(".wandb") for name in files)
    assert not Path("wandb").exists() or not any(Path("wandb").glob(f"*{result.run_dir.name}*"))


def test_wandb_mode_follows_the_users_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlkit.logger import resolve_wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert resolve_wandb_mode(None) == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode(None) == "disabled"
    assert resolve_wandb_mode("online") == "online"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert resolve_wandb_mode(None) == "online"


def test_cli_run_reports_and_creates_run(tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "qlearning",
        "--env",
        "Taxi",
        "--steps",
        "2000",
        "--seed",
        "3",
        "--set",
        "gamma=0.95",
        "--wandb",
        "disabled",
        "--out-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("qlearning-Taxi-v4-")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["seed"] == 3 and config["hparams"]["gamma"] == 0.95 and config["env"] == "Taxi-v4"
    assert "done, 2000 steps" in result.stdout
    assert os.path.isdir(run_dir / "checkpoints")
