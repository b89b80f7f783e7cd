"""DQN resumes with its replay: after kill -9 and after SIGTERM, through the real CLI; with
`persist_replay=false` it refills, as before.

The Atari runs are small: Breakout, a replay of 500 transitions, learning from step 300,
batch 8 every 8 steps, one torch thread (so that two runs with one seed are identical).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlkit import checkpoint
from rlkit.errors import UserError
from rlkit.logger import read_metrics
from rlkit.replay import ReplayBuffer, checkpoint_margin, make_replay_buffer
from rlkit.replay_storage import REPLAY_DIR, ReplayFiles
from rlkit.training import train
from tests.conftest import cli_env
from tests.test_old_runs import OLD_RUNS
from tests.test_runs import learning_rows

BUFFER = 500
CHECKPOINT_EVERY = 1_200  # margin 500 (at most the buffer): a ring of 1,000 slots
TRAIN_FREQUENCY = 8
SMALL = {
    "threads": 1,
    "buffer_size": BUFFER,
    "learning_starts": 300,
    "batch_size": 8,
    "train_frequency": TRAIN_FREQUENCY,
    "target_update_period": 250,
}
FLAGS = ["--checkpoint-every", str(CHECKPOINT_EVERY), "--log-every", "100"]
FLAGS += ["--wandb", "disabled", "--no-progress", "--seed", "0"]
for key, value in SMALL.items():
    FLAGS += ["--set", f"{key}={value}"]


def start_run(out: Path, name: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "rlkit", "run", "dqn", "--env", "Breakout"]
    args += ["--steps", "100000", "--out-dir", str(out), "--name", name, *FLAGS]
    return subprocess.Popen(args, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_step(run_dir: Path, step: int, process: subprocess.Popen[bytes]) -> None:
    """Until a metric row at or past `step` is written."""
    deadline = time.monotonic() + 180
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.is_file() and any(row["step"] >= step for row in read_metrics(metrics)):
            return
        time.sleep(0.05)
    pytest.fail(f"the run did not reach step {step}")


def checkpoint_state(path: Path) -> dict[str, Any]:
    return checkpoint.load(path)["agent"]


def open_replay(run_dir: Path, state: dict[str, Any]) -> ReplayBuffer:
    """The run's replay files as `learn` opens them, restored to `state` (a checkpoint's)."""
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    buffer = make_replay_buffer(
        space,
        capacity=BUFFER,
        num_envs=1,
        stacked=True,
        margin=checkpoint_margin(CHECKPOINT_EVERY, 1, BUFFER),
        files=ReplayFiles(run_dir / REPLAY_DIR, remedy="-"),
    )
    assert buffer.reopened
    assert buffer.load_state_dict(state["replay"]) == 0
    return buffer


def contents(buffer: ReplayBuffer, serials: np.ndarray) -> dict[str, np.ndarray]:
    """The slots of env 0 with these serials (write counts), whatever the ring's rotation."""
    assert buffer.serials is not None
    slots = serials % buffer.ring
    assert np.array_equal(buffer.serials[0, slots], serials)
    fields = ("frames", "positions", "actions", "rewards", "has_next", "terminal", "final")
    return {name: getattr(buffer, name)[0, slots].copy() for name in fields}


def window_serials(buffer: ReplayBuffer) -> np.ndarray:
    written = int(buffer.written[0])
    return np.arange(written - int(buffer._filled()[0]), written)


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)


def rows_between(run_dir: Path, low: int, high: int) -> list[dict[str, Any]]:
    return [row for row in read_metrics(run_dir / "metrics.jsonl") if low < row["step"] <= high]


def resume(run_dir: Path, steps: int, capsys: pytest.CaptureFixture[str]) -> str:
    """`rlkit run --resume` in this process (a process start less); its stderr."""
    capsys.readouterr()
    train(None, resume=run_dir, steps=steps, progress=False)
    return capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_resumes_with_the_replay_as_of_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = start_run(tmp_path, "killed")
    run_dir = tmp_path / "killed"
    wait_for_step(run_dir, CHECKPOINT_EVERY + 100, process)  # past the checkpoint at 1,200
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    (newest,) = checkpoint.list_checkpoints(run_dir / "checkpoints")
    assert newest.name == "step-000000001200.pt"
    state = checkpoint_state(newest)
    written = int(state["replay"]["written"][0])
    assert written > 2 * BUFFER  # the ring (1,000 slots) has wrapped
    serials = np.load(run_dir / REPLAY_DIR / "serials.npy")
    assert serials.max() >= written + 50, "the killed run wrote past its checkpoint"

    # the same run stopped cleanly at 1,200: the replay it had there
    reference = train(
        "dqn",
        env="Breakout",
        steps=CHECKPOINT_EVERY,
        seed=0,
        out_dir=str(tmp_path),
        name="reference",
        wandb="disabled",
        progress=False,
        log_every=100,
        checkpoint_every=CHECKPOINT_EVERY,
        threads=1,
        hparams={key: value for key, value in SMALL.items() if key != "threads"},
    )
    expected_state = checkpoint_state(reference.checkpoint)
    expected = open_replay(reference.run_dir, expected_state)
    killed = open_replay(run_dir, state)  # what --resume restores
    kept = window_serials(expected)
    assert len(kept) == BUFFER and np.array_equal(window_serials(killed), kept)
    assert_same(contents(killed, kept), contents(expected, kept))
    assert state["replay"]["rng"] == expected_state["replay"]["rng"]
    del killed

    stderr = resume(run_dir, 1500, capsys)
    assert f"replay: {BUFFER} slots as of step {CHECKPOINT_EVERY} from {run_dir / 'replay'}" in (
        stderr
    )
    # updates went on at once: a loss at the first row, and no update missing
    first = [row for row in rows_between(run_dir, CHECKPOINT_EVERY, 1300) if "train/loss" in row]
    assert [row["step"] for row in first] == [1300]
    resumed = checkpoint_state(checkpoint.list_checkpoints(run_dir / "checkpoints")[-1])
    assert resumed["step"] == 1500
    assert resumed["updates"] - state["updates"] == (
        1500 // TRAIN_FREQUENCY - CHECKPOINT_EVERY // TRAIN_FREQUENCY
    )
    # the replay it ended with still holds the newer transitions of the checkpoint's
    after = open_replay(run_dir, resumed)
    still_held = np.intersect1d(window_serials(after), kept)
    assert len(still_held) >= BUFFER - 320
    assert_same(contents(after, still_held), contents(expected, still_held))


@pytest.mark.slow
def test_sigterm_stop_resumes_with_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process = start_run(tmp_path, "stopped")
    run_dir = tmp_path / "stopped"
    wait_for_step(run_dir, 500, process)  # learning started at 300
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert b"Traceback" not in stderr and b"interrupted at step" in stderr
    (final,) = checkpoint.list_checkpoints(run_dir / "checkpoints")
    state = checkpoint_state(final)
    stopped_at = int(state["step"])
    assert 500 <= stopped_at < CHECKPOINT_EVERY
    written = int(state["replay"]["written"][0])
    assert written > stopped_at  # every step and each episode's first observation

    target = stopped_at + 200
    stderr = resume(run_dir, target, capsys)
    assert f"replay: {min(written, BUFFER)} slots as of step {stopped_at}" in stderr
    rows = [row for row in rows_between(run_dir, stopped_at, target) if "train/loss" in row]
    first_update = (stopped_at // TRAIN_FREQUENCY + 1) * TRAIN_FREQUENCY  # no refill
    assert rows and rows[0]["step"] == -(-first_update // 100) * 100
    resumed = checkpoint_state(checkpoint.list_checkpoints(run_dir / "checkpoints")[-1])
    assert resumed["updates"] - state["updates"] == (
        target // TRAIN_FREQUENCY - stopped_at // TRAIN_FREQUENCY
    )


def cartpole(out: Path, name: str, persist: bool, **settings: Any) -> Path:
    result = train(
        "dqn",
        env="CartPole-v1",
        steps=2_000,
        seed=0,
        out_dir=str(out),
        name=name,
        wandb="disabled",
        progress=False,
        log_every=250,
        checkpoint_every=1_000,
        threads=1,
        hparams={"persist_replay": persist},
        **settings,
    )
    return result.run_dir


def test_without_persist_replay_a_run_has_no_files_and_a_resume_refills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """persist_replay=false is the old behaviour: the same learning, no files, and a resume
    refills the replay for learning_starts (1,000) steps before updating again. Three
    envs, each with its own ring."""
    memory = cartpole(tmp_path, "memory", persist=False, num_envs=3)
    files = cartpole(tmp_path, "files", persist=True, num_envs=3)
    assert learning_rows(memory) == learning_rows(files)
    assert not (memory / REPLAY_DIR).exists() and (files / REPLAY_DIR / "layout.json").is_file()
    saved = checkpoint.load(checkpoint.list_checkpoints(memory / "checkpoints")[-1])
    assert "replay" not in saved["agent"]
    stopped_at = saved["step"]  # 2,000 or a little more: 3 envs step together
    train(None, resume=memory, steps=3_000, progress=False)
    stderr = resume(files, 3_000, capsys)
    assert re.search(rf"replay: [0-9,]+ slots as of step {stopped_at} from ", stderr)
    assert not (memory / REPLAY_DIR).exists()
    assert not [row for row in rows_between(memory, stopped_at, 3_000) if "train/loss" in row]
    assert [row for row in rows_between(files, stopped_at, 3_000) if "train/loss" in row]


def test_a_run_dir_without_its_replay_files_resumes_by_refilling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting <run>/replay/ is safe: the next resume refills (and persists again)."""
    run_dir = cartpole(tmp_path, "deleted", persist=True)
    shutil.rmtree(run_dir / REPLAY_DIR)
    stderr = resume(run_dir, 3_000, capsys)
    assert f"replay: no files in {run_dir / REPLAY_DIR} that match the checkpoint; refilling" in (
        stderr
    )
    assert not [row for row in rows_between(run_dir, 2_000, 3_000) if "train/loss" in row]
    assert (run_dir / REPLAY_DIR / "layout.json").is_file()


def test_a_full_disk_stops_a_run_before_its_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rlkit.replay_storage.free_bytes", lambda directory: 2**30)
    with pytest.raises(UserError) as refused:
        train("dqn", env="Breakout", steps=1_000, out_dir=str(tmp_path), name="full",
              wandb="disabled", progress=False)  # fmt: skip
    replay = tmp_path / "full" / REPLAY_DIR
    assert str(refused.value) == (
        f"replay files need 7.0 GiB in {replay}, but 1.0 GiB is free there; "
        "free disk space, lower buffer_size or set persist_replay=false"
    )
    assert not any(tmp_path.iterdir()), "the refused run left a run directory behind"


def test_an_older_run_dir_resumes_by_refilling_unless_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run dir from before persisted replays: its checkpoint has no replay; the resume
    refills one in new files, or, on a full disk, says how to go on without them."""
    run_dir = tmp_path / "dqn"
    shutil.copytree(OLD_RUNS / "dqn", run_dir)
    with monkeypatch.context() as patch:
        patch.setattr("rlkit.replay_storage.free_bytes", lambda directory: 2**20)
        with pytest.raises(UserError) as refused:
            train(None, resume=run_dir, steps=1_600, progress=False)
    assert str(refused.value) == (
        f"replay files need 5.8 MiB in {run_dir / REPLAY_DIR}, but 1.0 MiB is free there; "
        f"free disk space, or set persist_replay: false in {run_dir / 'config.yaml'}"
    )
    stderr = resume(run_dir, 1_600, capsys)
    assert "replay: none in the checkpoint (an older run dir, or persist_replay was off); " in (
        stderr
    )
    assert (run_dir / REPLAY_DIR / "layout.json").is_file()
